"""WeChat official-account web authorisation (snsapi_base) and JS-SDK signing.

The browser only ever carries a ``code``; the openid comes from our own server-to-server exchange
with WeChat, so a voter identity cannot be made up in the page.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import redis
from flask import current_app

from core.auth import IssuedToken
from core.errors import AppError, NotFound, ServiceUnavailable
from core.extensions import redis_store
from voting import identity
from voting.models import Voter

log = logging.getLogger("zuimei.wechat")

STATE_TTL = 600  # seconds between leaving for WeChat and coming back with a code
CACHE_MARGIN = 300  # refresh the access token and ticket this long before WeChat expires them
LOCK_SECONDS = 10
MAX_RESPONSE = 64 * 1024

# 40029 invalid code, 40163 code been used: the user reopens the page and gets a fresh one.
_CODE_ERRORS = {40029, 40163}
# 40001 invalid credential, 42001 access_token expired: another client may have refreshed it.
_TOKEN_ERRORS = {40001, 42001}

_STATE_INVALID = "授权已失效，请重新进入活动页面"
_CODE_INVALID = "授权码无效或已被使用，请重新进入"
_UNAVAILABLE = "微信服务暂时不可用，请稍后再试"


# --- configuration ----------------------------------------------------------------------------


def enabled() -> bool:
    config = current_app.config
    return bool(config.get("WECHAT_APP_ID") and config.get("WECHAT_APP_SECRET"))


def _credentials() -> tuple[str, str]:
    if not enabled():
        raise NotFound("未启用微信授权", code="provider_disabled")
    return current_app.config["WECHAT_APP_ID"], current_app.config["WECHAT_APP_SECRET"]


def _base(name: str, default: str) -> str:
    return str(current_app.config.get(name) or default).rstrip("/")


# --- web authorisation ------------------------------------------------------------------------


def authorize_url(redirect_uri: str, state: str) -> str:
    app_id, _ = _credentials()
    # WeChat reads these in this order; the redirect is percent-encoded whole, "/" included.
    query = urlencode(
        {
            "appid": app_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        },
        quote_via=quote,
        safe="",
    )
    base = _base("WECHAT_OPEN_BASE", "https://open.weixin.qq.com")
    return f"{base}/connect/oauth2/authorize?{query}#wechat_redirect"


def _digest(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def new_state(next_url: str, campaign: str) -> tuple[str, str]:
    """A one-time state for the trip to WeChat, and the nonce that ties it to this browser."""
    state = secrets.token_urlsafe(24)
    nonce = secrets.token_urlsafe(24)
    payload = json.dumps({"nonce_hash": _digest(nonce), "next": next_url, "campaign": campaign})
    try:
        redis_store.client.set(redis_store.key("wechat", "state", state), payload, ex=STATE_TTL)
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    return state, nonce


def consume_state(state: str, browser_nonce: str | None) -> dict[str, Any]:
    """Spend a state once. Without the nonce cookie of the browser that asked for it, the state
    is someone else's (a forged login link), and is refused the same way as an expired one."""
    if not state or len(state) > 64 or not browser_nonce:
        raise AppError(_STATE_INVALID, code="oauth_state_invalid", status=400)
    try:
        stored = redis_store.client.getdel(redis_store.key("wechat", "state", state))
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    if stored is None:
        raise AppError(_STATE_INVALID, code="oauth_state_invalid", status=400)
    data = json.loads(stored)
    if not hmac.compare_digest(data["nonce_hash"], _digest(browser_nonce)):
        raise AppError(_STATE_INVALID, code="oauth_state_invalid", status=400)
    return {"next": data["next"], "campaign": data["campaign"]}


def exchange_code(code: str) -> dict[str, Any]:
    """The openid behind a one-time ``code`` WeChat handed the browser."""
    app_id, secret = _credentials()
    if not code or len(code) > 128:
        raise AppError(_CODE_INVALID, code="oauth_code_invalid", status=400)
    data = _get_json(
        "/sns/oauth2/access_token",
        {
            "appid": app_id,
            "secret": secret,
            "code": code,
            "grant_type": "authorization_code",
        },
    )
    errcode = _errcode(data)
    if errcode in _CODE_ERRORS:
        raise AppError(
            _CODE_INVALID,
            code="oauth_code_invalid",
            status=400,
            details={"errcode": errcode},
        )
    if errcode:
        raise _wechat_error("微信授权失败，请重新进入", errcode, data)
    # Snapshot mode (the page previewed before "使用完整服务") hands out virtual openids.
    if data.get("is_snapshotuser") == 1:
        raise AppError("请点击“使用完整服务”后再投票", code="snapshot_user", status=403)
    openid = data.get("openid")
    if not isinstance(openid, str) or not openid:
        raise _wechat_error("微信授权失败，请重新进入", 0, data)
    return {"openid": openid, "unionid": data.get("unionid")}


def login_with_code(code: str) -> tuple[Voter, IssuedToken]:
    """The voter for a WeChat code and a token for it; the caller commits."""
    openid = exchange_code(code)["openid"]
    voter = identity.voter_for("wechat", openid)
    # A voter who proved a phone before keeps the claim (一人一号 campaigns need it).
    return voter, identity.voter_token(voter, phone_verified=identity.has_verified_phone(voter))


# --- JS-SDK -----------------------------------------------------------------------------------


def access_token() -> str:
    """The official account's access token, shared by every process through Redis."""
    return _cached("access_token", _fetch_access_token)


def jsapi_ticket() -> str:
    return _cached("jsapi_ticket", _fetch_jsapi_ticket)


def jssdk_config(url: str) -> dict[str, Any]:
    """What ``wx.config`` needs for the page at ``url`` (signed without its fragment)."""
    app_id, _ = _credentials()
    page = (url or "").split("#", 1)[0]
    parts = urlsplit(page)
    if (
        len(page) > 2048
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or any(ch.isspace() for ch in page)
    ):
        raise AppError("页面地址无效", code="invalid_url", status=422)
    ticket = jsapi_ticket()
    timestamp = int(time.time())
    nonce = secrets.token_hex(8)
    return {
        "appId": app_id,
        "timestamp": timestamp,
        "nonceStr": nonce,
        "signature": signature(ticket, nonce, timestamp, page),
    }


def signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    """WeChat's JS-SDK signature: these four keys, in this order, values raw (not URL-encoded)."""
    plain = f"jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"
    return hashlib.sha1(plain.encode()).hexdigest()  # noqa: S324 - WeChat's algorithm, not ours


def _cached(name: str, fetch: Callable[[], tuple[str, int]]) -> str:
    """A value from Redis; when it is missing, one process fetches it while the others wait,
    since WeChat caps daily token fetches and a new token voids the previous one."""
    key = redis_store.key("wechat", name)
    try:
        client = redis_store.client
        value = client.get(key)
        if value is not None:
            return value.decode()
        lock = client.lock(
            redis_store.key("wechat", "lock", name),
            timeout=LOCK_SECONDS,
            blocking_timeout=LOCK_SECONDS,
        )
        if not lock.acquire():
            log.error("gave up waiting for the wechat %s refresh", name)
            raise ServiceUnavailable(_UNAVAILABLE)
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    try:
        value = client.get(key)  # the process that held the lock may have just stored it
        if value is not None:
            return value.decode()
        fresh, expires_in = fetch()
        client.set(key, fresh, ex=max(expires_in - CACHE_MARGIN, 1))
        return fresh
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    finally:
        # A lock that expired on its own cannot be released; the next caller takes a new one.
        with contextlib.suppress(redis.RedisError, OSError):
            lock.release()


def _fetch_access_token() -> tuple[str, int]:
    app_id, secret = _credentials()
    data = _get_json(
        "/cgi-bin/token",
        {"grant_type": "client_credential", "appid": app_id, "secret": secret},
    )
    return _value(data, "access_token")


def _fetch_jsapi_ticket() -> tuple[str, int]:
    token = access_token()
    data = _get_json("/cgi-bin/ticket/getticket", {"access_token": token, "type": "jsapi"})
    if _errcode(data) in _TOKEN_ERRORS:
        # Our cached token was voided (by a refresh elsewhere, or early expiry): drop it unless
        # another process has already replaced it, and try once more with a fresh one.
        key = redis_store.key("wechat", "access_token")
        try:
            if redis_store.client.get(key) == token.encode():
                redis_store.client.delete(key)
        except (redis.RedisError, OSError) as exc:
            raise ServiceUnavailable() from exc
        token = access_token()
        data = _get_json("/cgi-bin/ticket/getticket", {"access_token": token, "type": "jsapi"})
    return _value(data, "ticket")


def _value(data: dict[str, Any], field: str) -> tuple[str, int]:
    errcode = _errcode(data)
    value = data.get(field)
    if errcode or not isinstance(value, str) or not value:
        raise _wechat_error("微信服务出错，请稍后再试", errcode, data)
    try:
        expires_in = int(data.get("expires_in", 7200))
    except (TypeError, ValueError):
        expires_in = 7200
    return value, expires_in


# --- HTTP -------------------------------------------------------------------------------------


def _errcode(data: dict[str, Any]) -> int:
    try:
        return int(data.get("errcode") or 0)
    except (TypeError, ValueError):
        return -1


def _wechat_error(message: str, errcode: int, data: dict[str, Any]) -> AppError:
    log.warning("wechat refused: errcode=%s errmsg=%s", errcode, data.get("errmsg"))
    return AppError(message, code="wechat_error", status=502, details={"errcode": errcode})


def _get_json(path: str, params: dict[str, str]) -> dict[str, Any]:
    """GET a WeChat API endpoint; any failure to get a JSON object back is a 503."""
    base = _base("WECHAT_API_BASE", "https://api.weixin.qq.com")
    if urlsplit(base).scheme not in ("http", "https"):
        log.error("WECHAT_API_BASE must be an http(s) URL")
        raise ServiceUnavailable(_UNAVAILABLE)
    url = f"{base}{path}?{urlencode(params)}"
    timeout = float(current_app.config.get("WECHAT_TIMEOUT") or 5)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) base
            raw = response.read(MAX_RESPONSE)
        data = json.loads(raw)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response body open
        log.error("wechat %s answered HTTP %s", path, exc.code)
        raise ServiceUnavailable(_UNAVAILABLE) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # The URL carries the app secret: log the path and the kind of failure only.
        log.error("wechat %s unreachable: %s", path, exc.__class__.__name__)
        raise ServiceUnavailable(_UNAVAILABLE) from exc
    if not isinstance(data, dict):
        log.error("wechat %s answered something other than a JSON object", path)
        raise ServiceUnavailable(_UNAVAILABLE)
    return data
