"""GET /metrics: votes by outcome, latency per endpoint, ledger and queue gauges read at scrape
time, shared job and transcode numbers from Redis, token protection, a dead Redis, and
prometheus_client's multiprocess mode across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import SimpleWorker

from core.extensions import redis_store
from core.jobs import app_job
from tests.factories import Org

ROOT = Path(__file__).resolve().parents[2]


def scrape(client: FlaskClient, **headers: str) -> dict[tuple[str, frozenset[Any]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse(response.get_data(as_text=True))


def parse(text: str) -> dict[tuple[str, frozenset[Any]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict[tuple[str, frozenset[Any]], float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def vote(client: FlaskClient, headers: dict[str, str], number: str, slug: str = "v1") -> Any:
    return client.post(f"/api/v1/campaigns/{slug}/votes", json={"nominee": number}, headers=headers)


def test_votes_latency_and_ledger_after_real_votes(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    before = scrape(client)
    assert vote(client, org.voter(1), numbers[0]).status_code == 201
    assert vote(client, org.voter(2), numbers[0]).status_code == 201
    again = vote(client, org.voter(1), numbers[0])
    assert again.json["error"]["code"] == "nominee_daily_limit"
    # A refusal before the script (no voter token) is counted without the slug a client typed.
    assert vote(client, {}, numbers[0], slug="no-such-campaign").status_code == 401
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("zuimei_votes_total", campaign="v1", outcome="accepted") == 2
    assert delta("zuimei_votes_total", campaign="v1", outcome="nominee_daily_limit") == 1
    assert delta("zuimei_votes_total", campaign="-", outcome="invalid_voter") == 1
    assert not any(dict(labels).get("campaign") == "no-such-campaign" for _, labels in after), (
        "a typed slug must not become a label value"
    )

    latency = {"endpoint": "voting.vote", "method": "POST"}
    assert delta("zuimei_http_request_duration_seconds_count", **latency, status_class="2xx") == 2
    assert delta("zuimei_http_request_duration_seconds_count", **latency, status_class="4xx") == 2
    assert (
        value(
            after,
            "zuimei_http_request_duration_seconds_bucket",
            **latency,
            status_class="2xx",
            le="+Inf",
        )
        >= 2
    )

    # Read from Redis and the database at this scrape: two votes wait in the ledger stream.
    assert value(after, "zuimei_ledger_entries", campaign="v1") == 2
    assert value(after, "zuimei_ledger_unacked", campaign="v1") == 0
    assert 0 <= value(after, "zuimei_ledger_lag_seconds", campaign="v1") < 60
    assert ("zuimei_votes_held", frozenset({("campaign", "v1")})) in after
    assert ("zuimei_fraud_flags_open", frozenset({("campaign", "v1"), ("severity", "high")})) in (
        after
    )
    assert value(after, "zuimei_redis_up") == 1
    assert value(after, "zuimei_vote_redis_up") == 1
    assert value(after, "zuimei_database_up") == 1
    for source in ("ledger", "fraud_flags", "queues", "shared"):
        assert value(after, "zuimei_scrape_source_up", source=source) == 1, source
    assert ("zuimei_queue_jobs", frozenset({("queue", "votes"), ("state", "queued")})) in after


def test_metrics_is_a_plain_route_outside_the_api_document(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["Cache-Control"] == "no-store"
    spec = client.get("/api/openapi.json").json
    assert "/metrics" not in spec["paths"]
    openmetrics = client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.get_data(as_text=True).rstrip().endswith("# EOF")


def test_token_protects_the_metrics(make_app: Callable[..., Flask]) -> None:
    guarded = make_app(METRICS_TOKEN="metrics-token-for-tests").test_client()
    missing = guarded.get("/metrics")
    assert missing.status_code == 401
    assert missing.json["error"]["code"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = guarded.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    right = guarded.get("/metrics", headers={"Authorization": "Bearer metrics-token-for-tests"})
    assert right.status_code == 200
    assert "zuimei_redis_up" in right.get_data(as_text=True)


def test_scrape_answers_with_redis_down(make_app: Callable[..., Flask]) -> None:
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0", VOTE_REDIS_URL=None).test_client()
    samples = scrape(broken)
    assert value(samples, "zuimei_redis_up") == 0
    assert value(samples, "zuimei_vote_redis_up") == 0
    assert value(samples, "zuimei_database_up") == 1
    for source in ("ledger", "queues", "shared"):
        assert value(samples, "zuimei_scrape_source_up", source=source) == 0, source
    assert value(samples, "zuimei_scrape_source_up", source="fraud_flags") == 1
    assert not any(name == "zuimei_ledger_entries" for name, _ in samples)


@app_job
def failing_job() -> None:
    raise RuntimeError("this job fails on purpose")


def test_jobs_are_counted_and_timed_across_processes(app: Flask, org: Org) -> None:
    from voting import jobs

    org.voting_campaign()
    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        queue = redis_store.queue("votes")
        queue.enqueue(jobs.drain_all)
        queue.enqueue(failing_job)
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    drain = "voting.jobs.drain_all"
    failing = "tests.core.test_metrics.failing_job"
    assert delta("zuimei_jobs_total", job=drain, outcome="succeeded") == 1
    assert delta("zuimei_jobs_total", job=failing, outcome="failed") == 1
    assert delta("zuimei_job_duration_seconds_count", job=drain) == 1
    assert delta("zuimei_job_duration_seconds_bucket", job=drain, le="+Inf") == 1
    assert delta("zuimei_job_duration_seconds_bucket", job=drain, le="1800.0") == 1
    assert delta("zuimei_job_duration_seconds_sum", job=drain) > 0
    # drain_all calls drain(slug), another job function: still one run of one job.
    assert delta("zuimei_jobs_total", job="voting.jobs.drain", outcome="succeeded") == 0
    assert value(after, "zuimei_queue_jobs", queue="votes", state="failed") == 1
    assert value(after, "zuimei_queue_jobs", queue="votes", state="queued") == 0


def test_transcode_outcomes_are_counted(app: Flask) -> None:
    from media import jobs

    client = app.test_client()
    before = scrape(client)
    with app.app_context():
        assert jobs.process_video(2_000_000_000) == "missing"
    after = scrape(client)
    for outcome in ("started", "skipped"):
        assert (
            value(after, "zuimei_transcodes_total", outcome=outcome)
            - value(before, "zuimei_transcodes_total", outcome=outcome)
            == 1
        )
    assert value(after, "zuimei_transcodes_total", outcome="succeeded") == value(
        before, "zuimei_transcodes_total", outcome="succeeded"
    )


_CHILD = """
import json, os, sys
from core import create_app

app = create_app(json.loads(os.environ["ZM_TEST_APP_CONFIG"]))
client = app.test_client()
if sys.argv[1] == "vote":
    answer = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": sys.argv[3]}, headers=json.loads(sys.argv[2])
    )
    assert answer.status_code == 201, answer.get_json()
    assert client.get("/healthz").status_code == 200
else:
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


def _child(
    tmp_path: Path, config: dict[str, Any], metrics_dir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "ZM_TEST_APP_CONFIG": json.dumps(config),
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_multiprocess_mode_sums_every_process(
    app_config: dict[str, Any], org: Org, tmp_path: Path
) -> None:
    numbers = org.voting_campaign()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    for voter in (1, 2):  # two app instances in two processes, like two gunicorn workers
        _child(tmp_path, app_config, metrics_dir, "vote", json.dumps(org.voter(voter)), numbers[0])
    files = sorted(p.name for p in metrics_dir.glob("*.db"))
    assert len({name.rsplit("_", 1)[1] for name in files}) == 2, files  # one set per pid
    scraped = _child(tmp_path, app_config, metrics_dir, "scrape").stdout
    samples = parse(scraped)
    assert value(samples, "zuimei_votes_total", campaign="v1", outcome="accepted") == 2
    healthz = {"endpoint": "health.healthz", "method": "GET", "status_class": "2xx"}
    assert value(samples, "zuimei_http_request_duration_seconds_count", **healthz) == 2
    # The scrape-time gauges come from the scraping process itself.
    assert value(samples, "zuimei_ledger_entries", campaign="v1") == 2
    assert value(samples, "zuimei_redis_up") == 1


def test_gunicorn_child_exit_drops_live_gauges_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.metrics import gunicorn_child_exit

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "gauge_livesum_4242.db").write_bytes(b"")
    (tmp_path / "counter_4242.db").write_bytes(b"")

    class Worker:
        pid = 4242

    gunicorn_child_exit(None, Worker())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db"]


def test_token_from_the_environment_is_taken_verbatim(
    make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZUIMEI_METRICS_TOKEN", "123e45")  # JSON would make it a float
    guarded = make_app().test_client()
    assert guarded.get("/metrics").status_code == 401
    ok = guarded.get("/metrics", headers={"Authorization": "Bearer 123e45"})
    assert ok.status_code == 200


def test_flask_up_gives_gunicorn_an_emptied_metrics_directory(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.cli import _fresh_metrics_dir

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    folder = _fresh_metrics_dir(app)
    assert folder == Path(app.instance_path) / "prometheus"
    (folder / "counter_1234.db").write_bytes(b"stale")
    (folder / "keep.txt").write_text("not a sample file")
    assert _fresh_metrics_dir(app) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
