"""The chaos suite in its quick modes (bench/chaos, docs/chaos.md).

The production stack: a private PostgreSQL, Redis, gunicorn and RQ workers under a vote load; a
gunicorn worker, an RQ worker in the middle of a drain batch, Redis and PostgreSQL are killed or
restarted in turn. Nothing acknowledged may be lost or stored twice, counters may not drift, no
job may stay stuck and the drain may not stall.

The embedded default (``--embedded``): ``flask --app wsgi up`` in a fresh instance folder under a
vote load; its embedded redis-server and its worker are killed with SIGKILL and a poison entry
goes into the ledger. No acknowledged vote may be lost, no id or sequence number reissued, no
quota breached, and ``up`` must still serve.

Each runs as a subprocess (it starts and kills servers and sets signal handlers) and takes about
90 seconds on two cores. The judge of the embedded run is also tested on its own, with a lost
vote, a reissued sequence and a breached quota, so that a green run means something.
"""

from __future__ import annotations

import glob
import re
import shutil
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bench.chaos.embedded_run import judge, sequence_of
from core import clock

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


EMBEDDED_FIGURES = (
    "votes lost",
    "ids reissued",
    "quota breaches",
    "poison not handled",
    "up not serving",
    "counter drift",
    "reconcile not clean",
    "chain broken",
    "faults not injected",
    "faults not recovered",
    "load short",
)


def _run_chaos(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.chaos", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=120)
        pytest.fail(
            f"the chaos run {args} took more than {timeout:.0f} s:\n{stdout}{stderr[-6000:]}"
        )
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    return done, done.stdout + "\n--- progress (stderr) ---\n" + done.stderr[-6000:]


@pytest.mark.slow
def test_quick_embedded_chaos_run_loses_nothing_and_up_keeps_serving() -> None:
    """`flask up` as a newcomer runs it: its Redis killed once, its worker once, a poison
    entry in the ledger; every 201 vote is in the table (the run fails on a single lost one)."""
    try:
        from core.embedded import redis_server_binary

        redis_server_binary()
    except Exception:
        pytest.skip("no redis-server for the embedded default")
    done, report = _run_chaos("--embedded", "--quick", timeout=400)
    found = dict(re.findall(r"^(" + "|".join(EMBEDDED_FIGURES) + r") = (\d+)$", done.stdout, re.M))
    assert set(found) == set(EMBEDDED_FIGURES), report
    figures = {name: int(value) for name, value in found.items()}
    assert figures == dict.fromkeys(EMBEDDED_FIGURES, 0), report
    assert "RESULT: PASS" in done.stdout, report
    assert done.returncode == 0, report
    acknowledged = re.search(r"^votes acknowledged: (\d+)", done.stdout, re.M)
    assert acknowledged and int(acknowledged.group(1)) >= 300, report
    assert "embedded redis restarted" in done.stdout or "answering again" in done.stdout, report
    assert "worker restarted" in done.stdout, report


def _stored(
    rows: list[tuple[str, int, int, str]], day: str
) -> dict[str, tuple[int, int, str, str]]:
    return {vote_id: (seq, voter, nominee, day) for vote_id, seq, voter, nominee in rows}


def test_embedded_judge_finds_a_lost_vote_a_reissued_sequence_and_a_breached_quota() -> None:
    # Campaign days are labels to the judge (it reads no clock); derived from the app's clock.
    today = clock.utcnow().date()
    day, next_day = today.isoformat(), (today + timedelta(days=1)).isoformat()
    acks = [("7-1-aa", "D001"), ("7-2-bb", "D002"), ("7-3-cc", "D003"), ("7-2-bb", "D002")]
    stored = _stored(
        [("7-1-aa", 1, 10, "D001"), ("7-2-bb", 2, 10, "D002"), ("7-3-cc", 3, 11, "D003")], day
    )
    clean = judge(acks, stored, quota=2, per_nominee=1)
    assert (clean.lost, clean.reissued, clean.quota_breaches) == ([], 0, 0)
    assert sequence_of("7-123-0a1b2c3d") == "123"

    # An acknowledged vote the table does not hold is lost.
    lost = judge([*acks, ("7-4-dd", "D004")], stored, quota=2, per_nominee=1)
    assert lost.lost == ["7-4-dd"]

    # A sequence handed out again after a rewind: two acknowledged ids share it, and the table
    # holds it twice.
    rewound = {**stored, "7-3-ee": (3, 12, "D004", day)}
    again = judge([*acks, ("7-3-ee", "D004")], rewound, quota=2, per_nominee=1)
    assert again.seq_shared_by_acks == 1 and again.seq_stored_twice == 1 and again.reissued == 2

    # One vote id answered with two different nominees; a stored row unlike its answer.
    twice = judge([*acks, ("7-1-aa", "D005")], stored, quota=2, per_nominee=1)
    assert twice.id_with_two_contents == 1 and twice.stored_differs_from_ack == 1

    # A voter over the daily quota, and a voter-nominee pair over its limit, counted from the
    # table; the same votes on another day are within the rules.
    over = {
        **stored,
        "7-5-ff": (5, 10, "D003", day),
        "7-6-gg": (6, 11, "D003", day),
    }
    breached = judge(acks, over, quota=2, per_nominee=1)
    assert breached.over_daily_quota == 1 and breached.over_nominee_limit == 1
    later = {
        **stored,
        "7-5-ff": (5, 10, "D003", next_day),
        "7-6-gg": (6, 11, "D003", next_day),
    }
    assert judge(acks, later, quota=2, per_nominee=1).quota_breaches == 0
