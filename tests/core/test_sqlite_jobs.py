"""SQLite jobs take the write lock as requests do (issue #14, item 5).

On the embedded default the worker runs its jobs inside the app context the ``flask worker``
command pushed. Jobs there used to open deferred transactions: a drain or a tally snapshot read
first, then wrote, and when a request had committed in between SQLite refused the upgrade at once
(SQLITE_BUSY_SNAPSHOT, "database is locked", no busy wait). The drain's batch then waited 30 s
for its entries to be claimed again; the minute's snapshot was lost.

These tests run the real jobs through a real RQ worker (SimpleWorker, in an app context as the
worker command has one) while threads with their own app contexts serve write requests.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from core.extensions import db, redis_store, sqlite_write_intent
from core.jobs import app_job, is_sqlite_lock_error, job_started_at
from core.types import utcnow
from tests.factories import Org
from voting import jobs
from voting.models import TallySnapshot, Vote, Voter


@pytest.fixture
def sqlite_only(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name != "sqlite":
            pytest.skip("SQLite's single writer is the subject")


class Writers:
    """Threads that keep committing writes through the API (new device voters) and casting votes
    (so the drain always has work), each request in its own app context."""

    def __init__(self, app: Flask, org: Org, numbers: list[str], threads: int = 3) -> None:
        self.app = app
        self.numbers = numbers
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.writes = 0
        self.votes = 0
        self._lock = threading.Lock()
        # Tokens made up front: making them needs an app context of the main thread's app.
        self.tokens = [org.voter(5000 + i) for i in range(threads * 200)]
        self.threads = [
            threading.Thread(target=self._run, args=(n, threads), daemon=True)
            for n in range(threads)
        ]

    def _run(self, n: int, total: int) -> None:
        client = self.app.test_client()
        i = 0
        while not self.stop.is_set():
            i += 1
            answer = client.post(
                "/api/v1/voters/device", json={"device_id": f"w{n}-{i}-{time.time_ns()}"}
            )
            if answer.status_code != 201:
                self.failures.append(
                    f"device voter: {answer.status_code} {answer.get_data(True)[:200]}"
                )
            vote_index = n + total * (i % 200)
            number = self.numbers[i % len(self.numbers)]
            vote = client.post(
                "/api/v1/campaigns/v1/votes",
                json={"nominee": number},
                headers=self.tokens[vote_index % len(self.tokens)],
            )
            with self._lock:
                self.writes += 1
                self.votes += vote.status_code == 201
            if vote.status_code >= 500:
                self.failures.append(f"vote: {vote.status_code} {vote.get_data(True)[:200]}")

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)


def _error_line(trace: str) -> str:
    lines = [line for line in trace.splitlines() if "Error" in line]
    return lines[-1].strip() if lines else trace.strip()[-200:]


def _work(app: Flask, funcs: list[Any]) -> list[Any]:
    """Enqueue ``funcs`` and run them with a real worker, inside an app context as `flask
    worker` runs; the jobs, refreshed."""
    queue = redis_store.queue("votes")
    enqueued = [queue.enqueue(func) for func in funcs]
    SimpleWorker([queue], connection=redis_store.client).work(burst=True)
    for job in enqueued:
        job.refresh()
    return enqueued


def test_drain_and_snapshot_beside_request_writes_never_hit_a_locked_database(
    app: Flask, org: Org, sqlite_only: None
) -> None:
    numbers = org.voting_campaign(nominees=3)
    with Writers(app, org, numbers) as writers, app.app_context():
        rounds = []
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline or len(rounds) < 2:
            rounds.append(_work(app, [jobs.drain_all, jobs.snapshot_tallies]))
        writers.stop.set()
        failed = [
            f"{job.func_name}: {_error_line(job.latest_result().exc_string or '')}"
            for batch in rounds
            for job in batch
            if job.get_status() != "finished"
        ]
        assert failed == [], failed[:5]
        db.session.remove()
    assert writers.failures == [], writers.failures[:5]
    assert writers.writes > 20 and len(rounds) >= 2
    with app.app_context():
        # Everything the writers cast reaches the votes table with one last drain.
        jobs.drain_all()
        assert db.session.scalar(select(func.count(Vote.id))) == writers.votes
        # The first snapshot of the run wrote the minute it started in; none was lost.
        first = rounds[0][1]
        assert first.return_value() == {"v1": 3}
        minutes = set(db.session.scalars(select(TallySnapshot.at)))
        assert minutes, "no snapshot written"
        assert db.session.scalar(select(func.count(Voter.id))) >= writers.writes
        db.session.remove()


def test_job_functions_set_the_write_intent_in_an_existing_app_context(
    app: Flask, sqlite_only: None
) -> None:
    seen: list[bool] = []

    @app_job
    def probe() -> None:
        seen.append(sqlite_write_intent.get())
        db.session.execute(select(1))
        seen.append(db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() > 0)

    with app.app_context():
        caller = sqlite_write_intent.set(False)  # as a command or a GET request has it
        try:
            probe()
            assert sqlite_write_intent.get() is False  # the caller's own intent is given back
        finally:
            sqlite_write_intent.reset(caller)
        db.session.remove()
    assert seen == [True, True]


def test_a_job_refused_by_the_lock_retries_and_keeps_its_minute(
    app: Flask, sqlite_only: None
) -> None:
    """Another connection holds the write lock longer than the busy timeout: the job's first
    attempt is refused, then it retries and does its work, with the start time of its first
    attempt (the minute a snapshot belongs to)."""
    attempts: list[Any] = []

    @app_job
    def write_one() -> str:
        attempts.append(job_started_at())
        db.session.execute(select(Voter.id).limit(1))
        db.session.add(Voter(provider="device", subject=f"retry-{len(attempts)}"))
        db.session.commit()
        return "done"

    with app.app_context():
        engine = db.engine
        engine.dispose()  # a pool of two: the holder, and the one connection the job will get
        holder = engine.raw_connection()
        try:
            holder.driver_connection.execute("BEGIN IMMEDIATE")
            app.config["JOB_LOCK_RETRY_DELAYS"] = (0.2, 0.2, 0.5, 1.0)
            short = engine.raw_connection()
            short.driver_connection.execute("PRAGMA busy_timeout=300")
            short.close()  # back to the pool: the job's connection waits at most 0.3 s
            release = threading.Timer(1.0, lambda: holder.driver_connection.execute("ROLLBACK"))
            release.start()
            before = utcnow()
            assert write_one() == "done"
            release.join()
        finally:
            app.config.pop("JOB_LOCK_RETRY_DELAYS", None)
            holder.close()
            engine.dispose()
        assert len(attempts) >= 2, "the first attempt should have met the lock"
        assert len(set(attempts)) == 1 and attempts[0] >= before.replace(microsecond=0)
        assert db.session.scalar(select(func.count(Voter.id))) == 1
        db.session.remove()


def test_lock_errors_are_told_from_other_errors() -> None:
    locked = OperationalError("INSERT", {}, Exception("database is locked"))
    other = OperationalError("INSERT", {}, Exception("no such table: votes"))
    assert is_sqlite_lock_error(locked)
    assert not is_sqlite_lock_error(other)
    assert not is_sqlite_lock_error(ValueError("database is locked"))
