"""The public reads (H5 pages and the public API): a constant number of SQL statements whatever
the number of nominees, a cached public view invalidated by the changes that alter it, H5 bodies
that are cacheable (ETag, 304) and carry no visitor state, the visitor's state apart (/me), and
page views counted by the page's beacon."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org, counted


def _statements(app: Flask, client: FlaskClient, path: str, **headers: str) -> int:
    """SQL statements one read runs (SQLite's explicit BEGIN aside: it is no query)."""
    with app.app_context():
        with counted() as seen:
            response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.get_data(as_text=True)[:300])
    return len([statement for statement in seen if statement.strip().upper() != "BEGIN"])


def _reads(slug: str, numbers: list[str]) -> dict[str, str]:
    middle = numbers[len(numbers) // 2]
    api = f"/api/v1/campaigns/{slug}"
    return {
        "h5 home": f"/c/{slug}",
        "h5 search": f"/c/{slug}?q=候选人1",
        "h5 category": f"/c/{slug}?category=doctor",
        "h5 cards page 2": f"/c/{slug}/cards?page=2",
        "h5 nominee": f"/c/{slug}/n/{middle}",
        "h5 ranking": f"/c/{slug}/ranking",
        "h5 me": f"/c/{slug}/me",
        "api nominees": f"{api}/nominees",
        "api nominees by votes": f"{api}/nominees?sort=votes&page=2&per_page=2",
        "api nominee": f"{api}/nominees/{middle}",
        "api ranking": f"{api}/ranking?category=doctor",
    }


def _counts(app: Flask, client: FlaskClient, slug: str, numbers: list[str]) -> dict[str, Any]:
    """Statements per read: on a cold view (just invalidated), then with the view cached."""
    from nominations import public_view

    out: dict[str, Any] = {}
    for name, path in _reads(slug, numbers).items():
        with app.app_context():
            public_view.invalidate(slug)
        out[name] = (_statements(app, client, path), _statements(app, client, path))
    return out


def _vote(client: FlaskClient, org: Org, slug: str, numbers: list[str]) -> None:
    for voter, number in enumerate(numbers[:3], start=1):
        response = client.post(
            f"/api/v1/campaigns/{slug}/votes", json={"nominee": number}, headers=org.voter(voter)
        )
        assert response.status_code == 201, response.json


def test_public_reads_take_as_many_statements_for_50_nominees_as_for_5(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    few = org.voting_campaign("s5", nominees=5)
    many = org.voting_campaign("s50", nominees=50)
    _vote(client, org, "s5", few)
    _vote(client, org, "s50", many)
    small, large = _counts(app, client, "s5", few), _counts(app, client, "s50", many)
    assert small == large, (small, large)
    for name, (cold, warm) in large.items():
        # Building the view: campaign, categories, cards, media (column-only); a nominee page
        # adds its deeds.
        expected_cold = {"h5 nominee": 5, "api nominee": 5}.get(name, 4)
        assert cold == expected_cold, (name, cold)
        # Cached: no SQL at all.
        assert warm == 0, (name, warm)


def test_the_view_is_rebuilt_after_an_approval_a_withdrawal_and_a_campaign_edit(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign("c1", max_per_unit=5)
    first = org.nomination("c1", status="approved", name="张丽华")
    listing = client.get("/api/v1/campaigns/c1/nominees").json
    assert [n["name"] for n in listing["items"]] == ["张丽华"]
    assert "张丽华" in client.get("/c/c1").get_data(as_text=True)

    # Approved through the API: the next read shows it, with its number.
    second = org.nomination("c1", status="submitted", name="王建国")
    review = client.post(
        f"/api/v1/nominations/{second}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    assert review.status_code == 200, review.json
    listing = client.get("/api/v1/campaigns/c1/nominees").json
    assert [n["name"] for n in listing["items"]] == ["张丽华", "王建国"]
    assert "王建国" in client.get("/c/c1").get_data(as_text=True)
    number = review.json["number"]
    assert client.get(f"/api/v1/campaigns/c1/nominees/{number}").status_code == 200

    # Withdrawn by the committee: gone from the list, its page and its number.
    withdrawn = client.post(
        f"/api/v1/nominations/{first}/withdraw",
        json={"comment": "本人申请退出"},
        headers=org.headers("admin"),
    )
    assert withdrawn.status_code == 200, withdrawn.json
    listing = client.get("/api/v1/campaigns/c1/nominees").json
    assert [n["name"] for n in listing["items"]] == ["王建国"]
    assert "张丽华" not in client.get("/c/c1").get_data(as_text=True)
    assert client.get("/api/v1/campaigns/c1/nominees/D001").status_code == 404

    # The campaign edited: its new title and its new category tab.
    edited = client.patch(
        "/api/v1/campaigns/c1", json={"title": "十大最美乡村医生"}, headers=org.headers("admin")
    )
    assert edited.status_code == 200, edited.json
    added = client.post(
        "/api/v1/campaigns/c1/categories",
        json={
            "code": "village",
            "name": "乡村医生",
            "prefix": "V",
            "award_count": 10,
            "max_per_unit": 1,
        },
        headers=org.headers("admin"),
    )
    assert added.status_code == 201, added.json
    home = client.get("/c/c1").get_data(as_text=True)
    assert "十大最美乡村医生" in home and "乡村医生</a>" in home


def test_a_rolled_back_change_keeps_the_view(app: Flask, client: FlaskClient, org: Org) -> None:
    from campaigns.models import Campaign
    from core.extensions import db, redis_store
    from core.signals import campaign_changed

    org.voting_campaign(nominees=1)
    assert client.get("/c/v1").status_code == 200
    with app.app_context():
        key = redis_store.key("public-view", "v1")
        before = redis_store.client.get(key)
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_changed.send(campaign)
        db.session.rollback()
        assert redis_store.client.get(key) == before
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_changed.send(campaign)
        db.session.commit()
        assert redis_store.client.get(key) != before
        db.session.remove()


def test_h5_bodies_are_public_with_an_etag_and_no_visitor_state(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(nominees=3)
    for path in ("/c/v1", f"/c/v1/n/{numbers[1]}", "/c/v1/ranking", "/c/v1/cards?page=1"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "public, max-age=5", path
        etag = response.headers["ETag"]
        assert "Set-Cookie" not in response.headers, path
        html = response.get_data(as_text=True)
        assert 'name="csrf-token" content=""' in html or "<html" not in html, path
        assert "data-identity" not in html and "remaining_today" not in html, path
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.get_data() == b"", path

    # A voter with a cookie, or inside WeChat, gets the very same body.
    anonymous = client.get("/c/v1").get_data(as_text=True)
    token = client.get("/c/v1/me").json["csrf_token"]
    assert client.post(
        "/c/v1/voter", json={"device_id": "phone-0001"}, headers={"X-CSRF-Token": token}
    ).json == {"identity": "ready"}
    assert client.get_cookie("zm_voter") is not None
    assert client.get("/c/v1").get_data(as_text=True) == anonymous
    assert token not in anonymous

    # A vote changes the count, hence the body and its ETag: at once when the process reuses no
    # rendered body without reading the counts (0 s, the default under test; 1 s otherwise) ...
    monkeypatch.setitem(app.config, "H5_RENDER_SECONDS", 0)
    etag = client.get("/c/v1").headers["ETag"]
    vote = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers={"X-CSRF-Token": token}
    )
    assert vote.status_code == 201, vote.json
    fresh = client.get("/c/v1", headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert f'data-number="{numbers[0]}">1</b>' in fresh.get_data(as_text=True)

    # ... and, when it keeps one for a while, only after that while (here: never in the test).
    monkeypatch.setitem(app.config, "H5_RENDER_SECONDS", 3600)
    kept = client.get("/c/v1")
    vote = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers={"X-CSRF-Token": token}
    )
    assert vote.status_code == 201, vote.json
    assert client.get("/c/v1").get_data() == kept.get_data()
    monkeypatch.setitem(app.config, "H5_RENDER_SECONDS", 0)
    assert f'data-number="{numbers[1]}">1</b>' in client.get("/c/v1").get_data(as_text=True)


def test_me_tells_the_visitor_state_without_sql(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 3})
    state = client.get("/c/v1/me")
    assert state.headers["Cache-Control"] == "no-store, private"
    assert state.headers["Vary"] == "Cookie"
    body = state.json
    assert body["identity"] == "device" and body["stage"] == "open"
    assert re.fullmatch(r"[0-9a-f]{64}", body["csrf_token"])
    assert any(c.startswith("zm_csrf=") for c in state.headers.getlist("Set-Cookie"))
    token = body["csrf_token"]
    client.post("/c/v1/voter", json={"device_id": "phone-0002"}, headers={"X-CSRF-Token": token})
    client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers={"X-CSRF-Token": token}
    )
    assert _statements(app, client, "/c/v1/me") == 0
    body = client.get("/c/v1/me").json
    assert body["identity"] == "ready" and body["remaining_today"] == 2
    assert body["csrf_token"] == token  # the same seed: the page's token stays valid
    assert client.get("/c/nope/me").status_code == 404


def test_the_beacon_counts_nominee_page_views_and_the_page_itself_does_not(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    from campaigns.models import Campaign
    from core.extensions import db
    from voting.fraud import page_views

    numbers = org.voting_campaign(nominees=2)

    def views() -> dict[str, int]:
        with app.app_context():
            campaign = db.session.query(Campaign).filter_by(slug="v1").one()
            seen: dict[str, int] = {}
            for (number, _minute), count in page_views(campaign).items():
                seen[number] = seen.get(number, 0) + count
            db.session.remove()
        return seen

    assert client.get(f"/c/v1/n/{numbers[0]}").status_code == 200
    assert views() == {}
    for _ in range(3):
        assert client.post("/c/v1/beacon", json={"number": numbers[0]}).status_code == 204
    assert client.post("/c/v1/beacon", json={"number": numbers[1].lower()}).status_code == 204
    assert views() == {numbers[0]: 3, numbers[1]: 1}

    # A page without a nominee sends no number: nothing counted (its call gives the device cookie).
    assert client.post("/c/v1/beacon", json={}).status_code == 204
    assert views() == {numbers[0]: 3, numbers[1]: 1}
    for body in ({"number": ""}, {"number": 7}, {"number": "X" * 40}):
        refused = client.post("/c/v1/beacon", json=body)
        assert refused.status_code == 422, body
        assert refused.json["error"]["code"] == "validation_error"
    unknown = client.post("/c/v1/beacon", json={"number": "Z999"})
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "nominee_not_found"
    assert client.post("/c/nope/beacon", json={"number": "D001"}).status_code == 404
    assert views() == {numbers[0]: 3, numbers[1]: 1}
