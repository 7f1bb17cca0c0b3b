"""Voting jobs: drain each campaign's ledger stream, reconcile counters."""

from __future__ import annotations

import logging
from typing import Any

from redis.exceptions import LockError, RedisError
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.jobs import app_job, periodic
from voting import services

log = logging.getLogger("zuimei.jobs.voting")

_ACTIVE_PHASES = ("voting", "judging", "publicity")
# A batch of 500 takes well under a second; the lock is renewed after each one.
DRAIN_LOCK_SECONDS = 30
DRAIN_MAX_SECONDS = 20


def _active_slugs() -> list[str]:
    return list(db.session.scalars(select(Campaign.slug).where(Campaign.phase.in_(_ACTIVE_PHASES))))


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
        return services.drain_campaign(slug, max_seconds=DRAIN_MAX_SECONDS, on_batch=lock.reacquire)
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("drain lock for %s expired before release", slug)
        except RedisError as exc:  # Redis itself is gone: the lock's TTL frees it
            log.warning("drain lock for %s not released (%s)", slug, exc.__class__.__name__)


@periodic(seconds=1, queue="votes")
@app_job
def drain_all() -> dict[str, int]:
    return {slug: drain(slug) for slug in _active_slugs()}


@periodic(seconds=300, queue="votes")
@app_job
def reconcile_all() -> list[dict[str, Any]]:
    reports = []
    for slug in _active_slugs():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        if campaign is not None:
            services.sync_campaign(campaign)
            reports.append(services.reconcile(campaign))
    return reports


@app_job
def fraud_scan(scan_id: int) -> dict[str, Any]:
    from voting import fraud

    scan = fraud.run_scan(scan_id)
    return {"votes": scan.votes_scanned, "flags": scan.flags_created}


@periodic(seconds=60, queue="default")
@app_job
def snapshot_tallies() -> dict[str, int]:
    from voting import fraud

    written = {}
    for campaign in db.session.scalars(select(Campaign).where(Campaign.phase == "voting")):
        written[campaign.slug] = fraud.snapshot_tallies(campaign)
    db.session.commit()
    return written


@periodic(seconds=60, queue="default")
@app_job
def schedule_fraud_scans() -> list[int]:
    """During voting, scan each campaign every FRAUD_SCAN_INTERVAL seconds."""
    from datetime import timedelta

    from flask import current_app

    from core.types import utcnow
    from voting import fraud
    from voting.models import FraudScan

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
        redis_store.queue("default").enqueue(fraud_scan, scan_id, job_timeout=900)
    return started
