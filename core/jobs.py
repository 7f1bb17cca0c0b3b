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
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job, get_current_job
from rq.utils import now as rq_now
from sqlalchemy.exc import DBAPIError, OperationalError

from core import logs
from core.clock import epoch, utcnow
from core.errors import AppError
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
    install_quiet_rq_filter()


# When the outermost job function now running first started (its retries keep it): the moment
# a job's work belongs to, such as the minute of a tally snapshot.
_started_at: contextvars.ContextVar[datetime | None] = contextvars.ContextVar(
    "zuimei_job_started_at", default=None
)

# How long a job waits before each new attempt after SQLite refused it the write lock (each
# attempt itself waits up to busy_timeout, 10 s, for the lock) or the database server closed or
# refused its connection (a restart or a failover: 15.5 s in all). Overridden by the app setting
# JOB_LOCK_RETRY_DELAYS.
LOCK_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)

# SQLSTATEs of a server that is going away or not yet back: class 08 (connection exception),
# admin_shutdown, crash_shutdown and cannot_connect_now ("the database system is starting up").
_GONE_STATES = ("57P01", "57P02", "57P03")


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


def is_connection_error(exc: BaseException) -> bool:
    """The database server closed the connection or refused a new one (a restart, a failover,
    an administrator ending the session): the server, not the job, is at fault, and the same
    work a few seconds later succeeds. A statement the server rejected is not one of these."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:  # SQLAlchemy's own reading: the connection is gone
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state:
        return state.startswith("08") or state in _GONE_STATES
    # psycopg's failures to connect or to read an answer carry no SQLSTATE.
    module = type(orig).__module__ or ""
    return (
        isinstance(exc, OperationalError)
        and module.startswith("psycopg")
        and any(
            words in str(orig).lower()
            for words in ("connection failed", "server closed the connection", "connection refused")
        )
    )


def app_job(func: F | None = None, *, rerun_on_lost_connection: bool = True) -> Any:
    """Run a job function inside an app context (reusing one if the caller has it: the worker
    command pushes one, and so do tests), and end its database session whatever happens.

    On SQLite the job takes the write lock when it begins a transaction (``BEGIN IMMEDIATE``,
    as write requests do), whether it made its app context or found one: a deferred transaction
    that reads and then writes is refused at once when another writer committed in between.
    The outermost job function is run again, after a pause, when SQLite still refused it the
    lock, or when the database server closed or refused its connection (jobs are idempotent);
    its first start stays its ``job_started_at``. ``@app_job(rerun_on_lost_connection=False)``
    leaves a lost connection to RQ's own ``Retry`` instead: for a long job (a transcode) that
    counts its attempts and should not run again in the time left of the same job."""
    if func is None:
        return functools.partial(app_job, rerun_on_lost_connection=rerun_on_lost_connection)
    name = f"{func.__module__}.{func.__name__}"
    job = func

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return _in_context(job, name, args, kwargs, rerun_on_lost_connection)
        with _job_app().app_context():
            try:
                return _in_context(job, name, args, kwargs, rerun_on_lost_connection)
            finally:
                db.session.remove()

    return wrapper


def _in_context(
    func: Callable[..., Any], name: str, args: Any, kwargs: Any, reconnect: bool
) -> Any:
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
            retried = functools.partial(_with_retries, func, name, reconnect)
            return _run(retried, name, args, kwargs)
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


def _with_retries(
    func: Callable[..., Any], name: str, reconnect: bool, *args: Any, **kwargs: Any
) -> Any:
    delays = tuple(current_app.config.get("JOB_LOCK_RETRY_DELAYS") or LOCK_RETRY_DELAYS)
    attempt = 0
    while True:
        try:
            return func(*args, **kwargs)
        except DBAPIError as exc:
            locked = is_sqlite_lock_error(exc)
            lost = reconnect and is_connection_error(exc)
            if not (locked or lost) or attempt >= len(delays):
                raise
            db.session.rollback()
            log.warning(
                "job %s %s; attempt %d again in %.1f s",
                name,
                "refused by the SQLite lock" if locked else "lost its database connection",
                attempt + 2,
                delays[attempt],
            )
            time.sleep(delays[attempt])
            attempt += 1


def _run(func: Callable[..., Any], name: str, args: Any, kwargs: Any) -> Any:
    """Call ``func``; when it is the function of the RQ job being run (not a direct call, not a
    job function called by another), carry the job's request id into its log records, count
    and time the run, and say what happened in at most one line: a periodic job that did work
    reports it (:func:`_report_periodic`; nothing when it did nothing), a refusal
    (:func:`is_refusal`) is one warning without traceback, another failure one warning here
    beside RQ's error with the traceback."""
    job = get_current_job()
    if job is None or _running_job.get() == job.id:
        return func(*args, **kwargs)
    running = _running_job.set(job.id)
    context = logs.enter_job(job.id, name, (job.meta or {}).get("request_id"))
    started = time.perf_counter()
    outcome = "failed"
    result: Any = None
    refusal: AppError | None = None
    try:
        result = func(*args, **kwargs)
        outcome = "succeeded"
        return result
    except AppError as exc:
        if is_refusal(exc):
            refusal = exc
        raise
    finally:
        seconds = time.perf_counter() - started
        record_job(name, outcome, seconds)
        if refusal is not None:
            _note_refused(job.id)
            log.warning(
                "job %s refused: %s (%d) after %.3fs",
                name,
                refusal.code,
                refusal.status,
                seconds,
                extra={"error_code": refusal.code, "status": refusal.status, "duration_s": seconds},
            )
        elif outcome == "failed":
            log.warning("job %s failed after %.3fs", name, seconds, extra={"duration_s": seconds})
        else:
            log.debug("job %s succeeded in %.3fs", name, seconds, extra={"duration_s": seconds})
            spec = _periodic_named(name)
            if spec is not None:
                _report_periodic(spec, name, result, seconds)
        logs.exit_job(context)
        _running_job.reset(running)


def is_refusal(exc: BaseException) -> bool:
    """An expected refusal: a domain error the caller can act on (4xx), not a fault."""
    return isinstance(exc, AppError) and exc.status < 500


# --- what periodic jobs did ---------------------------------------------------------------------

# What one run of a periodic job did, by what: {"votes drained from qingshan-2026": 340}.
# Empty (or only zeros): the run did nothing, and nothing is logged.
Work = dict[str, int]


def default_work(result: Any) -> Work:
    """Judge a periodic job's return value when it names no ``work`` function: a count, a
    collection (its length) or a mapping of counts (its non-zero ones)."""
    if isinstance(result, bool) or result is None:
        return {}
    if isinstance(result, int):
        return {"items": result} if result else {}
    if isinstance(result, dict):
        return {
            str(key): value
            for key, value in result.items()
            if isinstance(value, int) and not isinstance(value, bool) and value
        }
    if isinstance(result, list | tuple | set | frozenset):
        return {"items": len(result)} if result else {}
    return {}


# A periodic job writes at most one line per this many seconds (whichever worker runs it); the
# work of the runs in between is added up into that line.
SUMMARY_SECONDS = 60


@dataclass(frozen=True)
class Periodic:
    func: Callable[..., Any]
    seconds: int
    queue: str
    work: Callable[[Any], Work] = default_work
    summary_seconds: int = SUMMARY_SECONDS


PERIODIC: list[Periodic] = []


def periodic(
    *,
    seconds: int,
    queue: str = "default",
    work: Callable[[Any], Work] | None = None,
    summary_seconds: int | None = None,
) -> Callable[[F], F]:
    """Register a job to be enqueued every ``seconds`` by the worker's scheduler thread.

    ``work(result)`` tells from a run's return value what it did (:data:`Work`); without it,
    :func:`default_work` judges. A run that did nothing logs nothing; the work of the others is
    written in one line at most every ``summary_seconds`` (default :data:`SUMMARY_SECONDS`)."""

    def decorator(func: F) -> F:
        PERIODIC.append(
            Periodic(func, seconds, queue, work or default_work, summary_seconds or SUMMARY_SECONDS)
        )
        return func

    return decorator


def _periodic_named(name: str) -> Periodic | None:
    for spec in PERIODIC:
        if f"{spec.func.__module__}.{spec.func.__name__}" == name:
            return spec
    return None


# How long an unreported tally (and the time of the last line) is kept without any run.
_TALLY_TTL = 86400

# The clock of the summaries (seconds since the epoch): a seam for tests, which move it instead
# of sleeping for a minute.
log_clock: Callable[[], float] = epoch

# Add one run to a periodic job's tally; when it holds work and no line was written for the job
# in the last ARGV[2] seconds, hand the tally back (and start a new one).
# KEYS: the tally hash, the time of the last line. ARGV: now, window, seconds of this run, TTL,
# then label, count pairs of this run's work (none: the run did nothing, and its seconds are
# not added: the line tells how long the work took).
_TALLY = """
redis.call('HINCRBY', KEYS[1], '_runs', 1)
redis.call('HSETNX', KEYS[1], '_since', ARGV[1])
if #ARGV > 4 then
  redis.call('HINCRBY', KEYS[1], '_worked', 1)
  redis.call('HINCRBYFLOAT', KEYS[1], '_seconds', ARGV[3])
  for i = 5, #ARGV, 2 do
    redis.call('HINCRBY', KEYS[1], 'w:' .. ARGV[i], ARGV[i + 1])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[4])
if tonumber(redis.call('HGET', KEYS[1], '_worked') or '0') == 0 then
  return false
end
local last = redis.call('GET', KEYS[2])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then
  return false
end
local tally = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[4])
return tally
"""


def _report_periodic(spec: Periodic, name: str, result: Any, seconds: float) -> None:
    """Log what a periodic run did: nothing when it (and the unreported runs before it) did
    nothing; else one INFO line, at most one per ``summary_seconds`` per job, adding up the runs
    since the last. Logging never fails the job."""
    try:
        work = {label: int(count) for label, count in spec.work(result).items() if count}
        pairs = [part for label, count in sorted(work.items()) for part in (label, count)]
        now = log_clock()
        raw = redis_store.client.eval(
            _TALLY,
            2,
            redis_store.key("periodic-log", name),
            redis_store.key("periodic-log-last", name),
            repr(now),
            spec.summary_seconds,
            repr(seconds),
            _TALLY_TTL,
            *pairs,
        )
    except Exception as exc:  # a log line is never worth a failed job
        log.debug("periodic %s: work not tallied (%s)", name, exc.__class__.__name__)
        return
    if not raw:
        return
    tally = {_text(raw[i]): _text(raw[i + 1]) for i in range(0, len(raw), 2)}
    log.info(*_summary(name, tally, now), extra={"periodic": name, **_summary_fields(tally)})


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _summary_fields(tally: dict[str, str]) -> dict[str, Any]:
    return {
        "runs": int(tally.get("_runs", 0)),
        "runs_with_work": int(tally.get("_worked", 0)),
        "work": {key[2:]: int(value) for key, value in tally.items() if key.startswith("w:")},
        "duration_s": round(float(tally.get("_seconds", 0.0)), 3),
    }


def _summary(name: str, tally: dict[str, str], now: float) -> tuple[Any, ...]:
    """The line's format and arguments: "periodic drain_all: 340 votes drained from c1 in
    0.04 s" when one run did work; when several did, how many of how many runs over how long,
    and the seconds they took together."""
    fields = _summary_fields(tally)
    what = ", ".join(f"{count:,} {label}" for label, count in sorted(fields["work"].items()))
    short = name.rsplit(".", 1)[-1]
    if fields["runs_with_work"] == 1:
        return ("periodic %s: %s in %.2f s", short, what, fields["duration_s"])
    over = max(0.0, now - float(tally.get("_since", now)))
    return (
        "periodic %s: %s in %d of %s runs over %.0f s (%.2f s)",
        short,
        what,
        fields["runs_with_work"],
        f"{fields['runs']:,}",
        over,
        fields["duration_s"],
    )


# --- RQ's own lines -----------------------------------------------------------------------------

# Periodic runs get ids with this prefix, so RQ's lines about them can be told apart.
PERIODIC_ID_PREFIX = "periodic-"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# RQ's registry maintenance, every MAINTENANCE_INTERVAL: routine, like the periodic runs.
_ROUTINE_RQ = ("cleaning registries for queue", "cleaning group registries")
_RQ_JOB_EXCEPTION = "exception raised while executing"
# Ids of the runs that ended in a refusal, until RQ reports their exception (same process: the
# work horse, or a SimpleWorker).
_refused: dict[str, None] = {}


def _note_refused(job_id: str) -> None:
    _refused[job_id] = None
    while len(_refused) > 256:
        del _refused[next(iter(_refused))]


def _periodic_descriptions() -> set[str]:
    return {f"{spec.func.__module__}.{spec.func.__name__}()" for spec in PERIODIC}


class QuietRQ(logging.Filter):
    """On RQ's ``rq.worker`` logger: drop its INFO lines about periodic runs (taken, done,
    result kept) and its routine registry maintenance, and its error-with-traceback for a run
    that ended in a refusal (``_run`` wrote the one line that says so). Its warnings, errors and
    the lines about every other job stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            template = str(record.msg)
            if any(phrase in template for phrase in _ROUTINE_RQ):
                return False
            return not _about_periodic(record)
        job_id = getattr(record, "job_id", None)
        if job_id in _refused and _RQ_JOB_EXCEPTION in str(record.msg):
            _refused.pop(job_id, None)
            return False
        return True


def _about_periodic(record: logging.LogRecord) -> bool:
    args = record.args if isinstance(record.args, tuple) else ()
    descriptions: set[str] | None = None
    for arg in args:
        if not isinstance(arg, str):
            continue
        text = _ANSI.sub("", arg)
        if text.startswith(PERIODIC_ID_PREFIX):
            return True
        if descriptions is None:
            descriptions = _periodic_descriptions()
        if text in descriptions:
            return True
    return False


_QUIET_RQ = QuietRQ()


def install_quiet_rq_filter() -> None:
    """Put :class:`QuietRQ` on RQ's worker logger (once)."""
    rq_log = logging.getLogger("rq.worker")
    if _QUIET_RQ not in rq_log.filters:
        rq_log.addFilter(_QUIET_RQ)


# Modules whose @periodic jobs the worker schedules.
JOB_MODULES = ("voting.jobs", "media.jobs", "appraisal.jobs")


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
    """A started run nothing will finish: its heartbeat stopped (kill -9, a lost host, Redis
    gone while it ran), it names no worker (RQ writes the worker with the status, so a hash
    that says "started" without one was left half-rewritten by a dying worker: the chaos suite
    saw the every-second watch job wait on such a run for good), or its worker is no longer
    registered. It no longer counts as running."""
    beat = job.last_heartbeat or job.started_at
    if beat is None or (rq_now() - beat).total_seconds() > 3 * JOB_MONITORING_INTERVAL:
        return True
    if not job.worker_name:
        return True
    return not job.connection.exists(Worker.redis_worker_namespace_prefix + job.worker_name)


def periodic_timeout(seconds: int) -> int:
    """How long one run of a job due every ``seconds`` may take before RQ stops it: a run that
    hangs (a lock, a server restarting under it) must not hold the schedule for ten minutes.
    Long enough for a drain catching up a backlog in batches (it acknowledges as it goes)."""
    return min(600, max(60, 30 * seconds))


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
    enqueued = enqueue(
        job.queue,
        job.func,
        result_ttl=60,
        failure_ttl=3600,
        job_timeout=periodic_timeout(job.seconds),
        job_id=periodic_job_id(name),
    )
    client.set(latest, enqueued.id, ex=86400)


def periodic_job_id(name: str) -> str:
    """A fresh id for a run of the periodic job ``name`` (RQ ids: letters, digits, _ and -)."""
    return f"{PERIODIC_ID_PREFIX}{name.replace('.', '_')}-{uuid.uuid4().hex}"


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    set_job_app(app)
    install_quiet_rq_filter()
    if logs.log_format(app) == "text":
        logs.configure_worker_text_logging()
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
