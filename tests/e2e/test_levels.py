"""Recommendation level by level in Chromium at phone size: a clinic submits in the portal, its
county and its city pass the nomination up at the review desk, the committee approves it, and
the clinic reads every level's decision in its portal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from core.types import utcnow
from tests.e2e.conftest import PHONE, LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org


@pytest.fixture
def handset(playwright_browser: Any) -> Iterator[Any]:
    """A fresh phone-sized touch browser per person (each has its own login)."""
    contexts: list[Any] = []

    def open_phone() -> Any:
        context = playwright_browser.new_context(
            viewport=PHONE,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            timezone_id="Asia/Shanghai",
        )
        context.route("https://**/*", lambda route: route.abort())
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield open_phone
    for context in contexts:
        context.close()


def _chain(app: Flask, org: Org) -> None:
    now = utcnow()
    body = {
        "levels": [
            {
                "unit_level": "county",
                "deadline": (now + timedelta(days=5)).isoformat(),
                "quotas": {"doctor": 1, "nurse": 1},
            },
            {
                "unit_level": "city",
                "deadline": (now + timedelta(days=8)).isoformat(),
                "quotas": {"doctor": 1, "nurse": 1},
            },
        ]
    }
    response = app.test_client().put(
        "/api/v1/campaigns/c1/levels", json=body, headers=org.headers("admin")
    )
    assert response.status_code == 200, response.json


def _pass_at_the_desk(page: Any, base: str, user: str, nid: int, level: str, comment: str) -> None:
    staff_login(page, base, "console", user, "/console/c/c1/review")
    expect(page.locator(f"[data-testid=review-{nid}]")).to_be_visible()
    expect(page.locator("#level-standing")).to_contain_text(level)
    page.goto(f"{base}/console/c/c1/review?id={nid}")
    button = page.locator("#decision-recommend")
    expect(button).to_have_text("推荐上报")
    page.locator("#decision-comment").fill(comment)
    button.tap()
    expect(page.locator("#detail-levels")).to_contain_text(comment)
    expect(page.locator("#detail-levels")).to_contain_text(level)
    expect(page.locator("#decision-recommend")).to_be_hidden()


def test_a_nomination_climbs_from_a_clinic_through_county_and_city_to_the_committee(
    app: Flask, org: Org, live: LiveServer, handset: Any, shoot: Any
) -> None:
    org.campaign()
    _chain(app, org)
    nid = org.nomination(name="赵春梅")

    clinic = handset()
    staff_login(clinic, live.url, "portal", "unit-h1", f"/portal/nominations/{nid}")
    clinic.locator("#submit").tap()
    clinic.locator("#dialog-ok").tap()
    expect(clinic.locator("#status-badge")).to_have_attribute("data-status", "submitted")
    clinic.goto(f"{live.url}/portal")
    expect(clinic.locator(f"[data-testid=waiting-{nid}]")).to_contain_text("县（旗）级")

    # The county's desk: what waits at its level, with its places; it passes it up.
    county = handset()
    _pass_at_the_desk(county, live.url, "rev-k1", nid, "县（旗）级", "县级审核同意上报")
    shoot(county, "levels-county-desk-phone")

    # The city's desk: the county's decision is in the trail; it passes it to the committee.
    city = handset()
    _pass_at_the_desk(city, live.url, "rev-c", nid, "市（盟）级", "市级审核同意上报")

    committee = handset()
    staff_login(committee, live.url, "console", "admin", "/console/c/c1/review")
    committee.goto(f"{live.url}/console/c/c1/review?id={nid}")
    expect(committee.locator("#detail-levels li")).to_have_count(2)
    # The printable 推荐审批表 with both levels' opinions, one tap from the desk.
    dossier = committee.locator("#detail-dossier")
    expect(dossier).to_have_attribute("href", f"/console/campaigns/c1/nominations/{nid}/dossier")
    sheet = committee.context.new_page()
    sheet.goto(f"{live.url}/console/campaigns/c1/nominations/{nid}/dossier")
    expect(sheet.locator("body")).to_contain_text("县级审核同意上报")
    expect(sheet.locator("body")).to_contain_text("市级审核同意上报")
    sheet.close()
    committee.locator("#decision-approve").tap()
    expect(committee.locator("#detail-status")).to_have_attribute("data-status", "approved")
    shoot(committee, "levels-committee-phone")

    # Back at the clinic: every level's decision, who and why.
    clinic.goto(f"{live.url}/portal/nominations/{nid}")
    trail = clinic.locator("[data-testid=level-trail]")
    expect(trail).to_contain_text("县级审核同意上报")
    expect(trail).to_contain_text("市级审核同意上报")
    expect(trail.locator("li")).to_have_count(2)
    trail.scroll_into_view_if_needed()
    shoot(clinic, "levels-portal-trail-phone")
    assert org.status_of(nid) == "approved"
