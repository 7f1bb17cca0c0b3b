"""The console's second half: judging progress, the judge's sheets, results with the rank
shifts, publicity with objections and their attachments, exports downloaded with the cookie."""

from __future__ import annotations

import base64
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import update

from awards.models import ResultVersion
from core.extensions import db, redis_store
from core.types import utcnow
from tests.factories import PASSWORD, Org
from tests.pages.browser import staff_login

PAGES = ("judging", "sheets", "results", "publicity", "exports")
ADMIN_PAGES = ("judging", "results", "publicity", "exports")
EVIL = "<script>alert(1)</script>"
CRITERIA = [
    {"code": "ethics", "name": "医德医风", "max_points": 40},
    {"code": "skill", "name": "专业技术", "max_points": 60},
]
# A one-pixel PNG, as the objection form would send it.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json


def _page_data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="b2-data">(.*?)</script>', html, re.S)
    assert match, "page has no b2-data block"
    return json.loads(match.group(1))


def _judging(client: FlaskClient, org: Org, evil_name: bool = False) -> list[str]:
    """c1 in judging: doctors from H1 (named EVIL when asked) and H2, a nurse from H3; criteria
    set; `judge` (no unit) on both categories, `judge-h1` (works at H1) on doctors."""
    from campaigns import services as campaign_services

    org.campaign("c1")
    ids = [
        org.nomination("c1", "unit-h1", "approved", name=EVIL if evil_name else "李晓梅"),
        org.nomination("c1", "unit-h2", "approved", name="王建国"),
        org.nomination("c1", "unit-h3", "approved", category="nurse", name="张护士"),
    ]
    with org.app.app_context():
        org.accounts["judge-h1"] = campaign_services.create_account(
            "judge-h1", PASSWORD, "judge", "H1"
        ).id
        db.session.commit()
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/c1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.put("/api/v1/admin/campaigns/c1/criteria", json={"items": CRITERIA}, headers=admin))
    for judge, categories in (("judge", ["doctor", "nurse"]), ("judge-h1", ["doctor"])):
        _ok(
            client.post(
                "/api/v1/admin/campaigns/c1/judges",
                json={"username": judge, "categories": categories},
                headers=admin,
            )
        )
    from nominations.models import Nomination

    with org.app.app_context():
        numbers = [db.session.get(Nomination, i).number for i in ids]
        db.session.remove()
    return numbers


def _sheet(client: FlaskClient, org: Org, judge: str, number: str, submit: bool = True) -> Any:
    return client.put(
        f"/api/v1/judging/c1/sheets/{number}",
        json={"scores": {"ethics": 30, "skill": 50}, "submit": submit},
        headers=org.headers(judge),
    )


def _publicity(client: FlaskClient, org: Org) -> list[str]:
    """c1 judged, computed, finalised and published (phase publicity)."""
    numbers = _judging(client, org)
    admin = org.headers("admin")
    for number in numbers:
        _ok(_sheet(client, org, "judge", number))
    _ok(client.post("/api/v1/admin/campaigns/c1/results", json={}, headers=admin), 201)
    _ok(client.post("/api/v1/admin/campaigns/c1/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/c1/phase", json={"phase": "publicity"}, headers=admin))
    return numbers


def _objection(client: FlaskClient, number: str | None, text: str, attachment: str | None = None):  # type: ignore[no-untyped-def]
    return _ok(
        client.post(
            "/api/v1/campaigns/c1/objections",
            json={
                "nominee": number,
                "contact_name": "王先生",
                "contact_phone": "13800000000",
                "text": text,
                "attachment": attachment,
            },
        ),
        201,
    )


# --- who may open what ------------------------------------------------------------------------


def test_admin_opens_every_admin_page_with_its_nav_and_a_strict_policy(
    client: FlaskClient, org: Org
) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    for page in ADMIN_PAGES:
        response = client.get(f"/console/c/c1/{page}")
        html = response.get_data(as_text=True)
        assert response.status_code == 200, page
        assert f'id="b2-{page}"' in html and f'data-page="{page}"' in html
        assert f'href="/console/c/c1/{page}" class="active"' in html
        assert "/assets/console_awards.js?v=" in html and "/assets/console_awards.css?v=" in html
        policy = response.headers["Content-Security-Policy"]
        assert "unsafe-inline" not in policy and "script-src 'self'" in policy
        # No inline script or style may be needed: only the JSON data block is inline.
        assert not re.search(r"<script(?![^>]*(src=|application/json))", html)
        assert " style=" not in html and " onclick=" not in html
        assert _page_data(html)["slug"] == "c1"


def test_judge_has_the_sheets_page_only(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    staff_login(client, "judge", area="console")
    assert client.get("/console/c/c1/sheets").status_code == 200
    for page in ADMIN_PAGES:
        denied = client.get(f"/console/c/c1/{page}")
        assert denied.status_code == 403, page
        assert "不对您的账号开放" in denied.get_data(as_text=True)
    assert client.get("/console/c/c1/results/1/shifts").status_code == 403


def test_admin_and_units_are_refused_the_judges_page(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    assert client.get("/console/c/c1/sheets").status_code == 403
    unit = org.app.test_client()
    staff_login(unit, "unit-h1")
    for page in PAGES:
        assert unit.get(f"/console/c/c1/{page}").status_code == 403, page


def test_anonymous_visitors_go_to_the_console_login(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    for page in PAGES:
        response = client.get(f"/console/c/c1/{page}")
        assert response.status_code == 302
        assert response.headers["Location"] == f"/console/login?next=/console/c/c1/{page}"
    response = client.get("/console/c/c1/results?v=2")
    assert response.headers["Location"] == "/console/login?next=/console/c/c1/results?v=2"


def test_unknown_campaign_is_a_chinese_404_page(client: FlaskClient, org: Org) -> None:
    staff_login(client, "admin", area="console")
    for page in ADMIN_PAGES:
        response = client.get(f"/console/c/nope/{page}")
        assert response.status_code == 404, page
        html = response.get_data(as_text=True)
        assert "评选活动不存在" in html and "页面不存在" in html
    judge = org.app.test_client()
    staff_login(judge, "judge", area="console")
    assert judge.get("/console/c/nope/sheets").status_code == 404


# --- judging ----------------------------------------------------------------------------------


def test_judging_shows_progress_per_judge_and_category_and_the_conflicts(
    client: FlaskClient, org: Org
) -> None:
    d1, d2, n1 = _judging(client, org)
    _ok(_sheet(client, org, "judge", d1))
    _ok(_sheet(client, org, "judge", d2, submit=False))
    _ok(_sheet(client, org, "judge-h1", d2))
    _ok(
        client.post(
            "/api/v1/judging/c1/conflicts",
            json={"nominee": n1, "reason": "与候选人为同学"},
            headers=org.headers("judge"),
        ),
        201,
    )
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/judging").get_data(as_text=True)

    from awards import services as award_services
    from campaigns import services as campaign_services

    with org.app.app_context():
        overview = award_services.judging_overview(campaign_services.get_campaign("c1"))
        progress = {
            p["judge"]: p for p in award_services.progress(campaign_services.get_campaign("c1"))
        }
        db.session.remove()
    judges = {j["username"]: j for j in overview["judges"]}
    # `judge`: two doctors (one submitted, one draft); the nurse is a declared conflict.
    assert judges["judge"]["categories"] == [
        {"code": "doctor", "name": "十大最美医生", "expected": 2, "submitted": 1, "drafts": 1},
        {"code": "nurse", "name": "十大最美护士", "expected": 0, "submitted": 0, "drafts": 0},
    ]
    assert (judges["judge"]["declared"], judges["judge"]["recused"]) == (1, 1)
    # `judge-h1` never sees H1's doctor.
    assert (judges["judge-h1"]["expected"], judges["judge-h1"]["submitted"]) == (1, 1)
    assert judges["judge-h1"]["recused"] == 1 and judges["judge-h1"]["declared"] == 0
    # The page agrees with the API's own per-judge progress.
    for name, row in judges.items():
        assert (row["expected"], row["submitted"], row["drafts"]) == (
            progress[name]["to_score"],
            progress[name]["submitted"],
            progress[name]["drafts"],
        )
    categories = {c["code"]: c for c in overview["categories"]}
    assert (categories["doctor"]["expected"], categories["doctor"]["submitted"]) == (3, 2)
    assert categories["doctor"]["judges"] == 2 and categories["doctor"]["percent"] == 67
    assert categories["nurse"]["unscored"] == [f"{n1} 张护士"]
    assert overview["criteria_locked"] is True
    assert [c["reason"] for c in overview["conflicts"]] == ["与候选人为同学"]

    assert 'data-testid="sheets-total">2 / 3<' in html
    assert "与候选人为同学" in html and f"{n1} 张护士" in html
    assert 'id="b2-criteria-locked"' in html and 'id="b2-criteria-edit"' not in html
    assert 'id="b2-assign-form"' in html and '<option value="judge-h1">' in html
    data = _page_data(html)
    assert data["assignments"] == {"judge": ["doctor", "nurse"], "judge-h1": ["doctor"]}
    assert data["criteria"] == CRITERIA and data["criteria_locked"] is True


def test_criteria_can_be_edited_until_the_first_sheet(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/judging").get_data(as_text=True)
    assert 'id="b2-criteria-edit"' in html and 'id="b2-criteria-form"' in html
    assert "医德医风" in html and 'id="b2-conflict-form"' in html


def test_organizer_scores_appear_when_the_weights_give_them_a_share(
    client: FlaskClient, org: Org
) -> None:
    org.campaign("c1", weights={"public": 30, "jury": 50, "organizer": 20})
    org.nomination("c1", "unit-h1", "approved", name="李晓梅")
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/judging").get_data(as_text=True)
    assert 'id="b2-organizer"' in html and "主办方评分（权重 20%）" in html
    assert 'class="b2-organizer-form row" data-number="D001"' in html
    # Outside judging the inputs are shown but disabled, with a notice on the phase.
    assert 'id="b2-phase-notice"' in html and " disabled>" in html


def test_user_text_is_escaped_on_the_pages(client: FlaskClient, org: Org) -> None:
    d1, _, _ = _judging(client, org, evil_name=True)
    admin = org.app.test_client()
    staff_login(admin, "admin", area="console")
    judging_html = admin.get("/console/c/c1/judging").get_data(as_text=True)
    assert EVIL not in judging_html and "&lt;script&gt;alert(1)&lt;/script&gt;" in judging_html
    _ok(
        client.post(
            "/api/v1/judging/c1/conflicts",
            json={"nominee": d1, "reason": EVIL, "judge": "judge"},
            headers=org.headers("admin"),
        ),
        201,
    )
    assert EVIL not in admin.get("/console/c/c1/judging").get_data(as_text=True)

    # `judge` is now recused and `judge-h1` works at the nominee's unit: a third judge sees it.
    from campaigns import services as campaign_services

    with org.app.app_context():
        campaign_services.create_account("judge-2", PASSWORD, "judge", None)
        db.session.commit()
    _ok(
        client.post(
            "/api/v1/admin/campaigns/c1/judges",
            json={"username": "judge-2", "categories": ["doctor"]},
            headers=org.headers("admin"),
        )
    )
    judge = org.app.test_client()
    staff_login(judge, "judge-2", area="console")
    sheets_html = judge.get("/console/c/c1/sheets").get_data(as_text=True)
    assert EVIL not in sheets_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in sheets_html  # the queue list
    assert "\\u003cscript\\u003e" in sheets_html  # the JSON data block
    assert _page_data(sheets_html)["items"][0]["name"] == EVIL


# --- sheets -----------------------------------------------------------------------------------


def test_judges_queue_has_deeds_criteria_and_progress_but_no_votes(
    client: FlaskClient, org: Org
) -> None:
    d1, d2, n1 = _judging(client, org)
    _ok(_sheet(client, org, "judge", d2))
    _ok(_sheet(client, org, "judge", n1, submit=False))
    staff_login(client, "judge", area="console")
    html = client.get("/console/c/c1/sheets").get_data(as_text=True)
    assert 'data-testid="sheets-progress" data-done="1" data-total="3">已评 1 / 3<' in html
    assert html.index(f'data-number="{d1}"') < html.index(f'data-number="{n1}"')
    assert "十大最美医生" in html and "十大最美护士" in html
    data = _page_data(html)
    assert data["open"] is True and data["criteria"] == CRITERIA
    items = {i["number"]: i for i in data["items"]}
    assert set(items) == {d1, d2, n1}
    assert items[d2]["sheet_status"] == "submitted" and items[d2]["scores"] == {
        "ethics": 30.0,
        "skill": 50.0,
    }
    assert items[n1]["sheet_status"] == "draft" and items[d1]["sheet_status"] == "none"
    assert (
        items[d1]["deeds"].startswith("扎根基层") and items[d1]["category_name"] == "十大最美医生"
    )
    assert items[d1]["photo_url"] is None and items[d1]["video"] is None
    assert not any("votes" in key for item in data["items"] for key in item)

    # The H1 judge never sees H1's nominee; a judge without assignment sees an explanation.
    other = org.app.test_client()
    staff_login(other, "judge-h1", area="console")
    own = _page_data(other.get("/console/c/c1/sheets").get_data(as_text=True))
    assert [i["number"] for i in own["items"]] == [d2]


def test_sheets_are_read_only_outside_judging_and_empty_without_assignment(
    client: FlaskClient, org: Org
) -> None:
    org.campaign("c1")
    staff_login(client, "judge", area="console")
    html = client.get("/console/c/c1/sheets").get_data(as_text=True)
    assert 'id="b2-queue-empty"' in html and 'id="b2-sheets-locked"' in html
    assert "尚未开始" in html and 'id="b2-no-criteria"' in html
    assert _page_data(html)["open"] is False


def test_sheet_media_comes_with_the_queue(client: FlaskClient, org: Org) -> None:
    d1, _, _ = _judging(client, org)
    from media.models import MediaAsset
    from nominations.models import Nomination

    with org.app.app_context():
        nomination = db.session.query(Nomination).filter_by(number=d1).one()
        asset = MediaAsset(
            nomination_id=nomination.id,
            kind="photo",
            status="ready",
            storage_key="test-photo-key",
            declared_size=10,
            is_current=True,
            renditions=[{"file": "photo.jpg"}, {"file": "thumb.jpg"}],
        )
        db.session.add(asset)
        db.session.commit()
        asset_id = asset.id
        db.session.remove()
    staff_login(client, "judge", area="console")
    items = {
        i["number"]: i
        for i in _page_data(client.get("/console/c/c1/sheets").get_data(as_text=True))["items"]
    }
    assert items[d1]["photo_url"] == f"/media/{asset_id}/photo.jpg"
    assert items[d1]["video"] is None


# --- results ----------------------------------------------------------------------------------


def _sensitive_campaign(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """v1 with one award and three doctors: 6, 3 and 0 valid votes (public 100, 50, 0), jury
    60, 80 and 85 out of 100. Combined at 30/70: 72.00, 71.00, 59.50 → D001 wins narrowly."""
    from voting import services as voting_services

    numbers = org.voting_campaign(nominees=3, award_count=1)
    voter = 0
    for number, count in zip(numbers, (6, 3, 0), strict=True):
        for _ in range(count):
            voter += 1
            _ok(
                client.post(
                    "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
                ),
                201,
            )
    with app.app_context():
        assert voting_services.drain_campaign("v1") == 9
        db.session.remove()
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin))
    _ok(
        client.put(
            "/api/v1/admin/campaigns/v1/criteria",
            json={"items": [{"code": "all", "name": "综合评价", "max_points": 100}]},
            headers=admin,
        )
    )
    _ok(
        client.post(
            "/api/v1/admin/campaigns/v1/judges",
            json={"username": "judge", "categories": ["doctor"]},
            headers=admin,
        )
    )
    for number, points in zip(numbers, (60, 80, 85), strict=True):
        _ok(
            client.put(
                f"/api/v1/judging/v1/sheets/{number}",
                json={"scores": {"all": points}, "submit": True},
                headers=org.headers("judge"),
            )
        )
    _ok(client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin), 201)
    return numbers


def test_rank_shifts_follow_the_scoring_method_and_agree_with_the_api(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3 = _sensitive_campaign(app, client, org)
    staff_login(client, "admin", area="console")
    report = _ok(client.get("/console/c/v1/results/1/shifts"))
    assert report["version"] == 1 and report["weights"] == {
        "public": 30,
        "jury": 70,
        "organizer": 0,
    }
    doctor = next(c for c in report["categories"] if c["code"] == "doctor")
    assert [s["weights"]["public"] for s in doctor["scenarios"]] == [20, 25, 30, 35, 40]
    assert [s["current"] for s in doctor["scenarios"]] == [False, False, True, False, False]
    rows = {r["number"]: r for r in doctor["rows"]}
    # 20/80: 68.00, 74.00, 68.00 (D003 beats D001 on the jury score); 25/75: 70.00, 72.50, 63.75.
    assert rows[d1]["ranks"] == [3, 2, 1, 1, 1]
    assert rows[d2]["ranks"] == [1, 1, 2, 2, 2]
    assert rows[d3]["ranks"] == [2, 3, 3, 3, 3]
    assert rows[d1]["combined"] == [68.0, 70.0, 72.0, 74.0, 76.0]
    assert rows[d1]["winners"] == [False, False, True, True, True]
    assert [r["number"] for r in doctor["rows"]] == [d1, d2, d3]  # by the version's rank
    assert [(s["changed"], s["new_winners"], s["dropped"]) for s in doctor["scenarios"]] == [
        (True, [d2], [d1]),
        (True, [d2], [d1]),
        (False, [], []),
        (False, [], []),
        (False, [], []),
    ]
    # The API's own report (live data, unchanged here) says the same for the moved weights.
    api = _ok(
        client.get("/api/v1/admin/campaigns/v1/results/1/sensitivity", headers=org.headers("admin"))
    )
    api_doctor = next(c for c in api["items"] if c["category"] == "doctor")["scenarios"]
    mine = [s for s in doctor["scenarios"] if not s["current"]]
    assert [(s["weights"], s["changed"], s["new_winners"], s["dropped"]) for s in mine] == [
        (s["weights"], s["changed"], s["new_winners"], s["dropped"]) for s in api_doctor
    ]

    # Adjustments still count: promoting D003 makes it the winner in every scenario.
    _ok(
        client.post(
            "/api/v1/admin/campaigns/v1/results/1/adjustments",
            json={"nominee": d3, "action": "promote", "reason": "评委会决议"},
            headers=org.headers("admin"),
        )
    )
    promoted = _ok(client.get("/console/c/v1/results/1/shifts"))
    doctor = next(c for c in promoted["categories"] if c["code"] == "doctor")
    rows = {r["number"]: r for r in doctor["rows"]}
    assert rows[d3]["winners"] == [True] * 5 and rows[d3]["adjustment"] == "promote"
    assert not any(s["changed"] for s in doctor["scenarios"])


def test_shifts_of_an_unknown_version_are_a_json_404(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    response = client.get("/console/c/c1/results/9/shifts")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "result_not_found"
    assert client.get("/console/c/nope/results/1/shifts").json["error"]["code"] == (
        "campaign_not_found"
    )


def test_results_page_lists_the_versions_and_selects_one(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    _sensitive_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(
        client.post("/api/v1/admin/campaigns/v1/results", json={"reason": "复核"}, headers=admin),
        201,
    )
    _ok(client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin))
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/v1/results").get_data(as_text=True)
    data = _page_data(html)
    assert [(v["version"], v["status"]) for v in data["versions"]] == [(2, "draft"), (1, "final")]
    assert data["versions"][0]["reason"] == "复核" and data["selected"] == 2
    assert data["weights"] == {"public": 30, "jury": 70, "organizer": 0}
    assert data["categories"][0] == {"code": "doctor", "name": "十大最美医生", "award_count": 1}
    assert '<option value="2" data-status="draft" selected>第 2 版 · 草稿' in html
    assert 'id="b2-compute"' in html and "计算新版本" in html
    chosen = _page_data(client.get("/console/c/v1/results?v=1").get_data(as_text=True))
    assert chosen["selected"] == 1
    assert (
        _page_data(client.get("/console/c/v1/results?v=7").get_data(as_text=True))["selected"] == 2
    )


def test_results_page_without_versions(client: FlaskClient, org: Org) -> None:
    org.campaign("c1")
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/results").get_data(as_text=True)
    assert 'id="b2-no-results"' in html and _page_data(html)["selected"] is None
    assert 'data-testid="compute" disabled' in html  # not in judging or publicity


# --- publicity --------------------------------------------------------------------------------


def test_publicity_shows_the_window_objections_and_attachments(
    client: FlaskClient, org: Org
) -> None:
    d1, _, _ = _publicity(client, org)
    png = "data:image/png;base64," + base64.b64encode(PNG).decode()
    pdf = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    first = _objection(client, d1, "该候选人事迹数据与实际不符" + EVIL, png)
    second = _objection(client, None, "投票期间疑似存在刷票行为", pdf)
    answered = _objection(client, d1, "对评审过程有疑问，请说明")
    _ok(
        client.post(
            f"/api/v1/admin/campaigns/c1/objections/{answered['id']}",
            json={"decision": "dismissed", "answer": "经核实，评审程序符合规定"},
            headers=org.headers("admin"),
        )
    )
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/publicity").get_data(as_text=True)
    assert 'id="b2-window-state" data-open="1"' in html and "公示中" in html
    assert "第 1 版" in html and 'id="b2-close-campaign"' in html
    assert EVIL not in html and "&lt;script&gt;" in html
    assert "13800000000" in html and "王先生" in html
    # Open ones first, newest first; each open one has its answer form.
    order = [int(i) for i in re.findall(r'class="b2-objection" id="objection-(\d+)"', html)]
    assert order == [second["id"], first["id"], answered["id"]]
    assert html.count('data-testid="answer-form"') == 2
    assert "经核实，评审程序符合规定" in html
    image = f'src="/console/c/c1/objections/{first["id"]}/attachment"'
    assert image in html
    assert f'href="/console/c/c1/objections/{second["id"]}/attachment" download' in html
    assert "待答复 2" in html and "驳回 1" in html

    shown = client.get(f"/console/c/c1/objections/{first['id']}/attachment")
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    assert shown.get_data() == PNG
    assert shown.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in shown.headers["Content-Security-Policy"]
    assert "attachment" not in shown.headers.get("Content-Disposition", "")
    shown.close()
    document = client.get(f"/console/c/c1/objections/{second['id']}/attachment")
    assert document.status_code == 200 and document.mimetype == "application/pdf"
    assert document.headers["Content-Disposition"].startswith("attachment")
    document.close()
    missing = client.get(f"/console/c/c1/objections/{answered['id']}/attachment")
    assert missing.status_code == 404 and "该异议没有附件" in missing.get_data(as_text=True)
    assert client.get("/console/c/c1/objections/999/attachment").status_code == 404

    judge = org.app.test_client()
    staff_login(judge, "judge", area="console")
    assert judge.get(f"/console/c/c1/objections/{first['id']}/attachment").status_code == 403


def test_an_objection_of_another_campaign_is_not_found(client: FlaskClient, org: Org) -> None:
    d1, _, _ = _publicity(client, org)
    filed = _objection(client, d1, "该候选人事迹数据与实际不符")
    org.campaign("c2")
    staff_login(client, "admin", area="console")
    assert client.get(f"/console/c/c2/objections/{filed['id']}/attachment").status_code == 404


def test_upheld_objection_points_to_the_reopened_version(client: FlaskClient, org: Org) -> None:
    d1, _, _ = _publicity(client, org)
    filed = _objection(client, d1, "该候选人事迹数据与实际不符")
    upheld = _ok(
        client.post(
            f"/api/v1/admin/campaigns/c1/objections/{filed['id']}",
            json={"decision": "upheld", "answer": "重新核算"},
            headers=org.headers("admin"),
        )
    )
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/publicity").get_data(as_text=True)
    reopened = upheld["reopened_version"]
    assert 'id="b2-pending-drafts"' in html
    assert f'href="/console/c/c1/results?v={reopened}">第 {reopened} 版</a>' in html
    assert "异议成立" in html and 'data-testid="answer-form"' not in html


def test_publicity_before_publication(client: FlaskClient, org: Org) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/publicity").get_data(as_text=True)
    assert 'id="b2-not-published"' in html and "暂无异议" in html
    assert 'id="b2-close-campaign"' not in html


# --- exports ----------------------------------------------------------------------------------


def _run_worker(app: Flask) -> None:
    with app.app_context():
        queue = redis_store.queue("exports")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        db.session.remove()


def test_exports_page_offers_every_kind(client: FlaskClient, org: Org) -> None:
    from awards import exports

    org.campaign("c1")
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/exports").get_data(as_text=True)
    data = _page_data(html)
    assert [k["kind"] for k in data["kinds"]] == list(exports.KINDS)
    for kind in exports.KINDS:
        assert f'id="b2-export-{kind}" data-kind="{kind}"' in html
    assert 'id="b2-export-jobs"' in html


@pytest.mark.parametrize("kind", ["workbook", "audit_csv", "winners_html"])
def test_an_export_started_and_downloaded_with_the_cookie_session(
    app: Flask, client: FlaskClient, org: Org, kind: str
) -> None:
    from awards import exports

    _publicity(client, org)
    token = staff_login(client, "admin", area="console")
    refused = client.post("/api/v1/admin/campaigns/c1/exports", json={"kind": kind})
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    started = _ok(
        client.post(
            "/api/v1/admin/campaigns/c1/exports",
            json={"kind": kind},
            headers={"X-CSRF-Token": token},
        ),
        202,
    )
    assert started["status"] == "queued" and started["download_url"] is None
    _run_worker(app)
    state = _ok(client.get(f"/api/v1/admin/campaigns/c1/exports/{started['job_id']}"))
    assert state["status"] == "finished" and state["progress"] == 100
    # The page's download link is a plain GET: the cookie alone is enough.
    with client.get(state["download_url"]) as response:
        assert response.status_code == 200
        assert response.mimetype == exports.MIMETYPES[kind]
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert len(response.get_data()) == state["size"]
    anonymous = app.test_client()
    assert anonymous.get(state["download_url"]).status_code == 401
    judge = app.test_client()
    staff_login(judge, "judge", area="console")
    assert judge.get(state["download_url"]).status_code == 403


# --- impossible actions: disabled, with the reason shown -------------------------------------


def test_winners_export_waits_for_a_final_result_with_the_reason(
    client: FlaskClient, org: Org
) -> None:
    _judging(client, org)
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/exports").get_data(as_text=True)
    kinds = {k["kind"]: k for k in _page_data(html)["kinds"]}
    assert kinds["winners_html"]["blocked"].startswith("尚无定稿或已公示的评选结果")
    assert kinds["workbook"]["blocked"] == "" and kinds["audit_csv"]["blocked"] == ""
    button = html.split('id="b2-export-winners_html"')[1].split(">")[0]
    assert " disabled " in button and 'title="尚无定稿或已公示的评选结果' in button
    assert 'data-testid="export-why-winners_html">尚无定稿' in html
    assert 'id="b2-export-workbook" data-kind="workbook" aria-describedby' in html
    assert "开始时间（Asia/Shanghai）" in html and _page_data(html)["timezone"] == "Asia/Shanghai"


def test_closing_is_disabled_while_the_window_is_open_and_enabled_after(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    _publicity(client, org)
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/c1/publicity").get_data(as_text=True)
    button = html.split('id="b2-close-campaign"')[1].split(">")[0]
    assert " disabled " in button and 'title="公示期至 ' in button
    assert 'data-testid="close-why">现在不能结束：公示期至 ' in html
    html = client.get("/console/c/c1/exports").get_data(as_text=True)
    assert {k["blocked"] for k in _page_data(html)["kinds"]} == {""}
    # The window over: nothing stands in the way, the button is enabled without a reason.
    with app.app_context():
        db.session.execute(
            update(ResultVersion).values(publicity_ends_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
        db.session.remove()
    html = client.get("/console/c/c1/publicity").get_data(as_text=True)
    button = html.split('id="b2-close-campaign"')[1].split(">")[0]
    assert "disabled" not in button and "title=" not in button
    assert 'data-testid="close-why"' not in html


def test_the_reasons_closing_is_refused() -> None:
    from pages.console_awards import _close_blocked

    # A moment as the page shows it (formatted in the campaign's zone), derived from now.
    ends_at = (utcnow() + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    window = {"open": False, "ends_at": ends_at}
    assert _close_blocked(None, 0, []) == "结果尚未公示，不能结束活动"
    assert _close_blocked(window | {"open": True}, 0, []) == f"公示期至 {ends_at} 才结束"
    assert _close_blocked(window, 2, [3]) == "还有 2 条异议未答复"
    assert _close_blocked(window, 0, [3, 4]) == "重新核算的结果（第 3 版、第 4 版）尚未公示"
    assert _close_blocked(window, 0, []) == ""
