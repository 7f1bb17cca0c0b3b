"""Set-up shared by the benchmarks: a fresh instance with the demo units and logins, and one
campaign open for voting with approved doctors."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


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

    from campaigns import services as campaign_services
    from campaigns.models import Account
    from campaigns.schemas import CampaignCreateSchema
    from core import create_app
    from core.extensions import db
    from core.types import utcnow
    from nominations import services as nomination_services
    from nominations.demo import seed
    from nominations.schemas import NominationCreateSchema

    app = create_app(test_config)
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
                    "nomination_start": (now - timedelta(days=1)).isoformat(),
                    "nomination_end": (now + timedelta(days=1)).isoformat(),
                    "voting_start": start.isoformat(),
                    "voting_end": (voting_end or now + timedelta(days=1)).isoformat(),
                    "rules": rules,
                    "weights": {"public": 30, "jury": 70},
                }
            )
        )
        campaign_services.add_category(
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
