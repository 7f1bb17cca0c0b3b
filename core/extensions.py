"""Unbound extension instances; everything else imports them from here."""

from __future__ import annotations

import contextvars
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote

import redis
from flask import Flask, current_app
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from redis import cluster as redis_cluster
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel
from rq import Queue
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from core import embedded
from core.config import ConfigError
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


# Errors a vote-path Redis call can raise: redis-py's own, socket errors, and the cluster
# client's topology errors (RedisClusterException is not a RedisError).
VOTE_REDIS_ERRORS: tuple[type[BaseException], ...] = (
    redis.RedisError,
    OSError,
    RedisClusterException,
)


@dataclass(frozen=True)
class VoteRedisTarget:
    """What ``VOTE_REDIS_URL`` names: one server, a cluster, or a Sentinel-watched master."""

    kind: str  # "single" | "cluster" | "sentinel"
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    service: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    ssl: bool = False
    sentinel_password: str | None = None


_SCHEMES = {
    "redis-cluster": ("cluster", False),
    "rediss-cluster": ("cluster", True),
    "redis-sentinel": ("sentinel", False),
    "rediss-sentinel": ("sentinel", True),
}


def _redacted(url: str) -> str:
    """The URL without its credentials, for error messages."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return scheme + sep + netloc + slash + path


def parse_vote_redis_url(url: str) -> VoteRedisTarget:
    """Read ``VOTE_REDIS_URL``; a malformed value raises ``ConfigError`` at start-up."""
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise ConfigError(f"VOTE_REDIS_URL is not a URL: {_redacted(url)!r}")
    if scheme in ("redis", "rediss", "unix"):
        return VoteRedisTarget(kind="single", url=url)
    if scheme not in _SCHEMES:
        raise ConfigError(
            "VOTE_REDIS_URL must start with redis-cluster://, redis-sentinel://, redis://, "
            f"rediss:// or unix:// (got {scheme}://)"
        )
    kind, ssl = _SCHEMES[scheme]
    netloc, _, path = rest.partition("/")
    path, _, query = path.partition("?")
    netloc, _, netloc_query = netloc.partition("?")
    params = parse_qs(query or netloc_query)
    username = password = None
    if "@" in netloc:
        userinfo, netloc = netloc.rsplit("@", 1)
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    nodes = tuple(_host_port(part, url) for part in netloc.split(",") if part.strip())
    if not nodes:
        raise ConfigError(f"VOTE_REDIS_URL names no host:port: {_redacted(url)!r}")
    segments = [unquote(s) for s in path.split("/") if s]
    service = None
    db = 0
    if kind == "cluster":
        if segments and segments != ["0"]:
            raise ConfigError("a Redis Cluster has only database 0; drop the path")
    else:
        if not segments or len(segments) > 2:
            raise ConfigError(
                "VOTE_REDIS_URL for Sentinel is redis-sentinel://host:port[,host:port]"
                "/<service>[/<db>]"
            )
        service = segments[0]
        if len(segments) == 2:
            if not segments[1].isdigit():
                raise ConfigError(f"VOTE_REDIS_URL database must be a number: {segments[1]!r}")
            db = int(segments[1])
    sentinel_password = params.get("sentinel_password", [None])[0]
    return VoteRedisTarget(
        kind=kind,
        url=url,
        nodes=nodes,
        service=service,
        db=db,
        username=username,
        password=password,
        ssl=ssl,
        sentinel_password=sentinel_password,
    )


def _host_port(part: str, url: str) -> tuple[str, int]:
    part = part.strip()
    if part.startswith("["):  # [IPv6]:port
        host, _, port = part[1:].partition("]:")
    else:
        host, _, port = part.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(
            f"VOTE_REDIS_URL host must be host:port, got {part!r} in {_redacted(url)!r}"
        )
    return host, int(port)


class RedisStore:
    """The app's Redis connections and key naming. Connects lazily, on first use.

    ``client`` is the control Redis (``REDIS_URL``): RQ queues, locks, login throttles, rate
    limits, caches. ``votes`` is the vote path's Redis (``VOTE_REDIS_URL``, else ``client``):
    every key built by ``voting.services.CampaignKeys`` lives there."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def init_app(self, app: Flask) -> None:
        url = app.config.get("VOTE_REDIS_URL")
        # Refuse a malformed URL at start-up, not on a vote.
        kind = parse_vote_redis_url(url).kind if url else "shared"
        # Per-campaign MULTI/EXEC on a cluster arrived in redis-py 6.1.
        if kind == "cluster" and not hasattr(redis_cluster, "TransactionStrategy"):
            raise ConfigError("VOTE_REDIS_URL=redis-cluster:// needs redis-py 6.1 or later")
        wait_ms = int(app.config.get("VOTE_WAIT_TIMEOUT_MS") or 0)
        socket_ms = float(app.config.get("REDIS_SOCKET_TIMEOUT", 2.0)) * 1000
        if int(app.config.get("VOTE_WAIT_REPLICAS") or 0) > 0 and wait_ms >= socket_ms:
            # A WAIT longer than the socket timeout would fail as a dead Redis instead.
            raise ConfigError(
                f"VOTE_WAIT_TIMEOUT_MS ({wait_ms}) must be below REDIS_SOCKET_TIMEOUT "
                f"({socket_ms:.0f} ms)"
            )
        app.extensions["zuimei_redis"] = self

    @property
    def client(self) -> redis.Redis:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        url = app.config["REDIS_URL"]
        client = self._clients.get(url)
        if client is None:
            if app.config.get("EMBEDDED_REDIS"):
                embedded.ensure_running(Path(url[len("unix://") :]).parent)
            client = _single_client(url, app.config)
            self._clients[url] = client
        return client  # type: ignore[no-any-return]

    @property
    def votes(self) -> Any:
        """The vote path's client: a ``redis.Redis`` (one server or a Sentinel-discovered
        master) or a ``redis.cluster.RedisCluster``."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        url = app.config.get("VOTE_REDIS_URL")
        if not url:
            return self.client
        client = self._clients.get(url)
        if client is None:
            with self._lock:  # a cluster client maps the slots when made: make it once
                client = self._clients.get(url)
                if client is None:
                    client = _vote_client(parse_vote_redis_url(url), app.config)
                    self._clients[url] = client
        return client

    def vote_mode(self) -> str:
        """``shared`` (the vote path uses REDIS_URL), ``single``, ``cluster`` or ``sentinel``."""
        url = current_app.config.get("VOTE_REDIS_URL")
        return parse_vote_redis_url(url).kind if url else "shared"

    def vote_url(self) -> str:
        """The URL the vote path's data lives behind (names it in process-local state)."""
        return str(current_app.config.get("VOTE_REDIS_URL") or current_app.config["REDIS_URL"])

    def key(self, *parts: object) -> str:
        prefix = current_app.config["REDIS_PREFIX"]
        return ":".join([prefix, *(str(p) for p in parts)])

    def queue(self, name: str = "default") -> Queue:
        """An RQ queue; its name carries the key prefix so test runs never share queues."""
        prefix = current_app.config["REDIS_PREFIX"]
        return Queue(f"{prefix}-{name}", connection=self.client)


def is_cluster(client: Any) -> bool:
    return isinstance(client, RedisCluster)


def _single_client(url: str, config: Any) -> redis.Redis:
    # Threads wait briefly for a free connection instead of failing when all are busy.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=config.get("REDIS_MAX_CONNECTIONS", 64),
        timeout=config.get("REDIS_POOL_TIMEOUT", 5.0),
        socket_timeout=config.get("REDIS_SOCKET_TIMEOUT", 2.0),
        socket_connect_timeout=config.get("REDIS_CONNECT_TIMEOUT", 1.0),
        health_check_interval=30,
        # One immediate retry (a pooled connection gone stale after a Redis restart), no
        # back-off: redis-py's default (three retries, exponential back-off) kept every request
        # waiting 2.5 s for its 503 while the server was down (measured by bench.chaos --embedded).
        retry=Retry(NoBackoff(), 1),
    )
    return redis.Redis(connection_pool=pool)


def _vote_client(target: VoteRedisTarget, config: Any) -> Any:
    if target.kind == "single":
        return _single_client(target.url, config)
    auth: dict[str, Any] = {}
    if target.username:
        auth["username"] = target.username
    if target.password is not None:
        auth["password"] = target.password
    timeouts = {
        "socket_timeout": config.get("REDIS_SOCKET_TIMEOUT", 2.0),
        "socket_connect_timeout": config.get("REDIS_CONNECT_TIMEOUT", 1.0),
    }
    if target.kind == "cluster":
        try:
            # Maps the slots now; a cluster that does not answer is a connection error for
            # the caller (a vote answers 503), like a dead single server.
            return RedisCluster(
                startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
                # No retry after a timeout or a dropped connection: a vote script that may have
                # run must not run twice. The client maps the cluster again and the next call
                # goes to the new owner of the slot; this one answers 503 (as a single server
                # or a Sentinel master does: their connections never retry either).
                retry=Retry(NoBackoff(), 0),
                ssl=target.ssl,
                **auth,
                **timeouts,
            )
        except RedisClusterException as exc:
            raise redis.ConnectionError(f"Redis Cluster unavailable: {exc}") from exc
    # Asking the sentinels is read-only; an unreachable one is skipped for the next at once
    # instead of being retried with back-off while a voter waits.
    sentinel_kwargs: dict[str, Any] = {**timeouts, "retry": Retry(NoBackoff(), 0)}
    if target.sentinel_password:
        sentinel_kwargs["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs, **timeouts)
    return sentinel.master_for(
        target.service,
        db=target.db,
        ssl=target.ssl,
        max_connections=config.get("REDIS_MAX_CONNECTIONS", 64),
        health_check_interval=30,
        **auth,
    )


QUEUE_NAMES = ("votes", "default", "media", "exports")

redis_store = RedisStore()
