"""The WeChat client in voting.wechat, against a fake of WeChat's API on loopback."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select

from core.auth import read_token
from core.errors import AppError
from core.extensions import db, redis_store
from tests.voting.wechat_fake import APP_ID, APP_SECRET, FakeWeChat
from voting import wechat
from voting.models import Voter

REDIRECT = "https://vote.example.cn/api/v1/wechat/callback?from=share&x=a b"


@pytest.fixture
def fake() -> Iterator[FakeWeChat]:
    with FakeWeChat() as server:
        yield server


@pytest.fixture
def wx(app: Flask, make_app: Callable[..., Flask], fake: FakeWeChat) -> Flask:
    """An app configured for the fake (``app`` is asked for so the suite cleans up after it)."""
    return make_app(
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_API_BASE=fake.base,
        WECHAT_TIMEOUT=1,
    )


def _refusal(call: Callable[[], object]) -> AppError:
    with pytest.raises(AppError) as info:
        call()
    return info.value


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 - WeChat's algorithm


def _voters() -> int:
    return db.session.scalar(select(func.count()).select_from(Voter)) or 0


# --- configuration ----------------------------------------------------------------------------


def test_enabled_needs_both_app_id_and_secret(app: Flask, make_app: Callable[..., Flask]) -> None:
    with make_app(WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET="").app_context():
        assert not wechat.enabled()
    with make_app(WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=APP_SECRET).app_context():
        assert wechat.enabled()


def test_disabled_client_refuses_as_provider_disabled(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    with make_app(WECHAT_APP_ID="", WECHAT_APP_SECRET="").app_context():
        refused = _refusal(lambda: wechat.exchange_code("any"))
    assert (refused.code, refused.status) == ("provider_disabled", 404)


# --- the trip to WeChat and back ----------------------------------------------------------------


def test_authorize_url_asks_for_snsapi_base_with_state_and_encoded_redirect(wx: Flask) -> None:
    with wx.app_context():
        url = wechat.authorize_url(REDIRECT, "st-1")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://open.weixin.qq.com/connect/oauth2/authorize"
    )
    assert parts.fragment == "wechat_redirect"
    assert parts.query.split("&")[0] == f"appid={APP_ID}"
    assert f"redirect_uri={quote(REDIRECT, safe='')}" in parts.query
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query == {
        "appid": APP_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "snsapi_base",
        "state": "st-1",
    }


def test_state_round_trip_gives_back_next_and_campaign(wx: Flask) -> None:
    with wx.app_context():
        state, nonce = wechat.new_state("/c/v1/nominees/D001", "v1")
        assert wechat.consume_state(state, nonce) == {
            "next": "/c/v1/nominees/D001",
            "campaign": "v1",
        }


def test_state_is_stored_for_ten_minutes_without_the_nonce(wx: Flask) -> None:
    with wx.app_context():
        state, nonce = wechat.new_state("/c/v1", "v1")
        key = redis_store.key("wechat", "state", state)
        ttl = redis_store.client.ttl(key)
        stored = json.loads(redis_store.client.get(key))
    assert 590 <= ttl <= 600
    assert stored["nonce_hash"] == hashlib.sha256(nonce.encode()).hexdigest()
    assert nonce not in json.dumps(stored)


def test_state_is_single_use(wx: Flask) -> None:
    with wx.app_context():
        state, nonce = wechat.new_state("/c/v1", "v1")
        wechat.consume_state(state, nonce)
        again = _refusal(lambda: wechat.consume_state(state, nonce))
    assert (again.code, again.status) == ("oauth_state_invalid", 400)
    assert again.message == "授权已失效，请重新进入活动页面"


def test_unknown_state_is_refused(wx: Flask) -> None:
    with wx.app_context():
        refused = _refusal(lambda: wechat.consume_state("never-issued", "nonce"))
    assert (refused.code, refused.status) == ("oauth_state_invalid", 400)


def test_state_with_another_browsers_nonce_is_refused_and_spent(wx: Flask) -> None:
    with wx.app_context():
        state, nonce = wechat.new_state("/c/v1", "v1")
        _, other_nonce = wechat.new_state("/c/v1", "v1")
        foreign = _refusal(lambda: wechat.consume_state(state, other_nonce))
        # A forged link is burnt: not even the right browser can use it afterwards.
        after = _refusal(lambda: wechat.consume_state(state, nonce))
    assert foreign.code == "oauth_state_invalid"
    assert after.code == "oauth_state_invalid"


def test_state_without_a_nonce_cookie_is_refused(wx: Flask) -> None:
    with wx.app_context():
        state, _ = wechat.new_state("/c/v1", "v1")
        missing = _refusal(lambda: wechat.consume_state(state, None))
        empty = _refusal(lambda: wechat.consume_state(state, ""))
    assert missing.code == empty.code == "oauth_state_invalid"


# --- code exchange and the voter -----------------------------------------------------------------


def test_code_exchange_makes_a_wechat_voter_with_a_signed_token(
    wx: Flask, fake: FakeWeChat
) -> None:
    fake.add_code("code-1", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M")
    with wx.app_context():
        voter, token = wechat.login_with_code("code-1")
        db.session.commit()
        assert voter.provider == "wechat"
        assert voter.subject == "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"
        claims = read_token("voter", token.token)
        assert claims["sub"] == voter.id
        assert claims["p"] == "wechat"
        assert _voters() == 1


def test_same_openid_twice_is_the_same_voter(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    fake.add_code("code-2", "openid-a")
    with wx.app_context():
        first, _ = wechat.login_with_code("code-1")
        db.session.commit()
        second, _ = wechat.login_with_code("code-2")
        db.session.commit()
        assert second.id == first.id
        assert _voters() == 1


def test_exchange_returns_the_openid(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    with wx.app_context():
        assert wechat.exchange_code("code-1") == {"openid": "openid-a", "unionid": None}


def test_replayed_code_is_refused_as_invalid(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    with wx.app_context():
        wechat.exchange_code("code-1")
        replayed = _refusal(lambda: wechat.exchange_code("code-1"))
    assert (replayed.code, replayed.status) == ("oauth_code_invalid", 400)
    assert replayed.details == {"errcode": 40163}


def test_unknown_code_is_refused_as_invalid(wx: Flask) -> None:
    with wx.app_context():
        refused = _refusal(lambda: wechat.exchange_code("made-up"))
    assert (refused.code, refused.status) == ("oauth_code_invalid", 400)
    assert refused.details == {"errcode": 40029}


def test_snapshot_user_is_refused_and_no_voter_is_made(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "virtual-openid", snapshot=True)
    with wx.app_context():
        refused = _refusal(lambda: wechat.login_with_code("code-1"))
        db.session.commit()
        assert _voters() == 0
    assert (refused.code, refused.status) == ("snapshot_user", 403)
    assert "使用完整服务" in refused.message


def test_wrong_app_secret_is_a_wechat_error(
    app: Flask, make_app: Callable[..., Flask], fake: FakeWeChat
) -> None:
    fake.add_code("code-1", "openid-a")
    wrong = make_app(
        WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET="wrong", WECHAT_API_BASE=fake.base, WECHAT_TIMEOUT=1
    )
    with wrong.app_context():
        refused = _refusal(lambda: wechat.exchange_code("code-1"))
    assert (refused.code, refused.status) == ("wechat_error", 502)
    assert refused.details == {"errcode": 40125}
    assert refused.message == "微信授权失败，请重新进入"


def test_wechat_system_error_on_exchange_is_a_wechat_error(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    fake.fail_next("errcode", errcode=-1)
    with wx.app_context():
        refused = _refusal(lambda: wechat.exchange_code("code-1"))
    assert (refused.code, refused.status) == ("wechat_error", 502)
    assert refused.details == {"errcode": -1}


def test_wechat_answering_500_is_service_unavailable(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    fake.fail_next("500")
    with wx.app_context():
        refused = _refusal(lambda: wechat.exchange_code("code-1"))
    assert (refused.code, refused.status) == ("service_unavailable", 503)
    assert refused.message == "微信服务暂时不可用，请稍后再试"


def test_wechat_timing_out_is_service_unavailable(wx: Flask, fake: FakeWeChat) -> None:
    fake.add_code("code-1", "openid-a")
    fake.fail_next("hang")
    started = time.monotonic()
    with wx.app_context():
        refused = _refusal(lambda: wechat.exchange_code("code-1"))
    assert (refused.code, refused.status) == ("service_unavailable", 503)
    assert time.monotonic() - started < 3  # WECHAT_TIMEOUT=1, not the fake's 5 s hang


def test_wechat_answering_a_non_json_page_is_service_unavailable(
    wx: Flask, fake: FakeWeChat
) -> None:
    fake.fail_next("garbage")
    with wx.app_context():
        refused = _refusal(wechat.access_token)
    assert (refused.code, refused.status) == ("service_unavailable", 503)


def test_unreachable_wechat_is_service_unavailable(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    with FakeWeChat() as gone:
        base = gone.base
    closed = make_app(
        WECHAT_APP_ID=APP_ID, WECHAT_APP_SECRET=APP_SECRET, WECHAT_API_BASE=base, WECHAT_TIMEOUT=1
    )
    with closed.app_context():
        refused = _refusal(wechat.access_token)
    assert (refused.code, refused.status) == ("service_unavailable", 503)


# --- access token and ticket ----------------------------------------------------------------------


def test_access_token_and_ticket_are_cached_across_config_calls(
    wx: Flask, fake: FakeWeChat
) -> None:
    with wx.app_context():
        wechat.jssdk_config("https://vote.example.cn/c/v1")
        wechat.jssdk_config("https://vote.example.cn/c/v1/nominees/D001")
    assert (fake.token_calls, fake.ticket_calls) == (1, 1)


def test_cache_lasts_until_five_minutes_before_wechat_expiry(wx: Flask, fake: FakeWeChat) -> None:
    with wx.app_context():
        wechat.jsapi_ticket()
        token_ttl = redis_store.client.ttl(redis_store.key("wechat", "access_token"))
        ticket_ttl = redis_store.client.ttl(redis_store.key("wechat", "jsapi_ticket"))
    assert 6890 <= token_ttl <= 6900
    assert 6890 <= ticket_ttl <= 6900


def test_ten_threads_with_an_empty_cache_fetch_the_token_once(wx: Flask, fake: FakeWeChat) -> None:
    start = threading.Barrier(10, timeout=10)
    tickets: list[str] = []
    errors: list[BaseException] = []

    def ask() -> None:
        with wx.app_context():
            try:
                start.wait()
                tickets.append(wechat.jsapi_ticket())
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert (fake.token_calls, fake.ticket_calls) == (1, 1)
    assert tickets == [fake.ticket] * 10


def test_token_errcode_is_a_wechat_error_and_not_cached(wx: Flask, fake: FakeWeChat) -> None:
    fake.fail_next("errcode", errcode=40164)
    with wx.app_context():
        refused = _refusal(wechat.access_token)
        assert (refused.code, refused.status) == ("wechat_error", 502)
        assert refused.details == {"errcode": 40164}
        assert not redis_store.client.exists(redis_store.key("wechat", "access_token"))
        assert wechat.access_token() == "token-1"


def test_invalid_token_on_ticket_refreshes_the_token_and_retries(
    wx: Flask, fake: FakeWeChat
) -> None:
    with wx.app_context():
        assert wechat.access_token() == "token-1"
        fake.revoke_tokens()  # e.g. another system refreshed the token with our secret
        ticket = wechat.jsapi_ticket()
        assert wechat.access_token() == "token-2"
    assert ticket == fake.ticket
    assert (fake.token_calls, fake.ticket_calls) == (2, 2)


def test_ticket_refused_twice_is_a_wechat_error(wx: Flask, fake: FakeWeChat) -> None:
    with wx.app_context():
        wechat.access_token()
        fake.revoke_tokens()
        fake.secret = "rotated"  # the refresh cannot get a token either
        refused = _refusal(wechat.jsapi_ticket)
    assert (refused.code, refused.status) == ("wechat_error", 502)


# --- JS-SDK signature --------------------------------------------------------------------------


def test_signature_matches_wechat_documented_example() -> None:
    ticket = (
        "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg"
    )
    signed = wechat.signature(
        ticket, "Wm3WZYTPz0wzccnW", 1414587457, "http://mp.weixin.qq.com?params=value"
    )
    assert signed == "0f9de62fce790f9a083d5c99e95740ceb90c27ed"


def test_jssdk_config_signs_the_page_with_the_ticket(wx: Flask, fake: FakeWeChat) -> None:
    url = "https://vote.example.cn/c/v1/nominees/D001?from=singlemessage&isappinstalled=0"
    with wx.app_context():
        config = wechat.jssdk_config(url)
    assert set(config) == {"appId", "timestamp", "nonceStr", "signature"}
    assert config["appId"] == APP_ID
    assert isinstance(config["timestamp"], int)
    assert abs(config["timestamp"] - time.time()) < 5
    plain = (
        f"jsapi_ticket={fake.ticket}&noncestr={config['nonceStr']}"
        f"&timestamp={config['timestamp']}&url={url}"
    )
    assert config["signature"] == _sha1(plain)


def test_jssdk_config_signs_without_the_fragment(wx: Flask, fake: FakeWeChat) -> None:
    page = "https://vote.example.cn/c/v1?from=timeline"
    with wx.app_context():
        config = wechat.jssdk_config(page + "#/nominees/D001?tab=deeds")
    plain = (
        f"jsapi_ticket={fake.ticket}&noncestr={config['nonceStr']}"
        f"&timestamp={config['timestamp']}&url={page}"
    )
    assert config["signature"] == _sha1(plain)


@pytest.mark.parametrize(
    "url",
    ["", "/c/v1", "ftp://vote.example.cn/c/v1", "javascript:alert(1)", "https:///c/v1"],
)
def test_jssdk_config_refuses_a_url_that_is_not_http(wx: Flask, fake: FakeWeChat, url: str) -> None:
    with wx.app_context():
        refused = _refusal(lambda: wechat.jssdk_config(url))
    assert (refused.code, refused.status) == ("invalid_url", 422)
    assert fake.token_calls == 0
