"""The vote endpoint: the contract, quotas, idempotency, refusals."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from core.types import utcnow
from tests.factories import Org


def _vote(client: FlaskClient, headers: dict[str, str], number: str, slug: str = "v1", **kw):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/campaigns/{slug}/votes", json={"nominee": number}, headers=headers, **kw
    )


def test_device_voter_then_vote(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    made = client.post("/api/v1/voters/device", json={"device_id": "device-abc-123"})
    assert made.status_code == 201
    headers = {"Authorization": f"Bearer {made.json['voter_token']}"}
    response = _vote(client, headers, numbers[0].lower())
    assert response.status_code == 201, response.json
    body = response.json
    assert body["nominee"] == numbers[0]
    assert body["nominee_votes"] == 1
    assert body["remaining_today"] == 4
    assert body["status"] == "valid"
    assert body["vote_id"].split("-")[1] == "1"  # campaign-sequence-random
    listing = client.get("/api/v1/campaigns/v1/nominees").json["items"]
    voted = next(item for item in listing if item["number"] == numbers[0])
    assert voted["votes"] == 1 and voted["rank"] == 1
    others = [item for item in listing if item["number"] != numbers[0]]
    assert all(item["votes"] == 0 and item["rank"] == 2 for item in others)
    # The same device is the same voter: a second token cannot vote again for that nominee.
    again = client.post("/api/v1/voters/device", json={"device_id": "device-abc-123"})
    second = _vote(client, {"Authorization": f"Bearer {again.json['voter_token']}"}, numbers[0])
    assert second.status_code == 429 and second.json["error"]["code"] == "nominee_daily_limit"


def test_quotas_per_nominee_and_per_day(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(
        nominees=4, rules={"votes_per_day": 3, "votes_per_nominee_per_day": 1}
    )
    me = org.voter(1)
    assert _vote(client, me, numbers[0]).json["remaining_today"] == 2
    same = _vote(client, me, numbers[0])
    assert same.status_code == 429
    assert same.json["error"] == {
        **same.json["error"],
        "code": "nominee_daily_limit",
        "details": {"remaining_today": 2},
    }
    assert "明天" in same.json["error"]["message"]
    assert _vote(client, me, numbers[1]).status_code == 201
    assert _vote(client, me, numbers[2]).json["remaining_today"] == 0
    spent = _vote(client, me, numbers[3])
    assert spent.status_code == 429 and spent.json["error"]["code"] == "daily_quota_exhausted"
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json
    assert [item["votes"] for item in ranking["items"]] == [1, 1, 1, 0]
    assert [item["rank"] for item in ranking["items"]] == [1, 1, 1, 4]


def test_idempotency_key_replays_the_first_answer(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    me = org.voter(7)
    headers = {**me, "Idempotency-Key": "tap-1"}
    first = _vote(client, headers, numbers[0])
    second = _vote(client, headers, numbers[0])
    assert first.status_code == second.status_code == 201
    assert first.json == second.json
    assert second.headers["Idempotent-Replayed"] == "true"
    detail = client.get(f"/api/v1/campaigns/v1/nominees/{numbers[0]}").json
    assert detail["votes"] == 1
    # Another voter's identical key is a different request.
    assert (
        _vote(client, {**org.voter(8), "Idempotency-Key": "tap-1"}, numbers[0]).json[
            "nominee_votes"
        ]
        == 2
    )


def test_closed_campaign_and_unknown_nominee(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    me = org.voter(1)
    missing = _vote(client, me, "D999")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "nominee_not_found"
    admin = org.headers("admin")
    client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin)
    closed = _vote(client, me, numbers[0])
    assert closed.status_code == 403 and closed.json["error"]["code"] == "voting_closed"


def test_voting_window_is_enforced(client: FlaskClient, org: Org) -> None:
    now = utcnow()
    org.voting_campaign(  # a window that closed yesterday
        voting_end=(now - timedelta(days=1)).isoformat(),
        voting_start=(now - timedelta(days=2)).isoformat(),
        nomination_start=(now - timedelta(days=30)).isoformat(),
    )
    response = _vote(client, org.voter(1), "D001")
    assert response.status_code == 403 and response.json["error"]["code"] == "voting_closed"


def test_withdrawn_nominee_stops_being_votable(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    admin = org.headers("admin")
    nid = client.get("/api/v1/campaigns/v1/nominations?status=approved", headers=admin).json[
        "items"
    ][0]["id"]
    client.post(f"/api/v1/nominations/{nid}/withdraw", json={"comment": "本人退出"}, headers=admin)
    response = _vote(client, org.voter(1), numbers[0])
    assert response.status_code == 404


def test_voter_identity_is_only_the_signed_token(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    no_token = client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]})
    assert no_token.status_code == 401 and no_token.json["error"]["code"] == "invalid_voter"
    staff = _vote(client, org.headers("admin"), numbers[0])
    assert staff.status_code == 401  # a staff token is not a voter token
    token = org.voter(1)["Authorization"]
    tampered = _vote(client, {"Authorization": token[:-2] + "xx"}, numbers[0])
    assert tampered.status_code == 401
    smuggled = client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[0], "openid": "o-fake", "voter_id": 99},
        headers=org.voter(1),
    )
    assert smuggled.status_code == 422


def test_expired_voter_token(app: Flask, client: FlaskClient, org: Org) -> None:
    import time

    from core.auth import issue_token

    numbers = org.voting_campaign()
    with app.app_context():
        token = issue_token("voter", {"sub": 1, "p": "device", "c": 0}, 1).token
    time.sleep(2.1)
    response = _vote(client, {"Authorization": f"Bearer {token}"}, numbers[0])
    assert response.status_code == 401 and response.json["error"]["code"] == "invalid_voter"


def test_malformed_vote_bodies(client: FlaskClient, org: Org) -> None:
    org.voting_campaign()
    me = org.voter(1)
    assert (
        client.post(
            "/api/v1/campaigns/v1/votes", data="{", content_type="application/json", headers=me
        ).json["error"]["code"]
        == "malformed_json"
    )
    assert client.post("/api/v1/campaigns/v1/votes", json={}, headers=me).status_code == 422
    assert (
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": ["D001"]}, headers=me
        ).status_code
        == 422
    )


def test_dead_redis_fails_closed(make_app: Callable[..., Flask], org: Org) -> None:
    numbers = org.voting_campaign()
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = broken.test_client().post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(1)
    )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"


def test_device_provider_can_be_off(make_app: Callable[..., Flask]) -> None:
    off = make_app(DEVICE_IDENTITY=False)
    response = off.test_client().post("/api/v1/voters/device", json={"device_id": "device-abc-123"})
    assert response.status_code == 404 and response.json["error"]["code"] == "provider_disabled"


def test_hidden_counts(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(rules={"hide_counts": True})
    answer = _vote(client, org.voter(1), numbers[0]).json
    assert answer["nominee_votes"] is None
    card = client.get("/api/v1/campaigns/v1/nominees").json["items"][0]
    assert "votes" not in card and "rank" not in card
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json
    assert ranking["hidden"] is True and ranking["items"] == []


def test_public_reads_carry_etags(client: FlaskClient, org: Org) -> None:
    org.voting_campaign()
    first = client.get("/api/v1/campaigns/v1/ranking?category=doctor")
    assert first.headers["Cache-Control"] == "public, max-age=5"
    again = client.get(
        "/api/v1/campaigns/v1/ranking?category=doctor",
        headers={"If-None-Match": first.headers["ETag"]},
    )
    assert again.status_code == 304


def test_sort_by_votes(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_nominee_per_day": 1})
    for voter in range(3):
        _vote(client, org.voter(voter), numbers[2])
    _vote(client, org.voter(9), numbers[1])
    ordered = client.get("/api/v1/campaigns/v1/nominees?sort=votes").json["items"]
    assert [item["number"] for item in ordered] == [numbers[2], numbers[1], numbers[0]]


def test_my_quota_counts_down_with_each_vote(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 5})
    voter = org.voter(41)
    before = client.get("/api/v1/campaigns/v1/votes/me", headers=voter)
    assert before.status_code == 200
    assert before.json["remaining_today"] == 5 and before.json["voted_today"] == {}
    assert (
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[1]}, headers=voter
        ).status_code
        == 201
    )
    after = client.get("/api/v1/campaigns/v1/votes/me", headers=voter).json
    assert after["remaining_today"] == 4
    assert after["voted_today"] == {numbers[1]: 1}
    assert client.get("/api/v1/campaigns/v1/votes/me").json["error"]["code"] == "invalid_voter"
