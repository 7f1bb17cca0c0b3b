"""一人一号: a campaign that requires a verified phone (rules.require_phone) refuses a vote whose
token lacks the pv claim, with no lookup on the vote path; the H5 page sends a phone browser to
the phone page."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask

from core.auth import issue_token
from core.types import utcnow
from tests.factories import Org


def _token(app: Flask, voter: int, **claims: object) -> dict[str, str]:
    with app.app_context():
        made = int(utcnow().timestamp() * 1000) - 86_400_000
        token = issue_token("voter", {"sub": voter, "p": "wechat", "c": made, **claims}, 3600)
    return {"Authorization": f"Bearer {token.token}"}


def test_a_phone_campaign_refuses_a_voter_without_a_verified_phone(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(rules={"require_phone": True})
    client = app.test_client()
    refused = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=_token(app, 1)
    )
    assert refused.status_code == 403
    assert refused.json["error"]["code"] == "phone_required"
    assert refused.json["error"]["message"] == "本活动需验证手机号后投票"
    # Nothing was spent: the same voter, verified, still has the whole day's votes.
    counted = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=_token(app, 1, pv=1)
    )
    assert counted.status_code == 201, counted.json
    assert counted.json["remaining_today"] == 4
    rules = client.get("/api/v1/campaigns/v1").json["rules"]
    assert rules["require_phone"] is True


def test_other_campaigns_take_any_voter(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    answer = app.test_client().post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=_token(app, 2)
    )
    assert answer.status_code == 201
    assert app.test_client().get("/api/v1/campaigns/v1").json["rules"]["require_phone"] is False


def test_the_rule_is_a_boolean() -> None:
    from marshmallow import ValidationError

    from campaigns.schemas import RulesSchema

    base = {"votes_per_day": 1, "votes_per_nominee_per_day": 1}
    assert RulesSchema().load(base)["require_phone"] is False
    try:
        RulesSchema().load({**base, "require_phone": "often"})
    except ValidationError as exc:
        assert "require_phone" in exc.messages
    else:
        raise AssertionError("a rule that is not a boolean was accepted")


def test_a_phone_browser_is_sent_to_the_phone_page(
    make_app: Callable[..., Flask], org: Org
) -> None:
    org.voting_campaign()
    phone_app = make_app(DEVICE_IDENTITY=False, SMS_PROVIDER="console")
    me = phone_app.test_client().get("/c/v1/me").json
    assert me["identity"] == "sms"
    assert phone_app.test_client().get("/c/v1/phone").status_code == 200
    without = make_app(DEVICE_IDENTITY=False).test_client().get("/c/v1/me").json
    assert without["identity"] == "none"
