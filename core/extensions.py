"""Unbound extension instances; everything else imports them from here."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from rq import Queue
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from core import embedded
from core.schemas import ErrorEnvelopeSchema

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate(compare_type=True, render_as_batch=True)


class ZuimeiApi(Api):
    """flask-smorest's Api, documenting our error shape instead of its default one."""

    ERROR_SCHEMA = ErrorEnvelopeSchema


api = ZuimeiApi()

# SQLite lets one writer in at a time. A transaction that reads first and writes later can fail
# with SQLITE_BUSY_SNAPSHOT when another writer slipped in between, so write requests open their
# transaction with BEGIN IMMEDIATE (they queue on busy_timeout instead). Reads stay deferred.
sqlite_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "sqlite_write_intent", default=False
)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")


def init_db(app: Flask) -> None:
    uri = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("sqlite"):
        options.setdefault("connect_args", {}).setdefault("timeout", 10)
    else:
        options.setdefault("pool_pre_ping", True)
        options.setdefault("pool_size", 5)
        options.setdefault("max_overflow", 10)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    if uri.startswith("sqlite"):
        with app.app_context():
            _configure_sqlite(db.engine)


class RedisStore:
    """The app's Redis connection and key naming. Connects lazily, on first use."""

    def __init__(self) -> None:
        self._clients: dict[str, redis.Redis] = {}

    def init_app(self, app: Flask) -> None:
        app.extensions["zuimei_redis"] = self

    @property
    def client(self) -> redis.Redis:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        url = app.config["REDIS_URL"]
        client = self._clients.get(url)
        if client is None:
            if app.config.get("EMBEDDED_REDIS"):
                embedded.ensure_running(Path(url[len("unix://") :]).parent)
            # Threads wait briefly for a free connection instead of failing when all are busy.
            pool = redis.BlockingConnectionPool.from_url(
                url,
                max_connections=app.config.get("REDIS_MAX_CONNECTIONS", 64),
                timeout=app.config.get("REDIS_POOL_TIMEOUT", 5.0),
                socket_timeout=app.config.get("REDIS_SOCKET_TIMEOUT", 2.0),
                socket_connect_timeout=app.config.get("REDIS_CONNECT_TIMEOUT", 1.0),
                health_check_interval=30,
            )
            client = redis.Redis(connection_pool=pool)
            self._clients[url] = client
        return client

    def key(self, *parts: object) -> str:
        prefix = current_app.config["REDIS_PREFIX"]
        return ":".join([prefix, *(str(p) for p in parts)])

    def queue(self, name: str = "default") -> Queue:
        """An RQ queue; its name carries the key prefix so test runs never share queues."""
        prefix = current_app.config["REDIS_PREFIX"]
        return Queue(f"{prefix}-{name}", connection=self.client)


QUEUE_NAMES = ("votes", "default", "media", "exports")

redis_store = RedisStore()
