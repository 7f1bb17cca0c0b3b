"""The console's 推荐层级 page (chain, deadlines, each bureau's places and queue, the committee's
settings; refused to every role but the committee) and the exported dossier's 逐级推荐 column."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from awards import export_workbook
from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from pages.common import local_time
from tests.factories import Org
from tests.pages.browser import staff_login

PAGE = "/console/c/c1/levels"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json


def _chain(client: FlaskClient, org: Org, county: int = 1, city: int = 2) -> dict[str, Any]:
    now = utcnow()
    body = {
        "levels": [
            {
                "unit_level": "county",
                "deadline": (now + timedelta(days=5)).isoformat(),
                "quotas": {"doctor": county, "nurse": county},
            },
            {
                "unit_level": "city",
                "deadline": (now + timedelta(days=8)).isoformat(),
                "quotas": {"doctor": city, "nurse": city},
            },
        ]
    }
    return _ok(client.put("/api/v1/campaigns/c1/levels", json=body, headers=org.headers("admin")))


def _decide(client: FlaskClient, org: Org, nid: int, who: str, decision: str, comment: str) -> Any:
    return _ok(
        client.post(
            f"/api/v1/nominations/{nid}/level-decision",
            json={"decision": decision, "comment": comment},
            headers=org.headers(who),
        )
    )


def _cell(html: str, testid: str) -> str:
    match = re.search(rf'data-testid="{re.escape(testid)}"[^>]*>(.*?)</td>', html, re.S)
    assert match, f"no cell {testid}"
    return re.sub(r"<[^>]+>", "", match.group(1)).strip()


def _data(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="levels-data">(.*?)</script>', html)
    assert match
    return json.loads(match.group(1))


def _page(client: FlaskClient, username: str, path: str = PAGE) -> Any:
    staff_login(client, username, "console")
    return client.get(path)


def test_the_page_shows_the_chain_each_bureaus_places_and_its_queue(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    chain = _chain(client, org)
    passed = org.nomination(status="submitted", name="李晓梅")
    org.nomination(unit_user="unit-h2", status="submitted", name="王建国")
    org.nomination(unit_user="unit-h3", status="submitted", category="nurse", name="张护士")
    _decide(client, org, passed, "rev-k1", "pass", "同意推荐上报")
    _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/K2",
            json={"quotas": {"nurse": 3}},
            headers=org.headers("admin"),
        )
    )

    response = _page(client, "admin")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>推荐层级</h1>" in html and 'href="/console/c/c1/levels" class="active"' in html
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "c1"))
        county_deadline = chain["levels"][0]["deadline"]
        shown = local_time(datetime.fromisoformat(county_deadline), campaign)
        db.session.remove()
    # Deadlines as the campaign's people read them (its zone), not in UTC.
    assert _cell(html, "deadline-county").startswith(shown)
    # K1 passed its one doctor place and still holds one doctor waiting; the city has one waiting.
    assert _cell(html, "places-K1-doctor") == "1/1"
    assert _cell(html, "places-K1-nurse") == "0/1"
    assert _cell(html, "waiting-K1") == "1"
    assert _cell(html, "places-K2-nurse").startswith("0/3")  # its own figure, marked as such
    assert "单独设置" in _cell(html, "places-K2-nurse")
    assert _cell(html, "waiting-K2") == "1"
    assert _cell(html, "places-C-doctor") == "0/2"
    assert _cell(html, "waiting-C") == "1"
    assert 'data-testid="waiting-committee">0<' in html
    # Each bureau's bound set of 推荐审批表 (pages/dossier.py): K1's holds what it passed up.
    link = re.search(r'href="([^"]+)"[^>]*data-testid="dossiers-K1"', html)
    assert link and link.group(1) == "/console/campaigns/c1/dossiers?level=county&amp;unit=K1"
    bound = client.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "李晓梅" in bound and "王建国" not in bound
    assert 'data-testid="unit-quota-K2"' in html
    # Submitted nominations fix the levels: the boxes are disabled with the reason shown.
    assert 'data-testid="levels-locked"' in html and "推荐层级不能再增减" in html
    assert re.search(r'id="level-on-county"[^>]*checked disabled title="[^"]*不能再增减', html)
    assert 'id="levels-clear"' not in html
    data = _data(html)
    assert data["locked"] is True and data["levels"] == ["county", "city"]
    assert data["unit_quotas"] == {"K2": {"nurse": 3}}
    assert 'id="extend-save" disabled' not in html


def test_a_single_level_campaign_offers_a_chain_and_no_extension(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    html = _page(client, "admin").get_data(as_text=True)
    assert 'data-testid="single-level"' in html
    assert 'data-testid="levels-locked"' not in html
    assert re.search(r'id="level-on-county"[^>]*value="county">', html)  # free to tick
    assert 'data-testid="extend-why"' in html
    assert re.search(r'id="extend-save" disabled title="本活动尚未设置推荐层级', html)
    assert _data(html)["locked"] is False


def test_the_page_is_the_committees_only(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _chain(client, org)
    # No session: the console's login page.
    anonymous = client.get(PAGE)
    assert anonymous.status_code == 302 and "/console/login" in anonymous.headers["Location"]
    for username in ("rev-c", "rev-k1", "judge", "unit-h1"):
        token = staff_login(client, username, "console")
        refused = client.get(PAGE)
        assert refused.status_code == 403, username
        body = refused.get_data(as_text=True)
        assert "此页面不对您的账号开放" in body and "levels-data" not in body
        if username == "rev-c":  # a reviewer's console never links to it
            dashboard = client.get("/console/c/c1")
            assert dashboard.status_code == 200
            assert "/console/c/c1/levels" not in dashboard.get_data(as_text=True)
        client.post("/logout", data={"csrf_token": token})


def test_unknown_campaign_is_404_and_the_issue_address_redirects(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    assert _page(client, "admin", "/console/c/nope/levels").status_code == 404
    alias = client.get("/console/campaigns/c1/levels")
    assert alias.status_code == 302 and alias.headers["Location"].endswith(PAGE)
    assert client.get("/console/campaigns/nope/levels").status_code == 404


def test_the_dossier_export_carries_every_levels_decision(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    org.campaign()
    _chain(client, org)
    climbed = org.nomination(status="submitted", name="李晓梅")
    sent_back = org.nomination(unit_user="unit-h3", status="submitted", name="张秀英")
    waiting = org.nomination(unit_user="unit-h2", status="submitted", name="王建国")
    _decide(client, org, climbed, "rev-k1", "pass", "县级同意上报")
    _decide(client, org, climbed, "rev-c", "return", "=请补充事迹")
    _decide(client, org, climbed, "rev-k1", "pass", "已补充，再次上报")
    _decide(client, org, sent_back, "rev-k2", "reject", "材料不全")
    with app.app_context():
        campaign_id = db.session.scalar(select(Campaign.id).where(Campaign.slug == "c1"))
        path = export_workbook.build_workbook(campaign_id, tmp_path / "levels.xlsx")
        db.session.remove()
    rows = [tuple(r) for r in load_workbook(path)["推荐材料"].iter_rows(values_only=True)]
    assert rows[0][15] == "逐级推荐（Asia/Shanghai）" and len(rows[0]) == 16
    by_name = {row[4]: row[15] for row in rows[1:]}
    assert set(by_name) == {"李晓梅", "张秀英", "王建国"}
    climbed_lines = by_name["李晓梅"].split("\n")
    assert len(climbed_lines) == 3
    assert "县（旗）级·单位K1 推荐上报（rev-k1）：县级同意上报" in climbed_lines[0]
    assert "市（盟）级·单位C 退回修改至县（旗）级（rev-c）：=请补充事迹" in climbed_lines[1]
    assert climbed_lines[2].endswith("：已补充，再次上报")
    assert re.match(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} ", climbed_lines[0])
    assert by_name["张秀英"].endswith("不予推荐（rev-k2）：材料不全")
    assert by_name["王建国"] is None  # nothing decided yet: an empty cell
    assert waiting


def test_a_single_level_campaigns_dossier_keeps_its_columns(
    app: Flask, org: Org, tmp_path: Path
) -> None:
    org.campaign()
    org.nomination(status="submitted")
    with app.app_context():
        campaign_id = db.session.scalar(select(Campaign.id).where(Campaign.slug == "c1"))
        path = export_workbook.build_workbook(campaign_id, tmp_path / "plain.xlsx")
        db.session.remove()
    header = next(load_workbook(path)["推荐材料"].iter_rows(values_only=True))
    assert len(header) == 15 and not any("逐级推荐" in str(h) for h in header)


def test_the_pages_writes_go_through_the_api_with_the_cookie_and_the_csrf_header(
    client: FlaskClient, org: Org
) -> None:
    """What console_levels.js sends: the session cookie and the page's CSRF token."""
    org.campaign()
    staff_login(client, "admin", "console")
    html = _page(client, "admin").get_data(as_text=True)
    token = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', html)
    assert token
    now = utcnow()
    body = {
        "levels": [
            {
                "unit_level": "county",
                "deadline": (now + timedelta(days=3)).isoformat(),
                "quotas": {"doctor": 1, "nurse": 1},
            }
        ]
    }
    refused = client.put("/api/v1/campaigns/c1/levels", json=body)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    headers = {"X-CSRF-Token": token.group(1)}
    _ok(client.put("/api/v1/campaigns/c1/levels", json=body, headers=headers))
    extend = {"deadline": (now + timedelta(days=4)).isoformat(), "reason": "延误"}
    _ok(client.post("/api/v1/campaigns/c1/levels/county/extend", json=extend, headers=headers))
    _ok(
        client.put(
            "/api/v1/campaigns/c1/unit-quotas/H1", json={"quotas": {"doctor": 2}}, headers=headers
        )
    )
    html = client.get(PAGE).get_data(as_text=True)
    assert 'data-testid="chain-county"' in html and "已于" in html
    assert 'data-testid="unit-quota-H1"' in html
    assert _data(html)["unit_quotas"] == {"H1": {"doctor": 2}}
