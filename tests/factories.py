"""Factory functions and a standard organisation for the tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import event

from campaigns import categories as campaign_categories
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign
from core.auth import issue_token
from core.extensions import db
from core.types import utcnow
from nominations import services as nomination_services
from nominations.models import Nomination

PASSWORD = "correct-horse-battery"

DEEDS = "扎根基层二十年，累计接诊群众八万余人次。" * 10


@contextmanager
def counted() -> Iterator[list[str]]:
    """The SQL statements run on ``db.engine`` inside the block (query-count tests)."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", count)


def nomination_body(category: str = "doctor", **overrides: Any) -> dict[str, Any]:
    body = {
        "category": category,
        "name": "李晓梅",
        "gender": "female",
        "title": "主治医师",
        "position": "急诊科副主任",
        "department": "急诊科",
        "years_of_service": 12,
        "summary": "十二年坚守急诊一线，抢救危重病人上千例",
        "deeds": DEEDS,
        "unit_opinion": "同意推荐。",
    }
    body.update(overrides)
    return body


def campaign_title(now: datetime | None = None) -> str:
    """The test campaign's title, with the campaign-local year as a bureau writes it."""
    year = (now or utcnow()).astimezone(ZoneInfo("Asia/Shanghai")).year
    return f"{year}年度测试县最美医生评选"


def campaign_body(slug: str = "c1", **overrides: Any) -> dict[str, Any]:
    now = utcnow()
    body = {
        "slug": slug,
        "title": campaign_title(now),
        "organizer": "测试县卫生健康局",
        "description": "测试活动",
        "nomination_start": (now - timedelta(days=1)).isoformat(),
        "nomination_end": (now + timedelta(days=10)).isoformat(),
        "voting_start": (now + timedelta(days=11)).isoformat(),
        "voting_end": (now + timedelta(days=20)).isoformat(),
        "rules": {"votes_per_day": 5, "votes_per_nominee_per_day": 1},
        "weights": {"public": 30, "jury": 70},
    }
    body.update(overrides)
    return body


@dataclass
class FakeFinding:
    """What a detector reports (voting.detectors), for filing a flag over chosen votes."""

    rule: str
    nominee: str | None
    vote_ids: tuple[str, ...]
    score: float = 0.97
    severity: str = "high"
    evidence: dict[str, Any] = field(default_factory=lambda: {"top_addresses": []})
    explanation: str = "测试线索"


@dataclass
class Org:
    """Province P → city C → counties K1, K2 → hospitals H1, H2 (K1) and H3 (K2), with logins."""

    app: Flask
    accounts: dict[str, int] = field(default_factory=dict)

    def headers(self, username: str) -> dict[str, str]:
        with self.app.app_context():
            account = db.session.get(Account, self.accounts[username])
            assert account is not None
            token = issue_token(
                "staff",
                {"sub": account.id, "role": account.role, "v": account.token_version},
                3600,
            )
        return {"Authorization": f"Bearer {token.token}"}

    def account(self, username: str) -> Account:
        account = db.session.get(Account, self.accounts[username])
        assert account is not None
        return account

    def campaign(
        self,
        slug: str = "c1",
        phase: str = "nominating",
        max_per_unit: int = 2,
        award_count: int = 10,
        **overrides: Any,
    ) -> str:
        """A campaign with categories doctor (D) and nurse (N), moved to ``phase``."""
        from campaigns.schemas import CampaignCreateSchema

        with self.app.app_context():
            fields = CampaignCreateSchema().load(campaign_body(slug, **overrides))
            campaign = campaign_services.create_campaign(fields)
            for code, name, prefix in (
                ("doctor", "十大最美医生", "D"),
                ("nurse", "十大最美护士", "N"),
            ):
                campaign_categories.add_category(
                    campaign,
                    {
                        "code": code,
                        "name": name,
                        "prefix": prefix,
                        "award_count": award_count,
                        "max_per_unit": max_per_unit,
                    },
                )
            if phase != "draft":
                campaign_services.change_phase(campaign, phase, "test set-up")
            db.session.commit()
            db.session.remove()
        return slug

    def nomination(
        self,
        slug: str = "c1",
        unit_user: str = "unit-h1",
        status: str = "draft",
        **overrides: Any,
    ) -> int:
        """A nomination taken through the real workflow up to ``status``."""
        from nominations.schemas import NominationCreateSchema

        with self.app.app_context():
            campaign = db.session.query(Campaign).filter_by(slug=slug).one()
            clerk = self.account(unit_user)
            fields = NominationCreateSchema().load(nomination_body(**overrides))
            nomination = nomination_services.create(clerk, campaign, fields)
            if status in ("submitted", "approved", "returned"):
                nomination_services.submit(clerk, nomination)
            if status == "approved":
                nomination_services.review(self.account("admin"), nomination, "approve", None)
            if status == "returned":
                nomination_services.review(self.account("admin"), nomination, "return", "请补充")
            db.session.commit()
            nomination_id = nomination.id
            db.session.remove()
        return nomination_id

    def voting_campaign(
        self,
        slug: str = "v1",
        nominees: int = 3,
        rules: dict[str, Any] | None = None,
        award_count: int = 10,
        **overrides: Any,
    ) -> list[str]:
        """A campaign open for voting now, with ``nominees`` approved doctors; their numbers."""
        now = utcnow()
        window = {
            "nomination_start": (now - timedelta(days=2)).isoformat(),
            "nomination_end": (now + timedelta(days=1)).isoformat(),
            "voting_start": (now - timedelta(hours=1)).isoformat(),
            "voting_end": (now + timedelta(days=1)).isoformat(),
            "rules": {
                "votes_per_day": 5,
                "votes_per_nominee_per_day": 1,
                "ip_soft_limit": 0,
                "velocity_factor": 0,
                **(rules or {}),
            },
        }
        window.update(overrides)
        self.campaign(slug, max_per_unit=50, award_count=award_count, **window)
        ids = [
            self.nomination(
                slug,
                unit_user=("unit-h1", "unit-h2", "unit-h3")[i % 3],
                status="approved",
                name=f"候选人{i}",
            )
            for i in range(nominees)
        ]
        with self.app.app_context():
            campaign = db.session.query(Campaign).filter_by(slug=slug).one()
            campaign_services.change_phase(campaign, "voting", None)
            db.session.commit()
            numbers = [db.session.get(Nomination, i).number for i in ids]
            db.session.remove()
        return numbers

    def voter(self, voter_id: int, provider: str = "device") -> dict[str, str]:
        """A signed voter token for ``voter_id`` (the vote path never looks the voter up)."""
        with self.app.app_context():
            # An established voter: the identity was made a year ago.
            made_ms = int((utcnow() - timedelta(days=365)).timestamp() * 1000)
            token = issue_token("voter", {"sub": voter_id, "p": provider, "c": made_ms}, 3600)
        return {"Authorization": f"Bearer {token.token}"}

    def status_of(self, nomination_id: int) -> str:
        with self.app.app_context():
            nomination = db.session.get(Nomination, nomination_id)
            assert nomination is not None
            status = nomination.status
            db.session.remove()
        return status


@pytest.fixture
def org(app: Flask) -> Iterator[Org]:
    with app.app_context():
        for code, level, parent in (
            ("P", "province", None),
            ("C", "city", "P"),
            ("K1", "county", "C"),
            ("K2", "county", "C"),
            ("H1", "institution", "K1"),
            ("H2", "institution", "K1"),
            ("H3", "institution", "K2"),
        ):
            campaign_services.create_unit(code, f"单位{code}", level, parent)
        made = {}
        for username, role, unit in (
            ("admin", "admin", None),
            ("rev-k1", "reviewer", "K1"),
            ("rev-k2", "reviewer", "K2"),
            ("rev-c", "reviewer", "C"),
            ("unit-h1", "unit", "H1"),
            ("unit-h2", "unit", "H2"),
            ("unit-h3", "unit", "H3"),
            ("judge", "judge", None),
        ):
            made[username] = campaign_services.create_account(username, PASSWORD, role, unit).id
        db.session.commit()
        db.session.remove()
    yield Org(app=app, accounts=made)
