"""地区限制: a campaign restricted to regions refuses voters the offline IP data places outside."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core import geo
from core.extensions import db
from tests.factories import Org, campaign_body
from voting import cast, state
from voting import services as voting_services
from voting.keys import CampaignKeys

HANGZHOU_MOBILE = "111.0.0.1"  # 中国|浙江省|杭州市|移动
SHANGHAI_MOBILE = "120.204.1.1"  # 中国|上海|上海市|移动
AMAZON_US = "52.1.1.1"


def _vote(client: FlaskClient, org: Org, voter: int, number: str, ip: str, **headers: str) -> Any:
    return client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": number},
        headers={**org.voter(voter), **headers},
        environ_base={"REMOTE_ADDR": ip},
    )


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the vote path looks up (the real lookup still answers)."""
    seen: list[str] = []
    real = geo.lookup

    def counting(ip: str) -> geo.Region | None:
        seen.append(ip)
        return real(ip)

    monkeypatch.setattr(geo, "lookup", counting)
    return seen


def test_restricted_campaign_refuses_outside_and_accepts_inside(
    client: FlaskClient, org: Org, lookups: list[str]
) -> None:
    numbers = org.voting_campaign(rules={"regions": ["杭州市"]})  # stored as 浙江省杭州市
    inside = _vote(client, org, 1, numbers[0], HANGZHOU_MOBILE)
    assert inside.status_code == 201, inside.json
    outside = _vote(client, org, 2, numbers[0], SHANGHAI_MOBILE)
    assert outside.status_code == 403
    error = outside.json["error"]
    assert error["code"] == "region_restricted"
    assert error["message"] == "本活动仅限浙江省杭州市地区的用户参与投票"
    assert error["details"] == {
        "allowed_regions": ["浙江省杭州市"],
        "region": "上海市 中国移动",
    }
    abroad = _vote(client, org, 3, numbers[0], AMAZON_US)
    assert abroad.status_code == 403 and abroad.json["error"]["code"] == "region_restricted"
    # Addresses the data cannot place may vote: IPv6, private (the test client's loopback).
    assert _vote(client, org, 4, numbers[0], "2408:8000::1").status_code == 201
    assert _vote(client, org, 5, numbers[0], "127.0.0.1").status_code == 201
    assert lookups == [HANGZHOU_MOBILE, SHANGHAI_MOBILE, AMAZON_US, "2408:8000::1", "127.0.0.1"]
    # A refused vote is not counted and spends no quota: only the three admitted ones count.
    listing = client.get("/api/v1/campaigns/v1/nominees").json["items"]
    assert next(i for i in listing if i["number"] == numbers[0])["votes"] == 3
    again = _vote(client, org, 2, numbers[1], HANGZHOU_MOBILE)  # voter 2, now from Hangzhou
    assert again.status_code == 201 and again.json["remaining_today"] == 4


def test_a_province_allows_all_its_cities(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(rules={"regions": ["浙江省", "北京市"]})
    assert _vote(client, org, 1, numbers[0], HANGZHOU_MOBILE).status_code == 201
    assert _vote(client, org, 2, numbers[0], "117.136.0.1").status_code == 201  # 北京 移动
    refused = _vote(client, org, 3, numbers[0], SHANGHAI_MOBILE)
    assert refused.status_code == 403
    assert refused.json["error"]["message"] == "本活动仅限北京、浙江省地区的用户参与投票"


def test_unrestricted_campaign_never_looks_up(
    client: FlaskClient, org: Org, lookups: list[str]
) -> None:
    numbers = org.voting_campaign()
    for voter, ip in enumerate((SHANGHAI_MOBILE, AMAZON_US, HANGZHOU_MOBILE)):
        assert _vote(client, org, voter, numbers[0], ip).status_code == 201
    assert lookups == []


def test_the_restriction_follows_the_published_campaign(
    client: FlaskClient, org: Org, ctx: Flask
) -> None:
    """The process keeps what it read of the campaign's meta, but a campaign published again
    (here: deleted from Redis and made anew under the same slug) is read again at once."""
    numbers = org.voting_campaign(rules={"regions": ["浙江省"]})
    assert _vote(client, org, 1, numbers[0], SHANGHAI_MOBILE).status_code == 403
    with ctx.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert campaign is not None
        campaign.rules = {**campaign.rules, "regions": []}
        db.session.commit()
        state.sync_campaign(campaign)
    assert _vote(client, org, 1, numbers[0], SHANGHAI_MOBILE).status_code == 201


def test_forwarded_address_through_a_trusted_proxy_decides(
    make_app: Callable[..., Flask], org: Org
) -> None:
    numbers = org.voting_campaign(rules={"regions": ["浙江省"]})
    proxied = make_app(TRUSTED_PROXIES=1).test_client()
    # One trusted hop: the last X-Forwarded-For entry is the client; the first is the client's own.
    outside = _vote(
        proxied, org, 1, numbers[0], "10.0.0.2",
        **{"X-Forwarded-For": f"{HANGZHOU_MOBILE}, {SHANGHAI_MOBILE}"},
    )  # fmt: skip
    assert outside.status_code == 403 and outside.json["error"]["code"] == "region_restricted"
    inside = _vote(
        proxied, org, 2, numbers[0], "10.0.0.2",
        **{"X-Forwarded-For": f"{SHANGHAI_MOBILE}, {HANGZHOU_MOBILE}"},
    )  # fmt: skip
    assert inside.status_code == 201
    # Not an address: the peer (the proxy, private here) is the address; the data cannot place it.
    garbage = _vote(proxied, org, 3, numbers[0], "10.0.0.2", **{"X-Forwarded-For": "浙江省"})
    assert garbage.status_code == 201
    # Without a trusted proxy a forged header changes nothing: the peer in Shanghai is refused.
    direct = make_app().test_client()
    forged = _vote(
        direct, org, 4, numbers[0], SHANGHAI_MOBILE, **{"X-Forwarded-For": HANGZHOU_MOBILE}
    )
    assert forged.status_code == 403


def test_campaign_rules_validate_region_names(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    rules = {"votes_per_day": 5, "votes_per_nominee_per_day": 1}
    unknown = campaign_body(rules={**rules, "regions": ["浙江省", "火星省", "杭州"]})
    response = client.post("/api/v1/campaigns", json=unknown, headers=admin)
    assert response.status_code == 422
    message = str(response.json["error"]["details"]["fields"]["rules"]["regions"])
    assert "火星省" in message and "杭州" in message and "浙江省、" not in message
    not_text = campaign_body(rules={**rules, "regions": [42]})
    assert client.post("/api/v1/campaigns", json=not_text, headers=admin).status_code == 422
    too_many = campaign_body(rules={**rules, "regions": ["浙江省"] * 101})
    assert client.post("/api/v1/campaigns", json=too_many, headers=admin).status_code == 422
    named = campaign_body(rules={**rules, "regions": ["杭州市", "北京市", "浙江省杭州市"]})
    made = client.post("/api/v1/campaigns", json=named, headers=admin)
    assert made.status_code == 201, made.json
    assert made.json["rules"]["regions"] == ["浙江省杭州市", "北京"]  # the data set's names, once
    plain = client.post("/api/v1/campaigns", json=campaign_body("c2"), headers=admin)
    assert plain.json["rules"]["regions"] == []


def test_region_rule_is_in_the_openapi_document(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    regions = spec["components"]["schemas"]["Rules"]["properties"]["regions"]
    assert regions["type"] == "array" and "地区限制" in regions["description"]
    vote = spec["paths"]["/api/v1/campaigns/{slug}/votes"]["post"]
    assert "region_restricted" in vote["responses"]["403"]["description"]


def test_cast_reads_the_rule_from_the_meta(org: Org, ctx: Flask) -> None:
    org.voting_campaign(rules={"regions": ["浙江省", "上海"]})

    local = cast._campaign_local(CampaignKeys.of("v1"), "v1")
    zone, allowed = local.zone, local.regions
    assert str(zone) == "Asia/Shanghai" and allowed == frozenset({"浙江省", "上海"})


def test_the_vote_browser_places_each_address(app: Flask, client: FlaskClient, org: Org) -> None:
    """The committee sees where the offline data places a vote's address (no restriction
    needed): a carrier and city, a cloud provider, or nothing for what it cannot place."""
    numbers = org.voting_campaign()
    assert _vote(client, org, 1, numbers[0], HANGZHOU_MOBILE).status_code == 201
    assert _vote(client, org, 2, numbers[0], "2408:8000::1").status_code == 201
    with app.app_context():
        voting_services.drain_campaign("v1")
        db.session.remove()
    rows = client.get("/api/v1/admin/campaigns/v1/votes", headers=org.headers("admin")).json
    regions = {row["ip"]: row["region"] for row in rows["items"]}
    assert regions == {HANGZHOU_MOBILE: "浙江省杭州市 中国移动", "2408:8000::1": None}
