"""Prometheus metrics at ``GET /metrics``; docs/observability.md lists every metric.

Three kinds of numbers, from three places:

* **Per-process** (``zuimei_http_*``, ``zuimei_votes_total``): prometheus_client counters and
  histograms updated on the request path, no I/O. With ``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn
  with several workers) each process writes its samples to files in that directory and the
  scrape sums them; without it, one in-memory registry.
* **Shared** (``SharedCounter``/``SharedHistogram``: jobs, transcodes): things that happen in RQ
  work horses on any host. A work horse is a short-lived fork, and workers serve no HTTP, so
  these are kept in Redis (one small hash per metric, under the ``{metrics}`` hash tag) and read
  back at scrape time. They are cluster-wide totals: every web instance reports the same value.
* **Scrape-time** (``scrape_source``): gauges read from Redis and the database when /metrics is
  served (ledger lag, queue depths, open flags), only in the process serving the scrape and inside
  its app context. A source that fails, or whose Redis or database is down, is left out and its
  ``zuimei_scrape_source_up`` is 0; the scrape itself always answers.

``ZUIMEI_METRICS_TOKEN`` (app.config METRICS_TOKEN), when set, is required as
``Authorization: Bearer <token>``; production refuses to start without it (core.config).
"""

from __future__ import annotations

import abc
import hmac
import importlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from flask import (
    Flask,
    Response,
    current_app,
    g,
    has_app_context,
    request,
    request_finished,
    request_started,
)
from prometheus_client import REGISTRY, CollectorRegistry, Histogram, multiprocess, values
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString
from sqlalchemy import text

from core import logs
from core.errors import error_response
from core.extensions import QUEUE_NAMES, db, redis_store

log = logging.getLogger("zuimei.metrics")

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Modules that define metrics, response hooks and scrape sources (imported by init_app, so the
# process serving /metrics knows all of them). Job modules define shared job metrics too.
METRIC_MODULES = ("voting.metrics", "voting.jobs", "media.jobs")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_ENV) or None


# --- per-process metrics ----------------------------------------------------------------------

HTTP_SECONDS = Histogram(
    "zuimei_http_request_duration_seconds",
    "Time from the start of a request to its response, by Flask endpoint, method and status class"
    " (the body of a streamed response is not included).",
    ["endpoint", "method", "status_class"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

ResponseHook = Callable[[Response], None]
_RESPONSE_HOOKS: dict[str, list[ResponseHook]] = {}


def on_response(endpoint: str) -> Callable[[ResponseHook], ResponseHook]:
    """Call the decorated ``hook(response)`` after every response of Flask ``endpoint`` (in the
    request context; ``g.error_code`` holds the error code of a refusal). A hook that raises is
    logged and ignored: metrics never break an answer."""

    def register(hook: ResponseHook) -> ResponseHook:
        hooks = _RESPONSE_HOOKS.setdefault(endpoint, [])
        if hook not in hooks:
            hooks.append(hook)
        return hook

    return register


def _observe_request(sender: Flask, response: Response, **_: Any) -> None:
    try:
        rule = request.url_rule
        endpoint = rule.endpoint if rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        started = g.get("zuimei_started")
        if started is not None:
            HTTP_SECONDS.labels(endpoint, method, f"{response.status_code // 100}xx").observe(
                time.perf_counter() - started
            )
        for hook in _RESPONSE_HOOKS.get(endpoint, ()):
            hook(response)
    except Exception:
        log.exception("metrics: could not observe %s %s", request.method, request.path)


# --- shared metrics (kept in Redis) -----------------------------------------------------------

_SHARED: dict[str, SharedMetric] = {}


class SharedMetric(abc.ABC):
    """A metric whose samples live in one Redis hash, so that every process on every host adds
    to the same numbers. Label values must come from a small fixed set (job names, outcomes)."""

    kind = ""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        existing = _SHARED.get(name)
        if existing is not None and (existing.kind, existing.labelnames) != (
            self.kind,
            tuple(labelnames),
        ):
            raise ValueError(f"shared metric {name} is already defined differently")
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        _SHARED[name] = self

    def key(self) -> str:
        return redis_store.key("{metrics}", self.name)

    def _labels(self, labels: Mapping[str, object]) -> str:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return json.dumps([str(labels[n]) for n in self.labelnames], ensure_ascii=False)

    @abc.abstractmethod
    def family(self, raw: Mapping[bytes, bytes]) -> Metric:
        """The Prometheus family for the stored values (each kind renders its own)."""


class SharedCounter(SharedMetric):
    kind = "counter"

    def inc(self, amount: float = 1, **labels: object) -> None:
        shared_write(lambda pipe: self.stage_inc(pipe, amount, labels))

    def stage_inc(self, pipe: Any, amount: float, labels: Mapping[str, object]) -> None:
        field = self._labels(labels)
        if isinstance(amount, int):
            pipe.hincrby(self.key(), field, amount)
        else:
            pipe.hincrbyfloat(self.key(), field, amount)

    def family(self, raw: Mapping[bytes, bytes]) -> Metric:
        metric = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for field, value in sorted(raw.items()):
            metric.add_metric(json.loads(field), float(value))
        return metric


class SharedHistogram(SharedMetric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, labelnames)
        self.buckets = tuple(sorted(float(b) for b in buckets))

    def observe(self, value: float, **labels: object) -> None:
        shared_write(lambda pipe: self.stage_observe(pipe, value, labels))

    def stage_observe(self, pipe: Any, value: float, labels: Mapping[str, object]) -> None:
        field = self._labels(labels)
        key = self.key()
        pipe.hincrby(key, f"{field}|count", 1)
        pipe.hincrbyfloat(key, f"{field}|sum", value)
        bound = next((b for b in self.buckets if value <= b), None)
        if bound is not None:  # the +Inf bucket is the count
            pipe.hincrby(key, f"{field}|le={floatToGoString(bound)}", 1)

    def family(self, raw: Mapping[bytes, bytes]) -> Metric:
        series: dict[str, dict[str, float]] = {}
        for field, value in raw.items():
            labels, _, part = field.decode().rpartition("|")
            series.setdefault(labels, {})[part] = float(value)
        metric = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, parts in sorted(series.items()):
            cumulative = 0.0
            buckets = []
            for bound in self.buckets:
                le = floatToGoString(bound)
                cumulative += parts.get(f"le={le}", 0.0)
                buckets.append((le, cumulative))
            buckets.append(("+Inf", parts.get("count", 0.0)))
            metric.add_metric(json.loads(labels), buckets, sum_value=parts.get("sum", 0.0))
        return metric


def shared_write(stage: Callable[[Any], None]) -> None:
    """Apply ``stage(pipe)`` in one Redis transaction (all shared metrics share a hash tag).
    Outside an app context, or with Redis out of reach, the sample is dropped: a metric must
    never fail the work it measures."""
    if not has_app_context():
        return
    try:
        pipe = redis_store.client.pipeline(transaction=True)
        stage(pipe)
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        log.debug("metrics: sample dropped (%s)", exc.__class__.__name__)
    except Exception:  # the cluster client's own errors, a bug here: never the job's failure
        log.warning("metrics: sample dropped", exc_info=True)


JOB_RUNS = SharedCounter(
    "zuimei_jobs_total",
    "Runs of RQ job functions by outcome (succeeded, failed); a retried job counts each attempt.",
    ["job", "outcome"],
)
JOB_SECONDS = SharedHistogram(
    "zuimei_job_duration_seconds",
    "Run time of RQ job functions, whatever their outcome.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)


def record_job(name: str, outcome: str, seconds: float) -> None:
    """One run of job function ``name`` (core.jobs calls this for every RQ job it runs)."""

    def stage(pipe: Any) -> None:
        JOB_RUNS.stage_inc(pipe, 1, {"job": name, "outcome": outcome})
        JOB_SECONDS.stage_observe(pipe, seconds, {"job": name})

    shared_write(stage)


# --- scrape-time sources ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    name: str
    collect: Callable[[], Iterable[Metric]]
    needs: frozenset[str]


_SOURCES: dict[str, Source] = {}


def scrape_source(
    name: str, *, needs: Sequence[str] = ("redis",)
) -> Callable[[Callable[[], Iterable[Metric]]], Callable[[], Iterable[Metric]]]:
    """Register a function yielding metric families, run in the app context of each scrape.
    ``needs`` names what it reads ("redis": REDIS_URL, "vote_redis": the vote path's Redis,
    "database"); it is skipped while one of them is down."""

    def register(func: Callable[[], Iterable[Metric]]) -> Callable[[], Iterable[Metric]]:
        _SOURCES[name] = Source(name, func, frozenset(needs))
        return func

    return register


@scrape_source("shared")
def _shared_metrics() -> Iterator[Metric]:
    metrics = sorted(_SHARED.values(), key=lambda m: m.name)
    pipe = redis_store.client.pipeline(transaction=False)
    for metric in metrics:
        pipe.hgetall(metric.key())
    for metric, raw in zip(metrics, pipe.execute(), strict=True):
        yield metric.family(raw)


@scrape_source("queues")
def _queue_metrics() -> Iterator[Metric]:
    from rq.worker_registration import WORKERS_BY_QUEUE_KEY

    jobs = GaugeMetricFamily(
        "zuimei_queue_jobs",
        "RQ jobs per queue and state: queued (waiting), started, failed (kept for inspection),"
        " scheduled, deferred.",
        labels=["queue", "state"],
    )
    workers = GaugeMetricFamily(
        "zuimei_queue_workers", "RQ workers listening on the queue.", labels=["queue"]
    )
    pipe = redis_store.client.pipeline(transaction=False)
    for name in QUEUE_NAMES:
        queue = redis_store.queue(name)
        pipe.llen(queue.key)
        pipe.zcard(queue.started_job_registry.key)
        pipe.zcard(queue.failed_job_registry.key)
        pipe.zcard(queue.scheduled_job_registry.key)
        pipe.zcard(queue.deferred_job_registry.key)
        pipe.scard(WORKERS_BY_QUEUE_KEY % queue.name)
    answers = pipe.execute()
    states = ("queued", "started", "failed", "scheduled", "deferred")
    for index, name in enumerate(QUEUE_NAMES):
        row = answers[index * 6 : index * 6 + 6]
        for state, value in zip(states, row[:5], strict=True):
            jobs.add_metric([name, state], float(value))
        workers.add_metric([name], float(row[5]))
    yield jobs
    yield workers


def _check_redis() -> bool:
    try:
        redis_store.client.ping()
        return True
    except (redis.RedisError, OSError):
        return False


def _check_vote_redis(control_up: bool) -> bool:
    """The vote path's Redis (VOTE_REDIS_URL); the control Redis when it has none of its own."""
    if redis_store.vote_mode() == "shared":
        return control_up
    try:
        redis_store.votes.ping()
        return True
    except Exception:  # redis-py's errors, socket errors, the cluster client's own errors
        log.warning("metrics: vote redis unavailable", exc_info=True)
        return False


def _check_database() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        log.warning("metrics: database unavailable", exc_info=True)
        return False
    finally:
        _rollback()


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:
        log.debug("metrics: rollback failed", exc_info=True)


class _ScrapeCollector:
    """Runs every scrape source once per scrape; never raises."""

    def collect(self) -> Iterator[Metric]:
        control = _check_redis()
        available = {
            "redis": control,
            "vote_redis": _check_vote_redis(control),
            "database": _check_database(),
        }
        redis_up = GaugeMetricFamily(
            "zuimei_redis_up",
            "1 if Redis (REDIS_URL: queues, locks, caches) answered PING at this scrape, else 0.",
        )
        redis_up.add_metric([], 1.0 if available["redis"] else 0.0)
        vote_redis_up = GaugeMetricFamily(
            "zuimei_vote_redis_up",
            "1 if the vote path's Redis (VOTE_REDIS_URL, else REDIS_URL) answered PING at this"
            " scrape, else 0.",
        )
        vote_redis_up.add_metric([], 1.0 if available["vote_redis"] else 0.0)
        database_up = GaugeMetricFamily(
            "zuimei_database_up", "1 if the database answered SELECT 1 at this scrape, else 0."
        )
        database_up.add_metric([], 1.0 if available["database"] else 0.0)
        yield redis_up
        yield vote_redis_up
        yield database_up
        up = GaugeMetricFamily(
            "zuimei_scrape_source_up",
            "1 if the scrape-time source answered; 0 if it failed or what it reads is down"
            " (its metrics are then missing from this scrape).",
            labels=["source"],
        )
        took = GaugeMetricFamily(
            "zuimei_scrape_source_duration_seconds",
            "Time the scrape-time source took.",
            labels=["source"],
        )
        for source in sorted(_SOURCES.values(), key=lambda s: s.name):
            started = time.perf_counter()
            families: list[Metric] = []
            ok = all(available.get(need, False) for need in source.needs)
            if ok:
                try:
                    families = list(source.collect())
                except Exception:
                    ok = False
                    log.warning("metrics: source %s failed", source.name, exc_info=True)
                finally:
                    if "database" in source.needs:
                        _rollback()
            up.add_metric([source.name], 1.0 if ok else 0.0)
            took.add_metric([source.name], time.perf_counter() - started)
            if ok:
                yield from families
        yield up
        yield took


class _ProcessRegistry:
    """The default registry of this process (single-process mode)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def build_registry() -> CollectorRegistry:
    """What one scrape exposes: this process's metrics (or, in multiprocess mode, those of every
    process writing to PROMETHEUS_MULTIPROC_DIR), then the scrape-time sources."""
    registry = CollectorRegistry()
    path = multiprocess_dir()
    if path:
        multiprocess.MultiProcessCollector(registry, path=path)
    else:
        registry.register(_ProcessRegistry())  # type: ignore[arg-type]
    registry.register(_ScrapeCollector())  # type: ignore[arg-type]
    return registry


def _authorised() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


def metrics_view() -> Response:
    if not _authorised():
        return error_response(
            401,
            "unauthorized",
            "需要指标访问令牌",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = Response(encoder(build_registry()), status=200)
    response.headers["Content-Type"] = content_type
    response.headers["Cache-Control"] = "no-store"
    return response


# --- gunicorn ---------------------------------------------------------------------------------


def gunicorn_child_exit(server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook (deploy/gunicorn.conf.py): drop the dead worker's live
    gauge files from the multiprocess directory. Its counters and histograms stay, so totals
    keep counting what it served."""
    path = multiprocess_dir()
    if path:
        multiprocess.mark_process_dead(worker.pid, path)


# --- wiring -----------------------------------------------------------------------------------


def _check_multiprocess() -> None:
    path = multiprocess_dir()
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    if values.ValueClass is values.MutexValue:
        log.warning(
            "%s was set after prometheus_client was imported: this process keeps its samples in "
            "memory and the scrape will not see them; set it before the process starts",
            MULTIPROCESS_ENV,
        )


def _metrics_token(app: Flask) -> str | None:
    """METRICS_TOKEN as a string. Flask's prefixed-env loader reads ZUIMEI_METRICS_TOKEN as JSON
    when it can (a token of digits becomes a number, "1e5…" a float): the raw environment
    value is taken whenever the configured value came from it."""
    token = app.config.get("METRICS_TOKEN")
    raw = os.environ.get("ZUIMEI_METRICS_TOKEN")
    if raw is not None:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw
        if token == parsed:
            token = raw
    return str(token) if token not in (None, "") else None


def init_app(app: Flask) -> None:
    _check_multiprocess()
    for module in METRIC_MODULES:
        importlib.import_module(module)
    app.config["METRICS_TOKEN"] = _metrics_token(app)
    request_started.connect(logs.stamp_request_start, app)
    request_finished.connect(_observe_request, app)
    app.add_url_rule("/metrics", "metrics", metrics_view, methods=["GET"])
