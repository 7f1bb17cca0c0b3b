"""The 公示 page (/c/<slug>/publicity) and its objection form, through the test client."""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from awards.models import Objection, ResultVersion
from awards.publicity import phone_key
from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import public_view
from nominations.models import Nomination
from tests.awards.test_results import _judging_campaign, _score
from tests.factories import Org
from tests.pages.browser import csrf_from

PAGE = "/c/v1/publicity"
FORM = "/c/v1/publicity/objection"
ADMIN = "/api/v1/admin/campaigns/v1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
TIERS = [{"code": "top", "name": "十佳", "count": 1}, {"code": "good", "name": "优秀", "count": 1}]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.json


def published_campaign(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """v1 in publicity: doctors D001–D004 with 6, 3, 0 and 3 valid votes, two tiers (十佳 1,
    优秀 1); combined 30/70: D001 86 (十佳), D002 78 (优秀), D004 57, D003 49."""
    numbers = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(
        client.patch("/api/v1/campaigns/v1/categories/doctor", json={"tiers": TIERS}, headers=admin)
    )
    with app.app_context():
        nomination = db.session.scalar(select(Nomination).where(Nomination.number == numbers[0]))
        nomination.deeds = "扎根急诊二十年，\n抢救危重病人三千余人次。"
        db.session.commit()
        db.session.remove()
    for number, total in zip(numbers, (80, 90, 70, 60), strict=True):
        _ok(_score(client, org, "judge", number, total))
    _ok(client.post(f"{ADMIN}/results", json={}, headers=admin), 201)
    _ok(client.post(f"{ADMIN}/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    return numbers


def _winner_block(html: str, number: str) -> str:
    match = re.search(rf'<li class="pub-winner" data-testid="winner-{number}".*?</li>', html, re.S)
    assert match, f"no winner {number}"
    return match.group(0)


def _file(client: FlaskClient, token: str, address: str = "198.51.100.7", **fields: Any) -> Any:
    data = {
        "csrf_token": token,
        "nominee": "",
        "contact_name": "王先生",
        "contact_phone": "13800000000",
        "text": "对公示结果有异议，请核实",
        **fields,
    }
    return client.post(
        FORM,
        data=data,
        content_type="multipart/form-data",
        environ_base={"REMOTE_ADDR": address},
    )


def test_before_publication_the_page_says_so(app: Flask, client: FlaskClient, org: Org) -> None:
    org.voting_campaign(nominees=2)
    response = client.get(PAGE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "公示尚未开始" in html
    assert 'data-testid="publicity-not-started"' in html and "pub-winner" not in html
    assert response.headers["Cache-Control"] == "public, max-age=5"
    # The form has nothing to object to yet (a Chinese 404 page).
    form = client.get(FORM)
    assert form.status_code == 404 and "公示尚未开始" in form.get_data(as_text=True)
    assert client.get("/c/nope/publicity").status_code == 404


def test_published_winners_by_category_and_tier_with_method_counts_and_chain_head(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3, d4 = published_campaign(app, client, org)
    response = client.get(PAGE)
    html = response.get_data(as_text=True)
    assert response.status_code == 200, html[:500]
    # The same five tabs as every H5 page, 公示 the active one.
    tabs = re.findall(r'data-testid="nav-([a-z-]+)"', html)
    assert tabs == ["home", "ranking", "publicity", "my-votes", "rules"]
    winners = client.get("/api/v1/campaigns/v1/winners").json
    # Winners by tier in the category's order; the losers are not listed.
    assert html.index("十佳") < html.index(f"winner-{d1}") < html.index("优秀")
    assert html.index("优秀") < html.index(f"winner-{d2}")
    assert f"winner-{d3}" not in html and f"winner-{d4}" not in html
    first = _winner_block(html, d1)
    assert "候选人0" in first and "得票 <b" in first and ">6</b>" in first
    assert "扎根急诊二十年，\n抢救危重病人三千余人次。" in first  # the deeds, as text
    assert ">3</b>" in _winner_block(html, d2)
    # Method and weights, the chain head exactly as the public API has it.
    assert re.search(r"<th scope=\"row\">大众投票</th><td>30%</td>", html)
    assert re.search(r"<th scope=\"row\">评委评分</th><td>70%</td>", html)
    assert winners["ledger_head"] and winners["ledger_head"] in html
    assert f'<b id="ledger-votes">{winners["ledger_votes"]}</b>' in html
    assert "/api/v1/campaigns/v1/winners" in html and "votes verify --campaign v1" in html
    # The window is open: the link to the form; no token, nothing private in the public body.
    assert 'id="object-link"' in html
    assert '<meta name="csrf-token" content="">' in html
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "public, max-age=5" and response.headers["ETag"]
    again = client.get(PAGE, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


def test_hidden_counts_are_not_shown(app: Flask, client: FlaskClient, org: Org) -> None:
    d1, *_ = published_campaign(app, client, org)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        campaign.rules = {**campaign.rules, "hide_counts": True}
        db.session.commit()
        db.session.remove()
    with app.app_context():
        public_view.invalidate("v1")  # a rules change made by hand, not through the service
    html = client.get(PAGE).get_data(as_text=True)
    assert "得票" not in _winner_block(html, d1) and "本活动不公开票数" in html


def test_an_objection_through_the_form_and_its_published_answer(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, *_ = published_campaign(app, client, org)
    form = client.get(f"{FORM}?nominee={d1}")
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    html = form.get_data(as_text=True)
    token = csrf_from(html)
    assert f'<option value="{d1}" selected>' in html
    # Without the CSRF token: refused.
    refused = client.post(FORM, data={"contact_name": "王先生"}, content_type="multipart/form-data")
    assert refused.status_code == 403
    # Malformed: the form again with the message, the name and reason kept, the phone not.
    bad = _file(client, token, contact_phone="13812345678", text="短")
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "异议理由需 5–2000 字" in page
    assert 'value="王先生"' in page and "13812345678" not in page
    # A real one with an attachment (multipart, no script).
    filed = _file(
        client,
        token,
        nominee=d1,
        contact_phone="13812345678",
        attachment=(io.BytesIO(PNG), "proof.png", "image/png"),
    )
    page = filed.get_data(as_text=True)
    assert filed.status_code == 201 and "异议已收到" in page and "13812345678" not in page
    with app.app_context():
        objection = db.session.scalar(select(Objection))
        assert objection.nominee_number == d1 and objection.contact_phone == "13812345678"
        assert objection.attachment_key and objection.attachment_key.endswith(".png")
        objection_id = objection.id
        db.session.remove()
    unknown = _file(client, token, nominee="Z999")
    assert unknown.status_code == 404 and "候选人不存在" in unknown.get_data(as_text=True)
    # A file that is not an image or PDF is refused by content.
    fake = _file(client, token, attachment=(io.BytesIO(b"MZ\x90\0" * 8), "a.png", "image/png"))
    assert fake.status_code == 422 and "附件只能是" in fake.get_data(as_text=True)
    # The script's way: JSON with a data URL and the token in the header.
    sent = client.post(
        FORM,
        json={
            "contact_name": "李女士",
            "contact_phone": "13900000000",
            "text": "该获奖人事迹与实际不符",
            "attachment": "data:image/png;base64," + base64.b64encode(PNG).decode(),
        },
        headers={"X-CSRF-Token": token},
    )
    assert sent.status_code == 201 and sent.json["status"] == "open"
    wrong = client.post(FORM, json={"contact_name": "李"}, headers={"X-CSRF-Token": token})
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "validation_error"
    # Open objections are not on the page; an answered one is, without any contact.
    assert "对公示结果有异议" not in client.get(PAGE).get_data(as_text=True)
    _ok(
        client.post(
            f"{ADMIN}/objections/{objection_id}",
            json={"decision": "dismissed", "answer": "经核实，事迹材料属实"},
            headers=org.headers("admin"),
        )
    )
    html = client.get(PAGE).get_data(as_text=True)
    assert f'data-testid="answer-{objection_id}"' in html and "经核实，事迹材料属实" in html
    assert "已驳回" in html and "对公示结果有异议，请核实" in html
    assert "13812345678" not in html and "王先生" not in html


def test_objections_are_limited_per_person_and_per_address(
    app: Flask, client: FlaskClient, org: Org, make_app: Callable[..., Flask]
) -> None:
    published_campaign(app, client, org)
    capped = make_app(OBJECTION_PER_PERSON=2, OBJECTION_ATTACHMENTS_PER_IP_PER_DAY=1)
    other = capped.test_client()
    token = csrf_from(other.get(FORM).get_data(as_text=True))
    assert _file(other, token, contact_phone="138 0000 0000").status_code == 201
    assert (
        _file(other, token, address="203.0.113.9", contact_phone="+86 13800000000").status_code
        == 201
    )
    # The same person from a third address: refused, and the API says the same.
    third = _file(other, token, address="203.0.113.10", contact_phone="138-0000-0000")
    assert third.status_code == 429 and "已达上限" in third.get_data(as_text=True)
    api = other.post(
        "/api/v1/campaigns/v1/objections",
        json={"contact_name": "王先生", "contact_phone": "13800000000", "text": "再次提出异议"},
    )
    assert api.status_code == 429 and api.json["error"]["code"] == "objection_person_limit"
    # Another person is heard; one address's attachments are capped per day.
    attach = (io.BytesIO(PNG), "p.png", "image/png")
    assert _file(other, token, contact_phone="13700000000", attachment=attach).status_code == 201
    again = _file(
        other,
        token,
        contact_phone="13600000000",
        attachment=(io.BytesIO(PNG), "p.png", "image/png"),
    )
    assert again.status_code == 429 and "带附件的异议" in again.get_data(as_text=True)
    # The page's own per-address rate limit.
    limited = make_app(CHALLENGE_IP_LIMIT="1/minute").test_client()
    token = csrf_from(limited.get(FORM).get_data(as_text=True))
    assert (
        _file(limited, token, address="192.0.2.50", contact_phone="13500000000").status_code == 201
    )
    over = _file(limited, token, address="192.0.2.50", contact_phone="13400000000")
    assert over.status_code == 429
    assert phone_key("0086 13800000000") == phone_key("13800000000") == "13800000000"


def test_after_the_window_the_page_stays_and_objections_close(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, *_ = published_campaign(app, client, org)
    with app.app_context():
        db.session.execute(update(ResultVersion).values(publicity_ends_at=utcnow() - timedelta(1)))
        db.session.commit()
        db.session.remove()
    html = client.get(PAGE).get_data(as_text=True)
    assert 'data-testid="publicity-ended"' in html and 'id="object-link"' not in html
    assert f"winner-{d1}" in html
    form = client.get(FORM)
    assert 'data-testid="objections-closed"' in form.get_data(as_text=True)
    token = csrf_from(form.get_data(as_text=True))
    late = _file(client, token)
    assert late.status_code == 409 and "不在公示期内" in late.get_data(as_text=True)
    # Closed: still shown.
    _ok(
        client.post(
            "/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=org.headers("admin")
        )
    )
    assert f"winner-{d1}" in client.get(PAGE).get_data(as_text=True)
