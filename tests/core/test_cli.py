"""The commands: accounts create, demo seed, the embedded Redis."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import redis
from flask import Flask
from sqlalchemy import func, select

from campaigns.models import Account, Campaign
from core import embedded
from core.extensions import db
from core.types import utcnow
from nominations.demo import campaign_spec
from nominations.models import Nomination


def test_accounts_create(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "accounts",
            "create",
            "--username",
            "office",
            "--password",
            "long-password-1",
            "--role",
            "admin",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "created admin account office" in result.output
    again = runner.invoke(
        args=[
            "accounts",
            "create",
            "--username",
            "office",
            "--password",
            "long-password-1",
            "--role",
            "admin",
        ]
    )
    assert again.exit_code != 0 and "account_exists" in again.output
    short = runner.invoke(
        args=["accounts", "create", "--username", "x2", "--password", "short", "--role", "admin"]
    )
    assert short.exit_code != 0
    unknown_unit = runner.invoke(
        args=[
            "accounts",
            "create",
            "--username",
            "clerk",
            "--password",
            "long-password-1",
            "--role",
            "unit",
            "--unit",
            "NOPE",
        ]
    )
    assert unknown_unit.exit_code != 0 and "unit_not_found" in unknown_unit.output
    with app.app_context():
        assert db.session.scalar(select(func.count(Account.id))) == 1


def test_demo_seed_builds_a_votable_campaign_through_the_workflow(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--voters", "40"])
    assert result.exit_code == 0, result.output
    assert "admin" in result.output and "qs-bureau" in result.output
    with app.app_context():
        slug = campaign_spec()["slug"]
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        assert campaign.phase == "voting" and campaign.is_voting_open()
        approved = db.session.scalars(
            select(Nomination.number).where(
                Nomination.status == "approved", Nomination.campaign_id == campaign.id
            )
        ).all()
        assert len(approved) == 30
        assert sorted(n for n in approved if n.startswith("D")) == [
            f"D{i:03d}" for i in range(1, 11)
        ]
        assert all(
            len(n.reviews) == 3
            for n in db.session.scalars(
                select(Nomination).where(Nomination.campaign_id == campaign.id)
            )
        )
    # A second seed changes nothing.
    assert "already present" in runner.invoke(args=["demo", "seed"]).output
    logins = (Path(app.instance_path) / "demo_logins.txt").read_text().splitlines()
    role, username, password = logins[0].split("\t")
    login = app.test_client().post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert login.status_code == 200 and login.json["role"] == role
    slug = campaign_spec()["slug"]
    assert slug == f"qingshan-{utcnow().astimezone(ZoneInfo('Asia/Shanghai')).year}"
    listing = app.test_client().get(f"/api/v1/campaigns/{slug}/nominees?per_page=50").json
    assert listing["total"] == 30


def test_embedded_redis_starts_once_and_stops(tmp_path: Path) -> None:
    folder = Path(f"/tmp/zmr-cli-{tmp_path.name[-8:]}")
    try:
        sock = embedded.ensure_running(folder)
        first_pid = embedded.pid(folder)
        assert first_pid is not None
        assert embedded.ensure_running(folder) == sock
        assert embedded.pid(folder) == first_pid  # shared, not started twice
        client = redis.Redis(unix_socket_path=str(sock))
        client.set("k", "v")
        client.close()
        assert embedded.stop(folder) is True
        assert embedded.pid(folder) is None
        assert embedded.stop(folder) is False
    finally:
        embedded.stop(folder)
