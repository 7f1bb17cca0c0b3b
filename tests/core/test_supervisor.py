"""The supervisor's watch of the embedded Redis: it notices a server that died and was started
again by another process of the instance between two of its looks (found when the app's Redis
clients began to fail fast: a web process now restarts the server within milliseconds)."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import embedded
from core.supervisor import EmbeddedRedisWatch


@pytest.fixture
def folder() -> Iterator[Path]:
    path = Path(f"/tmp/zmsv-{secrets.token_hex(3)}")  # unix socket paths are short
    path.mkdir()
    try:
        yield path
    finally:
        embedded.stop(path)


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return True
    return False


def test_a_restart_by_another_process_is_seen_and_owned(folder: Path) -> None:
    embedded.ensure_running(folder)
    watch, said = EmbeddedRedisWatch(folder), []
    watch.tend(100.0, said.append)
    first = embedded.pid(folder)
    assert first is not None and said == [] and not watch.saw_it_die

    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _dead(first) and time.monotonic() < deadline:
        time.sleep(0.05)
    embedded.ensure_running(folder)  # as a web process would, before the watch looks again
    watch.tend(101.0, said.append)
    second = embedded.pid(folder)
    assert second not in (None, first)
    assert len(said) == 1 and "restarted by another process" in said[0], said
    assert f"{first} → {second}" in said[0] and "answering again" in said[0]
    assert watch.saw_it_die  # `up` stops the replacement at exit

    watch.tend(102.0, said.append)
    assert len(said) == 1  # nothing new to say
