"""The rating page: the one-time link, CSRF, one answer per link, forged and expired links,
退订 from the page, walk-in QR codes limited per device and address."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from appraisal import services
from appraisal.models import Encounter, Invitation, OptOut, Rating
from core import clock
from core.extensions import db
from tests.appraisal.conftest import BASE, days_ago, form_csrf
from tests.factories import Org


def _link(app: Flask) -> str:
    with app.app_context():
        encounter = db.session.scalar(select(Encounter).order_by(Encounter.id.desc()))
        path = services.link_path(encounter)
        db.session.remove()
    return path


def _answer(client: FlaskClient, path: str, **fields: str) -> Any:
    page = client.get(path)
    return client.post(path, data={"csrf_token": form_csrf(page.get_data(as_text=True)), **fields})


def test_a_patient_answers_once(
    client: FlaskClient, app: Flask, register: Callable[..., Any]
) -> None:
    register(
        [
            {
                "phone": "13812341234",
                "date": days_ago(1),
                "department": "内科",
                "staff_name": "王医生",
            }
        ]
    )
    path = _link(app)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for words in ("满意", "基本满意", "不满意", "个人信息保护法", "单位H1", "王医生", "退订"):
        assert words in html
    assert "13812341234" not in html
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    # No CSRF token: refused, nothing stored.
    assert client.post(path, data={"choice": "satisfied"}).status_code == 403
    # A choice that is not one of the three: the form again, with the reason.
    wrong = _answer(client, path, choice="great")
    assert wrong.status_code == 422 and "请选择" in wrong.get_data(as_text=True)
    done = _answer(client, path, choice="basic", comment="排队有点久")
    assert done.status_code == 200 and "感谢" in done.get_data(as_text=True)
    # The same form sent again (a second tab, a back button): refused, clearly.
    again = client.post(path, data={"csrf_token": form_csrf(html), "choice": "dissatisfied"})
    assert again.status_code == 409 and "已经评价过" in again.get_data(as_text=True)
    assert client.get(path).status_code == 409
    with app.app_context():
        ratings = list(db.session.scalars(select(Rating)))
        assert [(r.kind, r.choice, r.comment, r.staff_name) for r in ratings] == [
            ("invited", "basic", "排队有点久", "王医生")
        ]
        db.session.remove()


def test_forged_and_expired_links(
    client: FlaskClient, app: Flask, register: Callable[..., Any]
) -> None:
    register([{"phone": "13812341234", "date": days_ago(1), "department": "内科"}])
    path = _link(app)
    head, _, signature = path.removeprefix("/r/").partition(".")
    forged = f"/r/{head}.{'A' * len(signature)}"
    other = f"/r/{int(head, 16) + 1:x}.{signature}"
    huge = f"/r/ffffffff.{'A' * 20}"  # past PostgreSQL's integer
    for bad in (forged, other, huge, "/r/zz", "/r/1.short"):
        response = client.get(bad)
        assert response.status_code == 404, bad
        assert "链接无效" in response.get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(Encounter).values(created_at=clock.utcnow() - timedelta(days=31)))
        db.session.commit()
        db.session.remove()
    assert client.get(path).status_code == 410


def test_opt_out_from_the_page(
    client: FlaskClient, app: Flask, register: Callable[..., Any]
) -> None:
    register([{"phone": "13812341234", "date": days_ago(1), "department": "内科"}])
    path = _link(app)
    page = client.get(f"{path}/unsubscribe")
    assert page.status_code == 200
    assert client.post(f"{path}/unsubscribe").status_code == 403  # CSRF
    done = client.post(
        f"{path}/unsubscribe", data={"csrf_token": form_csrf(page.get_data(as_text=True))}
    )
    assert done.status_code == 200 and "已退订" in done.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(OptOut.source)) == "link"
        assert db.session.scalar(select(Invitation.status)) == "opted_out"
        db.session.remove()
    refused = register([{"phone": "13812341234", "date": days_ago(0), "department": "外科"}])
    assert refused["refused"][0]["code"] == "opted_out"


def _window(client: FlaskClient, org: Org, user: str = "unit-h1", **body: Any) -> Any:
    return client.post(
        f"{BASE}/programmes/pj/windows",
        json={"name": "门诊大厅", **body},
        headers=org.headers(user),
    )


def test_walk_in_ratings_by_qr_code(
    client: FlaskClient, org: Org, programme: str, make_app: Callable[..., Flask], app: Flask
) -> None:
    made = _window(client, org)
    assert made.status_code == 201
    window = made.get_json()["items"][0]
    assert window["unit_code"] == "H1" and window["qr_url"] == window["url"] + "/qr.svg"
    path = "/r/u/" + window["url"].rsplit("/r/u/", 1)[1]
    qr = client.get(f"{path}/qr.svg")
    assert qr.status_code == 200 and qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    # Another unit's clerk cannot add a window for H1; H3 is outside the programme.
    assert _window(client, org, "unit-h2", unit_code="H1").status_code == 403
    assert _window(client, org, "unit-h3").status_code == 403
    listed = client.get(f"{BASE}/programmes/pj/windows", headers=org.headers("unit-h2"))
    assert listed.get_json()["items"] == []

    limited = make_app(APPRAISAL_WALKIN_DEVICE_LIMIT="2/day", APPRAISAL_WALKIN_IP_LIMIT="3/day")
    browser = limited.test_client()
    page = browser.get(path)
    assert page.status_code == 200 and "现场评价" in page.get_data(as_text=True)
    assert browser.get_cookie("zm_dev") is not None
    token = form_csrf(page.get_data(as_text=True))
    for choice in ("satisfied", "dissatisfied"):
        assert browser.post(path, data={"csrf_token": token, "choice": choice}).status_code == 200
    third = browser.post(path, data={"csrf_token": token, "choice": "basic"})
    assert third.status_code == 429 and "频繁" in third.get_data(as_text=True)
    # A new browser on the same address: one more, then the address's limit.
    other = limited.test_client()
    token2 = form_csrf(other.get(path).get_data(as_text=True))
    assert other.post(path, data={"csrf_token": token2, "choice": "basic"}).status_code == 200
    fresh = limited.test_client()
    token3 = form_csrf(fresh.get(path).get_data(as_text=True))
    assert fresh.post(path, data={"csrf_token": token3, "choice": "basic"}).status_code == 429
    # Without the device cookie (a browser refusing cookies) nothing is counted.
    bare = limited.test_client()
    token4 = form_csrf(bare.get(path).get_data(as_text=True))
    bare.delete_cookie("zm_dev")
    assert bare.post(path, data={"csrf_token": token4, "choice": "basic"}).status_code == 403
    with app.app_context():
        kinds = [(r.kind, r.department) for r in db.session.scalars(select(Rating))]
        assert kinds == [("walk_in", "门诊大厅")] * 3
        db.session.remove()
    assert client.get("/r/u/nope").status_code == 404
