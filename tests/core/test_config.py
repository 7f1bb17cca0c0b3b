"""Configuration from the environment; production refuses embedded defaults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core import clock, create_app
from core.config import ConfigError


def test_production_refuses_embedded_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZUIMEI_ENV", "production")
    with pytest.raises(ConfigError) as excinfo:
        create_app({"INSTANCE_PATH": str(tmp_path)})
    message = str(excinfo.value)
    assert "DATABASE_URL" in message and "REDIS_URL" in message and "SECRET_KEY" in message
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZUIMEI_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SECRET_KEY", "short")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


@pytest.fixture
def real_clock() -> Iterator[None]:
    """Production refuses a moved clock (tests/core/test_clock.py), so a test that starts a
    production app runs on the machine's clock even under the calendar guard."""
    moved = clock.offset_seconds()
    clock.set_offset(0)
    yield
    clock.set_offset(moved)


def test_production_with_everything_set_turns_device_identity_off(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, real_clock: None
) -> None:
    monkeypatch.setenv("ZUIMEI_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@127.0.0.1/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("ZUIMEI_TRUSTED_PROXIES", "1")
    monkeypatch.setenv("ZUIMEI_METRICS_TOKEN", "m" * 32)
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["DEVICE_IDENTITY"] is False
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@127.0.0.1/db"
    assert app.config["TRUSTED_PROXIES"] == 1


def test_development_generates_a_secret_once_into_instance(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ZUIMEI_ENV"):
        monkeypatch.delenv(name, raising=False)
    first = create_app({"INSTANCE_PATH": str(tmp_path)})
    second = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 32
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert first.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'zuimei.db'}"
    assert first.config["REDIS_URL"] == f"unix://{tmp_path / 'redis.sock'}"
    assert first.config["DEVICE_IDENTITY"] is True
