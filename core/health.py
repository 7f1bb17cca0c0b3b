"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.extensions import VOTE_REDIS_ERRORS, db, redis_store

blp = Blueprint("health", __name__)
log = logging.getLogger("zuimei.health")

# Alerts a domain registers (from its init_app): each returns None when quiet, or what to show.
# They never make the probe fail: a load balancer must not take every node out for a condition
# of the data (a rewind of the vote Redis) that no node can fix by itself.
_ALERTS: dict[str, Callable[[], Any]] = {}
_logged: dict[str, str] = {}


def register_alert(name: str, check: Callable[[], Any]) -> None:
    """Show ``check()`` under ``alerts[name]`` of /readyz when it is not None (idempotent)."""
    _ALERTS[name] = check


def _alerts() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, check in _ALERTS.items():
        try:
            value = check()
        except Exception:  # an alert must never break the probe
            log.exception("readiness alert %s failed", name)
            db.session.rollback()
            continue
        if value is None:
            _logged.pop(name, None)
            continue
        found[name] = value
        if _logged.get(name) != repr(value):  # logged once per change, not at every probe
            _logged[name] = repr(value)
            log.error("readiness alert %s: %s", name, value)
    return found


@blp.get("/healthz")
def healthz() -> dict[str, Any]:
    """The process is alive; touches nothing else."""
    return {"status": "ok"}


@blp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """The database and Redis answer."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except SQLAlchemyError:
        checks["database"] = "unavailable"
    finally:
        db.session.rollback()
    try:
        redis_store.client.ping()
        checks["redis"] = "ok"
    except (redis.RedisError, OSError):
        checks["redis"] = "unavailable"
    if current_app.config.get("VOTE_REDIS_URL"):
        try:
            redis_store.votes.ping()
            checks["vote_redis"] = "ok"
        except VOTE_REDIS_ERRORS:
            checks["vote_redis"] = "unavailable"
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if checks["database"] == "ok":
        alerts = _alerts()
        if alerts:
            body["alerts"] = alerts
            if ready:
                body["status"] = "degraded"  # still 200: serving, but someone must look
    return body, 200 if ready else 503
