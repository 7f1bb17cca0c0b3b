"""`flask up`'s supervisor: restarts what it runs (web, worker, embedded Redis) when it dies.

A child that exits is started again after a back-off (1 s, doubling to 30 s; a child that ran a
minute before dying starts the count again), and every exit and restart is said on stderr. The
embedded redis-server daemonizes, so it is watched by a ping on its socket instead of a process
handle; it comes back on the same append-only file, so what it acknowledged is still there.
"""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import embedded

log = logging.getLogger("zuimei.supervisor")

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
STABLE_AFTER = 60.0  # a child that ran this long before dying starts its back-off again


def _delay(failures: int) -> float:
    return min(MAX_DELAY, FIRST_DELAY * 2 ** max(0, failures - 1))


@dataclass
class Child:
    """One process `up` runs and restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    process: subprocess.Popen[Any] | None = None
    failures: int = 0
    started_at: float = 0.0
    due: float = 0.0  # when a dead child is started again (time.monotonic)

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env)  # noqa: S603
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tend(self, now: float, say: Callable[[str], None]) -> None:
        """Notice a death and schedule the restart; start it when due."""
        if self.process is not None and self.process.poll() is not None:
            code = self.process.returncode
            self.process = None
            self.failures = 1 if now - self.started_at >= STABLE_AFTER else self.failures + 1
            wait = _delay(self.failures)
            self.due = now + wait
            say(f"{self.name} exited with status {code}; restarting in {wait:.0f} s")
        if self.process is None and now >= self.due:
            self.start()
            say(f"{self.name} restarted (pid {self.process.pid})")  # type: ignore[union-attr]

    def stop(self, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class EmbeddedRedisWatch:
    """The embedded redis-server of an instance folder, started again when it stops answering."""

    directory: Path
    failures: int = 0
    due: float = 0.0
    down_since: float | None = None
    checked_at: float = 0.0
    saw_it_die: bool = False  # then `up` owns the server that replaced it, and stops it at exit
    server_pid: int | None = None  # the server seen answering last

    def tend(self, now: float, say: Callable[[str], None]) -> None:
        if now - self.checked_at < 1.0:
            return
        self.checked_at = now
        if embedded.alive(self.directory):
            current = embedded.pid(self.directory)
            if self.down_since is not None:
                # Another process of the instance may have started it first (any process that
                # needs the embedded Redis starts it); say so all the same.
                say("embedded redis is answering again")
                self.down_since = None
            elif self.server_pid is not None and current not in (None, self.server_pid):
                # It died and another process started it again between two of our looks (a
                # web process or the worker notices within milliseconds).
                self.saw_it_die = True
                say(
                    f"embedded redis was restarted by another process (pid {self.server_pid} "
                    f"→ {current}); it is answering again"
                )
            if current is not None:
                self.server_pid = current
            return
        if self.down_since is None:
            self.down_since = now
            self.saw_it_die = True
            say("embedded redis is not answering; starting it again from its append-only file")
        if now < self.due:
            return
        try:
            embedded.ensure_running(self.directory)
        except (embedded.EmbeddedRedisError, OSError, subprocess.CalledProcessError) as exc:
            self.failures += 1
            wait = _delay(self.failures)
            self.due = now + wait
            say(f"embedded redis did not start ({exc}); trying again in {wait:.0f} s")
            return
        self.failures = 0
        say("embedded redis restarted")
        self.down_since = None
        self.server_pid = embedded.pid(self.directory)


def supervise(
    children: list[Child],
    redis_watch: EmbeddedRedisWatch | None,
    say: Callable[[str], None],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    interval: float = 0.5,
) -> None:
    """Keep everything running until interrupted (KeyboardInterrupt) or ``should_stop()``."""
    while not should_stop():
        now = time.monotonic()
        if redis_watch is not None:
            redis_watch.tend(now, say)
        for child in children:
            child.tend(now, say)
        time.sleep(interval)
