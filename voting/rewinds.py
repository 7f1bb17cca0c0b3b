"""A vote Redis that comes back behind what voters were told: detected, lifted, rebuilt, reported.

The highest acknowledged vote number of each campaign is kept in the database (``sequence_floors``,
raised by every drain batch and by the per-second watch job, which also reads the processes'
published marks and the Redis sequence), and each vote Redis data set carries an identity token
(``{c:slug}:rid``). A data set without the token (restarted empty, restored from a file older
than the token) or with a sequence below the recorded floor has rewound: the guard lifts its
sequence past the floor plus ``VOTE_SEQ_REWIND_MARGIN`` (numbers are never handed out twice),
deletes the campaign's meta so that no vote is counted until the quotas and idempotency answers
are rebuilt from the database and the stream, and queues an event that the watch job (or a
reconcile) records in ``ledger_rewinds``, where it stays an alarm until acknowledged.
docs/voting.md, "Durability: rewinds".
"""

from __future__ import annotations

import json
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from campaigns.models import Campaign
from core.errors import AppError, NotFound, ServiceUnavailable
from core.extensions import db, redis_store
from core.types import utcnow
from voting.keys import CampaignKeys, ms
from voting.marks import published_mark
from voting.models import LedgerRewind, SequenceFloor, Vote

log = logging.getLogger("zuimei.voting")

REBUILD_LEASE_SECONDS = 120
IDEM_TTL = 86400  # the vote script keeps an idempotency answer this long
QUOTA_TTL = 172800  # and a quota hash this long
CHUNK = 500

# KEYS: rid, seq, meta, rewinds (list of events), rebuild (flag)
# ARGV: known (highest number known acknowledged), had_rid ('1': a data set was seen before),
#       margin, token (new identity / event key), now_ms, detected_by
_GUARD = """
local rid = redis.call('GET', KEYS[1])
local seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local known = tonumber(ARGV[1])
local restarted = (not rid) and ARGV[2] == '1'
if not rid then
  rid = ARGV[4]
  redis.call('SET', KEYS[1], rid)
end
if seq >= known and not restarted then
  return {0, tostring(seq), rid}
end
local target = math.max(seq, known) + tonumber(ARGV[3])
redis.call('SET', KEYS[2], tostring(target))
local reason = 'rewound'
if restarted then reason = 'restarted' end
redis.call('RPUSH', KEYS[4], cjson.encode({key = ARGV[4], at = tonumber(ARGV[5]), by = ARGV[6],
  reason = reason, from = seq, known = known, to = target, rid = rid}))
redis.call('SET', KEYS[5], '1')
redis.call('DEL', KEYS[3])
return {1, tostring(target), rid}
"""

# KEYS: quota hashes; ARGV[1]: JSON list of {field: count}, one per key; ARGV[2]: TTL.
# Only raises: a counter above the rebuilt value (votes meanwhile) is kept.
_RAISE_QUOTAS = """
local wanted = cjson.decode(ARGV[1])
local raised = 0
for i, key in ipairs(KEYS) do
  local changed = false
  for field, value in pairs(wanted[i]) do
    if tonumber(redis.call('HGET', key, field) or '0') < value then
      redis.call('HSET', key, field, value)
      changed = true
    end
  end
  if changed then
    raised = raised + 1
    redis.call('EXPIRE', key, ARGV[2])
  end
end
return raised
"""


def campaign_epoch(campaign: Campaign) -> str:
    """Names this campaign row (ids can be reused after a delete): floors apply in one epoch."""
    return f"{campaign.id}.{ms(campaign.created_at)}"


def margin() -> int:
    return int(current_app.config.get("VOTE_SEQ_REWIND_MARGIN") or 0)


def _insert(model: Any) -> Any:
    return (pg_insert if db.engine.dialect.name == "postgresql" else sqlite_insert)(model)


# --- the floor in the database ----------------------------------------------------------------


def floor_of(campaign_id: int, epoch: str) -> tuple[int, str | None]:
    """(highest acknowledged number recorded, identity of the vote Redis last seen) in ``epoch``."""
    row = db.session.get(SequenceFloor, campaign_id)
    if row is None or row.epoch != epoch:
        return 0, None
    return int(row.seq), row.redis_id


def record_floor(campaign_id: int, epoch: str, seq: int, redis_id: str | None = None) -> None:
    """Raise the recorded floor to ``seq`` (never lower it); flush only."""
    now = utcnow()
    db.session.execute(
        _insert(SequenceFloor)
        .values(campaign_id=campaign_id, epoch=epoch, seq=seq, redis_id=redis_id, updated_at=now)
        .on_conflict_do_nothing(index_elements=["campaign_id"])
    )
    row = SequenceFloor.__table__.c
    db.session.execute(  # another campaign row under a reused id: start afresh
        update(SequenceFloor)
        .where(row.campaign_id == campaign_id, row.epoch != epoch)
        .values(epoch=epoch, seq=seq, redis_id=redis_id, updated_at=now)
    )
    db.session.execute(
        update(SequenceFloor)
        .where(row.campaign_id == campaign_id, row.seq < seq)
        .values(seq=seq, updated_at=now)
    )
    if redis_id:
        db.session.execute(
            update(SequenceFloor)
            .where(row.campaign_id == campaign_id, row.redis_id.is_distinct_from(redis_id))
            .values(redis_id=redis_id)
        )
    db.session.expire_all()


def highest_sequence(entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
    """The highest vote number among raw stream entries (0 if none is readable)."""
    highest = 0
    for _, fields in entries:
        try:
            highest = max(highest, int(fields.get(b"seq", b"0")))
        except ValueError:
            continue
    return highest if highest < 2**63 else 0


# --- detection ---------------------------------------------------------------------------------


def run_guard(slug: str, epoch: str, known: int, had_rid: bool, *, detected_by: str) -> bool:
    """Run the guard script: True if the vote Redis was found rewound (or restarted) and lifted.
    ``known`` is the highest acknowledged number recorded (database floor, stored votes); the
    processes' published mark is added here."""
    keys = CampaignKeys.of(slug)
    known = max(known, published_mark(slug, epoch))
    detected, seq, _rid = redis_store.votes.eval(
        _GUARD,
        5,
        keys.rid,
        keys.seq,
        keys.meta,
        keys.rewinds,
        keys.rebuild,
        known,
        "1" if had_rid else "0",
        margin(),
        secrets.token_hex(16),
        ms(utcnow()),
        detected_by,
    )
    if int(detected):
        log.error(
            "vote redis of %s was behind the %d votes known acknowledged (restart or restore "
            "from older data): sequence lifted to %s; quotas are rebuilt before voting resumes",
            slug,
            known,
            seq.decode() if isinstance(seq, bytes) else seq,
        )
    return bool(int(detected))


def rebuild_pending(slug: str) -> bool:
    return bool(redis_store.votes.exists(CampaignKeys.of(slug).rebuild))


def rebuild_after_rewind(slug: str, campaign_id: int, meta: dict[str, Any]) -> dict[str, Any]:
    """Rebuild quotas and idempotency answers after a rewind, under a lease, then clear the
    flag. Another process rebuilding already: ServiceUnavailable (the vote is retried)."""
    keys = CampaignKeys.of(slug)
    client = redis_store.votes
    token = secrets.token_hex(8)
    if not client.set(keys.rebuild_lease, token, nx=True, ex=REBUILD_LEASE_SECONDS):
        raise ServiceUnavailable("投票服务正在恢复，请稍后再试", headers={"Retry-After": "2"})
    try:
        quotas = rebuild_quotas(slug, campaign_id, str(meta["tz"]))
        reseeded = reseed_idempotency(
            slug, campaign_id, int(meta["per_day"]), int(meta["hide_from_ms"])
        )
        client.delete(keys.rebuild)
    finally:
        if client.get(keys.rebuild_lease) == token.encode():
            client.delete(keys.rebuild_lease)
    log.warning(
        "vote redis of %s rebuilt after a rewind: %d quota(s) raised, %d idempotency answer(s)",
        slug,
        quotas["raised"],
        reseeded,
    )
    return {"quotas": quotas, "idempotency": reseeded}


# --- what a rewind loses: quotas and idempotency answers ------------------------------------


def rebuild_quotas(slug: str, campaign_id: int, zone: str) -> dict[str, Any]:
    """Every voter's daily and per-nominee quota of the current campaign day, from the stored
    votes plus the undrained stream, raised in Redis where it is lower (never lowered)."""
    keys = CampaignKeys.of(slug)
    client = redis_store.votes
    day = utcnow().astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")
    undrained: dict[str, tuple[str, str]] = {}
    for _, raw in client.xrange(keys.ledger):
        fields = {k.decode(errors="replace"): v.decode(errors="replace") for k, v in raw.items()}
        wanted = (fields.get(name) for name in ("id", "v", "n"))
        if fields.get("kind") == "vote" and fields.get("day") == day and all(wanted):
            undrained[fields["id"]] = (fields["v"], fields["n"])
    stored: set[str] = set()
    ids = list(undrained)
    for start in range(0, len(ids), CHUNK):
        chunk_ids = ids[start : start + CHUNK]
        stored |= set(db.session.scalars(select(Vote.id).where(Vote.id.in_(chunk_ids))))
    spent: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for voter, number, count in db.session.execute(
        select(Vote.voter_id, Vote.nominee_number, func.count(Vote.id))
        .where(Vote.campaign_id == campaign_id, Vote.day == day)
        .group_by(Vote.voter_id, Vote.nominee_number)
    ):
        spent[str(voter)][number] += count
    for vote_id, (voter, number) in undrained.items():
        if vote_id not in stored:
            spent[voter][number] += 1
    voters = sorted(spent)
    raised = 0
    for start in range(0, len(voters), CHUNK):
        chunk = voters[start : start + CHUNK]
        wanted = [{**spent[v], "_t": sum(spent[v].values())} for v in chunk]
        raised += int(
            client.eval(
                _RAISE_QUOTAS,
                len(chunk),
                *(keys.quota(day, v) for v in chunk),
                json.dumps(wanted),
                QUOTA_TTL,
            )
        )
    return {"day": day, "voters": len(voters), "raised": raised}


def reseed_idempotency(slug: str, campaign_id: int, per_day: int, hide_from_ms: int) -> int:
    """The first answer of every vote of the last 24 h that carried an Idempotency-Key, put back
    where the vote script looks (kept for what is left of its 24 h; an answer still there is
    kept), so a client's retry is a replay. ``nominee_votes`` is the count at rebuild time."""
    keys = CampaignKeys.of(slug)
    client = redis_store.votes
    now = utcnow()
    cutoff = now - timedelta(seconds=IDEM_TTL)
    days = list(
        db.session.scalars(
            select(Vote.day)
            .where(Vote.campaign_id == campaign_id, Vote.at >= cutoff)
            .where(Vote.idempotency_key.is_not(None))
            .distinct()
        )
    )
    if not days:
        return 0
    used = (
        func.count(Vote.id)
        .over(partition_by=(Vote.voter_id, Vote.day), order_by=Vote.seq)
        .label("used")
    )
    ranked = (
        select(
            Vote.id,
            Vote.voter_id,
            Vote.nominee_number,
            Vote.at,
            Vote.written_status,
            Vote.idempotency_key,
            used,
        )
        .where(Vote.campaign_id == campaign_id, Vote.day.in_(days))
        .subquery()
    )
    rows = db.session.execute(
        select(ranked).where(ranked.c.idempotency_key.is_not(None), ranked.c.at >= cutoff)
    ).all()
    numbers = sorted({row.nominee_number for row in rows})
    counts = dict(zip(numbers, client.hmget(keys.counts, numbers), strict=True)) if numbers else {}
    pipe = client.pipeline(transaction=False)
    seeded = 0
    for row in rows:
        left = IDEM_TTL - int((now - row.at).total_seconds())
        if left < 1:
            continue
        hidden = hide_from_ms >= 0 and ms(row.at) >= hide_from_ms
        answer = {
            "vote_id": row.id,
            "nominee": row.nominee_number,
            "nominee_votes": None if hidden else int(counts.get(row.nominee_number) or 0),
            "remaining_today": max(per_day - int(row.used), 0),
            "status": row.written_status,
        }
        pipe.set(keys.idem(row.voter_id, row.idempotency_key), json.dumps(answer), ex=left, nx=True)
        seeded += 1
    pipe.execute()
    return seeded


# --- events: recorded, listed, acknowledged -----------------------------------------------------


def persist_events(campaign: Campaign) -> int:
    """Record the rewinds detected in Redis (flush only); entries already recorded (committed
    by an earlier call) are taken off the Redis list. Returns how many are new."""
    keys = CampaignKeys.of(campaign.slug)
    client = redis_store.votes
    new = 0
    for item in client.lrange(keys.rewinds, 0, -1):
        try:
            event = json.loads(item)
            event_key = str(event["key"])[:40]
        except (ValueError, KeyError, TypeError):
            client.lrem(keys.rewinds, 1, item)
            continue
        if db.session.scalar(select(LedgerRewind.id).where(LedgerRewind.event_key == event_key)):
            client.lrem(keys.rewinds, 1, item)
            continue
        known, start = int(event["known"]), int(event["from"])
        db.session.add(
            LedgerRewind(
                campaign_id=campaign.id,
                event_key=event_key,
                detected_at=datetime.fromtimestamp(int(event["at"]) / 1000, utcnow().tzinfo),
                detected_by=str(event.get("by") or "state")[:20],
                reason=str(event.get("reason") or "rewound")[:20],
                redis_seq=start,
                known_seq=known,
                lifted_to=int(event["to"]),
                possibly_lost=max(known - start, 0),
            )
        )
        new += 1
        log.error(
            "REWIND recorded for %s: vote redis came back at sequence %d, %d acknowledged "
            "(up to %d acknowledged numbers at risk); sequence goes on after %d",
            campaign.slug,
            start,
            known,
            max(known - start, 0),
            int(event["to"]),
        )
    if new:
        db.session.flush()
    return new


def skipped_windows(campaign: Campaign) -> list[tuple[int, int]]:
    """Numbers a rewind's margin skipped ((known, lifted_to] ranges): never issued after the
    lift, so they are not reported missing (the ones below ``known`` are)."""
    windows = [
        (max(known, start), to)
        for known, start, to in db.session.execute(
            select(LedgerRewind.known_seq, LedgerRewind.redis_seq, LedgerRewind.lifted_to).where(
                LedgerRewind.campaign_id == campaign.id
            )
        )
    ]
    for item in redis_store.votes.lrange(CampaignKeys.of(campaign.slug).rewinds, 0, -1):
        try:
            event = json.loads(item)
            windows.append((max(int(event["known"]), int(event["from"])), int(event["to"])))
        except (ValueError, KeyError, TypeError):
            continue
    return [(low, high) for low, high in windows if high > low]


def _row(rewind: LedgerRewind) -> dict[str, Any]:
    return {
        "id": rewind.id,
        "detected_at": rewind.detected_at.isoformat(),
        "detected_by": rewind.detected_by,
        "reason": rewind.reason,
        "redis_seq": rewind.redis_seq,
        "known_seq": rewind.known_seq,
        "lifted_to": rewind.lifted_to,
        "possibly_lost": rewind.possibly_lost,
        "acknowledged_at": rewind.acknowledged_at.isoformat() if rewind.acknowledged_at else None,
        "acknowledged_by": rewind.acknowledged_by,
        "acknowledgement": rewind.acknowledgement,
    }


def list_rewinds(campaign: Campaign) -> list[dict[str, Any]]:
    rows = db.session.scalars(
        select(LedgerRewind)
        .where(LedgerRewind.campaign_id == campaign.id)
        .order_by(LedgerRewind.id.desc())
    )
    return [_row(row) for row in rows]


def rewind_summary(campaign: Campaign) -> dict[str, Any]:
    """For ledger health: how many rewinds, how many unacknowledged, the latest."""
    rows = list_rewinds(campaign)
    return {
        "count": len(rows),
        "unacknowledged": sum(1 for row in rows if row["acknowledged_at"] is None),
        "latest": rows[0] if rows else None,
    }


def floor_summary(campaign: Campaign) -> dict[str, Any]:
    epoch = campaign_epoch(campaign)
    seq, redis_id = floor_of(campaign.id, epoch)
    keys = CampaignKeys.of(campaign.slug)
    live_seq, live_id = redis_store.votes.mget([keys.seq, keys.rid])
    return {
        "recorded": seq,
        "published_mark": published_mark(campaign.slug, epoch),
        "redis_seq": int(live_seq or 0),
        "redis_id": live_id.decode() if live_id else None,
        "recorded_redis_id": redis_id,
    }


def acknowledge(campaign: Campaign, rewind_id: int, *, actor: str, note: str) -> LedgerRewind:
    """Someone reviewed the rewind (what was lost, what reconcile says): it stops alarming."""
    note = (note or "").strip()
    if not note:
        raise AppError("请填写核查说明", code="note_required", status=422)
    rewind = db.session.scalar(
        select(LedgerRewind).where(
            LedgerRewind.campaign_id == campaign.id, LedgerRewind.id == rewind_id
        )
    )
    if rewind is None:
        raise NotFound("没有这条回退记录", code="rewind_not_found")
    if rewind.acknowledged_at is None:
        rewind.acknowledged_at = utcnow()
        rewind.acknowledged_by = actor[:64]
        rewind.acknowledgement = note[:2000]
        db.session.flush()
    return rewind


def unacknowledged_count(campaign: Campaign) -> int:
    """Rewinds of the campaign nobody has acknowledged yet (one count query)."""
    return int(
        db.session.scalar(
            select(func.count(LedgerRewind.id)).where(
                LedgerRewind.campaign_id == campaign.id, LedgerRewind.acknowledged_at.is_(None)
            )
        )
        or 0
    )


def readiness_alert() -> dict[str, Any] | None:
    """For /readyz: unacknowledged rewinds of every campaign (None when there is none)."""
    rows = db.session.execute(
        select(Campaign.slug, func.count(LedgerRewind.id), func.sum(LedgerRewind.possibly_lost))
        .join(Campaign, Campaign.id == LedgerRewind.campaign_id)
        .where(LedgerRewind.acknowledged_at.is_(None))
        .group_by(Campaign.slug)
    ).all()
    if not rows:
        return None
    return {
        slug: {"unacknowledged": int(count), "possibly_lost": int(lost or 0)}
        for slug, count, lost in rows
    }


# --- the per-second watch --------------------------------------------------------------------


def watch(campaign: Campaign, resync: Callable[[Campaign], None]) -> int:
    """Detect a rewind (``resync`` rewrites the campaign state, whose guard lifts and rebuilds),
    record the events, and raise the recorded floor to the highest number acknowledged now:
    the published marks or the Redis sequence, whichever is higher. Flush only."""
    keys = CampaignKeys.of(campaign.slug)
    client = redis_store.votes
    epoch = campaign_epoch(campaign)
    recorded, recorded_id = floor_of(campaign.id, epoch)
    rid, seq, pending = client.eval(
        "return {redis.call('GET', KEYS[1]) or '', redis.call('GET', KEYS[2]) or '0', "
        "redis.call('EXISTS', KEYS[3])}",
        3,
        keys.rid,
        keys.seq,
        keys.rebuild,
    )
    mark = published_mark(campaign.slug, epoch)
    if not rid or int(seq) < max(recorded, mark) or int(pending):
        resync(campaign)
        rid, seq = client.mget([keys.rid, keys.seq])
    persist_events(campaign)
    highest = max(int(seq or 0), mark)
    record_floor(campaign.id, epoch, highest, rid.decode() if rid else recorded_id)
    return highest
