"""The levels' 公示 on phones (pages.h5_level_publicity: a public, cacheable listing and page per
publicity) and in the console (the 推荐层级 page's panel; a bureau reviewer's own page)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from core.extensions import db
from core.types import utcnow
from nominations.level_publicity import LevelPublicity
from tests.factories import Org
from tests.nominations.test_level_publicity import (
    CONTACT,
    PHONE,
    PRIVATE,
    _open,
    _passed,
    _withdraw,
)
from tests.nominations.test_levels import _extra_units, _ok
from tests.pages.browser import staff_login

LIST = "/c/c1/level-publicity"


def _html(response: Any, status: int = 200) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return str(response.get_data(as_text=True))


def _public(response: Any) -> None:
    """A public body: cacheable, with an ETag, and no cookie set."""
    assert response.headers["Cache-Control"] == "public, max-age=5"
    assert response.headers["ETag"] and "Set-Cookie" not in response.headers


def test_the_public_reads_the_list_and_each_publicity(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    empty = client.get(LIST)
    assert 'data-testid="level-publicity-empty"' in _html(empty)
    _public(empty)
    _passed(client, org)
    made = _ok(_open(client, org, "rev-k1"), 201)
    later = _ok(_open(client, org, "rev-k1", starts_at=made["ends_at"]), 201)

    listing = client.get(LIST)
    html = _html(listing)
    _public(listing)
    assert f'data-testid="level-publicity-{made["id"]}"' in html and "公示中" in html
    assert f'data-testid="level-publicity-{later["id"]}"' not in html  # not begun: not public
    assert "2 名推荐人选" in html

    page = client.get(made["public_url"])
    html = _html(page)
    _public(page)
    assert "单位K1关于" in html and CONTACT in html and "本平台不受理层级公示的异议" in html
    assert html.count('data-testid="lp-person"') == 2
    assert "王春燕" in html and "赵敏" in html and "民族" in html and "蒙古族" in html
    assert PHONE not in html and PRIVATE not in html and "未上报" not in html
    assert "工作日" in html and "24:00" in html
    again = client.get(made["public_url"], headers={"If-None-Match": page.headers["ETag"]})
    assert again.status_code == 304
    _html(client.get(later["public_url"]), 404)
    _html(client.get(f"{LIST}/999999"), 404)
    _html(client.get("/c/nope/level-publicity"), 404)

    # Withdrawn: the heading stays, the list goes.
    _ok(_withdraw(client, org, "rev-k1", made["id"]))
    html = _html(client.get(made["public_url"]))
    assert 'data-testid="level-publicity-withdrawn"' in html
    assert "王春燕" not in html and CONTACT not in html
    assert "已撤回" in _html(client.get(LIST))


def test_a_closed_publicity_stays_public_and_says_it_ended(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _passed(client, org)
    made = _ok(_open(client, org, "admin"), 201)
    with app.app_context():
        row = db.session.get(LevelPublicity, made["id"])
        assert row is not None
        row.starts_at = utcnow() - timedelta(days=10)
        row.ends_at = utcnow() - timedelta(days=3)
        db.session.commit()
    html = _html(client.get(made["public_url"]))
    assert "公示期已于" in html and "已结束" in html and "王春燕" in html


def test_the_committee_opens_and_withdraws_from_the_levels_page(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _passed(client, org)
    staff_login(client, "admin", "console")
    html = _html(client.get("/console/c/c1/levels"))
    assert 'data-testid="level-publicity-none"' in html
    assert 'id="level-publicity-unit"' in html and 'value="K1"' in html and 'value="C"' in html
    made = _ok(_open(client, org, "rev-k1"), 201)
    html = _html(client.get("/console/c/c1/levels"))
    assert f'data-testid="level-publicity-withdraw-{made["id"]}"' in html
    assert f'href="{made["public_url"]}"' in html and CONTACT in html
    # The reviewers' address sends the committee to its own page.
    moved = client.get("/console/c/c1/level-publicity")
    assert moved.status_code == 302 and "/console/c/c1/levels" in moved.headers["Location"]


def test_a_bureau_reviewer_has_its_own_page(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    _extra_units(app, org)
    _passed(client, org)
    made = _ok(_open(client, org, "admin"), 201)
    token = staff_login(client, "rev-k1", "console")
    html = _html(client.get("/console/c/c1/level-publicity"))
    assert 'data-testid="level-publicity-page"' in html
    assert f'data-testid="level-publicity-withdraw-{made["id"]}"' in html
    assert 'value="K1"' in html and 'value="K2"' not in html and 'value="C"' not in html
    # Its review desk's nav links the page.
    review = _html(client.get("/console/c/c1/review"))
    assert 'href="/console/c/c1/level-publicity"' in review
    client.post("/logout", data={"csrf_token": token})
    # The city sees only its own (none); the levels page stays the committee's.
    token = staff_login(client, "rev-c", "console")
    html = _html(client.get("/console/c/c1/level-publicity"))
    assert f'data-testid="level-publicity-{made["id"]}"' not in html and 'value="C"' in html
    assert client.get("/console/c/c1/levels").status_code == 403
    client.post("/logout", data={"csrf_token": token})
    # A bureau outside the chain has no link, and it and a clerk are refused.
    token = staff_login(client, "rev-p", "console")
    assert 'href="/console/c/c1/level-publicity"' not in _html(client.get("/console/c/c1/review"))
    client.post("/logout", data={"csrf_token": token})
    for username in ("rev-p", "unit-h1"):
        token = staff_login(client, username, "console")
        assert client.get("/console/c/c1/level-publicity").status_code == 403, username
        client.post("/logout", data={"csrf_token": token})
