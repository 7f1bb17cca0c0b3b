"""The console keeps its word after every action, in a desktop Chromium set to a time zone that is
neither the campaign's nor the machine's: the review tabs' counters follow each decision, the
fraud desk's flag counts follow a confirmation, every time reads in the campaign's zone, and an
action that cannot run is disabled with the reason shown (and still refused by the server)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from tests.e2e.conftest import DESKTOP, LiveServer
from tests.e2e.data import staff_login
from tests.factories import FakeFinding, Org
from voting import fraud as voting_fraud
from voting import services as voting_services
from voting.models import Vote

# The campaign's zone (the test campaigns' default) and the browser's: 13 hours apart.
CAMPAIGN_ZONE = ZoneInfo("Asia/Shanghai")
BROWSER_ZONE = "America/New_York"


@pytest.fixture
def away(playwright_browser: Any) -> Iterator[Any]:
    """A desktop browser whose clock reads New York time."""
    context = playwright_browser.new_context(
        viewport=DESKTOP, locale="zh-CN", timezone_id=BROWSER_ZONE
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    page = context.new_page()
    assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == BROWSER_ZONE
    yield page
    context.close()


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _campaign_zone(app: Flask, slug: str) -> ZoneInfo:
    with app.app_context():
        zone = db.session.scalar(select(Campaign.timezone).where(Campaign.slug == slug))
        db.session.remove()
    assert zone == CAMPAIGN_ZONE.key
    return CAMPAIGN_ZONE


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(CAMPAIGN_ZONE).strftime("%Y-%m-%d %H:%M")


def test_review_tabs_count_again_after_each_decision(
    app: Flask, org: Org, live: LiveServer, away: Any, shoot: Any
) -> None:
    org.campaign()
    first = org.nomination(status="submitted", name="甲医生")
    second = org.nomination(status="submitted", name="乙医生")
    page = away
    staff_login(page, live.url, "console", "admin", "/console/c/c1/review")
    todo = page.locator("[data-testid=count-todo]")
    approved = page.locator("[data-testid=count-approved]")
    expect(todo).to_have_text("2")
    expect(approved).to_have_text("0")
    page.click(f"[data-testid=review-{first}]")
    page.click("#decision-approve")
    expect(page.locator("#detail-status")).to_have_attribute("data-status", "approved")
    # 「待我处理 1 / 已通过 1」 at once, without reloading the page.
    expect(todo).to_have_text("1")
    expect(approved).to_have_text("1")
    expect(page.locator("[data-testid=count-all]")).to_have_text("2")
    # The detail's times are the campaign's: 通过时间 as Shanghai reads it.
    answer = page.evaluate(
        f"fetch('/api/v1/nominations/{first}').then(function (r) {{ return r.json(); }})"
    )
    expect(page.locator("#detail-fields")).to_contain_text(_local(answer["approved_at"]))
    page.evaluate("window.scrollTo(0, 0)")
    shoot(page, "console-review-counters")
    page.click(f"[data-testid=review-{second}]")
    page.fill("#decision-comment", "请补充近三年事迹")
    page.click("#decision-return")
    expect(todo).to_have_text("0")
    expect(page.locator("[data-testid=count-returned]")).to_have_text("1")


def test_fraud_desk_flag_counts_follow_a_confirmation(
    app: Flask, org: Org, live: LiveServer, away: Any
) -> None:
    numbers = org.voting_campaign(nominees=2)
    client = app.test_client()
    for voter in range(1, 4):
        _ok(
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
            ),
            201,
        )
    with app.app_context():
        voting_services.drain_campaign("v1")
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        ids = tuple(db.session.scalars(select(Vote.id).where(Vote.nominee_number == numbers[0])))
        scan = voting_fraud.start_scan(campaign, "test")
        voting_fraud._file_flag(
            campaign, scan, FakeFinding("address_concentration", numbers[0], ids)
        )
        # The scan is over (nothing left for the page to poll).
        scan.status, scan.started_at, scan.finished_at = "done", utcnow(), utcnow()
        db.session.commit()
        db.session.remove()
    page = away
    staff_login(page, live.url, "console", "admin", "/console/c/v1/fraud")
    options = page.locator("#flag-status option")
    expect(options.nth(0)).to_have_text("待处理（1）")
    expect(options.nth(1)).to_have_text("已确认刷票（0）")
    page.locator("#flags [data-testid^=flag-]").first.click()
    page.fill("#flag-reason", "同一网段集中投票，核实为刷票")
    page.click("#flag-confirm")
    expect(page.locator("#flag-state")).to_have_attribute("data-status", "confirmed")
    expect(options.nth(0)).to_have_text("待处理（0）")
    expect(options.nth(1)).to_have_text("已确认刷票（1）")
    page.reload()  # the server counts the same
    expect(options.nth(0)).to_have_text("待处理（0）")
    expect(options.nth(1)).to_have_text("已确认刷票（1）")


def _judged(app: Flask, client: FlaskClient, org: Org) -> None:
    """v1 in judging with a computed draft (version 1)."""
    numbers = org.voting_campaign(nominees=2)
    for voter, number in ((1, numbers[0]), (2, numbers[0]), (3, numbers[1])):
        _ok(
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
            ),
            201,
        )
    with app.app_context():
        voting_services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin), 201)


def test_impossible_actions_are_disabled_with_the_reason_and_times_are_the_campaigns(
    app: Flask, org: Org, live: LiveServer, away: Any, shoot: Any
) -> None:
    client = app.test_client()
    _judged(app, client, org)
    _campaign_zone(app, "v1")
    admin = org.headers("admin")
    page = away

    # Exports: no final result yet, so no winners' list; the reason beside the button.
    staff_login(page, live.url, "console", "admin", "/console/c/v1/exports")
    winners = page.locator("#b2-export-winners_html")
    expect(winners).to_be_disabled()
    expect(winners).to_have_attribute("title", re.compile("尚无定稿或已公示的评选结果"))
    expect(page.locator("[data-testid=export-why-winners_html]")).to_be_visible()
    expect(page.locator("[data-testid=export-why-winners_html]")).to_contain_text("定稿后")
    expect(page.locator("#b2-export-workbook")).to_be_enabled()
    expect(page.locator("[data-testid=export-why-workbook]")).to_be_hidden()
    # The server still refuses what the page would not offer: the job fails.
    started = _ok(
        client.post(
            "/api/v1/admin/campaigns/v1/exports", json={"kind": "audit_csv"}, headers=admin
        ),
        202,
    )
    state = _ok(
        client.get(f"/api/v1/admin/campaigns/v1/exports/{started['job_id']}", headers=admin)
    )
    page.reload()
    row = page.locator(f"tr[data-job='{started['job_id']}']")
    # Started at this moment in Shanghai, whatever the browser's clock says.
    expect(row).to_contain_text(_local(state["requested_at"]) + " · admin")
    expect(page.locator("#b2-export-jobs thead")).to_contain_text("开始时间（Asia/Shanghai）")
    shoot(page, "console-exports-disabled")

    # Results: the draft cannot be finalised before each category is confirmed; the reason shown.
    page.goto(f"{live.url}/console/c/v1/results")
    finalize = page.locator("[data-testid=finalize]")
    expect(finalize).to_be_disabled()
    why = page.locator("[data-testid=finalize-why]")
    expect(why).to_have_text("还有 1 个奖项未勾选「确认本奖项名单」")
    expect(finalize).to_have_attribute("title", "还有 1 个奖项未勾选「确认本奖项名单」")
    version = _ok(client.get("/api/v1/admin/campaigns/v1/results/1", headers=admin))
    expect(page.locator("[data-testid=version-meta]")).to_contain_text(
        _local(version["created_at"])
    )
    shoot(page, "console-results-finalize-disabled")
    page.locator(".b2-confirm-label input[type=checkbox]").first.check()
    expect(finalize).to_be_enabled()
    expect(why).to_be_hidden()
    expect(finalize).not_to_have_attribute("title", re.compile("."))

    # Finalised and in publicity: the winners' list can be made; the campaign cannot close yet.
    _ok(client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    page.goto(f"{live.url}/console/c/v1/exports")
    expect(page.locator("#b2-export-winners_html")).to_be_enabled()
    expect(page.locator("[data-testid=export-why-winners_html]")).to_be_hidden()
    page.goto(f"{live.url}/console/c/v1/publicity")
    close = page.locator("[data-testid=close-campaign]")
    expect(close).to_be_disabled()
    expect(page.locator("[data-testid=close-why]")).to_contain_text("公示期至")
    ends = page.locator("#b2-window-ends")
    ends_iso = ends.get_attribute("data-ends")
    assert ends_iso
    expect(ends).to_have_text(_local(ends_iso))
    expect(page.locator("[data-testid=close-why]")).to_contain_text(_local(ends_iso))
    # The objections' filters say the statuses as every other screen does.
    expect(page.locator("[data-testid=objection-filter-upheld]")).to_have_text("异议成立 0")
    expect(page.locator("[data-testid=objection-filter-dismissed]")).to_have_text("已驳回 0")
    shoot(page, "console-publicity-close-disabled")
    # ... and the server refuses the same move on its own.
    refused = client.post("/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=admin)
    assert refused.status_code == 409
