"""The 群众评议 screens in Chromium: a clinic clerk on a phone (390×844) uploads a week's
encounters, reads the refused rows, answers a 「不满意」 case; the bureau on a desktop filters
the cases across its units, escalated first, each with its audited steps. Screenshots at both
sizes (docs/appraisal.md)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from appraisal import cases, services
from appraisal.models import Case, Programme
from campaigns.models import Account
from core import clock
from core.extensions import db
from tests.appraisal.conftest import csv_bytes, days_ago
from tests.e2e.conftest import PHONE, LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org


@pytest.fixture
def site(make_app: Callable[..., Flask]) -> Iterator[LiveServer]:
    """The app served on loopback."""
    with LiveServer(make_app()) as server:
        yield server


@pytest.fixture
def clerk_phone(playwright_browser: Any) -> Iterator[Any]:
    """A clinic clerk's phone: 390×844, touch, Chinese."""
    context = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def _seed(app: Flask, org: Org) -> dict[str, int]:
    """Programme pj of county K1; 「不满意」 answers at H1 (one escalated) and H2."""
    made: dict[str, int] = {}
    with app.app_context():
        admin = db.session.get(Account, org.accounts["admin"])
        programme = services.create_programme(
            admin, {"code": "pj", "title": "青山县群众满意度评议", "bureau_code": "K1"}
        )
        db.session.commit()
        answers = (
            ("unit-h1", "waiting", "候诊时间太长，叫号不清楚", "内科", 1),
            ("unit-h1", "late", "护士态度生硬", "外科", 3),
            ("unit-h2", "other", "收费项目没有解释", "收费处", 2),
        )
        for n, (username, key, comment, department, days) in enumerate(answers):
            clerk = db.session.scalar(select(Account).where(Account.username == username))
            unit = services.programme_unit(clerk, programme, None)
            row = {"phone": f"1391234{n:04d}", "date": days_ago(days), "department": department}
            encounter = services.register(programme, unit, [(1, row)], source="api").accepted[0]
            rating = services.answer_invited(
                services.link_token(encounter), "dissatisfied", comment, "王医生"
            )
            case = cases.open_for(rating, programme)
            assert case is not None
            db.session.commit()
            made[key] = case.id
        late = db.session.get(Case, made["late"])
        late.deadline_at = clock.utcnow() - timedelta(hours=2)
        db.session.commit()
        cases.escalate_overdue()
        db.session.commit()
        db.session.remove()
    return made


def _fits(page: Any, width: int) -> None:
    """Nothing wider than the screen: no sideways scrolling on a phone."""
    assert page.evaluate("document.scrollingElement.scrollWidth") <= width


def test_a_clerk_on_a_phone_uploads_and_answers(
    site: LiveServer, app: Flask, org: Org, clerk_phone: Any, desktop: Any, shoot: Any
) -> None:
    made = _seed(app, org)
    page = clerk_phone
    staff_login(page, site.url, "portal", "unit-h1", "/portal/appraisal/pj")
    expect(page.get_by_role("heading", name="青山县群众满意度评议")).to_be_visible()
    # Escalated first, as a card with its deadline and state; the other unit's is not here.
    cards = page.locator("article.au-case")
    expect(cards).to_have_count(2)
    expect(cards.first).to_have_attribute("data-state", "escalated")
    expect(cards.first).to_contain_text("已逾期 · 已上报")
    expect(page.get_by_text("收费项目没有解释")).to_have_count(0)
    expect(page.get_by_test_id("overdue-count")).to_have_text("1")
    _fits(page, PHONE["width"])
    shoot(page, "appraisal-unit-phone")

    # A week's file: one good row, two refused.
    week = csv_bytes(
        [
            ["手机号", "就诊日期", "科室", "工作人员"],
            ["13812341234", days_ago(1), "内科", "王医生"],
            ["1381234", days_ago(1), "外科", ""],
            ["13998765432", days_ago(400), "儿科", ""],
        ]
    )
    page.get_by_test_id("upload").scroll_into_view_if_needed()
    page.set_input_files(
        "#upload-file", files=[{"name": "本周就诊.csv", "mimeType": "text/csv", "buffer": week}]
    )
    page.get_by_test_id("upload-go").tap()
    expect(page).to_have_url(re.compile(r"/portal/appraisal/pj/uploads/\d+$"))
    expect(page.get_by_test_id("rows-accepted")).to_have_text("1")
    expect(page.get_by_test_id("refused-3")).to_contain_text("手机号码格式不正确")
    expect(page.get_by_test_id("refused-4")).to_contain_text("超出保留期限")
    _fits(page, PHONE["width"])
    shoot(page, "appraisal-upload-report-phone")

    # A file that is not a sheet: the form says why, the page stays.
    page.goto(site.url + "/portal/appraisal/pj")
    expect(page.get_by_test_id(re.compile(r"upload-\d+"))).to_have_count(1)
    page.set_input_files(
        "#upload-file", files=[{"name": "x.png", "mimeType": "image/png", "buffer": b"\x89PNG\0"}]
    )
    page.get_by_test_id("upload-go").tap()
    expect(page.get_by_test_id("upload-error")).to_contain_text("Excel")

    # Answer the escalated case: findings and actions; it closes.
    form = page.get_by_test_id(f"respond-{made['late']}")
    form.get_by_role("button", name="提交答复并办结").tap()
    expect(form.locator(".field-error")).to_have_text("请填写核实情况和整改措施")
    form.locator("textarea[name=findings]").fill("已调阅监控并与当班护士谈话，情况属实")
    form.locator("textarea[name=actions]").fill("当事护士书面检讨，科室开展服务礼仪培训")
    form.get_by_role("button", name="提交答复并办结").tap()
    expect(page.get_by_test_id("done-note")).to_be_visible()
    closed = page.get_by_test_id(f"case-{made['late']}")
    expect(closed).to_have_attribute("data-state", "closed_late")  # after its deadline
    expect(closed).to_contain_text("当事护士书面检讨")
    closed.locator("summary").tap()
    expect(closed.locator("li[data-action='appraisal.case.respond']")).to_contain_text("unit-h1")
    with app.app_context():
        case = db.session.get(Case, made["late"])
        assert case is not None and case.status == "closed"
        db.session.remove()

    staff_login(desktop, site.url, "portal", "unit-h1", "/portal/appraisal/pj")
    expect(desktop.locator("article.au-case")).to_have_count(1)
    shoot(desktop, "appraisal-unit-desktop")


def test_the_bureau_filters_cases_on_a_desktop(
    site: LiveServer, app: Flask, org: Org, desktop: Any, clerk_phone: Any, shoot: Any
) -> None:
    made = _seed(app, org)
    page = desktop
    staff_login(page, site.url, "console", "rev-k1", "/console/appraisal/pj/cases")
    rows = page.locator("table.ap-cases tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_have_attribute("data-testid", f"case-{made['late']}")
    expect(rows.first).to_contain_text("逾期未办，上报主管局")
    expect(rows.first).to_contain_text("收到不满意评价，立案")
    shoot(page, "appraisal-cases-desktop")
    page.get_by_test_id("filter-unit").select_option("H2")
    page.get_by_test_id("filter-go").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("收费项目没有解释")
    page.get_by_test_id("filter-unit").select_option("")
    page.get_by_test_id("filter-overdue").check()
    page.get_by_test_id("filter-go").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-state", "escalated")
    # The month's report links here and shows the cap's column.
    page.goto(site.url + "/console/appraisal/pj")
    expect(page.get_by_role("columnheader", name="频次限制未发送")).to_be_visible()
    page.get_by_test_id("cases-tab").click()
    expect(page).to_have_url(re.compile(r"/console/appraisal/pj/cases$"))

    staff_login(clerk_phone, site.url, "console", "rev-k1", "/console/appraisal/pj/cases")
    expect(clerk_phone.locator("table.ap-cases tbody tr")).to_have_count(3)
    shoot(clerk_phone, "appraisal-cases-phone")
    with app.app_context():
        programme = db.session.scalar(select(Programme).where(Programme.code == "pj"))
        assert programme is not None and programme.status == "active"
        db.session.remove()
