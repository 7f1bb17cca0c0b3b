"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

import redis
from flask import Blueprint, current_app
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.extensions import VOTE_REDIS_ERRORS, db, redis_store

blp = Blueprint("health", __name__)


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
    return {"status": "ok" if ready else "unavailable", "checks": checks}, 200 if ready else 503
