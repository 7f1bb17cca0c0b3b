"""Set-up shared by the benchmarks: a fresh instance with the demo units and logins, and one
campaign open for voting with approved doctors."""

from __future__ import annotations

import atexit
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def local_midnight(days_ago: int = 0, zone: str = "Asia/Shanghai") -> datetime:
    """A midnight in the campaign's zone, ``days_ago`` days before today by the app's clock:
    benchmarks place their simulated days from it, never from a date written in the code."""
    from core.clock import utcnow

    today = utcnow().astimezone(ZoneInfo(zone)).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def cleanup(instance: Path) -> None:
    """Stop the instance's embedded Redis (when the run used one) and remove the folder."""
    import shutil

    from core import embedded

    embedded.stop(instance)
    shutil.rmtree(instance, ignore_errors=True)


def private_services() -> dict[str, Any]:
    """Settings that keep a benchmark off shared data: with DATABASE_URL set, a database of its
    own beside the one named (dropped at exit); with REDIS_URL set, a key prefix of its own
    (deleted at exit). The embedded default is private already (a fresh instance folder)."""
    import psycopg
    from sqlalchemy.engine import make_url

    run = secrets.token_hex(4)
    config: dict[str, Any] = {}
    given = os.environ.get("DATABASE_URL")
    if given and not given.startswith("sqlite"):
        url = make_url(given.replace("postgres://", "postgresql://", 1))
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"zuimei_bench_{run}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        atexit.register(drop)
        private = url.set(drivername="postgresql+psycopg", database=name)
        config["SQLALCHEMY_DATABASE_URI"] = private.render_as_string(hide_password=False)
        # Servers and workers a benchmark starts inherit the same private database.
        os.environ["DATABASE_URL"] = config["SQLALCHEMY_DATABASE_URI"]
    if os.environ.get("REDIS_URL"):
        prefix = f"zmbench{run}"
        config["REDIS_PREFIX"] = prefix
        os.environ["ZUIMEI_REDIS_PREFIX"] = prefix

        def flush() -> None:
            import redis

            client = redis.Redis.from_url(os.environ["REDIS_URL"])
            for pattern in (f"{prefix}:*", f"rq:*{prefix}-*"):
                batch = list(client.scan_iter(match=pattern, count=1000))
                for start in range(0, len(batch), 500):
                    client.delete(*batch[start : start + 500])

        atexit.register(flush)
    return config


def voting_campaign(
    instance: Path,
    *,
    slug: str,
    nominees: int,
    rules: dict[str, Any],
    voting_start: datetime | None = None,
    voting_end: datetime | None = None,
    test_config: dict[str, Any] | None = None,
) -> tuple[Flask, list[str]]:
    """Migrate a new instance, load the demo units and logins, and open ``slug`` for voting with
    ``nominees`` approved doctors, taken through the real nomination workflow."""
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

    app = create_app({**private_services(), **(test_config or {})})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed("bench-password-1")  # units and logins; its own campaign is not used here
        admin = db.session.query(Account).filter_by(username="admin").one()
        clerk = db.session.query(Account).filter_by(username="unit-rmyy").one()
        now = utcnow()
        start = voting_start or now - timedelta(hours=1)
        campaign = campaign_services.create_campaign(
            CampaignCreateSchema().load(
                {
                    "slug": slug,
                    "title": "压测活动",
                    "organizer": "压测",
                    "nomination_start": (min(now, start) - timedelta(days=1)).isoformat(),
                    "nomination_end": (now + timedelta(days=1)).isoformat(),
                    "voting_start": start.isoformat(),
                    "voting_end": (voting_end or now + timedelta(days=1)).isoformat(),
                    "rules": rules,
                    "weights": {"public": 30, "jury": 70},
                }
            )
        )
        campaign_categories.add_category(
            campaign,
            {
                "code": "doctor",
                "name": "医生",
                "prefix": "D",
                "award_count": 10,
                "max_per_unit": 100,
            },
        )
        campaign_services.change_phase(campaign, "nominating", None)
        body = {
            "category": "doctor",
            "name": "候选人",
            "gender": "female",
            "title": "主治医师",
            "department": "内科",
            "summary": "简介",
            "deeds": "事迹" * 100,
            "unit_opinion": "同意",
        }
        numbers = []
        for _ in range(nominees):
            nomination = nomination_services.create(
                clerk, campaign, NominationCreateSchema().load(body)
            )
            nomination_services.submit(clerk, nomination)
            nomination_services.review(admin, nomination, "approve", None)
            numbers.append(nomination.number)
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
    return app, numbers


# --- gunicorn and wrk, as the load benches use them ----------------------------------------------


def start_gunicorn(
    port: int,
    workers: int,
    env: dict[str, str],
    *,
    worker_class: str = "sync",
    threads: int = 1,
) -> subprocess.Popen[bytes]:
    """``wsgi:app`` under gunicorn on 127.0.0.1:``port`` (warnings only): ``workers`` processes
    of ``worker_class`` (sync, gthread), ``threads`` each for gthread."""
    extra = ["--worker-class", worker_class]
    if worker_class == "gthread":
        extra += ["--threads", str(threads)]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            *extra,
        ],
        cwd=ROOT,
        env=env,
    )


def wait_healthy(base: str, tries: int = 100) -> None:
    """Poll ``base``/healthz every 0.2 s until it answers (at most ``tries`` times)."""
    for _ in range(tries):
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)


def wrk_latency_ms(output: str, pct: str) -> float:
    """A latency percentile of wrk's ``--latency`` output, in milliseconds (NaN if absent)."""
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk_requests(output: str) -> int:
    """How many requests wrk completed ("N requests in 15.00s"; 0 if absent)."""
    match = re.search(r"(\d+) requests in", output)
    return int(match.group(1)) if match else 0


def wrk_rps(output: str) -> float:
    """wrk's requests per second (NaN if absent)."""
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    return float(match.group(1)) if match else float("nan")
