"""Hard rate limits, the captcha challenge past the soft per-address limit."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable

import pytest
from flask import Flask
from PIL import Image

from core.ratelimit import parse_limits
from tests.factories import Org
from voting import challenges


def test_parse_limits() -> None:
    assert parse_limits("120/minute; 1000/hours") == [(120, 60), (1000, 3600)]
    with pytest.raises(ValueError):
        parse_limits("lots/minute")


def test_per_address_hard_limit(make_app: Callable[..., Flask], org: Org) -> None:
    numbers = org.voting_campaign(nominees=5, rules={"votes_per_day": 5})
    strict = make_app(VOTE_IP_PER_MINUTE=3).test_client()
    codes = []
    for voter in range(5):
        response = strict.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[voter]}, headers=org.voter(voter)
        )
        codes.append(response.status_code)
    assert codes == [201, 201, 201, 429, 429]
    assert response.json["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    # Another address is not slowed by the first one's pressure.
    other = strict.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[4]},
        headers=org.voter(9),
        environ_base={"REMOTE_ADDR": "10.20.30.40"},
    )
    assert other.status_code == 201


def test_per_voter_hard_limit(make_app: Callable[..., Flask], org: Org) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 5})
    strict = make_app(VOTE_VOTER_PER_MINUTE=2).test_client()
    me = org.voter(1)
    codes = [
        strict.post("/api/v1/campaigns/v1/votes", json={"nominee": n}, headers=me).status_code
        for n in numbers
    ]
    assert codes == [201, 201, 429]


def test_device_identities_per_address_are_limited(make_app: Callable[..., Flask]) -> None:
    strict = make_app(VOTER_CREATE_IP_LIMIT="2/minute").test_client()
    codes = [
        strict.post("/api/v1/voters/device", json={"device_id": f"device-{i:08d}"}).status_code
        for i in range(3)
    ]
    assert codes == [201, 201, 429]


def test_trusted_proxy_hops_decide_the_client_address(
    make_app: Callable[..., Flask], org: Org
) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    # Behind one trusted proxy, X-Forwarded-For's last hop is the client.
    proxied = make_app(TRUSTED_PROXIES=1, VOTE_IP_PER_MINUTE=1).test_client()
    for voter, client_address in ((1, "1.2.3.4"), (2, "5.6.7.8")):
        response = proxied.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[0]},
            headers={**org.voter(voter), "X-Forwarded-For": f"9.9.9.9, {client_address}"},
        )
        assert response.status_code == 201
    # With no trusted proxy a forged header changes nothing: both count against 127.0.0.1.
    direct = make_app(VOTE_IP_PER_MINUTE=1).test_client()
    codes = [
        direct.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[1]},
            headers={**org.voter(10 + i), "X-Forwarded-For": f"7.7.7.{i}"},
        ).status_code
        for i in range(2)
    ]
    assert codes == [201, 429]


def test_soft_limit_asks_for_a_challenge_and_a_pass_lets_the_vote_through(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"ip_soft_limit": 2})
    client = app.test_client()
    for voter in range(2):
        assert (
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(voter)
            ).status_code
            == 201
        )
    me = org.voter(5)
    asked = client.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=me)
    assert asked.status_code == 428 and asked.json["error"]["code"] == "challenge_required"

    monkeypatch.setattr(challenges, "_captcha_text", lambda: "K7MX")
    challenge = client.post("/api/v1/challenges").json
    header, data = challenge["image"].split(",", 1)
    assert header == "data:image/png;base64"
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert image.format == "PNG" and image.size == (176, 60)
    assert "K7MX" not in challenge["image"]

    wrong = client.post(
        f"/api/v1/challenges/{challenge['challenge_id']}", json={"answer": "AAAA"}, headers=me
    )
    assert wrong.status_code == 422 and wrong.json["error"]["code"] == "challenge_failed"
    # One try per challenge: the right answer after a wrong one is too late.
    late = client.post(
        f"/api/v1/challenges/{challenge['challenge_id']}", json={"answer": "K7MX"}, headers=me
    )
    assert late.status_code == 410 and late.json["error"]["code"] == "challenge_expired"

    fresh = client.post("/api/v1/challenges").json
    solved = client.post(
        f"/api/v1/challenges/{fresh['challenge_id']}", json={"answer": "k7mx"}, headers=me
    )
    assert solved.status_code == 200
    token = solved.json["challenge_pass"]
    passed = client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[0]},
        headers={**me, "X-Challenge-Pass": token},
    )
    assert passed.status_code == 201
    # The pass is this voter's: another voter from the same address is still asked.
    stolen = client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[1]},
        headers={**org.voter(6), "X-Challenge-Pass": token},
    )
    assert stolen.status_code == 428
