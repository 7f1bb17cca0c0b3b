"""The console's 群众评议 report page and the printable 通报: the month table as the API counts
it, the trend data for the chart, the links, and the same access rules as the API."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.appraisal.conftest import programme  # noqa: F401  (fixture)
from tests.appraisal.test_reports import seed
from tests.factories import Org
from tests.pages.browser import staff_login

PAGE = "/console/appraisal/pj"


def _data(html: str) -> dict[str, Any]:
    match = re.search(r'id="appraisal-data">(.*?)</script>', html, re.S)
    assert match, "the page carries no data for its script"
    return json.loads(match.group(1))


def _row(html: str, code: str) -> list[str]:
    match = re.search(rf'data-testid="row-{code}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {code}"
    return [
        re.sub(r"<[^>]+>", "", cell).strip()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)
    ]


def test_the_bureau_sees_every_unit_ranked(
    client: FlaskClient,
    org: Org,
    app: Flask,
    programme: str,  # noqa: F811
) -> None:
    seeded = seed(app)
    staff_login(client, "rev-k1", "console")
    response = client.get(f"{PAGE}?month={seeded.month}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "script-src" in response.headers["Content-Security-Policy"]
    order = re.findall(r'data-testid="row-(H\d)"', html)
    assert order == ["H4", "H1", "H2"]
    h1 = _row(html, "H1")
    assert h1[:3] == ["2", "单位H1", "10"] and h1[4] == "75.0%" and h1[6] == "85.7%"
    assert h1[8] == "3" and h1[-3:] == ["3", "3", "2"]
    h2 = _row(html, "H2")
    assert h2[0] == "—" and h2[4] == "—" and h2[6] == "—"
    assert f"/api/v1/appraisal/programmes/pj/reports/{seeded.month}.xlsx" in html
    assert f"/console/appraisal/pj/bulletin/{seeded.month}" in html
    data = _data(html)
    assert len(data["trend"]) == 6 and data["trend"][-2]["month"] == seeded.month
    assert data["trend"][-2]["answers"] == 21 and data["trend_url"].endswith("/reports/trend")
    assert [u["code"] for u in data["units"]] == ["H4", "H1", "H2"]
    assert "console_appraisal" in html and "<svg" not in html  # drawn by the script
    # A bad month falls back to this month instead of failing the page.
    assert client.get(f"{PAGE}?month=nope").status_code == 200


def test_the_printable_bulletin(
    client: FlaskClient,
    org: Org,
    app: Flask,
    programme: str,  # noqa: F811
) -> None:
    seeded = seed(app)
    staff_login(client, "rev-k1", "console")
    html = client.get(f"{PAGE}/bulletin/{seeded.month}").get_data(as_text=True)
    assert f"{seeded.month} 群众满意度评议情况通报" in html
    assert re.findall(r'data-testid="bulletin-(H\d)"', html) == ["H4", "H1", "H2"]
    assert "合计" in html and not re.search(r"(?<!\w)1\d{10}(?!\w)|\d{3}\*{4}\d{4}", html)
    assert client.get(f"{PAGE}/bulletin/2024-13").status_code == 422


def test_a_unit_clerk_sees_only_its_row(
    client: FlaskClient,
    org: Org,
    app: Flask,
    programme: str,  # noqa: F811
) -> None:
    seeded = seed(app)
    staff_login(client, "unit-h1", "portal")
    html = client.get(f"{PAGE}?month={seeded.month}").get_data(as_text=True)
    assert re.findall(r'data-testid="row-(H\d)"', html) == ["H1"]
    assert 'id="trend-unit"' not in html
    assert _data(html)["trend"][-2]["answers"] == 7
    bulletin = client.get(f"{PAGE}/bulletin/{seeded.month}").get_data(as_text=True)
    assert re.findall(r'data-testid="bulletin-(H\d)"', bulletin) == ["H1"]


def test_others_are_refused(client: FlaskClient, org: Org, programme: str) -> None:  # noqa: F811
    assert client.get(PAGE).status_code == 302  # to the login page
    staff_login(client, "unit-h3", "portal")
    assert client.get(PAGE).status_code == 403
    other = client.application.test_client()
    staff_login(other, "rev-k2", "console")
    assert other.get(PAGE).status_code == 403
    assert other.get("/console/appraisal/nope").status_code == 404
    judge = client.application.test_client()
    staff_login(judge, "judge", "console")
    assert judge.get(PAGE).status_code == 403


def test_the_console_home_links_the_programmes_its_reader_may_see(
    client: FlaskClient,
    org: Org,
    programme: str,  # noqa: F811
) -> None:
    staff_login(client, "rev-k1", "console")
    html = client.get("/console").get_data(as_text=True)
    assert 'data-testid="programmes"' in html
    assert 'href="/console/appraisal/pj" data-testid="programme-pj"' in html
    # A judge reads no reports: no section.
    staff_login(client, "judge", "console")
    assert 'data-testid="programmes"' not in client.get("/console").get_data(as_text=True)
