"""The 我的投票 page: a visitor's own votes with their states, never cached, and after 公示 a
receipt link per counted vote that the API answers for that visitor's cookie alone."""

from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.auth import issue_token
from core.extensions import db
from core.types import utcnow
from core.web import VOTER_COOKIE
from nominations import public_view
from tests.factories import Org
from voting import receipt_check, services
from voting.models import Vote


def _cookie_client(app: Flask, voter: int) -> FlaskClient:
    client = app.test_client()
    with app.app_context():
        made = int((utcnow() - timedelta(days=30)).timestamp() * 1000)
        token = issue_token("voter", {"sub": voter, "p": "device", "c": made}, 3600).token
    client.set_cookie(VOTER_COOKIE, token)
    return client


def _vote(client: FlaskClient, org: Org, voter: int, number: str) -> str:
    answer = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
    )
    assert answer.status_code == 201, answer.json
    return str(answer.json["vote_id"])


def _publicity(app: Flask) -> None:
    with app.app_context():
        services.drain_campaign("v1")
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert campaign is not None
        campaign.phase = "publicity"
        db.session.commit()
        public_view.invalidate("v1")
        db.session.remove()


def test_the_page_lists_only_the_visitors_votes_and_is_private(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3)
    api = app.test_client()
    mine = [_vote(api, org, 11, n) for n in numbers[:2]]
    theirs = _vote(api, org, 12, numbers[2])

    anonymous = app.test_client().get("/c/v1/my-votes")
    assert anonymous.status_code == 200
    html = anonymous.get_data(as_text=True)
    assert 'data-testid="my-votes-anonymous"' in html and mine[0] not in html
    assert "no-store" in anonymous.headers["Cache-Control"]

    page = _cookie_client(app, 11).get("/c/v1/my-votes")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    assert page.headers["Vary"] == "Cookie"
    assert all(f'data-testid="vote-{v}"' in html for v in mine) and theirs not in html
    assert "正在计入" in html  # not drained yet
    assert 'data-testid="nav-my-votes"' in html and "receipt-link" not in html
    assert "结果公示开始后" in html

    with app.app_context():
        services.drain_campaign("v1")
        vote = db.session.get(Vote, mine[1])
        assert vote is not None
        vote.status, vote.status_reason = "invalid", "flag:4"
        db.session.commit()
        db.session.remove()
    html = _cookie_client(app, 11).get("/c/v1/my-votes").get_data(as_text=True)
    assert "已计入" in html and "已核减" in html and "刷票线索 #4" in html

    nobody = _cookie_client(app, 99).get("/c/v1/my-votes").get_data(as_text=True)
    assert 'data-testid="my-votes-empty"' in nobody

    forged = app.test_client()
    forged.set_cookie(VOTER_COOKIE, "forged.token.value")
    assert 'data-testid="my-votes-anonymous"' in forged.get("/c/v1/my-votes").get_data(as_text=True)
    assert app.test_client().get("/c/nope/my-votes").status_code == 404


def test_after_publicity_each_counted_vote_has_a_receipt_only_its_voter_reads(
    app: Flask, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=2)
    api = app.test_client()
    counted = _vote(api, org, 21, numbers[0])
    other = _vote(api, org, 22, numbers[0])
    _publicity(app)

    client = _cookie_client(app, 21)
    html = client.get("/c/v1/my-votes").get_data(as_text=True)
    assert 'data-testid="receipt-link"' in html and 'data-testid="campaign-root"' in html
    link = f"/api/v1/campaigns/v1/votes/mine/{counted}/receipt"
    assert link in html
    receipt = client.get(link)  # the cookie authenticates the download
    assert receipt.status_code == 200 and receipt.json["vote_id"] == counted
    published = json.loads(client.get("/api/v1/campaigns/v1/receipts/leaves").get_data())
    assert receipt_check.check_receipt(receipt.json, published) == []
    assert published["root"] in html

    # another visitor's cookie does not open this receipt, nor does no cookie at all
    stranger = _cookie_client(app, 22).get(link)
    assert stranger.status_code == 404
    assert app.test_client().get(link).status_code == 401
    assert other not in html
