"""Running RQ jobs inside the app: each job process builds the app once and works in its context.

Jobs are enqueued with :func:`enqueue`, which puts the current request's id in the job's meta
(the id of the request being served, or of the request behind the job being run); the job's log
records carry it again when a worker runs it, and each run is counted and timed in Redis
(``zuimei_jobs_total``, ``zuimei_job_duration_seconds``), so the numbers of every worker on
every host reach the web process that serves /metrics. :func:`init_app` registers the process
hook (a forked work horse drops its parent's database connections) and takes the first app made
in the process as the one jobs run in (the worker command hands over its own).
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, get_current_job
from rq.utils import now as rq_now
from sqlalchemy.exc import OperationalError

from core import logs
from core.clock import utcnow
from core.extensions import QUEUE_NAMES, VOTE_REDIS_ERRORS, db, redis_store, sqlite_write_intent
from core.metrics import record_job

log = logging.getLogger("zuimei.jobs")
F = TypeVar("F", bound=Callable[..., Any])

# The id of the RQ job whose outermost job function is running (a job function calling another,
# as drain_all calls drain, is one run of one job).
_running_job: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "zuimei_running_job", default=None
)


def _with_request_id(meta: dict[str, Any] | None) -> dict[str, Any] | None:
    """``meta`` plus the current request id (inside a request the request's; inside a job, the
    id its own request gave it), unless it has one already or there is none."""
    request_id = logs.current_request_id()
    if not request_id or (meta and "request_id" in meta):
        return meta
    return {**(meta or {}), "request_id": request_id}


def enqueue(queue: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Job:
    """Enqueue ``func(*args)`` on the named queue (RQ's own options, such as ``job_timeout``,
    ``retry`` or ``meta``, pass through); the job carries the current request id in its meta."""
    meta = _with_request_id(kwargs.pop("meta", None))
    if meta is not None:
        kwargs["meta"] = meta
    return redis_store.queue(queue).enqueue(func, *args, **kwargs)


_app: Flask | None = None


def _job_app() -> Flask:
    if _app is None:
        raise RuntimeError("no app in this process: start workers with `flask --app wsgi worker`")
    return _app


def set_job_app(app: Flask) -> None:
    """The worker command hands its own app over, so jobs see the same configuration."""
    global _app
    _app = app


def _dispose_after_fork() -> None:
    # A forked work horse must not reuse the parent's database connections.
    if _app is not None:
        with _app.app_context():
            db.engine.dispose(close=False)


_process_hooks_installed = False


def init_app(app: Flask) -> None:
    """Install this process's fork hook once however many apps are made, and keep the first
    app as the one job functions run in when no app context is pushed."""
    global _process_hooks_installed, _app
    if _app is None:
        _app = app
    if _process_hooks_installed:
        return
    _process_hooks_installed = True
    os.register_at_fork(after_in_child=_dispose_after_fork)


# When the outermost job function now running first started (its retries keep it): the moment
# a job's work belongs to, such as the minute of a tally snapshot.
_started_at: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "zuimei_job_started_at", default=None
)

# How long a job waits before each new attempt after SQLite refused it the write lock (each
# attempt itself waits up to busy_timeout, 10 s, for the lock). Overridden by the app setting
# JOB_LOCK_RETRY_DELAYS.
LOCK_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


def job_started_at() -> datetime:
    """When the job function being run first started, retries included (now outside a job)."""
    return _started_at.get() or utcnow()


def is_sqlite_lock_error(exc: BaseException) -> bool:
    """SQLite refused a statement because another connection holds the lock (SQLITE_BUSY,
    "database is locked", also after busy_timeout ran out) — a reason to try again, not a
    fault of the job."""
    if not isinstance(exc, OperationalError):
        return False
    text = str(exc.orig if exc.orig is not None else exc).lower()
    return "database is locked" in text or "database table is locked" in text


def app_job(func: F) -> F:
    """Run a job function inside an app context (reusing one if the caller has it: the worker
    command pushes one, and so do tests), and end its database session whatever happens.

    On SQLite the job takes the write lock when it begins a transaction (``BEGIN IMMEDIATE``,
    as write requests do), whether it made its app context or found one: a deferred transaction
    that reads and then writes is refused at once when another writer committed in between.
    The outermost job function is run again, after a pause, when SQLite still refused it the
    lock (jobs are idempotent); its first start stays its ``job_started_at``."""

    name = f"{func.__module__}.{func.__name__}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return _in_context(func, name, args, kwargs)
        with _job_app().app_context():
            try:
                return _in_context(func, name, args, kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]


def _in_context(func: Callable[..., Any], name: str, args: Any, kwargs: Any) -> Any:
    intent = sqlite_write_intent.set(True)
    try:
        if _started_at.get() is not None:  # called by another job function: its run, its retries
            return _run(func, name, args, kwargs)
        queued = get_current_job() is not None
        if queued:
            _end_read_transaction()
        started = _started_at.set(utcnow())
        try:
            # Counted and timed as one run of the job, however many attempts it took.
            return _run(functools.partial(_with_lock_retries, func, name), name, args, kwargs)
        finally:
            _started_at.reset(started)
            if queued:  # a worker's run: the next job starts from a fresh session
                db.session.remove()
    finally:
        sqlite_write_intent.reset(intent)


def _end_read_transaction() -> None:
    """A queued job run in an app context that has a transaction open already (a SimpleWorker
    in the caller's context): end it when it only read, so the job's first statement begins
    a transaction of its own, with the write lock."""
    session = db.session()
    if session.in_transaction() and not (session.new or session.dirty or session.deleted):
        session.rollback()


def _with_lock_retries(func: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> Any:
    delays = tuple(current_app.config.get("JOB_LOCK_RETRY_DELAYS") or LOCK_RETRY_DELAYS)
    attempt = 0
    while True:
        try:
            return func(*args, **kwargs)
        except OperationalError as exc:
            if not is_sqlite_lock_error(exc) or attempt >= len(delays):
                raise
            db.session.rollback()
            log.warning(
                "job %s refused by the SQLite lock; attempt %d again in %.1f s",
                name,
                attempt + 2,
                delays[attempt],
            )
            time.sleep(delays[attempt])
            attempt += 1


def _run(func: Callable[..., Any], name: str, args: Any, kwargs: Any) -> Any:
    """Call ``func``; when it is the function of the RQ job being run (not a direct call, not a
    job function called by another), carry the job's request id into its log records, and count
    and time the run."""
    job = get_current_job()
    if job is None or _running_job.get() == job.id:
        return func(*args, **kwargs)
    running = _running_job.set(job.id)
    context = logs.enter_job(job.id, name, (job.meta or {}).get("request_id"))
    started = time.perf_counter()
    outcome = "failed"
    try:
        result = func(*args, **kwargs)
        outcome = "succeeded"
        return result
    finally:
        seconds = time.perf_counter() - started
        record_job(name, outcome, seconds)
        if outcome == "failed":
            log.warning("job %s failed after %.3fs", name, seconds, extra={"duration_s": seconds})
        else:
            log.debug("job %s succeeded in %.3fs", name, seconds, extra={"duration_s": seconds})
        logs.exit_job(context)
        _running_job.reset(running)


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    seconds: int
    queue: str


PERIODIC: list[Periodic] = []


def periodic(*, seconds: int, queue: str = "default") -> Callable[[F], F]:
    """Register a job to be enqueued every ``seconds`` by the worker's scheduler thread."""

    def decorator(func: F) -> F:
        PERIODIC.append(Periodic(func, seconds, queue))
        return func

    return decorator


# Modules whose @periodic jobs the worker schedules.
JOB_MODULES = ("voting.jobs", "media.jobs")


def _schedule_forever(app: Flask, stop: threading.Event) -> None:
    """Enqueue periodic jobs while holding a Redis lease, so many workers schedule once."""
    with app.app_context():
        client = redis_store.client
        lease = redis_store.key("scheduler", "lease")
        me = f"{os.getpid()}-{id(stop)}"
        last: dict[str, float] = {}
        while not stop.is_set():
            try:
                holder = client.set(lease, me, nx=True, ex=5) or client.get(lease) == me.encode()
                if holder:
                    client.expire(lease, 5)
                    now = time.monotonic()
                    for job in PERIODIC:
                        name = f"{job.func.__module__}.{job.func.__name__}"
                        if now - last.get(name, 0.0) >= job.seconds:
                            last[name] = now
                            try:
                                _enqueue_once(job, name)
                            except Exception:  # one job's trouble never starves the others
                                log.exception("periodic job %s not scheduled", name)
            except Exception:  # the scheduler must outlive a Redis blip
                log.exception("periodic scheduler error")
            stop.wait(0.5)


# How often a worker beats the heartbeat of the job it runs (RQ's default: 30 s), and how often
# it runs RQ's registry maintenance, which moves the runs of dead workers out of 'started'
# (RQ's default: every 10 minutes).
JOB_MONITORING_INTERVAL = 5
MAINTENANCE_INTERVAL = 60


def _abandoned(job: Job) -> bool:
    """A started run whose heartbeat stopped: the worker running it is gone (kill -9, a lost
    host, Redis gone while it ran). It no longer counts as running."""
    beat = job.last_heartbeat or job.started_at
    return beat is None or (rq_now() - beat).total_seconds() > 3 * JOB_MONITORING_INTERVAL


def _enqueue_once(job: Periodic, name: str) -> None:
    """Skip a periodic job whose previous run is still waiting or running.

    Every run gets a fresh job id; the id of the latest is kept beside the queues. A run
    abandoned by a dead worker does not hold the schedule up (RQ moves it to the failed
    registry at its next maintenance), nor does one a dying worker took off its queue before
    starting it (found by killing `flask up`'s worker: the drain stopped for good)."""
    queue = redis_store.queue(job.queue)
    client = queue.connection
    latest = redis_store.key("periodic", name)
    previous = client.get(latest)
    if previous is not None:
        try:
            existing = Job.fetch(previous.decode(), connection=client)
            status = existing.get_status(refresh=True)
            if status in ("deferred", "scheduled"):
                return
            # "queued" but no longer in its queue: a worker took it and died before starting it
            # (kill -9, or its Redis went away); nothing will ever run it, so run it afresh.
            if status == "queued" and client.lpos(queue.key, existing.id) is not None:
                return
            if status == "started" and not _abandoned(existing):
                return
        except NoSuchJobError:
            pass
        except VOTE_REDIS_ERRORS:
            raise
        except Exception:  # a run a killed worker left half-written
            # Unreadable (a job hash a dying worker left incomplete): it will never finish, so
            # it must not hold the schedule up; run the job afresh.
            log.warning(
                "periodic job %s: previous run %s unreadable; running it afresh", name, previous
            )
    enqueued = enqueue(job.queue, job.func, result_ttl=60, failure_ttl=3600, job_timeout=600)
    client.set(latest, enqueued.id, ex=86400)


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    set_job_app(app)
    for module in JOB_MODULES:
        importlib.import_module(module)
    queues = [redis_store.queue(name) for name in QUEUE_NAMES]
    worker = Worker(
        queues,
        connection=redis_store.client,
        job_monitoring_interval=JOB_MONITORING_INTERVAL,
        maintenance_interval=MAINTENANCE_INTERVAL,
    )
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_schedule_forever, args=(app, stop), daemon=True).start()
    log.info("worker listening on %s", ", ".join(q.name for q in queues))
    try:
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
    finally:
        stop.set()
