"""The vote export as a job: N synthetic votes written straight into the votes table, then
``GET …/votes.xlsx`` (or ``votes.csv``) answered 202 and the export built by a real worker
(``flask --app wsgi worker --burst``, its own process), with the progress polled meanwhile.

    .venv/bin/python -m bench.vote_export [--votes 200000] [--kind votes_xlsx|votes_csv]
        [--verify]

Prints the load time, how long the request took (it only queues the job), the job's wall time
and rows per second, the progress seen while it ran, the file's size and the worker's peak RSS
(its work horse included) against an idle worker's. ``--verify`` reads the file back and counts
the rows of every sheet (the split at 1,048,576 rows needs more than a million votes; the tests
prove it with the limit lowered).

Uses DATABASE_URL / REDIS_URL when set (a private database and key prefix), else the embedded
default.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, timedelta
from pathlib import Path

from flask import Flask

from bench.common import ROOT, cleanup, local_midnight, voting_campaign

FLASK = str(Path(sys.executable).with_name("flask"))
AGENTS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) MicroMessenger/8.0.47",
    "Mozilla/5.0 (Linux; Android 14; V2307A) AppleWebKit/537.36 MicroMessenger/8.0.49",
    '=HYPERLINK("http://x")',
)


def _load(app: Flask, slug: str, numbers: list[str], votes: int) -> float:
    from sqlalchemy import insert, select

    from campaigns.models import Campaign
    from core.extensions import db
    from voting.models import Vote

    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        started = time.perf_counter()
        day = local_midnight(days_ago=1)
        start = day.astimezone(UTC)
        batch = 20_000
        for first in range(0, votes, batch):
            rows = [
                {
                    "id": f"{campaign.id}-{i:08d}-x",
                    "campaign_id": campaign.id,
                    "seq": i + 1,
                    "category_code": "doctor",
                    "nominee_number": numbers[i % len(numbers)],
                    "voter_id": i // 3 + 1,
                    "at": start + timedelta(milliseconds=300 * i),
                    "day": day.date().isoformat(),
                    "ip": f"10.{i % 200}.{(i // 200) % 250}.{i % 250 + 1}",
                    "device": f"dev-{i // 3:08x}",
                    "user_agent": AGENTS[i % len(AGENTS)],
                    "status": "valid" if i % 50 else ("pending" if i % 100 else "invalid"),
                    "written_status": "valid",
                    "chain_index": i + 1,
                    "prev_hash": f"{i:064x}",
                    "hash": f"{i + 1:064x}",
                    "drained_at": start,
                }
                for i in range(first, min(first + batch, votes))
            ]
            db.session.execute(insert(Vote), rows)
            db.session.commit()
        db.session.remove()
    return time.perf_counter() - started


def _worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [FLASK, "--app", "wsgi", "worker", "--burst"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200_000)
    parser.add_argument("--kind", choices=("votes_xlsx", "votes_csv"), default="votes_xlsx")
    parser.add_argument("--verify", action="store_true", help="read the file back")
    opts = parser.parse_args()
    instance = Path(tempfile.mkdtemp(prefix="zm-vexport-"))
    app, numbers = voting_campaign(
        instance,
        slug="vexport",
        nominees=30,
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1},
    )
    try:
        loaded = _load(app, "vexport", numbers, opts.votes)
        print(f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
        print(f"loaded {opts.votes:,} votes in {loaded:.1f} s")

        env = {**os.environ, "ZUIMEI_INSTANCE_PATH": str(instance)}
        # An idle worker first: the baseline the export's peak is compared with.
        _worker(env).wait()
        idle_mb = _children_peak_mb()

        client = app.test_client()
        login = client.post(
            "/api/v1/auth/login", json={"username": "admin", "password": "bench-password-1"}
        )
        headers = {"Authorization": f"Bearer {login.json['access_token']}"}
        path = "votes.xlsx" if opts.kind == "votes_xlsx" else "votes.csv"
        started = time.perf_counter()
        answer = client.get(f"/api/v1/admin/campaigns/vexport/{path}", headers=headers)
        request_s = time.perf_counter() - started
        if answer.status_code != 202:
            raise SystemExit(f"expected 202, got {answer.status_code}: {answer.get_data()[:200]!r}")
        status_url = answer.json["status_url"]
        print(f"GET …/{path}: {answer.status_code} in {request_s * 1000:.0f} ms (job queued)")

        started = time.perf_counter()
        worker = _worker(env)
        seen: list[str] = []
        state = answer.json
        while worker.poll() is None:
            time.sleep(0.5)
            state = client.get(status_url, headers=headers).json
            if state.get("rows_total"):
                seen.append(
                    f"{state['progress']}% ({state['rows_done']:,}/{state['rows_total']:,})"
                )
        elapsed = time.perf_counter() - started
        state = client.get(status_url, headers=headers).json
        if state["status"] != "finished":
            raise SystemExit(f"export did not finish: {state}")
        peak_mb = _children_peak_mb()
        rows = state["rows_done"]
        print(f"progress seen while running: {', '.join(seen[:3])} … {', '.join(seen[-2:])}")
        print(
            f"export job ({opts.kind}): {rows:,} rows in {elapsed:.1f} s wall, worker start "
            f"included ({rows / elapsed:,.0f} rows/s); file {state['size'] / 1048576:.1f} MB"
        )
        print(
            f"peak RSS: worker with the export {peak_mb:.0f} MB, idle worker {idle_mb:.0f} MB "
            f"(+{max(0.0, peak_mb - idle_mb):.0f} MB)"
        )
        if opts.verify:
            with client.get(state["download_url"], headers=headers) as response:
                body = response.get_data()
            if opts.kind == "votes_xlsx":
                from openpyxl import load_workbook

                workbook = load_workbook(io.BytesIO(body), read_only=True)
                counts = {
                    name: sum(1 for _ in workbook[name].iter_rows(values_only=True))
                    for name in workbook.sheetnames
                }
                print(f"sheets (rows incl. header): {counts}")
            else:
                lines = body.count(b"\n")
                print(f"csv lines (incl. header): {lines:,}")
    finally:
        cleanup(instance)


if __name__ == "__main__":
    main()
