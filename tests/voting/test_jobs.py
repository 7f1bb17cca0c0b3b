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
