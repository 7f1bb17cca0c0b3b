"""A level's 公示 in Chromium on a phone (390×844), the browser's clock in another zone than the
campaign's: a county bureau's reviewer opens the 公示 of its passed-up list from its console page,
the public page shows it without sideways scrolling, and the reviewer withdraws it with a reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from playwright.sync_api import expect
from sqlalchemy import select

from core.extensions import db
from nominations.level_publicity import LevelPublicity
from tests.e2e.conftest import LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org
from tests.nominations.test_level_publicity import CONTACT, PHONE, _passed

PHONE_SIZE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


@pytest.fixture
def handset(playwright_browser: Any) -> Iterator[Any]:
    context = playwright_browser.new_context(
        **PHONE_SIZE, locale="zh-CN", timezone_id="America/New_York"
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def _no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"] + 1, width


def test_a_bureau_opens_shows_and_withdraws_its_publicity(
    app: Flask,
    client: FlaskClient,
    org: Org,
    live: LiveServer,
    handset: Any,
    shoot: Callable[..., Any],
) -> None:
    page = handset
    org.campaign()
    _passed(client, org)
    staff_login(page, live.url, "console", "rev-k1", "/console/c/c1/level-publicity")
    expect(page.locator("[data-testid=level-publicity-none]")).to_be_visible()
    page.locator("#level-publicity-save").click()
    expect(page.locator("#level-publicity-error")).to_contain_text("联系方式")
    page.locator("#level-publicity-contact").fill(CONTACT)
    page.locator("#level-publicity-save").click()
    row = page.locator("[data-testid=level-publicity-rows] tbody tr").first
    expect(row).to_contain_text("公示中")
    shoot(page, "console-level-publicity-phone")
    with app.app_context():
        made = db.session.scalar(select(LevelPublicity))
        assert made is not None and made.contact == CONTACT and len(made.items) == 2
        pid = made.id

    page.goto(f"{live.url}/c/c1/level-publicity/{pid}")
    expect(page.locator("#level-publicity-contact")).to_have_text(CONTACT)
    expect(page.locator("[data-testid=lp-person]")).to_have_count(2)
    assert PHONE not in page.content()
    _no_sideways_scroll(page)
    shoot(page, "h5-level-publicity-phone")
    page.goto(f"{live.url}/c/c1/level-publicity")
    expect(page.locator(f"[data-testid=level-publicity-{pid}]")).to_contain_text("公示中")
    _no_sideways_scroll(page)

    page.goto(f"{live.url}/console/c/c1/level-publicity")
    page.once("dialog", lambda dialog: dialog.accept("名单有误，更正后重新公示"))
    page.locator(f"[data-testid=level-publicity-withdraw-{pid}]").click()
    expect(page.locator(f"[data-testid=level-publicity-{pid}]")).to_contain_text("已撤回")
    expect(page.locator(f"[data-testid=level-publicity-{pid}]")).to_contain_text("名单有误")
    with app.app_context():
        row_now = db.session.get(LevelPublicity, pid)
        assert row_now is not None and row_now.withdraw_reason == "名单有误，更正后重新公示"
