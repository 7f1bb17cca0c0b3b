"""What the vote script knows about a campaign: its state in Redis, published after each commit."""

from __future__ import annotations

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
from voting.keys import CampaignKeys, ms
from voting.marks import published_mark
from voting.models import Vote

log = logging.getLogger("zuimei.voting")

META_TTL = 300  # seconds: a lost sync heals itself within this time


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
    withdrawn = db.session.execute(
        select(Nomination.number, Category.code)
        .join(Category, Nomination.category_id == Category.id)
        .where(
            Nomination.campaign_id == campaign.id,
            Nomination.number.is_not(None),
            Nomination.status != "approved",
        )
    ).all()
    return {
        "slug": campaign.slug,
        "max_seq": int(max_seq or 0),
        "withdrawn": [tuple(row) for row in withdrawn],
        "meta": {
            "id": campaign.id,
            # Names this campaign row (ids can be reused after a delete): sequence floors and
            # acknowledged marks apply only within one epoch.
            "epoch": f"{campaign.id}.{ms(campaign.created_at)}",
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


_RAISE_SEQ = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
end
"""


def write_state(state: dict[str, Any]) -> None:
    keys = CampaignKeys.of(state["slug"])
    client = redis_store.votes
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.meta, keys.nominees)
    pipe.hset(keys.meta, mapping={k: str(v) for k, v in state["meta"].items()})
    pipe.expire(keys.meta, META_TTL)
    if state["nominees"]:
        pipe.hset(keys.nominees, mapping=state["nominees"])
    for number, category in state.get("withdrawn", []):
        pipe.zrem(keys.rank(category), number)  # a withdrawn nominee leaves the standings
    pipe.execute()
    # After Redis lost data the sequence must not run again over numbers already stored, nor
    # over numbers voters were given (the published mark): the lost ones stay a visible gap.
    floor = max(state.get("max_seq", 0), published_mark(state["slug"], state["meta"].get("epoch")))
    client.eval(_RAISE_SEQ, 1, keys.seq, floor)


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
            write_state(state)
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
