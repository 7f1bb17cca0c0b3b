"""The voting jobs run by a real RQ worker (SimpleWorker, burst mode)."""

from __future__ import annotations

from flask import Flask
from rq import SimpleWorker
from sqlalchemy import func, select

from core.extensions import db, redis_store
from core.jobs import PERIODIC, _enqueue_once
from tests.factories import Org
from voting import jobs
from voting.models import Vote


def test_worker_drains_the_ledger(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(5):
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
        )
    with app.app_context():
        queue = redis_store.queue("votes")
        job = queue.enqueue(jobs.drain_all)
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        job.refresh()
        assert job.get_status() == "finished"
        assert job.return_value() == {"v1": 5}
        assert db.session.scalar(select(func.count(Vote.id))) == 5
        db.session.remove()


def test_reconcile_job_reports_per_campaign(app: Flask, org: Org) -> None:
    org.voting_campaign()
    with app.app_context():
        queue = redis_store.queue("votes")
        job = queue.enqueue(jobs.reconcile_all)
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        job.refresh()
        reports = job.return_value()
        assert [r["campaign"] for r in reports] == ["v1"] and reports[0]["repairs"] == []


def test_periodic_jobs_are_registered_and_not_stacked(app: Flask) -> None:
    names = {f"{p.func.__module__}.{p.func.__name__}": p.seconds for p in PERIODIC}
    assert names["voting.jobs.drain_all"] == 1
    assert names["voting.jobs.reconcile_all"] == 300
    drain = next(p for p in PERIODIC if p.func.__name__ == "drain_all")
    with app.app_context():
        _enqueue_once(drain, "voting.jobs.drain_all")
        _enqueue_once(drain, "voting.jobs.drain_all")  # still queued: not enqueued again
        assert redis_store.queue("votes").count == 1


def test_one_drainer_at_a_time(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    app.test_client().post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(1)
    )
    with app.app_context():
        lock = redis_store.client.lock(redis_store.key("lock", "drain", "v1"), timeout=30)
        assert lock.acquire(blocking=False)
        try:
            assert jobs.drain("v1") == 0  # another drainer holds the campaign
        finally:
            lock.release()
        assert jobs.drain("v1") == 1
        db.session.remove()


def test_a_run_abandoned_by_a_dead_worker_does_not_hold_the_schedule(app: Flask) -> None:
    """Found by the chaos suite: a drain whose worker was killed stayed 'started' until RQ's
    maintenance (10 minutes) and no new drain was enqueued meanwhile."""
    from datetime import timedelta

    from rq.job import Job, JobStatus
    from rq.utils import now

    drain = next(p for p in PERIODIC if p.func.__name__ == "drain_all")
    with app.app_context():
        queue = redis_store.queue("votes")
        _enqueue_once(drain, "voting.jobs.drain_all")
        first = queue.jobs[0]
        queue.remove(first)
        # The worker took it and died: started, heartbeat a minute old.
        first.set_status(JobStatus.STARTED)
        first.started_at = now() - timedelta(minutes=1)
        first.last_heartbeat = now() - timedelta(minutes=1)
        first.save()
        _enqueue_once(drain, "voting.jobs.drain_all")
        assert queue.count == 1 and queue.jobs[0].id != first.id
        # A run that is alive (fresh heartbeat, a registered worker) still holds the next one
        # back.
        from rq import Worker

        second = queue.jobs[0]
        queue.remove(second)
        second.set_status(JobStatus.STARTED)
        second.started_at = second.last_heartbeat = now()
        second.worker_name = "live-drainer"
        second.save()
        queue.connection.set(Worker.redis_worker_namespace_prefix + "live-drainer", "1", ex=60)
        _enqueue_once(drain, "voting.jobs.drain_all")
        assert queue.count == 0
        assert Job.fetch(second.id, connection=queue.connection).get_status() == "started"


def test_the_drain_lock_is_short_and_renewed_per_batch(app: Flask, org: Org) -> None:
    """A drainer killed mid-batch holds the next one up for the lock's TTL at most (30 s, not
    the 300 s it used to be), and a long drain keeps it by renewing it after each batch."""
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    client = app.test_client()
    for voter in range(1, 6):
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
        )
    with app.app_context():
        renewals: list[int] = []
        from voting import services

        stored = services.drain_campaign(
            "v1", batch=2, on_batch=lambda: renewals.append(1), max_seconds=60
        )
        assert stored == 5 and len(renewals) == 3
        assert jobs.DRAIN_LOCK_SECONDS <= 30
        db.session.remove()


def test_a_started_run_no_live_worker_owns_does_not_hold_the_schedule(app: Flask) -> None:
    """A run whose hash says "started" with a fresh heartbeat but names no worker, or a worker
    that is no longer registered, is run afresh; one a registered worker runs is waited for."""
    from rq import Worker
    from rq.utils import now as rq_now
    from rq.utils import utcformat

    from core.jobs import periodic_timeout

    watch = next(p for p in PERIODIC if p.func.__name__ == "watch_sequences")
    name = "voting.jobs.watch_sequences"
    with app.app_context():
        queue = redis_store.queue("votes")
        client = queue.connection
        _enqueue_once(watch, name)
        first = queue.jobs[0]
        assert first.timeout == periodic_timeout(1) == 60
        queue.remove(first)
        fresh = utcformat(rq_now())  # RQ's own clock, as a worker's heartbeat writes it
        client.hset(
            first.key,
            mapping={"status": "started", "started_at": fresh, "last_heartbeat": fresh},
        )
        _enqueue_once(watch, name)  # no worker named: run afresh
        second = queue.jobs[0]
        assert second.id != first.id
        queue.remove(second)
        client.hset(
            second.key,
            mapping={
                "status": "started",
                "started_at": fresh,
                "last_heartbeat": fresh,
                "worker_name": "gone-worker",
            },
        )
        _enqueue_once(watch, name)  # its worker is not registered: run afresh
        third = queue.jobs[0]
        assert third.id != second.id
        queue.remove(third)
        client.hset(
            third.key,
            mapping={
                "status": "started",
                "started_at": fresh,
                "last_heartbeat": fresh,
                "worker_name": "live-worker",
            },
        )
        client.set(Worker.redis_worker_namespace_prefix + "live-worker", "1", ex=60)
        _enqueue_once(watch, name)  # a live worker runs it: wait
        assert queue.count == 0


def test_an_unreadable_previous_run_does_not_hold_the_schedule(app: Flask) -> None:
    """A run whose job hash a killed worker left unreadable is run afresh (the chaos suite saw
    the every-second watch job stop being scheduled after a worker was killed mid-run)."""
    watch = next(p for p in PERIODIC if p.func.__name__ == "watch_sequences")
    with app.app_context():
        queue = redis_store.queue("votes")
        _enqueue_once(watch, "voting.jobs.watch_sequences")
        first = queue.jobs[0]
        queue.remove(first)
        # Half-written: a status but a timestamp RQ cannot parse.
        queue.connection.hset(first.key, mapping={"status": "started", "started_at": "garbage"})
        _enqueue_once(watch, "voting.jobs.watch_sequences")
        assert queue.count == 1 and queue.jobs[0].id != first.id


def test_scans_a_dead_worker_left_are_marked_failed_and_live_ones_kept(
    app: Flask, org: Org
) -> None:
    """A scan job killed with its worker (kill -9, out of memory) left its scan "running" in the
    console for ever. The schedule marks scans still queued or running well past the scan's
    timeout as failed, and leaves the others alone."""
    from datetime import timedelta

    from campaigns.models import Campaign
    from core.types import utcnow
    from voting import fraud
    from voting.models import FraudScan

    org.voting_campaign()
    old = utcnow() - timedelta(seconds=jobs.SCAN_TIMEOUT + 120)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        scans = {
            "lost running": FraudScan(campaign_id=campaign.id, status="running", created_at=old),
            "lost queued": FraudScan(campaign_id=campaign.id, status="queued", created_at=old),
            "running": FraudScan(
                campaign_id=campaign.id,
                status="running",
                created_at=utcnow() - timedelta(minutes=1),
            ),
            "done": FraudScan(campaign_id=campaign.id, status="done", created_at=old),
        }
        scans["lost running"].started_at = old
        scans["running"].started_at = utcnow() - timedelta(seconds=30)
        scans["done"].started_at = old
        db.session.add_all(scans.values())
        db.session.commit()
        ids = {name: scan.id for name, scan in scans.items()}
        db.session.remove()

        started = jobs.schedule_fraud_scans()
        db.session.remove()
        status = {name: db.session.get(FraudScan, i) for name, i in ids.items()}
        assert {name: scan.status for name, scan in status.items()} == {
            "lost running": "failed",
            "lost queued": "failed",
            "running": "running",
            "done": "done",
        }
        assert status["lost running"].error == fraud.LOST_SCAN_ERROR
        assert status["lost running"].finished_at is not None
        assert status["running"].error is None
        # The campaign's last scan is the one still running (queued a minute ago): none is due.
        assert started == []
        db.session.remove()
