"""`flask demo seed`: the demo county campaign, walked through the real nomination workflow."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Unit
from core.extensions import db
from core.types import utcnow
from nominations import demo_data, services


def campaign_spec() -> dict[str, str]:
    """This year's demo campaign: slug, title and description carry the campaign-local year."""
    year = utcnow().astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    return demo_data.campaign(year)


def seed(password: str | None = None) -> list[dict[str, str]]:
    """Create the demo campaign unless it exists; return the logins made (role, name, password)."""
    demo = campaign_spec()
    if db.session.scalar(select(Campaign.id).where(Campaign.slug == demo["slug"])):
        return []
    for unit in demo_data.UNITS:
        if db.session.scalar(select(Unit.id).where(Unit.code == unit["code"])) is None:
            campaign_services.create_unit(**unit)

    logins: list[dict[str, str]] = []
    accounts: dict[str, Account] = {}
    for spec in demo_data.ACCOUNTS:
        existing = db.session.scalar(select(Account).where(Account.username == spec["username"]))
        if existing is not None:  # made by hand before the demo; keep its password
            accounts[spec["username"]] = existing
            continue
        secret = password or secrets.token_urlsafe(9)
        accounts[spec["username"]] = campaign_services.create_account(
            spec["username"], secret, spec["role"], spec["unit_code"], spec["display_name"]
        )
        logins.append({"role": spec["role"], "username": spec["username"], "password": secret})

    now = utcnow().replace(microsecond=0)
    campaign = campaign_services.create_campaign(
        {
            **demo,
            "nomination_start": now - timedelta(days=1),
            "nomination_end": now + timedelta(days=1),
            "voting_start": now,
            "voting_end": now + timedelta(days=14),
            "rules": {"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
            "weights": {"public": 30, "jury": 70, "organizer": 0},
            "require_recommendation": True,
        }
    )
    for category in demo_data.CATEGORIES:
        campaign_services.add_category(campaign, dict(category))
    campaign_services.change_phase(campaign, "nominating", None)

    admin = accounts["admin"]
    reviewer = next(a for a in accounts.values() if a.role == "reviewer")
    unit_accounts = {a.unit.code: a for a in accounts.values() if a.role == "unit" and a.unit}
    for spec in demo_data.NOMINEES:
        fields = {k: v for k, v in spec.items() if k != "unit_code"}
        clerk = unit_accounts[spec["unit_code"]]
        nomination = services.create(clerk, campaign, fields)
        services.submit(clerk, nomination)
        services.review(reviewer, nomination, "approve", "同意推荐")
        services.review(admin, nomination, "approve", "经评选办审核，同意列为候选人")

    # The demo opens straight into public voting; nominations closed yesterday.
    campaign_services.update_campaign(
        campaign,
        {"nomination_start": now - timedelta(days=30), "nomination_end": now - timedelta(days=1)},
    )
    campaign_services.change_phase(campaign, "voting", None)
    db.session.commit()
    _save_logins(logins)
    return logins


def _save_logins(logins: list[dict[str, str]]) -> None:
    path = Path(current_app.instance_path) / "demo_logins.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for login in logins:
            fh.write(f"{login['role']}\t{login['username']}\t{login['password']}\n")
