"""The app's one clock: what moves it, what reads it, and where it may not be moved."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from core import clock, create_app
from core.auth import issue_token, read_token
from core.config import ConfigError
from core.errors import Unauthorized
from core.types import utcnow


@pytest.fixture
def moved() -> Iterator[None]:
    """Restore the clock (and the environment children inherit) after a test moves it."""
    before = clock.offset_seconds()
    yield
    clock.set_offset(before)


def test_the_offset_moves_every_reading_of_the_clock(moved: None) -> None:
    before = clock.offset_seconds()
    clock.set_offset(before + 400 * 86400)
    ahead = (utcnow() - datetime.now(UTC)) - timedelta(seconds=before)
    assert abs(ahead - timedelta(days=400)) < timedelta(seconds=5)
    assert abs(clock.epoch() - (time.time() + clock.offset_seconds())) < 5
    assert os.environ[clock.OFFSET_VARIABLE] == repr(clock.offset_seconds())


def test_a_process_started_after_the_move_reads_the_same_clock(moved: None) -> None:
    clock.set_offset(clock.offset_seconds() + 3 * 86400)
    printed = subprocess.run(
        [sys.executable, "-c", "from core import clock; print(clock.utcnow().isoformat())"],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.getcwd(),
    ).stdout.strip()
    assert abs((datetime.fromisoformat(printed) - utcnow()).total_seconds()) < 30


def test_tokens_are_aged_by_the_same_clock(app: Flask, moved: None) -> None:
    with app.app_context():
        token = issue_token("staff", {"sub": 1}, 60)
        assert abs((token.expires_at - utcnow()).total_seconds() - 60) < 5
        assert read_token("staff", token.token)["sub"] == 1
        clock.set_offset(clock.offset_seconds() + 120)  # two minutes later by the app's clock
        with pytest.raises(Unauthorized) as refused:
            read_token("staff", token.token)
        assert refused.value.code == "token_expired"


def test_production_refuses_a_moved_clock(monkeypatch: pytest.MonkeyPatch, moved: None) -> None:
    config: dict[str, Any] = {
        "ENV_NAME": "production",
        "SQLALCHEMY_DATABASE_URI": "postgresql://u@127.0.0.1/db",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SECRET_KEY": "s" * 40,
    }
    clock.set_offset(86400)
    with pytest.raises(ConfigError, match="ZUIMEI_CLOCK_OFFSET"):
        create_app(config)


def test_a_bad_offset_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "next tuesday")
    with pytest.raises(clock.ClockError):
        clock._offset_from_environment()
