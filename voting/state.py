"""What the vote script knows about a campaign: its state in Redis, published after each commit."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, scoped_session

from campaigns.models import Campaign, Category
from core.errors import NotFound
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.signals import campaign_changed
from nominations.models import Nomination
from voting import rewinds
from voting.blocks import blocked_voter_ids
from voting.keys import CampaignKeys, ms
from voting.models import Vote

log = logging.getLogger("zuimei.voting")

META_TTL = 300  # seconds: a lost sync heals itself within this time

# How many times this process published each campaign: voting/cast.py keeps what it read of the
# meta (time zone, regions) only while this is unchanged, so a change made here is seen at once.
published: dict[str, int] = {}


def campaign_state(campaign: Campaign) -> dict[str, Any]:
    rules = campaign.rules or {}
    nominees = dict(
        db.session.execute(
            select(Nomination.number, Category.code)
            .join(Category, Nomination.category_id == Category.id)
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
        ).all()
    )
    max_seq = db.session.scalar(select(func.max(Vote.seq)).where(Vote.campaign_id == campaign.id))
    epoch = rewinds.campaign_epoch(campaign)
    floor, redis_id = rewinds.floor_of(campaign.id, epoch)
    return {
        "slug": campaign.slug,
        "max_seq": int(max_seq or 0),
        # The highest number recorded as acknowledged outside Redis, and whether a vote Redis
        # data set was seen before (its identity token recorded): the guard's evidence.
        "floor": floor,
        "had_rid": redis_id is not None,
        "blocked": blocked_voter_ids(campaign.id),
        "meta": {
            "id": campaign.id,
            # Names this campaign row (ids can be reused after a delete): sequence floors and
            # acknowledged marks apply only within one epoch.
            "epoch": epoch,
            "phase": campaign.phase,
            "start_ms": ms(campaign.voting_start),
            "end_ms": ms(campaign.voting_end),
            "tz": campaign.timezone,
            "per_day": rules.get("votes_per_day", 1),
            "per_nominee": rules.get("votes_per_nominee_per_day", 1),
            "ip_soft": rules.get("ip_soft_limit", 30),
            "velocity_factor": rules.get("velocity_factor", 10),
            "velocity_floor": rules.get("velocity_floor", 300),
            "freeze_seconds": rules.get("freeze_minutes", 10) * 60,
            "hide_from_ms": _hide_from_ms(rules),
            # 地区限制: the allowed regions, one a line ("" for none); voting/cast.py reads it.
            "regions": "\n".join(rules.get("regions") or ()),
            # 一人一号: "1" when a voter must hold a verified phone (the token's pv claim).
            "phone": "1" if rules.get("require_phone") else "",
        },
        "nominees": nominees,
    }


def _hide_from_ms(rules: dict[str, Any]) -> int:
    """0 hides from the start, -1 never; else the epoch ms from which counts are hidden."""
    if rules.get("hide_counts"):
        return 0
    if rules.get("hide_counts_from"):
        return ms(datetime.fromisoformat(rules["hide_counts_from"]))
    return -1


# KEYS: meta, nominees, blocked, rebuild flag; ARGV: meta, nominees, blocked (JSON), meta TTL.
# Nothing is written while a rewind's rebuild is pending: without meta the vote script answers
# "sync" and no vote is counted against quotas not yet rebuilt.
_WRITE_STATE = """
if redis.call('EXISTS', KEYS[4]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local function put(command, key, items)
  for i = 1, #items, 1000 do
    redis.call(command, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
local function flat(map)
  local items = {}
  for k, v in pairs(map) do
    items[#items + 1] = k
    items[#items + 1] = v
  end
  return items
end
put('HSET', KEYS[1], flat(cjson.decode(ARGV[1])))
redis.call('EXPIRE', KEYS[1], ARGV[4])
put('HSET', KEYS[2], flat(cjson.decode(ARGV[2])))
put('SADD', KEYS[3], cjson.decode(ARGV[3]))
return 1
"""


def write_state(state: dict[str, Any], *, rebuild: bool = True) -> bool:
    """Publish a campaign's state to the vote Redis; False if it could not be yet.

    First the guard: a vote Redis behind the numbers known acknowledged (the database floor,
    the stored votes, the published marks) or without its identity token has its sequence
    lifted past them plus the margin, and a rebuild of quotas and idempotency answers is
    pending. With ``rebuild`` (the caller may read the database) the rebuild runs here, under a
    lease; otherwise (after a commit) the state is left unwritten and the next ``load_state``
    (the first vote) or the watch job rebuilds. The blocked-voter set is rewritten with the
    state, in the same script."""
    keys = CampaignKeys.of(state["slug"])
    client = redis_store.votes
    known = max(int(state.get("max_seq", 0)), int(state.get("floor", 0)))
    rewinds.run_guard(
        state["slug"],
        str(state["meta"].get("epoch") or ""),
        known,
        bool(state.get("had_rid")),
        detected_by="state",
    )
    if rewinds.rebuild_pending(state["slug"]):
        if not rebuild:
            log.warning("campaign %s not published: a rewind rebuild is pending", state["slug"])
            return False
        rewinds.rebuild_after_rewind(state["slug"], int(state["meta"]["id"]), state["meta"])
    meta = {k: str(v) for k, v in state["meta"].items()}
    written = client.eval(
        _WRITE_STATE,
        4,
        keys.meta,
        keys.nominees,
        keys.blocked,
        keys.rebuild,
        json.dumps(meta),
        json.dumps(state["nominees"] or {}),
        json.dumps([str(v) for v in state.get("blocked", [])]),
        META_TTL,
    )
    published[state["slug"]] = published.get(state["slug"], 0) + 1
    return bool(written)


def sync_campaign(campaign: Campaign) -> None:
    write_state(campaign_state(campaign))


def load_state(slug: str) -> None:
    """Publish a campaign the vote script does not know (yet, or any more)."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or campaign.phase == "draft":
        raise NotFound("评选活动不存在", code="campaign_not_found")
    sync_campaign(campaign)


# --- publishing after commit ------------------------------------------------------------------
#
# A change is published only once its transaction committed (an old phase must never reach the
# vote script), and a rolled-back change never. voting.init_app connects these to the app's
# session (db.session) and to the campaign_changed signal.


def _queue_sync(campaign: Campaign, **_: Any) -> None:
    pending = db.session.info.setdefault("zuimei_sync", {})
    pending[campaign.slug] = campaign


def _before_commit(session: Session) -> None:
    pending = session.info.pop("zuimei_sync", None)
    if not pending:
        return
    session.flush()
    states = []
    for campaign in pending.values():
        # Re-read the row: another transaction may have moved the phase since we loaded it, and
        # an old phase must never be published (it would reopen voting for META_TTL).
        session.refresh(campaign)
        states.append(campaign_state(campaign))
    session.info["zuimei_sync_states"] = states


def _after_commit(session: Session) -> None:
    for state in session.info.pop("zuimei_sync_states", None) or []:
        try:
            write_state(state, rebuild=False)  # no SQL after a commit: the rebuild waits
        except VOTE_REDIS_ERRORS:
            log.warning(
                "could not publish campaign %s to redis; it heals within %ss",
                state["slug"],
                META_TTL,
            )


def _after_soft_rollback(session: Session, _transaction: Any) -> None:
    session.info.pop("zuimei_sync", None)
    session.info.pop("zuimei_sync_states", None)


_SESSION_HOOKS = (
    ("before_commit", _before_commit),
    ("after_commit", _after_commit),
    ("after_soft_rollback", _after_soft_rollback),
)


def publish_after_commit(session: scoped_session[Any]) -> None:
    """Publish campaign changes from ``session``'s commits (its sessionmaker's sessions only).
    Idempotent: an app factory called many times in one process registers once."""
    campaign_changed.connect(_queue_sync, weak=False)
    for name, hook in _SESSION_HOOKS:
        if not event.contains(session, name, hook):
            event.listen(session, name, hook)
