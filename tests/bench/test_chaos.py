"""The chaos suite in its quick mode (bench/chaos, docs/chaos.md): a private PostgreSQL, Redis,
gunicorn and RQ workers under a vote load; a gunicorn worker, an RQ worker in the middle of a
drain batch, Redis and PostgreSQL are killed or restarted in turn. Nothing acknowledged may be
lost or stored twice, counters may not drift, no job may stay stuck and the drain may not stall.

It runs as a subprocess (it starts and kills servers and sets signal handlers) and takes about
90 seconds on two cores.
"""

from __future__ import annotations

import glob
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
FIGURES = (
    "votes lost",
    "duplicates",
    "counter drift",
    "stuck jobs",
    "stalled drains",
    "faults not injected",
    "chain broken",
)


def _missing_servers() -> str | None:
    if not glob.glob("/usr/lib/postgresql/*/bin/initdb") and not shutil.which("initdb"):
        return "no PostgreSQL server binaries (initdb, pg_ctl)"
    if not shutil.which("redis-server"):
        try:
            from core.embedded import redis_server_binary

            redis_server_binary()
        except Exception:
            return "no redis-server"
    return None


@pytest.mark.slow
def test_quick_chaos_run_loses_nothing_and_leaves_nothing_stuck() -> None:
    missing = _missing_servers()
    if missing:
        pytest.skip(missing)
    # A timeout ends the run with SIGTERM, so that it stops its servers and removes its folder.
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.chaos", "--quick"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
        pytest.fail("the quick chaos run took more than 600 s:\n" + stdout + stderr[-6000:])
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    report = done.stdout + "\n--- progress (stderr) ---\n" + done.stderr[-6000:]
    found = dict(re.findall(r"^(" + "|".join(FIGURES) + r") = (\d+)$", done.stdout, re.M))
    assert set(found) == set(FIGURES), report
    assert {name: int(value) for name, value in found.items()} == dict.fromkeys(FIGURES, 0), report
    assert "RESULT: PASS" in done.stdout, report
    assert done.returncode == 0, report
