"""Voting jobs: drain the ledger, reconcile counters, snapshot tallies, scan for fraud.

The job bodies commit; the services they call only flush."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from redis.exceptions import LockError, RedisError
from sqlalchemy import exists, select

from campaigns.models import Campaign
from core.errors import Conflict, ServiceUnavailable
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.jobs import app_job, enqueue, job_started_at, periodic
from core.types import utcnow
from voting import blocks, fraud, ledger, receipts, rewinds
from voting.models import FraudScan, ReceiptPublication
from voting.reconciliation import reconcile
from voting.state import sync_campaign

log = logging.getLogger("zuimei.jobs.voting")

_ACTIVE_PHASES = ("voting", "judging", "publicity")
# A batch of 500 takes well under a second; the lock is renewed after each one.
DRAIN_LOCK_SECONDS = 30
DRAIN_MAX_SECONDS = 20
# Entries a failed run read and never acknowledged are claimed again after this long: the drain
# lock makes this run the only drainer, and storing is idempotent on the vote id.
DRAIN_RECLAIM_MS = 3000
SCAN_TIMEOUT = 900


def _active_slugs() -> list[str]:
    return list(db.session.scalars(select(Campaign.slug).where(Campaign.phase.in_(_ACTIVE_PHASES))))


def drain_campaign(
    slug: str,
    *,
    batch: int = 500,
    consumer: str = "drain",
    idle_ms: int = 30000,
    max_seconds: float | None = None,
    on_batch: Callable[[], object] | None = None,
) -> int:
    """Move ledger entries into the votes table; acknowledge them only after commit.

    Entries a crashed drainer had read but not acknowledged are claimed again after ``idle_ms``.
    Inserting is idempotent on the vote id, so an entry drained twice is stored once. An entry
    the database cannot store is quarantined by ``ledger.store_batch`` and acknowledged with its
    batch: one entry never holds up the drain.

    ``max_seconds``: return after this long even if entries keep arriving (under a steady vote
    load the stream is never empty, and a drain that never returns cannot be stopped warmly);
    the next drain carries on. ``on_batch`` is called after each acknowledged batch (the drain
    job renews its lock there)."""
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        return 0
    client, keys = ledger.open_stream(slug)
    total = 0
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while True:
        entries = ledger.next_entries(client, keys, consumer=consumer, batch=batch, idle_ms=idle_ms)
        if not entries:
            return total
        ledger.store_batch(campaign, entries)
        # Every drained number was acknowledged (or at least numbered): the floor outside Redis.
        highest = rewinds.highest_sequence(entries)
        if highest:
            rewinds.record_floor(campaign.id, rewinds.campaign_epoch(campaign), highest)
        db.session.commit()
        ledger.acknowledge(client, keys, entries)
        ledger.count_voters(client, keys, entries)
        total += len(entries)
        if on_batch is not None:
            on_batch()
        if deadline is not None and time.monotonic() >= deadline:
            return total


@app_job
def drain(slug: str) -> int:
    """Drain one campaign, one drainer at a time (a lock keeps the hash chain linear).

    The lock lives on the control Redis (REDIS_URL, beside the queues), not on the vote Redis:
    a failover of the vote Redis cannot hand it to a second drainer."""
    lock = redis_store.client.lock(
        redis_store.key("lock", "drain", slug), timeout=DRAIN_LOCK_SECONDS
    )
    if not lock.acquire(blocking=False):
        return 0
    try:
        # The lock is renewed after every batch, so a drainer that dies (kill -9, a lost host,
        # Redis gone before the release below) holds the next one up for DRAIN_LOCK_SECONDS at
        # most; the drain returns after DRAIN_MAX_SECONDS so that a warm shutdown can end it.
        return drain_campaign(
            slug, max_seconds=DRAIN_MAX_SECONDS, on_batch=lock.reacquire, idle_ms=DRAIN_RECLAIM_MS
        )
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("drain lock for %s expired before release", slug)
        except RedisError as exc:  # Redis itself is gone: the lock's TTL frees it
            log.warning("drain lock for %s not released (%s)", slug, exc.__class__.__name__)


def _drained(result: dict[str, int]) -> dict[str, int]:
    return {f"votes drained from {slug}": count for slug, count in result.items()}


def _nothing_to_report(_result: object) -> dict[str, int]:
    """The watch's findings (a rewind, a corrected blocked set) are logged where they are made."""
    return {}


def _reconciled(reports: list[dict[str, Any]]) -> dict[str, int]:
    work: dict[str, int] = {}
    for report in reports:
        work[f"counters repaired in {report['campaign']}"] = len(report["repairs"])
    return work


def _snapshots(result: dict[str, int]) -> dict[str, int]:
    return {f"tally rows written for {slug}": count for slug, count in result.items()}


def _scans_started(result: list[int]) -> dict[str, int]:
    return {"fraud scans started": len(result)}


@periodic(seconds=1, queue="votes", work=_drained)
@app_job
def drain_all() -> dict[str, int]:
    return {slug: drain(slug) for slug in _active_slugs()}


@periodic(seconds=1, queue="votes", work=_nothing_to_report)
@app_job
def watch_sequences() -> dict[str, int]:
    """Every second: detect a vote Redis that came back behind (restart, restore) and rebuild
    it, record its rewind, and raise each campaign's acknowledged floor in the database to the
    published marks or the Redis sequence (docs/voting.md, "Durability: rewinds")."""
    floors: dict[str, int] = {}
    for campaign in db.session.scalars(
        select(Campaign).where(Campaign.phase.in_(_ACTIVE_PHASES))
    ).all():
        try:
            floors[campaign.slug] = rewinds.watch(campaign, sync_campaign)
            if campaign.phase == "voting":
                blocks.sync_blocked_set(campaign)
            db.session.commit()
        except (*VOTE_REDIS_ERRORS, ServiceUnavailable) as exc:
            db.session.rollback()
            log.warning("sequence watch of %s skipped (%s)", campaign.slug, exc.__class__.__name__)
    return floors


@periodic(seconds=300, queue="votes", work=_reconciled)
@app_job
def reconcile_all() -> list[dict[str, Any]]:
    reports = []
    for slug in _active_slugs():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        if campaign is not None:
            sync_campaign(campaign)
            reports.append(reconcile(campaign))
            db.session.commit()  # the rewinds reconcile recorded
    return reports


@app_job
def fraud_scan(scan_id: int) -> dict[str, Any]:
    scan = fraud.begin_scan(scan_id)
    db.session.commit()  # the committee sees the scan running
    try:
        fraud.scan_votes(scan)
        db.session.commit()
    except Exception as exc:
        db.session.rollback()
        fraud.fail_scan(scan_id, exc)
        db.session.commit()
        raise
    return {"votes": scan.votes_scanned, "flags": scan.flags_created}


def enqueue_scan(scan_id: int) -> Any:
    """Queue a scan started (and committed) by the committee or the schedule."""
    return enqueue("default", fraud_scan, scan_id, job_timeout=SCAN_TIMEOUT)


@periodic(seconds=60, queue="default")
@app_job
def publish_receipts() -> dict[str, int]:
    """Once 公示 has begun, build each campaign's receipt publication here (docs/receipts.md),
    so no visitor's request waits for millions of leaves. A campaign whose votes still wait to
    be drained, or whose publication another process is building, is tried again next minute.
    Returns the leaves published, by campaign (nothing when there was nothing to do)."""
    done = exists().where(
        ReceiptPublication.campaign_id == Campaign.id, ReceiptPublication.status == "done"
    )
    waiting = db.session.scalars(
        select(Campaign).where(Campaign.phase.in_(("publicity", "closed")), ~done)
    ).all()
    built: dict[str, int] = {}
    for campaign in waiting:
        try:
            built[campaign.slug] = receipts.publication(campaign).leaf_count
        except Conflict as exc:  # not drained yet, or being built elsewhere: next minute
            log.debug("receipts of %s not built yet: %s", campaign.slug, exc.code)
    return built


# The minute's snapshot is bookkeeping, not news: one line per ten minutes says it goes on.
@periodic(seconds=60, queue="default", work=_snapshots, summary_seconds=600)
@app_job
def snapshot_tallies() -> dict[str, int]:
    written = {}
    at = job_started_at()  # a run retried after the SQLite lock keeps the minute it began in
    for campaign in db.session.scalars(select(Campaign).where(Campaign.phase == "voting")):
        written[campaign.slug] = fraud.snapshot_tallies(campaign, at)
    db.session.commit()
    return written


@periodic(seconds=60, queue="default", work=_scans_started)
@app_job
def schedule_fraud_scans() -> list[int]:
    """During voting, scan each campaign every FRAUD_SCAN_INTERVAL seconds. First, scans whose
    worker died under them (still queued or running well past the scan's timeout) are marked
    failed (``fraud.fail_lost_scans``)."""
    lost = fraud.fail_lost_scans(timedelta(seconds=SCAN_TIMEOUT + 60))
    if lost:
        log.warning("fraud scans %s lost their worker; marked failed", lost)
    due = utcnow() - timedelta(seconds=current_app.config["FRAUD_SCAN_INTERVAL"])
    started = []
    for campaign in db.session.scalars(select(Campaign).where(Campaign.phase == "voting")):
        last = db.session.scalar(
            select(FraudScan.created_at)
            .where(FraudScan.campaign_id == campaign.id)
            .order_by(FraudScan.created_at.desc())
            .limit(1)
        )
        if last is None or last < due:
            scan = fraud.start_scan(campaign, None, trigger="schedule")
            started.append(scan.id)
    db.session.commit()
    for scan_id in started:
        enqueue_scan(scan_id)
    return started
