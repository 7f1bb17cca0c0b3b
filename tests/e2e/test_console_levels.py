"""The console's 推荐层级 page in Chromium, on a desktop (1280×800) and a phone (390×844), with a
browser clock in another time zone than the campaign's: the committee sets a two-level chain
with its quotas, then extends the county's deadline with a reason; the page shows both in the
campaign's zone, and the server holds what the page said."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import Campaign
from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from nominations.levels import chain
from tests.e2e.conftest import LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org

CAMPAIGN_ZONE = ZoneInfo("Asia/Shanghai")  # the test campaigns' zone
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}


@pytest.fixture(params=sorted(SIZES))
def screen(request: Any, playwright_browser: Any) -> Iterator[tuple[str, Any]]:
    """A browser of the size asked for, its clock in New York."""
    context = playwright_browser.new_context(
        **SIZES[request.param], locale="zh-CN", timezone_id="America/New_York"
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    yield request.param, context.new_page()
    context.close()


def _wall(days: float) -> str:
    """A moment ``days`` from now, as a datetime-local value in the campaign's zone."""
    return (utcnow() + timedelta(days=days)).astimezone(CAMPAIGN_ZONE).strftime("%Y-%m-%dT%H:%M")


def _shown(wall: str) -> str:
    return wall.replace("T", " ")


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, width


def test_the_committee_sets_a_two_level_chain_and_extends_a_deadline(
    app: Flask, org: Org, live: LiveServer, screen: tuple[str, Any], shoot: Callable[..., Any]
) -> None:
    size, page = screen
    org.campaign()
    staff_login(page, live.url, "console", "admin", "/console/c/c1/levels")
    expect(page.locator("[data-testid=single-level]")).to_be_visible()
    # No chain yet: nothing to extend, and the page says why.
    expect(page.locator("#extend-save")).to_be_disabled()
    expect(page.locator("[data-testid=extend-why]")).to_contain_text("尚未设置推荐层级")

    county, city = _wall(5), _wall(8)
    # An unticked level's fields stay closed.
    expect(page.locator("#level-deadline-county")).to_be_disabled()
    page.locator("#level-on-county").check()
    page.locator("#level-deadline-county").fill(county)
    page.locator("#level-quota-county-doctor").fill("2")
    page.locator("#level-quota-county-nurse").fill("1")
    page.locator("#level-on-city").check()
    page.locator("#level-deadline-city").fill(city)
    page.locator("#level-quota-city-doctor").fill("3")
    # A missing quota is caught before anything is sent.
    page.locator("#levels-save").click()
    expect(page.locator("#levels-error")).to_contain_text("十大最美护士")
    page.locator("#level-quota-city-nurse").fill("2")
    # The city asks for its stamped form (盖章推荐表) at a pass, the units at submission.
    page.locator("#level-stamped-city").check()
    page.locator("#unit-stamped-form").check()
    page.locator("#levels-save").click()

    expect(page.locator("[data-testid=chain-county]")).to_be_visible()
    expect(page.locator("[data-testid=chain-city]")).to_be_visible()
    expect(page.locator("[data-testid=deadline-county]")).to_contain_text(_shown(county))
    expect(page.locator("[data-testid=deadline-city]")).to_contain_text(_shown(city))
    expect(page.locator("[data-testid=places-K1-doctor]")).to_have_text("0/2")
    expect(page.locator("[data-testid=places-C-nurse]")).to_have_text("0/2")
    expect(page.locator("#level-on-county")).to_be_checked()
    expect(page.locator("#level-deadline-county")).to_have_value(county)
    expect(page.locator("#level-stamped-city")).to_be_checked()
    expect(page.locator("#level-stamped-county")).not_to_be_checked()
    expect(page.locator("#unit-stamped-form")).to_be_checked()
    listed = app.test_client().get("/api/v1/campaigns/c1/levels", headers=org.headers("admin"))
    assert [level["stamped_form"] for level in listed.json["levels"]] == [False, True]
    _no_sideways_scroll(page)
    shoot(page, f"console-levels-chain-{size}")

    # Extend the county's deadline: a reason is required, then the new time shows.
    later = _wall(6)
    page.locator("#extend-level").select_option("county")
    page.locator("#extend-deadline").fill(later)
    page.locator("#extend-save").click()
    expect(page.locator("#extend-error")).to_contain_text("原因")
    page.locator("#extend-reason").fill("部分旗县材料报送延误")
    page.locator("#extend-save").click()
    expect(page.locator("[data-testid=deadline-county]")).to_contain_text(_shown(later))
    expect(page.locator("[data-testid=deadline-county]")).to_contain_text("延长")
    page.locator("#extend-form").scroll_into_view_if_needed()
    _no_sideways_scroll(page)
    shoot(page, f"console-levels-extended-{size}")

    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "c1"))
        assert campaign is not None
        levels = chain(campaign)
        assert [level.unit_level for level in levels] == ["county", "city"]
        local = levels[0].deadline.astimezone(CAMPAIGN_ZONE).strftime("%Y-%m-%dT%H:%M")
        assert local == later and levels[0].extended_at is not None
        reason = db.session.scalar(
            select(AuditLog.reason).where(AuditLog.action == "levels.extend")
        )
        assert reason == "部分旗县材料报送延误"
        db.session.remove()
