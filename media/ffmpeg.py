"""Running ffmpeg on untrusted uploads: a child process with CPU, memory and time limits.

A failure becomes a `MediaRejected` whose sentence carries one short line of ffmpeg's complaint,
stripped of our paths, fit to show a clerk.
"""

from __future__ import annotations

import logging
import math
import os
import re
import resource
import signal
import subprocess
import time
from collections.abc import Callable

import imageio_ffmpeg

from media.rejections import MediaRejected, rejection

log = logging.getLogger(__name__)


def ffmpeg_binary() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _child_limits(cpu_seconds: int, memory_bytes: int) -> Callable[[], None]:
    """Runs in the forked child before exec: ffmpeg, not the worker, gets the limits."""

    def apply() -> None:
        os.nice(10)
        # SIGXCPU at the soft limit lets ffmpeg stop by itself; the hard limit kills it.
        _lower_limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 5)
        _lower_limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)

    return apply


def _child_env() -> dict[str, str]:
    # The worker's secrets (database, Redis, WeChat) have no business in a process that parses
    # untrusted uploads. Without the arena cap, glibc reserves 64 MB of address space per busy
    # thread, and RLIMIT_AS would then fail even a 360p clip on a many-core machine.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "MALLOC_ARENA_MAX": "2"}


def _lower_limit(limit: int, soft: int, hard: int) -> None:
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:  # an unprivileged process cannot raise its hard limit
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(limit, (soft, hard))


def run_ffmpeg(argv: list[str], *, timeout: float, threads: int, memory_limit_mb: int) -> None:
    cpu_seconds = max(1, math.ceil(timeout * threads))
    cpu_before = _children_cpu()
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell; only file paths are inserted
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            preexec_fn=_child_limits(cpu_seconds, memory_limit_mb * 1024 * 1024),
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # run() has already killed and reaped ffmpeg
        log.warning("ffmpeg passed its %g s timeout", timeout)
        raise rejection("transcode_timeout") from exc
    except OSError as exc:  # the limits can stop ffmpeg from even starting
        log.warning("ffmpeg could not start: %s", exc)
        raise MediaRejected("transcode_failed", failed_message(exc.strerror or "启动失败")) from exc
    if done.returncode == 0:
        log.info("ffmpeg finished in %.1f s", time.monotonic() - started)
        return
    stderr = done.stderr.decode("utf-8", "replace")
    log.warning("ffmpeg exited with %s: %s", done.returncode, stderr[-4000:])
    if _children_cpu() - cpu_before >= cpu_seconds - 0.5:
        raise rejection("transcode_timeout")  # stopped by RLIMIT_CPU: the same budget, spent as CPU
    raise MediaRejected("transcode_failed", failed_message(_reason(stderr, done.returncode)))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reason(stderr: str, returncode: int) -> str:
    """One line of ffmpeg's complaint, short and without our paths, fit to show a clerk."""
    if returncode < 0:
        return f"ffmpeg stopped by {signal.Signals(-returncode).name}"
    lines = []
    for raw in stderr.splitlines():
        line = re.sub(r"\[[^\]]*\]\s*", "", raw)  # "[dec:hevc @ 0x55...]" prefixes
        line = re.sub(r"(?:file:)?/\S*", "…", line)
        line = re.sub(r"[^\w .,:;()/%+=-]", "", line, flags=re.ASCII).strip()
        if line:
            lines.append(line)
    # The first error names the cause; the last lines are usually its consequences.
    errors = [line for line in lines if "error" in line.lower()]
    reason = errors[0] if errors else lines[-1] if lines else f"exit status {returncode}"
    return reason[:160]


def failed_message(reason: str) -> str:
    return f"视频转码失败，请重新导出后上传（原因：{reason}）"
