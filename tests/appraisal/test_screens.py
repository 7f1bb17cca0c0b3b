"""The 群众评议 screens: the unit's page in the portal (upload, row-by-row report, past uploads,
the unit's cases answered through the API) and the bureau's case list in the console (filters,
escalated first, audited steps), with the same access rules as the API."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from appraisal import cases, services
from appraisal.models import Case, Programme
from campaigns.models import Account
from core import clock
from core.extensions import db
from tests.appraisal.conftest import BASE, csv_bytes, days_ago
from tests.factories import Org
from tests.pages.browser import staff_login


def no_phone(html: str) -> bool:
    """No number of these tests, whole or masked, is on the page."""
    return not re.search(r"1381234|13998765|1390000|\d{3}\*{4}\d{4}", html)


def test_the_unit_pages_are_registered(app: Flask) -> None:
    """pages/__init__.py registers pages.appraisal_unit.bp (init_app)."""
    assert "appraisal_unit" in app.blueprints
    assert any(rule.rule == "/portal/appraisal/<code>" for rule in app.url_map.iter_rules())


@pytest.fixture
def pages_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def browser(pages_app: Flask) -> Iterator[FlaskClient]:
    with pages_app.test_client() as client:
        yield client


def _upload(browser: FlaskClient, token: str | None, data: bytes, name: str = "week.csv") -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["X-CSRF-Token"] = token
    return browser.post(
        f"{BASE}/programmes/pj/uploads",
        data={"file": (io.BytesIO(data), name)},
        headers=headers,
        content_type="multipart/form-data",
    )


def _dissatisfied(app: Flask, unit_code: str, comment: str, days: int = 1) -> int:
    """A 「不满意」 answer through an invitation's link at ``unit_code``: its case's id."""
    with app.app_context():
        programme = db.session.scalar(select(Programme).where(Programme.code == "pj"))
        assert programme is not None
        clerk = db.session.scalar(
            select(Account).where(Account.username == f"unit-{unit_code.lower()}")
        )
        unit = services.programme_unit(clerk, programme, None)
        phone = f"1390000{len(comment):02d}{days:02d}"
        row = {"phone": phone, "date": days_ago(days), "department": "内科", "staff_name": "王医生"}
        outcome = services.register(programme, unit, [(1, row)], source="api")
        encounter = outcome.accepted[0]
        rating = services.answer_invited(services.link_token(encounter), "dissatisfied", comment)
        case = cases.open_for(rating, programme)
        assert case is not None
        db.session.commit()
        case_id = case.id
        db.session.remove()
    return case_id


def test_a_clerk_uploads_a_week_and_reads_each_refused_row(
    browser: FlaskClient, org: Org, programme: str
) -> None:
    # Not logged in: the portal's login, back here after.
    login = browser.get("/portal/appraisal/pj")
    assert login.status_code == 302 and "/portal/login?next=/portal/appraisal/pj" in login.location
    token = staff_login(browser, "unit-h1", "portal")
    landing = browser.get("/portal/appraisal")
    assert landing.status_code == 302 and landing.location.endswith("/portal/appraisal/pj")
    page = browser.get("/portal/appraisal/pj")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "上传就诊记录" in html and "单位H1" in html
    assert "同一手机号每 7 天最多 1 条、每 30 天最多 4 条" in html
    assert 'data-testid="no-uploads"' in html and 'data-testid="no-cases"' in html
    data = json.loads(re.search(r'id="appraisal-unit-data">(.*?)</script>', html, re.S).group(1))
    assert data["upload_url"] == f"{BASE}/programmes/pj/uploads"
    week = csv_bytes(
        [
            ["手机号", "就诊日期", "科室", "工作人员"],
            ["13812341234", days_ago(1), "内科", "王医生"],
            ["12345", days_ago(1), "外科", ""],
            ["13998765432", days_ago(2), "", ""],
            ["13812341234", days_ago(1), "内科", ""],
        ]
    )
    # The API takes the page's cookie only with the page's CSRF token.
    refused = _upload(browser, None, week)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    answer = _upload(browser, token, week)
    assert answer.status_code == 201, answer.get_json()
    upload_id = answer.get_json()["upload_id"]
    report = browser.get(f"/portal/appraisal/pj/uploads/{upload_id}")
    text = report.get_data(as_text=True)
    assert report.status_code == 200
    assert re.search(r'data-testid="rows-total">4<', text)
    assert re.search(r'data-testid="rows-accepted">1<', text)
    assert re.search(r'data-testid="rows-refused">3<', text)
    rows = re.findall(r'data-code="(\w+)" data-testid="refused-(\d+)"', text)
    assert rows == [("bad_phone", "3"), ("missing_department", "4"), ("duplicate_in_file", "5")]
    assert "与第 2 行是同一次就诊" in text and no_phone(text)
    listed = browser.get("/portal/appraisal/pj").get_data(as_text=True)
    assert f'data-testid="upload-{upload_id}"' in listed and "week.csv" in listed
    # A whole-file refusal comes back as the API's Chinese message (shown under the form).
    wrong = _upload(browser, token, b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "photo.png")
    assert wrong.status_code == 422 and "Excel" in wrong.get_json()["error"]["message"]


def test_another_unit_and_the_bureau_are_kept_out(
    browser: FlaskClient, client: FlaskClient, org: Org, programme: str
) -> None:
    mine = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"encounters": [{"phone": "13812341234", "date": days_ago(1), "department": "内科"}]},
        headers=org.headers("unit-h1"),
    )
    assert mine.status_code == 201
    week = csv_bytes([["手机号", "就诊日期", "科室"], ["13998765432", days_ago(1), "内科"]])
    token = staff_login(browser, "unit-h1", "portal")
    upload_id = _upload(browser, token, week).get_json()["upload_id"]
    browser.post("/logout", data={"csrf_token": token})
    staff_login(browser, "unit-h2", "portal")
    assert browser.get(f"/portal/appraisal/pj/uploads/{upload_id}").status_code == 404
    assert f"upload-{upload_id}" not in browser.get("/portal/appraisal/pj").get_data(as_text=True)
    listing = browser.get(f"{BASE}/programmes/pj/uploads").get_json()
    assert listing == {"items": []}
    assert browser.get("/portal/appraisal/nope").status_code == 404
    token = staff_login(browser, "unit-h3", "portal")  # a unit of another county
    outside = browser.get("/portal/appraisal")
    assert outside.status_code == 200 and 'data-testid="no-programmes"' in outside.get_data(
        as_text=True
    )
    assert browser.get("/portal/appraisal/pj").status_code == 403
    browser.post("/logout", data={"csrf_token": token})
    staff_login(browser, "rev-k1", "console")
    assert browser.get("/portal/appraisal/pj").status_code == 403  # the bureau has the console
    everyone = browser.get(f"{BASE}/programmes/pj/uploads").get_json()["items"]
    assert [(u["unit_code"], u["rows_accepted"]) for u in everyone] == [("H1", 1)]
    only_h2 = browser.get(f"{BASE}/programmes/pj/uploads?unit_code=H2").get_json()
    assert only_h2 == {"items": []}
    assert browser.get(f"{BASE}/programmes/pj/uploads?unit_code=H3").status_code == 403


def test_the_clerk_answers_a_case_and_it_closes(
    browser: FlaskClient, pages_app: Flask, org: Org, programme: str
) -> None:
    case_id = _dissatisfied(pages_app, "H1", "候诊时间太长")
    late_id = _dissatisfied(pages_app, "H1", "态度生硬", days=2)
    _dissatisfied(pages_app, "H2", "别的单位")
    with pages_app.app_context():
        late = db.session.get(Case, late_id)
        late.deadline_at = clock.utcnow() - timedelta(hours=1)
        db.session.commit()
        assert cases.escalate_overdue() == 1
        db.session.commit()
        db.session.remove()
    token = staff_login(browser, "unit-h1", "portal")
    html = browser.get("/portal/appraisal/pj").get_data(as_text=True)
    order = re.findall(r'data-testid="case-(\d+)" data-state="(\w+)"', html)
    assert order == [(str(late_id), "escalated"), (str(case_id), "open")]  # escalated first
    assert re.search(r'data-testid="open-count">2<', html)
    assert re.search(r'data-testid="overdue-count">1<', html)
    assert "候诊时间太长" in html and "别的单位" not in html and "办理期限" in html
    assert "收到不满意评价，立案" in html and "逾期未办，上报主管局" in html
    assert no_phone(html)
    # Answering: the API with the page's cookie and CSRF token; empty findings are refused.
    url = f"{BASE}/cases/{case_id}/response"
    headers = {"X-CSRF-Token": token, "Accept": "application/json"}
    empty = browser.post(url, json={"findings": " ", "actions": "x"}, headers=headers)
    assert empty.status_code == 422
    done = browser.post(
        url, json={"findings": "已与患者沟通核实", "actions": "增设导诊"}, headers=headers
    )
    assert done.status_code == 200 and done.get_json()["state"] == "closed"
    again = browser.post(url, json={"findings": "a", "actions": "b"}, headers=headers)
    assert again.get_json()["error"]["code"] == "case_closed"
    closed = browser.get(f"/portal/appraisal/pj?cases=closed&done={case_id}")
    text = closed.get_data(as_text=True)
    assert f'data-testid="case-{case_id}" data-state="closed"' in text
    assert "已与患者沟通核实" in text and "单位答复办结" in text and "已提交答复" in text
    still_open = browser.get("/portal/appraisal/pj").get_data(as_text=True)
    assert f'data-testid="case-{case_id}"' not in still_open
    # Another unit's case is not found from its clerk's session.
    other_token = staff_login(browser, "unit-h2", "portal")
    other = browser.post(
        f"{BASE}/cases/{late_id}/response",
        json={"findings": "a", "actions": "b"},
        headers={"X-CSRF-Token": other_token, "Accept": "application/json"},
    )
    assert other.status_code == 404 and other.get_json()["error"]["code"] == "case_not_found"


def test_the_bureau_lists_cases_across_units(
    browser: FlaskClient, pages_app: Flask, client: FlaskClient, org: Org, programme: str
) -> None:
    first = _dissatisfied(pages_app, "H1", "排队太久")
    escalated = _dissatisfied(pages_app, "H2", "收费不清", days=2)
    answered = _dissatisfied(pages_app, "H1", "态度不好", days=3)
    with pages_app.app_context():
        db.session.get(Case, escalated).deadline_at = clock.utcnow() - timedelta(days=1)
        db.session.commit()
        cases.escalate_overdue()
        db.session.commit()
        db.session.remove()
    response = client.post(
        f"{BASE}/cases/{answered}/response",
        json={"findings": "已核实", "actions": "已整改"},
        headers=org.headers("unit-h1"),
    )
    assert response.status_code == 200
    staff_login(browser, "rev-k1", "console")
    page = browser.get("/console/appraisal/pj/cases")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    rows = re.findall(r'data-testid="case-(\d+)" data-state="(\w+)" data-unit="(\w+)"', html)
    assert rows == [
        (str(escalated), "escalated", "H2"),
        (str(first), "open", "H1"),
        (str(answered), "closed", "H1"),
    ]
    assert "逾期未办，上报主管局" in html and "单位答复办结 · unit-h1" in html
    assert "已整改" in html and no_phone(html)

    def shown(query: str) -> list[str]:
        text = browser.get(f"/console/appraisal/pj/cases?{query}").get_data(as_text=True)
        return re.findall(r'data-testid="case-(\d+)" data-state', text)

    assert shown("unit=H1") == [str(first), str(answered)]
    assert shown("state=closed") == [str(answered)]
    assert shown("overdue=1") == [str(escalated)]
    assert shown("unit=H1&overdue=1") == []
    # Lenient links: an unknown unit or page falls back instead of failing the page.
    assert len(shown("unit=ZZ&page=abc&state=nope")) == 3
    # The API's list takes the same filters.
    api = client.get(
        f"{BASE}/programmes/pj/cases?unit_code=H2&overdue=true", headers=org.headers("rev-k1")
    ).get_json()["items"]
    assert [(c["id"], c["state"], c["unit_name"]) for c in api] == [
        (escalated, "escalated", "单位H2")
    ]
    ordered = client.get(f"{BASE}/programmes/pj/cases", headers=org.headers("rev-k1")).get_json()
    assert [c["id"] for c in ordered["items"]] == [escalated, first, answered]
    foreign = client.get(f"{BASE}/programmes/pj/cases?unit_code=H3", headers=org.headers("admin"))
    assert foreign.status_code == 403
    assert foreign.get_json()["error"]["code"] == "unit_not_in_programme"
    # The report page links here; a unit clerk and another county's reviewer are kept out.
    report = browser.get("/console/appraisal/pj").get_data(as_text=True)
    assert 'href="/console/appraisal/pj/cases"' in report and "频次限制未发送" in report
    staff_login(browser, "rev-k2", "console")
    assert browser.get("/console/appraisal/pj/cases").status_code == 403
    staff_login(browser, "unit-h1", "portal")
    assert browser.get("/console/appraisal/pj/cases").status_code == 403
    assert (
        client.get(
            f"{BASE}/programmes/pj/cases?unit_code=H2", headers=org.headers("unit-h1")
        ).get_json()["error"]["code"]
        == "not_own_unit"
    )


def test_a_closed_programme_takes_no_upload_on_the_page(
    browser: FlaskClient, client: FlaskClient, org: Org, programme: str
) -> None:
    closed = client.patch(
        f"{BASE}/programmes/pj", json={"status": "closed"}, headers=org.headers("rev-k1")
    )
    assert closed.status_code == 200
    staff_login(browser, "unit-h1", "portal")
    # A closed programme is no longer among the unit's, but its page still reads.
    assert browser.get("/portal/appraisal").status_code == 200
    html = browser.get("/portal/appraisal/pj").get_data(as_text=True)
    assert "评议项目已结束" in html and 'id="upload-form"' not in html
