"""The invitation-sending bench (bench/appraisal_send.py) run end to end on a few invitations:
every one registered is texted once through the fake (signatures checked), and the report has
its figures (the rate and memory targets are bench figures, docs/appraisal.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_the_bench_sends_every_invitation_once_and_reports_its_figures() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.appraisal_send", "--invitations", "200", "--senders", "2"],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert re.search(r"^database: (sqlite|postgresql\+psycopg)$", out, re.M), out
    assert re.search(r"^registered 200 encounters in [\d.]+ s$", out, re.M), out
    sent = re.search(
        r"^sent: 200 in ([\d.]+) s by 2 sender\(s\) over (\d+) job runs: (\d+) invitations/s "
        r"\(target >= 500\)$",
        out,
        re.M,
    )
    assert sent, out
    assert int(sent.group(2)) >= 2 and int(sent.group(3)) > 0
    statuses = re.search(r"^statuses: (\{.*\})$", out, re.M)
    assert statuses and json.loads(statuses.group(1)) == {"sent": 200}, out
    assert re.search(
        r"^fake: 200 requests, 200 signatures verified, 200 accepted, 200 distinct invitations, "
        r"0 duplicates: each invitation sent exactly once$",
        out,
        re.M,
    ), out
    senders = re.findall(
        r"^sender (\d): (\d+) sent in [\d.]+ s \(\d+ job runs\), CPU [\d.]+ s; RSS peak (\d+) MB "
        r"\(limit 300\), at 10 % (\d+) MB, at 100 % (\d+) MB: (flat|NOT flat)$",
        out,
        re.M,
    )
    assert [s[0] for s in senders] == ["1", "2"], out
    assert sum(int(s[1]) for s in senders) == 200, out
    for _, _, peak, at10, at100, _ in senders:
        assert 0 < int(at10) <= int(peak) and 0 < int(at100) <= int(peak) < 300
