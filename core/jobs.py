"""Running RQ jobs inside the app: each job process builds the app once and works in its context."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
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


def run_worker(app: Flask, *, burst: bool = False, with_scheduler: bool = True) -> None:
    from rq import Worker

    from core.extensions import QUEUE_NAMES, redis_store

    set_job_app(app)
    queues = [redis_store.queue(name) for name in QUEUE_NAMES]
    worker = Worker(queues, connection=redis_store.client)
    log.info("worker listening on %s", ", ".join(q.name for q in queues))
    worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")


def enqueue(queue: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from core.extensions import redis_store

    return redis_store.queue(queue).enqueue(func, *args, **kwargs)
