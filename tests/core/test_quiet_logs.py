"""Quiet, useful logs: a periodic job that did nothing says nothing, one that did work says what
in one line (at most one per minute per job, adding up the runs between), RQ's own lines about
periodic runs are gone, and an expected refusal (an AppError, 4xx) is one line without a
traceback, in a job as in a request; unexpected errors keep their tracebacks."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.job import Job

from core import jobs as core_jobs
from core import logs
from core.errors import Conflict
from core.extensions import redis_store
from core.jobs import PERIODIC, _enqueue_once, app_job, default_work, enqueue
from tests.factories import Org

DRAIN = "voting.jobs.drain_all"


class Clock:
    """The summaries' clock, moved by hand (core.jobs.log_clock is the seam)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    moved = Clock()
    monkeypatch.setattr(core_jobs, "log_clock", moved)
    return moved


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Records at INFO and above: what the worker writes (it logs at INFO)."""
    caplog.set_level(logging.INFO)
    return caplog


def _drain_once(app: Flask) -> str:
    """One scheduled run of drain_all, as the worker's scheduler enqueues it; its job id."""
    spec = next(p for p in PERIODIC if p.func.__name__ == "drain_all")
    with app.app_context():
        _enqueue_once(spec, DRAIN)
        queue = redis_store.queue("votes")
        [job_id] = queue.get_job_ids()
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        assert Job.fetch(job_id, connection=redis_store.client).get_status() == "finished"
    return job_id


def _vote(app: Flask, org: Org, number: str, voter: int) -> None:
    response = app.test_client().post(
        "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
    )
    assert response.status_code == 201, response.get_json()


def _periodic_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "zuimei.jobs" and r.levelno >= logging.INFO and getattr(r, "periodic", None)
    ]


def _mentions(caplog: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.getMessage()]


def _tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.exc_info or "Traceback" in (r.exc_text or "") or "Traceback" in r.getMessage()
    ]


def test_an_idle_periodic_run_logs_nothing(
    app: Flask, org: Org, logged: pytest.LogCaptureFixture, clock: Clock
) -> None:
    org.voting_campaign()
    job_id = _drain_once(app)
    assert _periodic_lines(logged) == []
    # RQ's own lines about the run (taken, completed, Job OK, result kept) are gone too, and so
    # is the routine registry maintenance; the worker's start and stop lines stay.
    assert _mentions(logged, job_id) == []
    assert _mentions(logged, "drain_all") == []
    assert _mentions(logged, "cleaning registries") == []
    assert _mentions(logged, "Listening on")
    assert [r for r in logged.records if r.levelno >= logging.WARNING] == []


def test_a_periodic_run_with_work_logs_one_line(
    app: Flask, org: Org, logged: pytest.LogCaptureFixture, clock: Clock
) -> None:
    numbers = org.voting_campaign()
    for voter in range(3):
        _vote(app, org, numbers[0], voter)
    logged.clear()
    job_id = _drain_once(app)
    [line] = _periodic_lines(logged)
    assert line.levelno == logging.INFO
    message = line.getMessage()
    assert message.startswith("periodic drain_all: 3 votes drained from v1 in ")
    assert message.endswith(" s") and not line.exc_info
    assert line.work == {"votes drained from v1": 3}  # type: ignore[attr-defined]
    assert line.runs == 1 and line.runs_with_work == 1  # type: ignore[attr-defined]
    assert line.zuimei_job == (job_id, DRAIN)  # type: ignore[attr-defined]
    # Nothing else from RQ about this run.
    assert [r for r in logged.records if job_id in r.getMessage()] == []


def test_at_most_one_line_a_minute_adding_up_the_runs_between(
    app: Flask, org: Org, logged: pytest.LogCaptureFixture, clock: Clock
) -> None:
    numbers = org.voting_campaign()
    _vote(app, org, numbers[0], 1)
    _drain_once(app)
    assert len(_periodic_lines(logged)) == 1  # the first work is said at once

    logged.clear()
    clock.now += 20
    _vote(app, org, numbers[0], 2)
    _vote(app, org, numbers[1], 2)
    _drain_once(app)  # work, but within the minute: held
    clock.now += 20
    _drain_once(app)  # idle
    clock.now += 19.5
    _vote(app, org, numbers[1], 3)
    _drain_once(app)  # 59.5 s after the line: still held
    assert _periodic_lines(logged) == []

    clock.now += 1.5  # 61 s after the line: an idle run writes what the held runs did
    _drain_once(app)
    [summary] = _periodic_lines(logged)
    assert summary.getMessage().startswith(
        "periodic drain_all: 3 votes drained from v1 in 2 of 4 runs over 41 s ("
    )
    assert summary.runs == 4 and summary.runs_with_work == 2  # type: ignore[attr-defined]

    logged.clear()
    clock.now += 120
    _drain_once(app)  # nothing done since the summary: nothing to say
    assert _periodic_lines(logged) == []
    _vote(app, org, numbers[2], 4)
    _drain_once(app)  # more than a minute since the last line: said at once
    [line] = _periodic_lines(logged)
    assert re.fullmatch(
        r"periodic drain_all: 1 votes drained from v1 in \d+\.\d\d s", line.getMessage()
    )
    assert line.runs == 2 and line.runs_with_work == 1  # type: ignore[attr-defined]


def test_a_job_with_its_own_summary_window(app: Flask) -> None:
    """The minute's tally snapshot is bookkeeping: one line per ten minutes at most."""
    windows = {f"{p.func.__module__}.{p.func.__name__}": p.summary_seconds for p in PERIODIC}
    assert windows["voting.jobs.snapshot_tallies"] == 600
    assert windows[DRAIN] == core_jobs.SUMMARY_SECONDS == 60


def test_default_work_judges_counts_collections_and_mappings() -> None:
    assert default_work(None) == default_work(0) == default_work([]) == default_work({}) == {}
    assert default_work(False) == default_work("text") == {}
    assert default_work(3) == {"items": 3}
    assert default_work([7, 8]) == {"items": 2}
    assert default_work({"abandoned": 2, "orphans": 0, "note": "x", "flag": True}) == {
        "abandoned": 2
    }


@app_job
def refused_job() -> None:
    raise Conflict("结果尚未生成，无法导出", code="result_not_ready")


@app_job
def broken_job() -> None:
    raise RuntimeError("disk on fire")


def _run_default_queue(app: Flask, func: Callable[[], None]) -> Job:
    with app.app_context():
        job = enqueue("default", func)
        SimpleWorker([redis_store.queue("default")], connection=redis_store.client).work(burst=True)
        job.refresh()
        assert job.get_status() == "failed"
    return job


def test_a_job_refused_with_an_app_error_logs_one_line_without_traceback(
    app: Flask, logged: pytest.LogCaptureFixture
) -> None:
    job = _run_default_queue(app, refused_job)
    assert _tracebacks(logged) == []
    problems = [r for r in logged.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1
    [line] = problems
    assert line.getMessage().startswith(
        "job tests.core.test_quiet_logs.refused_job refused: result_not_ready (409) after "
    )
    assert line.error_code == "result_not_ready" and line.status == 409  # type: ignore[attr-defined]
    assert line.zuimei_job == (job.id, "tests.core.test_quiet_logs.refused_job")  # type: ignore[attr-defined]
    # RQ still keeps the run as failed, with its traceback, for the failed-jobs registry.
    result = job.latest_result()
    assert result is not None and "core.errors.Conflict" in (result.exc_string or "")


def test_an_unexpected_error_in_a_job_keeps_its_traceback(
    app: Flask, logged: pytest.LogCaptureFixture
) -> None:
    job = _run_default_queue(app, broken_job)
    [error] = [r for r in logged.records if r.levelno >= logging.ERROR]
    assert error.name == "rq.worker" and job.id in error.getMessage()
    assert "Traceback" in error.getMessage() and "RuntimeError: disk on fire" in error.getMessage()
    assert _mentions(logged, "job tests.core.test_quiet_logs.broken_job failed after ")


def test_a_request_refused_with_4xx_logs_no_traceback(
    make_app: Callable[..., Flask], org: Org, logged: pytest.LogCaptureFixture
) -> None:
    app = make_app(ACCESS_LOG=True)
    org.campaign()
    client = app.test_client()
    refused = [
        client.get("/api/v1/campaigns/nope"),
        client.post("/api/v1/auth/login", json={"username": "admin", "password": "x" * 12}),
        client.post("/api/v1/campaigns/c1/votes", json={"nominee": "D1"}, headers=org.voter(1)),
        client.post("/api/v1/campaigns/c1/votes", json={"nominee": 5}),
    ]
    assert all(400 <= r.status_code < 500 for r in refused), [r.status_code for r in refused]
    assert _tracebacks(logged) == []
    assert [r for r in logged.records if r.levelno >= logging.WARNING] == []
    # One line each: the access line, with the refusal's code.
    access = [r for r in logged.records if r.name == logs.ACCESS_LOGGER]
    assert len(access) == len(refused)
    for record, response in zip(access, refused, strict=True):
        assert record.status == response.status_code  # type: ignore[attr-defined]
        assert record.error_code == response.get_json()["error"]["code"]  # type: ignore[attr-defined]


def test_an_unexpected_error_in_a_request_keeps_its_traceback(
    make_app: Callable[..., Flask], logged: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    def explode() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/explode-for-test", "explode_for_test", explode)
    response = app.test_client().get("/explode-for-test")
    assert response.status_code == 500
    [record] = _tracebacks(logged)
    assert record.name == "zuimei.errors" and record.exc_info is not None


@contextmanager
def bare_root() -> Iterator[None]:
    """No handler on the root logger (text mode, as `flask worker` runs); put back after."""
    root, app_log = logging.getLogger(), logging.getLogger("zuimei")
    handlers, app_handlers, level = list(root.handlers), list(app_log.handlers), app_log.level
    root.handlers.clear()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        app_log.handlers[:] = app_handlers
        app_log.setLevel(level)


def test_the_text_mode_worker_shows_the_apps_lines() -> None:
    stream = io.StringIO()
    with bare_root():
        logs.configure_worker_text_logging(stream=stream)
        logs.configure_worker_text_logging(stream=stream)  # once
        logging.getLogger("zuimei.jobs").info("periodic drain_all: 3 votes drained from v1")
        logging.getLogger("zuimei.jobs").debug("not shown")
    [line] = stream.getvalue().splitlines()
    assert line.endswith(" periodic drain_all: 3 votes drained from v1")
    assert line[2] == ":" and line[5] == ":"  # HH:MM:SS, as RQ's lines
    # With a root handler (JSON mode, or a host's set-up) it adds none of its own.
    logs.configure_worker_text_logging(stream=stream)
    assert not any(
        getattr(h, "_zuimei_text_handler", False) for h in logging.getLogger("zuimei").handlers
    )
