"""我的投票 on a phone in WeChat (390×844): vote, find the vote under 我的投票 (正在计入, then
已计入), and after 公示 check its receipt in the page against the published roots."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db
from nominations import public_view
from tests.e2e.conftest import LiveServer
from tests.factories import Org
from voting import receipt_check, services


def _drain(app: Flask) -> None:
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()


def _publicity(app: Flask) -> None:
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert campaign is not None
        campaign.phase = "publicity"
        db.session.commit()
        public_view.invalidate("v1")
        db.session.remove()


def test_voter_sees_their_vote_and_checks_its_receipt(
    app: Flask, org: Org, live: LiveServer, phone: Any, shoot: Any
) -> None:
    numbers = org.voting_campaign(nominees=3)
    page = phone
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{live.url}/c/v1/n/{numbers[0]}")
    vote = page.locator(f"[data-testid=vote-{numbers[0]}]")
    expect(page.locator("#h5")).to_have_attribute("data-identity", "wechat")
    vote.click()  # WeChat authorisation first, back on the same page
    page.wait_for_url(re.compile(re.escape(f"{live.url}/c/v1/n/{numbers[0]}") + "(#.*)?$"))
    expect(page.locator("#h5")).to_have_attribute("data-identity", "ready")
    page.locator(f"[data-testid=vote-{numbers[0]}]").click()
    expect(page.locator("#zm-toast")).to_contain_text("投票成功")

    # 我的投票: acknowledged, still in the ledger stream
    page.click("[data-testid=nav-my-votes]")
    page.wait_for_url(f"{live.url}/c/v1/my-votes")
    item = page.locator("[data-testid^=vote-]").filter(has_text=numbers[0])
    expect(item).to_have_count(1)
    expect(item.locator("[data-testid=state]")).to_have_text("正在计入")
    expect(page.locator("[data-testid=receipt-link]")).to_have_count(0)

    # drained: counted
    _drain(app)
    page.reload()
    expect(item.locator("[data-testid=state]")).to_have_text("已计入")
    expect(page.locator("time")).to_have_count(1)
    shoot(page, "h5-my-votes-phone")

    # after 公示: a receipt to download and to check in the page
    _publicity(app)
    page.reload()
    expect(page.locator("[data-testid=campaign-root]")).to_be_visible()
    check = item.locator("[data-testid=receipt-check]")
    expect(check).to_be_visible()
    check.click()
    result = item.locator("[data-testid=receipt-result]")
    expect(result).to_contain_text("核验通过")
    expect(result).to_contain_text(f"{numbers[0]} 号候选人公示的 1 张有效票")
    shoot(page, "h5-my-votes-receipt-phone")

    # the download is the same receipt, and it checks against the published leaves
    with page.expect_download() as waiting:
        item.locator("[data-testid=receipt-link]").click()
    receipt = json.loads(Path(waiting.value.path()).read_text(encoding="utf-8"))
    published = page.evaluate(
        "(url) => fetch(url).then((r) => r.json())",
        f"{live.url}/api/v1/campaigns/v1/receipts/leaves",
    )
    assert receipt_check.check_receipt(receipt, published) == []
    assert receipt_check.check_publication(published) == []
    assert errors == []
