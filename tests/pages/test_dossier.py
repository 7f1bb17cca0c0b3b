"""The printable 推荐审批表 (pages.dossier): what a sheet holds, who may print it, and the bound
set a bureau prints for what it passed up at its level."""

from __future__ import annotations

import io
import re
from datetime import timedelta

from flask.testing import FlaskClient
from PIL import Image

from core.types import utcnow
from tests.factories import Org
from tests.nominations.test_levels import _chain, _decide, _ok
from tests.pages.browser import staff_login


def _html(client: FlaskClient, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)[:400]
    return response.get_data(as_text=True)


def _climbed(client: FlaskClient, org: Org) -> int:
    """A chain campaign with its own fields; H1's nomination passed by the county K1."""
    org.campaign()
    _chain(client, org, county=2, city=2)
    fields = [
        {"key": "birth_month", "label": "出生年月", "type": "date"},
        {"key": "ethnicity", "label": "民族", "type": "choice", "options": ["汉族", "回族"]},
        {"key": "phone", "label": "联系电话", "type": "phone"},
    ]
    _ok(
        client.put(
            "/api/v1/campaigns/c1/form-fields",
            json={"fields": fields},
            headers=org.headers("admin"),
        )
    )
    born = (utcnow() - timedelta(days=365 * 45)).date()
    extra = {"birth_month": born.isoformat(), "ethnicity": "回族", "phone": "13900001111"}
    nid = org.nomination(status="submitted", extra=extra, name="王秀兰")
    _ok(_decide(client, org, nid, "rev-k1", "pass", "事迹突出，同意推荐上报"))
    return nid


def test_the_sheet_holds_the_basics_the_deeds_and_every_levels_opinion(
    client: FlaskClient, org: Org
) -> None:
    nid = _climbed(client, org)
    staff_login(client, "unit-h1")
    html = _html(client, f"/console/campaigns/c1/nominations/{nid}/dossier")
    assert "推荐审批表" in html and 'href="/assets/dossier.css' in html
    sheet = html[html.index(f'id="sheet-{nid}"') :]
    for label, value in (
        ("姓名", "王秀兰"),
        ("性别", "女"),
        ("推荐单位", "单位H1"),
        ("民族", "回族"),
    ):
        assert re.search(rf"<th scope=\"row\">{label}</th><td>{value}</td>", sheet), label
    assert re.search(r"<th scope=\"row\">出生年月</th><td>\d{4}年\d{2}月\d{2}日</td>", sheet)
    assert "13900001111" in sheet  # staff paper: the phone is on it
    # The photo's place at the top right: the first row of the table, blank until uploaded.
    assert re.search(r"<th scope=\"row\">姓名</th><td>王秀兰</td>\s*<td class=\"photo\"", sheet)
    assert "photo-blank" in sheet
    assert "主要事迹" in sheet and "扎根基层二十年" in sheet
    titles = re.findall(r'<section class="block opinion"[^>]*>\s*<h3>([^<]+)</h3>', sheet)
    assert titles == [
        "推荐单位意见",
        "县（旗）级主管部门意见",
        "市（盟）级主管部门意见",
        "评选委员会意见",
    ]
    county = sheet[sheet.index("县（旗）级主管部门意见") : sheet.index("市（盟）级主管部门意见")]
    assert "推荐上报。事迹突出，同意推荐上报" in county and "单位K1" in county
    assert re.search(r"\d{4}年\d{2}月\d{2}日", county)
    city = sheet[sheet.index("市（盟）级主管部门意见") : sheet.index("评选委员会意见")]
    assert "（盖章）" in city and '<span class="blank short"></span>年' in city


def test_who_may_print_a_sheet(client: FlaskClient, org: Org) -> None:
    nid = _climbed(client, org)
    url = f"/console/campaigns/c1/nominations/{nid}/dossier"
    for username, status in (
        ("unit-h2", 404),  # another unit's clerk: like a missing id
        ("rev-k2", 404),  # a bureau outside the unit's sub-tree
        ("judge", 403),
        ("rev-c", 200),  # the city above it
        ("admin", 200),
    ):
        client.delete_cookie("zm_staff")
        staff_login(client, username, "console")
        _html(client, url, status)
    # The id of another campaign's slug is not found either.
    org.campaign("c2")
    _html(client, f"/console/campaigns/c2/nominations/{nid}/dossier", 404)
    client.delete_cookie("zm_staff")
    assert client.get(url).status_code in (302, 303)  # no session: the login page


def test_the_bound_set_of_a_bureau(client: FlaskClient, org: Org) -> None:
    nid = _climbed(client, org)
    other = org.nomination(status="submitted", unit_user="unit-h2", name="赵强")
    waiting = org.nomination(status="submitted", unit_user="unit-h2", category="nurse")
    _ok(_decide(client, org, other, "rev-k1", "pass", "同意"))
    assert waiting
    staff_login(client, "rev-k1", "console")
    html = _html(client, "/console/campaigns/c1/dossiers?level=county&unit=K1")
    assert re.findall(r'<article class="sheet" id="sheet-(\d+)"', html) == [str(nid), str(other)]
    assert "共 2 份" in html
    # The city above may print it too; it has passed nothing up yet.
    client.delete_cookie("zm_staff")
    staff_login(client, "rev-c", "console")
    assert "共 2 份" in _html(client, "/console/campaigns/c1/dossiers?level=county&unit=K1")
    assert 'id="bound-empty"' in _html(client, "/console/campaigns/c1/dossiers?level=city&unit=C")
    # Another county's reviewer, a wrong level, a unit of another level, a missing argument.
    client.delete_cookie("zm_staff")
    staff_login(client, "rev-k2", "console")
    _html(client, "/console/campaigns/c1/dossiers?level=county&unit=K1", 403)
    _html(client, "/console/campaigns/c1/dossiers?level=county&unit=K2")
    _html(client, "/console/campaigns/c1/dossiers?level=province&unit=P", 404)
    _html(client, "/console/campaigns/c1/dossiers?level=county&unit=C", 422)
    _html(client, "/console/campaigns/c1/dossiers?level=county", 422)
    # A clerk prints its own sheets, not a bureau's set.
    client.delete_cookie("zm_staff")
    staff_login(client, "unit-h1", "console")
    _html(client, "/console/campaigns/c1/dossiers?level=county&unit=K1", 403)


def test_the_photo_sits_at_the_top_right(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    picture = io.BytesIO()
    Image.new("RGB", (600, 800), (200, 120, 90)).save(picture, format="JPEG")
    uploaded = client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=picture.getvalue(),
        headers={**org.headers("unit-h1"), "Content-Type": "image/jpeg"},
    )
    assert uploaded.status_code in (200, 201, 202), uploaded.json
    staff_login(client, "unit-h1")
    html = _html(client, f"/console/campaigns/c1/nominations/{nid}/dossier")
    found = re.search(rf'<img src="([^"]+)" alt="[^"]+的照片" id="photo-{nid}">', html)
    assert found, "the photo is on the sheet"
    assert client.get(found.group(1).replace("&amp;", "&")).status_code == 200
    # Single-level campaign: the unit, the bureau and the committee sign.
    titles = re.findall(r'<section class="block opinion"[^>]*>\s*<h3>([^<]+)</h3>', html)
    assert titles == ["推荐单位意见", "主管部门意见", "评选委员会意见"]
