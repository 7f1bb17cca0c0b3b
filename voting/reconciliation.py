"""Reconciliation: rebuild the Redis counters from the ledger, and name lost votes."""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from campaigns.models import Campaign
from core.errors import ServiceUnavailable
from core.extensions import db, redis_store
from voting.keys import CampaignKeys
from voting.ledger import chain_index, decode, readable_sequence
from voting.marks import published_mark
from voting.models import VOTE_STATUSES, QuarantinedVote, Vote
from voting.rewinds import (
    persist_events,
    rebuild_quotas,
    skipped_windows,
    unacknowledged_count,
)
from voting.state import campaign_state, write_state

log = logging.getLogger("zuimei.voting")


_SNAPSHOT = """
local counts = redis.call('HGETALL', KEYS[1])
local pending = redis.call('HGETALL', KEYS[2])
local seq = redis.call('GET', KEYS[3])
local stream = redis.call('XRANGE', KEYS[4], '-', '+')
return {counts, pending, seq or '0', stream}
"""


def reconcile(campaign: Campaign) -> dict[str, Any]:
    """Rebuild the counters from the votes table plus the undrained stream (the counters are
    the standings: there is no second copy to mend).

    Safe during voting: counters, sequence and stream are read in one atomic snapshot, database
    rows are taken up to the snapshot's sequence, and repairs are applied as increments, so votes
    cast meanwhile are neither lost nor counted twice."""
    keys = CampaignKeys.of(campaign.slug)
    client = redis_store.votes
    state = campaign_state(campaign)
    write_state(state)  # also lifts the sequence above every stored and acknowledged vote
    recorded = persist_events(campaign)  # a rewind the guard found: recorded (caller commits)
    mark = published_mark(campaign.slug, state["meta"]["epoch"])
    counts_raw, pending_raw, seq_raw, stream = client.eval(
        _SNAPSHOT, 4, keys.counts, keys.pending, keys.seq, keys.ledger
    )
    live_valid = _pairs(counts_raw)
    live_pending = _pairs(pending_raw)
    seq = int(seq_raw)

    # Raw EVAL replies give each stream entry's fields as a flat [key, value, ...] list.
    undrained = [decode(dict(zip(flat[::2], flat[1::2], strict=True))) for _, flat in stream]
    # A malformed entry (only a crafted one is) is left to the drain, which quarantines it.
    undrained = [
        f
        for f in undrained
        if f.get("kind") == "vote" and f.get("id") and f.get("n") and f.get("st") in VOTE_STATUSES
    ]
    # The stored counts and "which undrained votes are stored" are two statements: a drain batch
    # committing between them would be in neither, and the repairs below would take a whole
    # batch off correct counters. The drain moves the ledger head in the batch's own
    # transaction, so a head unchanged across both reads proves no batch landed between them.
    for _attempt in range(20):
        head = chain_index(campaign)
        expected_valid: Counter[str] = Counter()
        expected_pending: Counter[str] = Counter()
        for number, status, count in db.session.execute(
            select(Vote.nominee_number, Vote.status, func.count(Vote.id))
            .where(Vote.campaign_id == campaign.id, Vote.seq <= seq)
            .group_by(Vote.nominee_number, Vote.status)
        ).all():
            if status == "valid":
                expected_valid[number] += count
            elif status == "pending":
                expected_pending[number] += count
        stored = set()
        if undrained:
            stored = set(
                db.session.scalars(select(Vote.id).where(Vote.id.in_([f["id"] for f in undrained])))
            )
        if chain_index(campaign) == head:
            break
    else:
        raise ServiceUnavailable("计票入库持续进行中，请稍后再对账")
    for fields in undrained:
        if fields["id"] in stored:
            continue
        target = expected_valid if fields["st"] == "valid" else expected_pending
        target[fields["n"]] += 1
    quarantine = quarantined_entries(campaign)
    accounted = {readable_sequence(f.get("seq")) for f in undrained} | quarantine.pop("sequences")
    accounted.discard(None)
    # Numbers a rewind's margin skipped were never handed out after the lift: not lost.
    for low, high in skipped_windows(campaign):
        accounted.update(range(low + 1, min(high, max(seq, mark)) + 1))
    missing = missing_sequences(campaign, max(seq, mark), accounted)  # type: ignore[arg-type]
    # Quotas live only in Redis: rebuilt for the campaign's day, never lowered.
    quotas = rebuild_quotas(campaign.slug, campaign.id, campaign.timezone)
    rewinds = unacknowledged_count(campaign)

    repairs: list[dict[str, Any]] = []
    pipe = client.pipeline(transaction=True)
    for number in sorted(set(expected_valid) | set(live_valid)):
        delta = expected_valid[number] - live_valid.get(number, 0)
        if delta:
            pipe.hincrby(keys.counts, number, delta)
            repairs.append(
                {
                    "nominee": number,
                    "counter": "valid",
                    "was": live_valid.get(number, 0),
                    "now": expected_valid[number],
                }
            )
    for number in sorted(set(expected_pending) | set(live_pending)):
        delta = expected_pending[number] - live_pending.get(number, 0)
        if delta:
            pipe.hincrby(keys.pending, number, delta)
            repairs.append(
                {
                    "nominee": number,
                    "counter": "pending",
                    "was": live_pending.get(number, 0),
                    "now": expected_pending[number],
                }
            )
    pipe.execute()

    if repairs:
        log.warning("reconcile %s repaired %d counters", campaign.slug, len(repairs))
    if missing["count"]:
        log.error(
            "reconcile %s: %d numbered vote(s) are in neither the database nor the stream "
            "(lost by the vote Redis): %s",
            campaign.slug,
            missing["count"],
            missing["ranges"],
        )
    if quarantine["count"]:
        log.error(
            "reconcile %s: %d ledger entry(ies) quarantined and unresolved, not counted: %s",
            campaign.slug,
            quarantine["count"],
            [entry["stream_id"] for entry in quarantine["entries"]],
        )
    if rewinds:
        log.error(
            "reconcile %s: %d rewind(s) of the vote Redis not yet acknowledged",
            campaign.slug,
            rewinds,
        )
    return {
        "campaign": campaign.slug,
        "sequence": seq,
        "rewinds": {"unacknowledged": rewinds, "recorded_now": recorded},
        "quotas": quotas,
        "acknowledged_mark": mark,
        "undrained": len(undrained),
        "repairs": repairs,
        "missing": missing,
        "quarantined": quarantine,
    }


QUARANTINED_SHOWN = 50


def quarantined_entries(campaign: Campaign) -> dict[str, Any]:
    """The campaign's quarantined ledger entries: how many are unresolved, the first of them,
    and (under ``sequences``) the vote numbers of all, resolved or not, which are accounted
    for and therefore not lost."""
    rows = db.session.execute(
        select(
            QuarantinedVote.stream_id,
            QuarantinedVote.vote_id,
            QuarantinedVote.seq,
            QuarantinedVote.reason,
            QuarantinedVote.resolved_at,
        )
        .where(QuarantinedVote.campaign_id == campaign.id)
        .order_by(QuarantinedVote.id)
    ).all()
    unresolved = [row for row in rows if row.resolved_at is None]
    return {
        "count": len(unresolved),
        "resolved": len(rows) - len(unresolved),
        "entries": [
            {
                "stream_id": row.stream_id,
                "vote_id": row.vote_id,
                "seq": row.seq,
                "reason": row.reason,
            }
            for row in unresolved[:QUARANTINED_SHOWN]
        ],
        "sequences": {row.seq for row in rows if row.seq is not None},
    }


MISSING_RANGES_SHOWN = 50


def missing_sequences(campaign: Campaign, top: int, undrained: set[int]) -> dict[str, Any]:
    """Vote numbers 1..``top`` that are neither stored nor waiting in the stream.

    The vote script numbers only accepted votes, one by one, and every numbered vote goes to
    the stream in the same atomic step; the drain moves it to the database. So a number found
    in neither place is a vote Redis accepted (and normally acknowledged) and then lost: an
    asynchronous replica promoted before it had the vote, or a restore from older data."""
    if top <= 0:
        return {"count": 0, "ranges": []}
    in_range = (Vote.campaign_id == campaign.id, Vote.seq >= 1, Vote.seq <= top)
    distinct, low, high = db.session.execute(
        select(func.count(func.distinct(Vote.seq)), func.min(Vote.seq), func.max(Vote.seq)).where(
            *in_range
        )
    ).one()
    if distinct == top:
        return {"count": 0, "ranges": []}
    holes: list[tuple[int, int]] = []
    if not distinct:
        holes.append((1, top))
    else:
        if low > 1:
            holes.append((1, low - 1))
        previous = func.lag(Vote.seq).over(order_by=Vote.seq).label("previous")
        steps = select(Vote.seq.label("seq"), previous).where(*in_range).subquery()
        for before, after in db.session.execute(
            select(steps.c.previous, steps.c.seq)
            .where(steps.c.seq - steps.c.previous > 1)
            .order_by(steps.c.seq)
        ):
            holes.append((before + 1, after - 1))
        if high < top:
            holes.append((high + 1, top))
    waiting = sorted(undrained)
    ranges: list[list[int]] = []
    count = 0
    for start, end in holes:
        cursor = start
        for number in waiting[bisect_left(waiting, start) : bisect_right(waiting, end)]:
            if number > cursor:
                ranges.append([cursor, number - 1])
                count += number - cursor
            cursor = number + 1
        if cursor <= end:
            ranges.append([cursor, end])
            count += end - cursor + 1
    return {"count": count, "ranges": ranges[:MISSING_RANGES_SHOWN]}


def _pairs(raw: Any) -> dict[str, int]:
    if isinstance(raw, dict):
        return {k.decode(): int(v) for k, v in raw.items()}
    return {raw[i].decode(): int(raw[i + 1]) for i in range(0, len(raw), 2)}
