"""The rating page on a phone (Chromium, 390×844): an invited patient answers through the
text's link, a second visit is told it has answered, a walk-in patient rates from a window's
QR code; the page stays light."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from appraisal import services
from appraisal.models import Case, Encounter, Rating
from campaigns.models import Account
from core.extensions import db
from tests.appraisal.conftest import days_ago
from tests.e2e.conftest import PHONE, LiveServer
from tests.factories import Org

ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


@pytest.fixture
def handset(playwright_browser: Any) -> Iterator[Any]:
    """A phone's own browser (the text's link opens outside WeChat)."""
    context = playwright_browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        user_agent=ANDROID_UA,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def _setup(app: Flask, org: Org) -> tuple[str, str]:
    with app.app_context():
        admin = db.session.get(Account, org.accounts["admin"])
        clerk = db.session.get(Account, org.accounts["unit-h1"])
        programme = services.create_programme(
            admin, {"code": "pj", "title": "青山县群众满意度评议", "bureau_code": "K1"}
        )
        unit = services.programme_unit(clerk, programme, None)
        services.register(
            programme,
            unit,
            [
                (
                    1,
                    {
                        "phone": "13812341234",
                        "date": days_ago(1),
                        "department": "内科",
                        "staff_name": "王晓红",
                    },
                )
            ],
            source="api",
        )
        window = services.create_window(clerk, programme, None, "门诊大厅")
        db.session.commit()
        encounter = db.session.scalar(select(Encounter))
        paths = services.link_path(encounter), f"/r/u/{window.token}"
        db.session.remove()
    return paths


def test_a_patient_rates_on_a_phone(
    app: Flask, org: Org, live: LiveServer, handset: Any, shoot: Any
) -> None:
    link, walk_in = _setup(app, org)
    page = handset
    sizes: list[int] = []
    page.on("response", lambda r: sizes.append(len(r.body())) if r.ok else None)
    page.goto(live.url + link)
    expect(page.get_by_role("heading", name="请为本次就医服务评价")).to_be_visible()
    for label in ("满意", "基本满意", "不满意"):
        expect(page.locator(".rt-choice", has_text=label).first).to_be_visible()
    expect(page.get_by_text("个人信息保护法")).to_be_visible()
    assert page.locator("input[name=staff_name]").input_value() == "王晓红"
    # Light: the page, its stylesheet and its script together under 16 KB.
    assert sum(sizes) < 16_000, sizes
    # The three choices fit on the first screen, beside the title.
    box = page.locator(".rt-dissatisfied").bounding_box()
    assert box is not None and box["y"] + box["height"] <= PHONE["height"]
    shoot(page, "rating-phone")

    page.locator(".rt-dissatisfied").tap()
    page.locator("textarea[name=comment]").fill("候诊时间太长")
    page.get_by_role("button", name="提交评价").tap()
    expect(page.get_by_role("heading", name="感谢您的评价")).to_be_visible()
    shoot(page, "rating-thanks-phone")
    page.goto(live.url + link)
    expect(page.get_by_role("heading", name="您已评价过")).to_be_visible()

    page.goto(live.url + walk_in)
    expect(page.get_by_text("门诊大厅")).to_be_visible()
    expect(page.get_by_text("现场评价不收集您的手机号")).to_be_visible()
    page.locator(".rt-satisfied").tap()
    page.get_by_role("button", name="提交评价").tap()
    expect(page.get_by_role("heading", name="感谢您的评价")).to_be_visible()

    with app.app_context():
        answers = sorted((r.kind, r.choice, r.comment) for r in db.session.scalars(select(Rating)))
        assert answers == [
            ("invited", "dissatisfied", "候诊时间太长"),
            ("walk_in", "satisfied", None),
        ]
        assert db.session.scalar(select(db.func.count()).select_from(Case)) == 1
        db.session.remove()
