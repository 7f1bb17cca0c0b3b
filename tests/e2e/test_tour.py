"""Every page, at phone and desktop sizes, on the demo campaign: each loads with no script error
and no Content-Security-Policy violation, and its screenshot is taken (docs/screenshots with
`make screenshots`)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from core.extensions import db
from nominations import demo
from nominations.models import Nomination
from tests.e2e.conftest import DESKTOP, PHONE, WECHAT_UA, LiveServer, serve_fake_jssdk
from tests.factories import PASSWORD, Org
from voting import fraud
from voting import services as voting_services


@pytest.fixture
def demo_campaign(app: Flask, org: Org) -> dict[str, Any]:
    with app.app_context():
        slug = demo.campaign_spec()["slug"]
        demo.seed(password=PASSWORD)
        numbers = [
            n.number
            for n in db.session.query(Nomination).filter(Nomination.number.is_not(None)).all()
        ]
        db.session.remove()
    client = app.test_client()
    for voter in range(1, 41):
        for number in numbers[voter % 7 : voter % 7 + 3]:
            client.post(
                f"/api/v1/campaigns/{slug}/votes",
                json={"nominee": number},
                headers=org.voter(voter),
                environ_base={"REMOTE_ADDR": f"10.2.{voter}.1"},
            )
    with app.app_context():
        voting_services.drain_campaign(slug)
        campaign = fraud.Campaign.query.filter_by(slug=slug).one()  # type: ignore[attr-defined]
        _history(campaign)
        db.session.commit()
        own = db.session.query(Nomination).filter(Nomination.number.is_not(None)).first()
        assert own is not None
        first = {"number": own.number, "id": own.id, "unit": own.unit.code, "slug": slug}
        db.session.remove()
    return first


def _history(campaign: Any) -> None:
    """Forty minutes of per-minute snapshots before now, rising as a closing rush does, so the
    dashboard's chart has a shape (the snapshot job writes one row per nominee per minute)."""
    import random
    from datetime import timedelta

    from core.types import utcnow
    from voting.models import TallySnapshot

    rng = random.Random(7)
    now = utcnow().replace(second=0, microsecond=0)
    numbers = [n.number for n in db.session.query(Nomination).filter_by(campaign_id=campaign.id)]
    counts = dict.fromkeys(numbers, 0)
    for minute in range(40, 0, -1):
        for number in numbers:
            counts[number] += rng.randint(0, 2 + (40 - minute) // 6)
            db.session.add(
                TallySnapshot(
                    campaign_id=campaign.id,
                    at=now - timedelta(minutes=minute),
                    nominee_number=number,
                    valid=counts[number],
                    pending=0,
                )
            )


def _login(page: Any, live: LiveServer, area: str, username: str) -> None:
    page.goto(f"{live.url}/{area}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def _unit_login(app: Flask, unit_code: str) -> str:
    from campaigns.models import Account

    with app.app_context():
        account = db.session.query(Account).filter_by(role="unit").join(Account.unit).all()
        name = next(a.username for a in account if a.unit and a.unit.code == unit_code)
        db.session.remove()
    return name


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_page_loads_clean_at_both_sizes(
    app: Flask,
    live: LiveServer,
    playwright_browser: Any,
    demo_campaign: dict[str, Any],
    shoot: Any,
    size: str,
) -> None:
    phone = size == "phone"
    options: dict[str, Any] = {"viewport": PHONE if phone else DESKTOP, "locale": "zh-CN"}
    if phone:
        options |= {"is_mobile": True, "has_touch": True, "user_agent": WECHAT_UA}
    problems: list[str] = []

    def visit(page: Any, path: str, name: str) -> None:
        response = page.goto(f"{live.url}{path}")
        assert response is not None and response.status == 200, (path, response and response.status)
        page.wait_for_load_state("networkidle")
        shoot(page, f"{name}-{size}")

    def context() -> Any:
        made = playwright_browser.new_context(**options)
        made.route("https://**/*", lambda route: route.abort())
        serve_fake_jssdk(made)
        made.set_default_timeout(20_000)
        page = made.new_page()
        page.on("pageerror", lambda exc: problems.append(f"{page.url}: {exc}"))
        page.on(
            "console",
            lambda msg: problems.append(f"{page.url}: {msg.text}") if msg.type == "error" else None,
        )
        return made, page

    slug = demo_campaign["slug"]
    public, page = context()
    visit(page, "/", "landing")
    visit(page, f"/c/{slug}", "h5-demo-home")
    visit(page, f"/c/{slug}/n/{demo_campaign['number']}", "h5-demo-nominee")
    visit(page, f"/c/{slug}/ranking", "h5-demo-ranking")
    public.close()

    clerk, page = context()
    visit(page, "/portal/login", "portal-login")
    _login(page, live, "portal", _unit_login(app, demo_campaign["unit"]))
    visit(page, "/portal", "portal-list")
    visit(page, f"/portal/nominations/{demo_campaign['id']}", "portal-nomination")
    clerk.close()

    office, page = context()
    visit(page, "/console/login", "console-login")
    _login(page, live, "console", "admin")
    visit(page, "/console", "console-campaigns")
    for section in ("", "/settings", "/review", "/fraud", "/votes", "/judging", "/results",
                    "/publicity", "/exports"):  # fmt: skip
        visit(
            page,
            f"/console/c/{slug}{section}",
            f"console-{section.strip('/') or 'dashboard'}",
        )
    office.close()

    judge, page = context()
    _login(page, live, "console", "judge")
    visit(page, f"/console/c/{slug}/sheets", "console-sheets")
    judge.close()

    # Refused requests a page makes on purpose would show here too; none is expected.
    assert problems == []
