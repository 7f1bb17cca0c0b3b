"""`flask up` as a newcomer runs it (SQLite and the embedded Redis), killed where it hurts.

The embedded redis-server and the worker are killed with SIGKILL under `up`: the supervisor
starts them again, every vote answered 201 before the kill is still counted and reaches the
votes table, and no voter gets a quota back."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nominations.demo import campaign_spec

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _call(
    base: str, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
    except OSError:
        return 0, None


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


@pytest.fixture
def up() -> Iterator[dict[str, Any]]:
    folder = Path(f"/tmp/zmup-{secrets.token_hex(3)}")  # unix socket paths are short
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update({"ZUIMEI_INSTANCE_PATH": str(folder), "PYTHONUNBUFFERED": "1"})
    log = (folder.parent / f"{folder.name}.log").open("w+b")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        # A fresh instance: migrations, then the demo's three campaigns with media and votes.
        _wait(lambda: _call(base, "GET", "/readyz")[0] == 200, 240, "flask up to be ready")
        yield {"base": base, "folder": folder, "process": process, "log": log}
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        log.close()
        pid_file = folder / "redis.pid"
        if pid_file.exists():  # never leave a redis-server behind
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _log(stack: dict[str, Any]) -> str:
    stack["log"].flush()
    return Path(stack["log"].name).read_text(errors="replace")


def _stored(folder: Path) -> set[str]:
    with sqlite3.connect(folder / "zuimei.db") as conn:
        return {row[0] for row in conn.execute("SELECT id FROM votes")}


def test_up_restarts_a_killed_redis_and_worker_and_loses_no_vote(up: dict[str, Any]) -> None:
    base, folder = up["base"], up["folder"]
    slug = campaign_spec()["slug"]
    listing = _call(base, "GET", f"/api/v1/campaigns/{slug}/nominees?per_page=5")[1]
    number = listing["items"][0]["number"]
    tokens = [
        _call(base, "POST", "/api/v1/voters/device", {"device_id": f"up-test-device-{i:04d}"})[1][
            "voter_token"
        ]
        for i in range(6)
    ]
    acknowledged = set()
    counts = []
    for token in tokens[:4]:
        status, body = _call(
            base, "POST", f"/api/v1/campaigns/{slug}/votes", {"nominee": number}, token
        )
        assert status == 201, body
        acknowledged.add(body["vote_id"])
        counts.append(body["nominee_votes"])
    # The demo seeded days of past votes: the count goes on from there, one by one.
    seeded = counts[0] - 1
    assert counts == [seeded + 1, seeded + 2, seeded + 3, seeded + 4]
    assert f"{slug}" in _log(up) and "brushing attack" in _log(up)

    redis_pid = int((folder / "redis.pid").read_text())
    os.kill(redis_pid, signal.SIGKILL)
    _wait(
        lambda: (
            (folder / "redis.pid").exists()
            and (folder / "redis.pid").read_text().strip() != str(redis_pid)
            and _call(base, "GET", "/readyz")[0] == 200
            and ("embedded redis restarted" in _log(up) or "answering again" in _log(up))
        ),
        60,
        "the supervisor to start redis again",
    )
    # What Redis acknowledged before the kill is still there: the count, and every quota.
    again = _call(base, "POST", f"/api/v1/campaigns/{slug}/votes", {"nominee": number}, tokens[0])
    assert again[0] == 429 and again[1]["error"]["code"] == "nominee_daily_limit"
    status, body = _call(
        base, "POST", f"/api/v1/campaigns/{slug}/votes", {"nominee": number}, tokens[4]
    )
    assert status == 201 and body["nominee_votes"] == seeded + 5, body
    acknowledged.add(body["vote_id"])

    # The worker loses its Redis too, exits and is started again; then it is killed itself.
    def worker() -> int | None:
        found = [p for p, cmd in _children(up["process"].pid).items() if " worker" in cmd]
        return found[0] if len(found) == 1 else None

    _wait(lambda: worker() is not None, 60, "a running worker")
    restarts = _log(up).count("worker restarted")
    os.kill(worker(), signal.SIGKILL)  # type: ignore[arg-type]
    _wait(
        lambda: _log(up).count("worker restarted") > restarts,
        60,
        "the supervisor to start the worker again",
    )
    status, body = _call(
        base, "POST", f"/api/v1/campaigns/{slug}/votes", {"nominee": number}, tokens[5]
    )
    assert status == 201 and body["nominee_votes"] == seeded + 6, body
    acknowledged.add(body["vote_id"])

    # The restarted worker drains everything into the database, each vote once.
    _wait(lambda: acknowledged <= _stored(folder), 90, "the drain to store every vote")
    assert up["process"].poll() is None  # up kept serving throughout
