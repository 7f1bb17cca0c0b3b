"""A job whose database server went away for a moment is run again, not lost.

A chaos run restarts PostgreSQL while the workers run: a one-off job that met the restart (a
fraud scan the schedule queued once) failed for good, its scan left "running" in the console,
and nothing ran it again. Jobs are idempotent, so the outermost job function is run again after
a pause when the server closed or refused its connection, as it is after SQLite's lock.

The connection failures here are real: a port nothing listens on, and a backend ended with
``pg_terminate_backend`` while the job uses it.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.exc import DBAPIError, OperationalError

from core.extensions import db, redis_store
from core.jobs import app_job, is_connection_error, is_sqlite_lock_error, job_started_at
from tests.factories import Org
from voting import fraud, jobs
from voting.models import FraudScan


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # free once closed: nothing listens there


@pytest.fixture
def postgresql_only(app: Flask) -> None:
    with app.app_context():
        if db.engine.dialect.name != "postgresql":
            pytest.skip("ending a server's session needs PostgreSQL")


def _error_of(engine_url: str, statement: str) -> DBAPIError:
    postgresql = engine_url.startswith("postgresql")
    engine = create_engine(engine_url, connect_args={"connect_timeout": 2} if postgresql else {})
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the statement should have failed")


def test_a_refused_connection_is_told_from_a_rejected_statement(app: Flask) -> None:
    pytest.importorskip("psycopg")
    refused = _error_of(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/x", "select 1")
    assert isinstance(refused, OperationalError) and is_connection_error(refused)
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
    rejected = _error_of(url, "select no_such_column from no_such_table")
    assert not is_connection_error(rejected)
    locked = OperationalError("INSERT", {}, Exception("database is locked"))
    assert is_sqlite_lock_error(locked) and not is_connection_error(locked)
    assert not is_connection_error(ValueError("connection refused"))


def test_a_job_the_server_rejected_is_not_run_again(app: Flask) -> None:
    attempts: list[int] = []

    @app_job
    def broken() -> None:
        attempts.append(1)
        db.session.execute(text("select no_such_column from no_such_table"))

    with app.app_context():
        with pytest.raises(DBAPIError):
            broken()
        db.session.remove()
    assert attempts == [1]


@contextlib.contextmanager
def _session_ended_once(app: Flask, *statement_parts: str) -> Iterator[list[int]]:
    """While inside: the database session is ended (pg_terminate_backend, from another
    connection) just before the first statement containing all ``statement_parts`` is sent on
    it, and jobs pause briefly before running again. Yields the ended backends' pids."""
    ended: list[int] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if ended or not all(part in statement for part in statement_parts):
            return
        pid = conn.connection.driver_connection.info.backend_pid
        with db.engine.connect() as other:
            other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})
        ended.append(pid)

    app.config["JOB_LOCK_RETRY_DELAYS"] = (0.1, 0.2)
    event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield ended
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        app.config.pop("JOB_LOCK_RETRY_DELAYS", None)


def test_a_job_whose_connection_was_ended_runs_again_from_its_start(
    app: Flask, postgresql_only: None
) -> None:
    attempts: list[Any] = []

    @app_job
    def count_scans() -> int:
        attempts.append(job_started_at())
        return len(db.session.scalars(select(FraudScan.id).where(FraudScan.id > 0)).all())

    with app.app_context():
        try:
            with _session_ended_once(app, "FROM fraud_scans") as ended:
                assert count_scans() == 0
        finally:
            db.session.remove()
    assert len(ended) == 1, "the session should have been ended once"
    assert len(attempts) == 2 and attempts[0] == attempts[1]


def test_a_scan_that_lost_its_connection_is_run_again_and_ends_done(
    app: Flask, org: Org, postgresql_only: None
) -> None:
    org.voting_campaign(nominees=2)
    with app.app_context():
        from campaigns.models import Campaign

        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        scan = fraud.start_scan(campaign, None, trigger="schedule")
        db.session.commit()
        scan_id = scan.id
        jobs.enqueue_scan(scan_id)
        queue = redis_store.queue("default")
        # The connection ends when the scan, its long part done, writes what it found.
        with _session_ended_once(app, "UPDATE fraud_scans", "votes_scanned") as ended:
            SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        db.session.remove()
        scan = db.session.get(FraudScan, scan_id)
        assert len(ended) == 1
        assert (scan.status, scan.error, scan.votes_scanned) == ("done", None, 0)
        assert scan.finished_at is not None
        assert queue.failed_job_registry.count == 0
        db.session.remove()


def test_a_job_that_leaves_retries_to_rq_is_not_run_again_in_process(
    app: Flask, postgresql_only: None
) -> None:
    """The transcode counts its attempts and has RQ's Retry: a lost connection fails its run."""
    attempts: list[int] = []

    @app_job(rerun_on_lost_connection=False)
    def long_job() -> int:
        attempts.append(1)
        return len(db.session.scalars(select(FraudScan.id).where(FraudScan.id > 0)).all())

    with app.app_context():
        try:
            with (
                _session_ended_once(app, "FROM fraud_scans") as ended,
                pytest.raises(DBAPIError) as failed,
            ):
                long_job()
        finally:
            db.session.remove()
    assert is_connection_error(failed.value)
    assert len(ended) == 1 and attempts == [1]
