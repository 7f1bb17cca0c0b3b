"""Running RQ jobs inside the app: each job process builds the app once and works in its context."""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, has_app_context

log = logging.getLogger("zuimei.jobs")
F = TypeVar("F", bound=Callable[..., Any])

_app: Flask | None = None


def _job_app() -> Flask:
    global _app
    if _app is None:
        from core import create_app

        _app = create_app()
    return _app


def set_job_app(app: Flask) -> None:
    """The worker command hands its own app over, so jobs see the same configuration."""
    global _app
    _app = app


def _dispose_after_fork() -> None:
    # A forked work horse must not reuse the parent's database connections.
    if _app is not None:
        from core.extensions import db

        with _app.app_context():
            db.engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def app_job(func: F) -> F:
    """Run a job function inside an app context (reusing one if the caller has it, as tests do),
    and end its database session whatever happens."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_app_context():
            return func(*args, **kwargs)
        with _job_app().app_context():
            from core.extensions import db, sqlite_write_intent

            sqlite_write_intent.set(True)
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper  # type: ignore[return-value]


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
    from core.extensions import redis_store

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
                            _enqueue_once(job, name)
            except Exception:  # the scheduler must outlive a Redis blip
                log.exception("periodic scheduler error")
            stop.wait(0.5)


def _enqueue_once(job: Periodic, name: str) -> None:
    """Skip a periodic job whose previous run is still queued."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    from core.extensions import redis_store

    queue = redis_store.queue(job.queue)
    job_id = "periodic-" + re.sub(r"[^A-Za-z0-9_-]", "-", redis_store.key(name))
    try:
        existing = Job.fetch(job_id, connection=queue.connection)
        if existing.get_status(refresh=True) in ("queued", "started", "deferred", "scheduled"):
            return
        existing.delete()
    except NoSuchJobError:
        pass
    queue.enqueue(job.func, job_id=job_id, result_ttl=60, failure_ttl=3600, job_timeout=600)


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    import importlib

    from rq import Worker

    from core.extensions import QUEUE_NAMES, redis_store

    set_job_app(app)
    for module in JOB_MODULES:
        importlib.import_module(module)
    queues = [redis_store.queue(name) for name in QUEUE_NAMES]
    worker = Worker(queues, connection=redis_store.client)
    stop = threading.Event()
    if not burst:
        threading.Thread(target=_schedule_forever, args=(app, stop), daemon=True).start()
    log.info("worker listening on %s", ", ".join(q.name for q in queues))
    try:
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
    finally:
        stop.set()


def enqueue(queue: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from core.extensions import redis_store

    return redis_store.queue(queue).enqueue(func, *args, **kwargs)
