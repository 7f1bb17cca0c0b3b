"""Public read load benchmark: gunicorn (4 sync workers) on this machine's cores, wrk spreading
each read over many URLs, every read compared with /healthz in the same run.

    .venv/bin/python -m bench.read_load [--duration 5] [--rounds 3] [--connections 32]
                                        [--workers 4] [--nominees 300] [--votes 600]
                                        [--vote-rate 20]

A campaign open for voting with ``--nominees`` approved nominees in three categories (through the
real nomination workflow), ``--votes`` votes cast over HTTP so counts and ranks differ, then for
each public read — H5 home (pages, categories, searches), H5 nominee page (every nominee), H5
ranking (every category), the API's nominee list, one nominee and ranking, and the page
script's /c/<slug>/me — while ``--vote-rate`` votes a second flow (counts move under the
reads, as at a campaign's close) — wrk for ``--duration`` seconds picking a random URL of that
read per request, right after a /healthz run of the same length; ``--rounds`` times over. Prints one
table of medians: req/s, the ratio to the /healthz run beside it, p99 and its ratio, and whether
the targets are met (each read >= 0.5 x /healthz req/s, p99 <= 2 x /healthz p99). Pairing keeps
the ratios meaningful on a machine shared with other work.

Uses DATABASE_URL / REDIS_URL when set (e.g. PostgreSQL and the machine's Redis; a private
database and key prefix, removed at exit); otherwise the embedded default. Needs `wrk`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any
from urllib.parse import quote

from bench.common import (
    ROOT,
    cleanup,
    private_services,
    start_gunicorn,
    wait_healthy,
    wrk_latency_ms,
    wrk_rps,
)

SLUG = "reads"
CATEGORIES = (("doctor", "医生", "D"), ("nurse", "护士", "N"), ("village", "乡村医生", "V"))
SURNAMES = "王李张刘陈杨黄赵吴周"


def _prepare(instance: Path, nominees: int) -> list[str]:
    """Migrate, seed the demo units and logins, and open a campaign with ``nominees`` approved
    nominees spread over three categories and the demo's units. Returns their numbers."""
    os.environ["ZUIMEI_INSTANCE_PATH"] = str(instance)
    from flask_migrate import upgrade

    from campaigns import categories as campaign_categories
    from campaigns import services as campaign_services
    from campaigns.models import Account
    from campaigns.schemas import CampaignCreateSchema
    from core import create_app
    from core.extensions import db
    from core.types import utcnow
    from nominations import services as nomination_services
    from nominations.demo import seed
    from nominations.schemas import NominationCreateSchema

    app = create_app(private_services())
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed("bench-password-1")
        admin = db.session.query(Account).filter_by(username="admin").one()
        clerks = db.session.query(Account).filter_by(role="unit").order_by(Account.id).all()
        now = utcnow()
        campaign = campaign_services.create_campaign(
            CampaignCreateSchema().load(
                {
                    "slug": SLUG,
                    "title": "读取压测活动",
                    "organizer": "压测",
                    "description": "公开读取的压测：候选人列表、个人页面与排行榜。",
                    "nomination_start": (now - timedelta(days=1)).isoformat(),
                    "nomination_end": (now + timedelta(days=1)).isoformat(),
                    "voting_start": (now - timedelta(hours=1)).isoformat(),
                    "voting_end": (now + timedelta(days=1)).isoformat(),
                    "rules": {
                        "votes_per_day": 5,
                        "votes_per_nominee_per_day": 1,
                        "ip_soft_limit": 0,
                        "velocity_floor": 1000000,
                    },
                    "weights": {"public": 30, "jury": 70},
                }
            )
        )
        for code, name, prefix in CATEGORIES:
            campaign_categories.add_category(
                campaign,
                {
                    "code": code,
                    "name": name,
                    "prefix": prefix,
                    "award_count": 10,
                    "max_per_unit": 1000,
                },
            )
        campaign_services.change_phase(campaign, "nominating", None)
        numbers = []
        for i in range(nominees):
            clerk = clerks[i % len(clerks)]
            body = {
                "category": CATEGORIES[i % len(CATEGORIES)][0],
                "name": f"{SURNAMES[i % 10]}候选{i}",
                "gender": "female" if i % 2 else "male",
                "title": "主治医师",
                "department": "内科",
                "summary": "扎根基层二十年，守护一方百姓健康",
                "deeds": "事迹材料。" * 500,
                "unit_opinion": "同意推荐。",
            }
            nomination = nomination_services.create(
                clerk, campaign, NominationCreateSchema().load(body)
            )
            nomination_services.submit(clerk, nomination)
            nomination_services.review(admin, nomination, "approve", None)
            numbers.append(nomination.number)
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
    return numbers


def _cast(base: str, instance: Path, numbers: list[str], votes: int) -> None:
    """``votes`` votes over HTTP from distinct voters, so counts and ranks differ."""
    from core import create_app
    from core.auth import issue_token

    app = create_app()
    with app.app_context():
        tokens = [
            issue_token("voter", {"sub": 20_000_000 + i, "p": "device", "c": 0}, 3600).token
            for i in range(votes)
        ]
    for i, token in enumerate(tokens):
        number = numbers[(i * i) % len(numbers)]
        request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
            f"{base}/api/v1/campaigns/{SLUG}/votes",
            data=json.dumps({"nominee": number}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310
            pass


class _Trickle(threading.Thread):
    """Votes flowing while the reads are measured: ``rate`` votes a second over HTTP (one kept-
    alive connection, distinct voters, five votes each for five nominees), so counts move as
    at a campaign's close and every read meets counts that changed since it was last served."""

    def __init__(self, base: str, numbers: list[str], rate: float, tokens: list[str]) -> None:
        super().__init__(daemon=True)
        self.base, self.numbers, self.rate, self.tokens = base, numbers, rate, tokens
        self.stop = threading.Event()
        self.sent = self.accepted = 0

    def run(self) -> None:
        host, port = self.base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        started = time.monotonic()
        while not self.stop.is_set() and self.sent < len(self.tokens) * 5:
            token = self.tokens[self.sent // 5]
            number = self.numbers[(self.sent * 7919 + self.sent // 5) % len(self.numbers)]
            try:
                conn.request(
                    "POST",
                    f"/api/v1/campaigns/{SLUG}/votes",
                    body=json.dumps({"nominee": number}),
                    headers={
                        "Content-Type": "application/json",
                        "Authorization": f"Bearer {token}",
                    },
                )
                answer = conn.getresponse()
                answer.read()
                self.accepted += answer.status == 201
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=5)
            self.sent += 1
            lag = started + self.sent / self.rate - time.monotonic()
            if lag > 0:
                self.stop.wait(lag)


def _voter_tokens(count: int, first: int) -> list[str]:
    from core import create_app
    from core.auth import issue_token

    app = create_app()
    with app.app_context():
        return [
            issue_token("voter", {"sub": first + i, "p": "device", "c": 0}, 7200).token
            for i in range(count)
        ]


def _reads(numbers: list[str], nominees: int) -> dict[str, list[str]]:
    """Per public read, the URLs the crowd spreads over."""
    codes = [code for code, _, _ in CATEGORIES]
    pages = max(1, -(-nominees // 12))
    home = [f"/c/{SLUG}?page={p}" for p in range(1, pages + 1)]
    home += [f"/c/{SLUG}?category={c}&page={p}" for c in codes for p in range(1, pages // 3 + 1)]
    home += [f"/c/{SLUG}?q={quote(SURNAMES[i])}" for i in range(10)]
    api = f"/api/v1/campaigns/{SLUG}"
    per = 20
    listing = [f"{api}/nominees?page={p}" for p in range(1, -(-nominees // per) + 1)]
    listing += [f"{api}/nominees?category={c}&page={p}" for c in codes for p in (1, 2)]
    listing += [f"{api}/nominees?sort=votes&page={p}" for p in (1, 2, 3)]
    return {
        "H5 home /c/<slug>": home,
        "H5 nominee /c/<slug>/n/<number>": [f"/c/{SLUG}/n/{n}" for n in numbers],
        "H5 ranking /c/<slug>/ranking": [f"/c/{SLUG}/ranking?category={c}" for c in codes],
        "API nominees": listing,
        "API nominee": [f"{api}/nominees/{n}" for n in numbers],
        "API ranking": [f"{api}/ranking?category={c}" for c in codes],
        "H5 me (visitor state)": [f"/c/{SLUG}/me"],
    }


def _bad(output: str) -> int:
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return (int(match.group(1)) if match else 0) + (
        sum(int(x) for x in errors.groups()) if errors else 0
    )


def _figures(output: str) -> tuple[float, float, float, float]:
    return (
        wrk_rps(output),
        wrk_latency_ms(output, "50"),
        wrk_latency_ms(output, "99"),
        float(_bad(output)),
    )


def _wrk(opts: Any, base: str, path_file: Path | None, url: str = "") -> str:
    args = ["wrk", "-t", str(opts.threads), "-c", str(opts.connections)]
    args += ["-d", f"{opts.duration}s", "--latency"]
    if path_file is not None:
        # wrk refuses some paths against a base URL without its "/"
        args += ["-s", str(ROOT / "bench" / "read_load.lua"), f"{base}/", "--", str(path_file)]
    else:
        args.append(url)
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--nominees", type=int, default=300)
    parser.add_argument("--votes", type=int, default=600)
    parser.add_argument("--port", type=int, default=8793)
    parser.add_argument(
        "--vote-rate",
        type=float,
        default=20.0,
        help="votes per second flowing while the reads are measured (0: none)",
    )
    opts = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")

    instance = Path(tempfile.mkdtemp(prefix="zm-read-bench-"))
    env = dict(os.environ, ZUIMEI_INSTANCE_PATH=str(instance), ZUIMEI_VOTE_IP_PER_MINUTE="0")
    os.environ.update(env)
    started = time.monotonic()
    numbers = _prepare(instance, opts.nominees)
    print(f"prepared {len(numbers)} nominees in {time.monotonic() - started:.0f} s", flush=True)
    env.update(
        {k: os.environ[k] for k in ("DATABASE_URL", "ZUIMEI_REDIS_PREFIX") if k in os.environ}
    )
    server = start_gunicorn(opts.port, opts.workers, env)
    base = f"http://127.0.0.1:{opts.port}"
    # Per read and round: (req/s, p50, p99, bad) of the read and of /healthz measured just
    # before it, so a ratio compares two runs a few seconds apart on a shared machine.
    pairs: dict[str, list[tuple[tuple[float, ...], tuple[float, ...]]]] = {}
    reads = _reads(numbers, opts.nominees)
    trickle: _Trickle | None = None
    try:
        wait_healthy(base, tries=150)
        _cast(base, instance, numbers, opts.votes)
        files = {}
        for name, paths in reads.items():
            files[name] = instance / f"paths-{len(files)}.txt"
            files[name].write_text("\n".join(paths) + "\n")
            # Warm the workers on the read's URLs, as hours of a campaign have (the first request
            # of a URL in a worker builds the view and renders the body): longer for more URLs.
            seconds = max(2, len(paths) // 30)
            warm = [
                "wrk",
                "-t1",
                "-c8",
                f"-d{seconds}s",
                "-s",
                str(ROOT / "bench" / "read_load.lua"),
            ]
            done = subprocess.run([*warm, f"{base}/", "--", str(files[name])], capture_output=True)
            if done.returncode:
                sys.exit(f"wrk failed on {name}: {done.stdout!r} {done.stderr!r}")
        subprocess.run(["wrk", "-t1", "-c4", "-d2s", f"{base}/healthz"], capture_output=True)
        if opts.vote_rate > 0:
            # Enough voters for the whole measurement (each votes five times), and some over.
            seconds = opts.rounds * len(reads) * 2 * (opts.duration + 1) + 60
            tokens = _voter_tokens(int(opts.vote_rate * seconds / 5) + 1, 30_000_000)
            trickle = _Trickle(base, numbers, opts.vote_rate, tokens)
            trickle.start()
        for _ in range(opts.rounds):
            for name in reads:
                health = _figures(_wrk(opts, base, None, f"{base}/healthz"))
                pairs.setdefault(name, []).append((_figures(_wrk(opts, base, files[name])), health))
        if trickle is not None:
            trickle.stop.set()
            trickle.join(10)
    finally:
        server.terminate()
        server.wait(timeout=20)

    database = "postgresql" if os.environ.get("DATABASE_URL") else "sqlite"
    redis = "server" if os.environ.get("REDIS_URL") else "embedded"
    print(
        f"setup: {opts.nominees} nominees, {opts.votes} votes, gunicorn sync workers="
        f"{opts.workers}, wrk -t{opts.threads} -c{opts.connections} -d{opts.duration}s, "
        f"database={database}, redis={redis}; each read right after a /healthz run, "
        f"{opts.rounds} rounds, medians"
    )
    if trickle is not None:
        print(
            f"votes flowing meanwhile: {opts.vote_rate:g}/s asked, {trickle.accepted} accepted "
            f"of {trickle.sent} sent"
        )
    print(
        "| read | URLs | req/s | /healthz req/s | of /healthz | p99 ms | /healthz p99 ms "
        "| p99 / healthz p99 | bad | targets |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, runs in pairs.items():
        rps = median(read[0] for read, _ in runs)
        h_rps = median(health[0] for _, health in runs)
        ratio = median(read[0] / health[0] for read, health in runs)
        p99 = median(read[2] for read, _ in runs)
        h_p99 = median(health[2] for _, health in runs)
        p99_ratio = median(read[2] / health[2] for read, health in runs)
        bad = int(sum(read[3] for read, _ in runs))
        ok = ratio >= 0.5 and p99_ratio <= 2
        print(
            f"| {name} | {len(reads[name])} | {rps:,.0f} | {h_rps:,.0f} | {ratio:.2f} | "
            f"{p99:.1f} | {h_p99:.1f} | {p99_ratio:.2f} | {bad} | "
            f"{'met' if ok else '**missed**'} |"
        )
    cleanup(instance)


if __name__ == "__main__":
    main()
