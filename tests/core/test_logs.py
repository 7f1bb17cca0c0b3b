"""Structured logs: JSON lines with the request id, one access line per request, and the request
id carried from the request that enqueued a job into every log line of that job."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.job import Job

from core.extensions import redis_store
from core.jobs import app_job, enqueue
from core.logs import JsonFormatter, configure_json_logging, log_format
from tests.factories import Org


@pytest.fixture
def json_stream() -> Iterator[io.StringIO]:
    """JSON logging into a buffer for the test; the root logger is put back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for handler in list(root.handlers):
        if getattr(handler, "_zuimei_json_handler", False):
            root.removeHandler(handler)
    stream = io.StringIO()
    configure_json_logging("INFO", stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_carry_the_request_id_and_an_access_line(
    json_stream: io.StringIO, make_app: Callable[..., Flask]
) -> None:
    app = make_app(LOG_FORMAT="json")
    assert app.config["ACCESS_LOG"] is True
    client = app.test_client()
    ok = client.get("/healthz", headers={"X-Request-ID": "req-json-00000001"})
    missing = client.get("/api/v1/nope?token=secret", headers={"X-Request-ID": "req-json-00000002"})
    assert ok.status_code == 200 and missing.status_code == 404
    lines = _lines(json_stream)  # every line parses as one JSON object
    access = [line for line in lines if line["logger"] == "zuimei.access"]
    first = next(line for line in access if line["request_id"] == "req-json-00000001")
    assert first["level"] == "INFO"
    assert first["method"] == "GET" and first["path"] == "/healthz" and first["status"] == 200
    assert first["endpoint"] == "health.healthz"
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["message"].startswith("GET /healthz 200 ")
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    second = next(line for line in access if line["request_id"] == "req-json-00000002")
    assert second["status"] == 404 and second["error_code"] == "not_found"
    assert "secret" not in json.dumps(second)  # the query string is never logged
    # Without an incoming id the generated one (the X-Request-ID answered) is logged.
    fresh = client.get("/healthz")
    assert _lines(json_stream)[-1]["request_id"] == fresh.headers["X-Request-ID"]


def test_formatter_keeps_extra_fields_chinese_and_tracebacks() -> None:
    try:
        raise ValueError("坏了")
    except ValueError:
        record = logging.getLogger("zuimei.test").makeRecord(
            "zuimei.test",
            logging.ERROR,
            __file__,
            1,
            "投票 %s 出错",
            ("D001",),
            exc_info=__import__("sys").exc_info(),
            extra={"campaign": "v1", "attempt": 2},
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["message"] == "投票 D001 出错" and "投票" in line  # not \u-escaped
    assert out["level"] == "ERROR" and out["logger"] == "zuimei.test"
    assert out["campaign"] == "v1" and out["attempt"] == 2
    assert "ValueError: 坏了" in out["exc_info"]
    assert out["request_id"] is None  # made outside any request or job


def test_format_defaults_to_text_in_development_and_json_in_production(app: Flask) -> None:
    assert app.config["LOG_FORMAT"] == "text" and app.config["ACCESS_LOG"] is False
    cases = [
        ({"ENV_NAME": "development"}, "text"),
        ({"ENV_NAME": "production"}, "json"),
        ({"ENV_NAME": "production", "LOG_FORMAT": "text"}, "text"),
        ({"ENV_NAME": "development", "LOG_FORMAT": "JSON"}, "json"),
    ]
    for config, expected in cases:
        assert log_format(SimpleNamespace(config=config)) == expected  # type: ignore[arg-type]


def test_a_job_logs_with_the_request_id_of_the_request_that_enqueued_it(
    app: Flask, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    org.voting_campaign()
    client = app.test_client()
    started = client.post(
        "/api/v1/admin/campaigns/v1/fraud/scans",
        headers={**org.headers("admin"), "X-Request-ID": "req-scan-00000001"},
    )
    assert started.status_code == 202
    caplog.set_level(logging.DEBUG, logger="zuimei")
    with app.app_context():
        queue = redis_store.queue("default")
        [job] = queue.get_jobs()
        assert job.meta["request_id"] == "req-scan-00000001"
        # The scheduler's jobs (no request behind them) carry no request id.
        from voting import jobs

        periodic = redis_store.queue("votes").enqueue(jobs.drain_all)
        assert "request_id" not in periodic.meta
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        job.refresh()
        assert job.get_status() == "finished"
        logging.getLogger("zuimei.test").info("after the job")
    in_job = [r for r in caplog.records if getattr(r, "zuimei_job", None)]
    assert in_job, "the job logged nothing"
    assert {r.zuimei_job for r in in_job} == {(job.id, "voting.jobs.fraud_scan")}
    assert {r.request_id for r in in_job} == {"req-scan-00000001"}
    line = json.loads(JsonFormatter().format(in_job[-1]))
    assert line["request_id"] == "req-scan-00000001"
    assert line["job"] == "voting.jobs.fraud_scan" and line["job_id"] == job.id
    # Once the job is over, records no longer carry its request id.
    after = next(r for r in caplog.records if r.getMessage() == "after the job")
    assert after.request_id is None and after.zuimei_job is None


def test_periodic_jobs_are_replaced_once_finished(app: Flask) -> None:
    """The scheduler deletes a finished periodic job before enqueueing it again; the request id
    hook must not change the job objects RQ hands back (Queue.remove tells jobs from ids)."""
    from core.jobs import PERIODIC, _enqueue_once

    drain = next(p for p in PERIODIC if p.func.__name__ == "drain_all")
    with app.app_context():
        queue = redis_store.queue("votes")
        _enqueue_once(drain, "voting.jobs.drain_all")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        assert queue.count == 0
        _enqueue_once(drain, "voting.jobs.drain_all")  # finished: deleted, then enqueued again
        assert queue.count == 1


def child_job() -> None:
    logging.getLogger("zuimei.test").info("child job ran")


@app_job
def enqueue_child() -> str:
    """A job that enqueues another job, as requeue_stuck_media enqueues transcodes."""
    return enqueue("default", child_job).id


def test_a_periodic_job_taken_by_a_dying_worker_is_run_afresh(app: Flask) -> None:
    """A worker killed between taking a job off its queue and starting it leaves the job
    "queued" in no queue: the schedule must not wait for it for ever (the drain stopped for
    good when `flask up`'s worker was killed at that moment)."""
    from core.jobs import PERIODIC, _enqueue_once

    drain = next(p for p in PERIODIC if p.func.__name__ == "drain_all")
    with app.app_context():
        queue = redis_store.queue("votes")
        _enqueue_once(drain, "voting.jobs.drain_all")
        _enqueue_once(drain, "voting.jobs.drain_all")  # still waiting in its queue: not twice
        assert queue.count == 1
        [taken] = queue.get_job_ids()
        redis_store.client.lrem(queue.key, 0, taken)  # what the dying worker did
        assert Job.fetch(taken, connection=redis_store.client).get_status() == "queued"
        _enqueue_once(drain, "voting.jobs.drain_all")
        assert queue.count == 1 and queue.get_job_ids() != [taken]


def test_a_job_enqueued_by_a_job_inherits_the_request_id(app: Flask) -> None:
    with app.test_request_context():
        from flask import g

        g.request_id = "req-parent-00000001"
        parent = enqueue("default", enqueue_child)
    with app.app_context():
        SimpleWorker([redis_store.queue("default")], connection=redis_store.client).work(burst=True)
        parent.refresh()
        child = Job.fetch(parent.return_value(), connection=redis_store.client)
        assert parent.meta["request_id"] == child.meta["request_id"] == "req-parent-00000001"
