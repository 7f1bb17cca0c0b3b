"""WeChat authorisation and JS-SDK through the HTTP routes, against a fake WeChat on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org
from tests.pages.browser import page_csrf
from tests.voting.wechat_fake import FakeWeChat

APP_ID = "wx-route-test"
APP_SECRET = "route-secret"


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat(app_id=APP_ID, secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def wx(app: Flask, make_app: Callable[..., Flask], fake: FakeWeChat) -> FlaskClient:
    configured = make_app(
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_API_BASE=fake.base,
        WECHAT_TIMEOUT=1,
    )
    return configured.test_client()


def _start(client: FlaskClient, next_path: str = "/c/v1/n/D001") -> str:
    response = client.get(f"/api/v1/wechat/oauth/start?campaign=v1&next={next_path}")
    assert response.status_code == 302, response.get_data(as_text=True)
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["state"][0]


def test_start_redirects_to_snsapi_base_and_binds_the_state_to_the_browser(
    wx: FlaskClient, org: Org
) -> None:
    org.voting_campaign()
    response = wx.get("/api/v1/wechat/oauth/start?campaign=v1&next=/c/v1")
    location = urlsplit(response.headers["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "open.weixin.qq.com"
    assert query["appid"] == [APP_ID] and query["scope"] == ["snsapi_base"]
    assert query["redirect_uri"] == ["http://localhost/api/v1/wechat/oauth/callback"]
    assert response.headers["Location"].endswith("#wechat_redirect")
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("zm_oauth=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_callback_logs_in_sets_the_voter_cookie_and_the_vote_works(
    wx: FlaskClient, org: Org, fake: FakeWeChat
) -> None:
    numbers = org.voting_campaign()
    state = _start(wx, f"/c/v1/n/{numbers[0]}")
    fake.add_code("code-1", "openid-alice")
    response = wx.get(f"/api/v1/wechat/oauth/callback?code=code-1&state={state}")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/c/v1/n/{numbers[0]}"
    assert wx.get_cookie("zm_voter") is not None
    assert "HttpOnly" in response.headers.getlist("Set-Cookie")[0]
    forged = wx.post("/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]})
    assert forged.status_code == 403 and forged.json["error"]["code"] == "csrf_failed"
    token = page_csrf(wx, "/portal/login")
    vote = wx.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers={"X-CSRF-Token": token}
    )
    assert vote.status_code == 201, vote.json


def test_a_voter_who_proved_a_phone_keeps_the_claim_at_the_next_login(
    wx: FlaskClient, org: Org, fake: FakeWeChat
) -> None:
    from core.auth import read_token
    from core.extensions import db
    from core.types import utcnow
    from voting import identity
    from voting.models import VoterPhone

    org.voting_campaign()

    def login(code: str) -> dict[str, object]:
        fake.add_code(code, "openid-dora")
        state = _start(wx)
        answer = wx.get(f"/api/v1/wechat/oauth/callback?code={code}&state={state}&format=json")
        assert answer.status_code == 200, answer.json
        with wx.application.app_context():
            return read_token("voter", answer.json["voter_token"])

    assert "pv" not in login("code-p1")
    with wx.application.app_context():
        voter = identity.voter_for("wechat", "openid-dora")
        db.session.add(VoterPhone(phone_hash="f" * 64, voter_id=voter.id, verified_at=utcnow()))
        db.session.commit()
    assert login("code-p2")["pv"] == 1


def test_callback_can_answer_json_for_api_clients(
    wx: FlaskClient, org: Org, fake: FakeWeChat
) -> None:
    org.voting_campaign()
    state = _start(wx)
    fake.add_code("code-2", "openid-bob")
    response = wx.get(f"/api/v1/wechat/oauth/callback?code=code-2&state={state}&format=json")
    assert response.status_code == 200
    assert set(response.json) == {"voter_token", "expires_at", "next"}


def test_replayed_code_is_refused(wx: FlaskClient, org: Org, fake: FakeWeChat) -> None:
    org.voting_campaign()
    fake.add_code("code-3", "openid-carol")
    first = wx.get(f"/api/v1/wechat/oauth/callback?code=code-3&state={_start(wx)}")
    assert first.status_code == 302
    again = wx.get(f"/api/v1/wechat/oauth/callback?code=code-3&state={_start(wx)}")
    assert again.status_code == 400 and again.json["error"]["code"] == "oauth_code_invalid"


def test_state_is_single_use_and_bound_to_its_browser(
    wx: FlaskClient, org: Org, fake: FakeWeChat, make_app: Callable[..., Flask]
) -> None:
    org.voting_campaign()
    state = _start(wx)
    fake.add_code("code-4", "openid-dave")
    # Another browser (no nonce cookie) presenting this state is refused, and burns nothing.
    stranger = wx.application.test_client()
    foreign = stranger.get(f"/api/v1/wechat/oauth/callback?code=code-4&state={state}")
    assert foreign.status_code == 400 and foreign.json["error"]["code"] == "oauth_state_invalid"
    assert wx.get(f"/api/v1/wechat/oauth/callback?code=code-4&state={state}").status_code == 302
    reused = wx.get(f"/api/v1/wechat/oauth/callback?code=code-4&state={state}")
    assert reused.status_code == 400 and reused.json["error"]["code"] == "oauth_state_invalid"
    missing = wx.get("/api/v1/wechat/oauth/callback?code=code-4")
    assert missing.status_code == 400


def test_snapshot_mode_users_cannot_vote(wx: FlaskClient, org: Org, fake: FakeWeChat) -> None:
    org.voting_campaign()
    fake.add_code("code-5", "virtual-openid", snapshot=True)
    response = wx.get(f"/api/v1/wechat/oauth/callback?code=code-5&state={_start(wx)}")
    assert response.status_code == 403 and response.json["error"]["code"] == "snapshot_user"
    assert wx.get_cookie("zm_voter") is None


def test_next_cannot_point_off_site(wx: FlaskClient, org: Org, fake: FakeWeChat) -> None:
    org.voting_campaign()
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        fake.add_code(f"code-{evil}", "openid-erin")
        state = _start(wx, evil)
        response = wx.get(f"/api/v1/wechat/oauth/callback?code=code-{evil}&state={state}")
        assert response.headers["Location"] == "/c/v1", evil


def test_jssdk_signature(wx: FlaskClient, fake: FakeWeChat) -> None:
    response = wx.get("/api/v1/wechat/jssdk?url=https://vote.example.cn/c/v1%23share")
    assert response.status_code == 200
    assert set(response.json) == {"appId", "timestamp", "nonceStr", "signature"}
    assert response.json["appId"] == APP_ID and len(response.json["signature"]) == 40


def test_wechat_off_when_not_configured(client: FlaskClient, org: Org) -> None:
    org.voting_campaign()
    response = client.get("/api/v1/wechat/oauth/start?campaign=v1")
    assert response.status_code == 404 and response.json["error"]["code"] == "provider_disabled"


def test_next_with_control_characters_is_refused(
    wx: FlaskClient, org: Org, fake: FakeWeChat
) -> None:
    org.voting_campaign()
    fake.add_code("code-tab", "openid-tab")
    state = _start(wx, "/%09/evil.example")
    response = wx.get(f"/api/v1/wechat/oauth/callback?code=code-tab&state={state}")
    assert response.headers["Location"] == "/c/v1"
