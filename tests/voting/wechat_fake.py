"""A fake of the WeChat HTTP API on loopback, for testing the real client in voting.wechat."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.loopback import LoopbackFake

APP_ID = "wx123"
APP_SECRET = "s3cret"

Failure = Literal["500", "hang", "garbage", "errcode"]


class FakeWeChat(LoopbackFake):
    """The endpoints the client calls, with WeChat's answers and error codes.

    ``codes`` holds the codes WeChat has handed browsers (code → {"openid", "is_snapshotuser"});
    each is good for one exchange. ``fail_next`` spoils the next request, whichever it is.
    """

    thread_name = "fake-wechat"

    def __init__(
        self, app_id: str = APP_ID, secret: str = APP_SECRET, expires_in: int = 7200
    ) -> None:
        super().__init__()
        self.app_id = app_id
        self.secret = secret
        self.expires_in = expires_in
        self.codes: dict[str, dict[str, Any]] = {}
        self.used_codes: set[str] = set()
        self.token_calls = 0
        self.ticket_calls = 0
        self.exchange_calls = 0
        self.tokens: set[str] = set()  # access tokens WeChat still accepts
        self.ticket = "ticket-0"
        self.hang_seconds = 5.0
        self._failure: tuple[Failure, int] | None = None
        self._lock = threading.Lock()

    # --- set-up ------------------------------------------------------------------------------

    def add_code(self, code: str, openid: str, snapshot: bool = False) -> None:
        with self._lock:
            self.codes[code] = {"openid": openid, "is_snapshotuser": 1 if snapshot else 0}

    def fail_next(self, how: Failure = "500", errcode: int = -1) -> None:
        """The next request answers HTTP 500, hangs past the client's timeout, answers a page
        that is not JSON, or answers WeChat's ``{"errcode": errcode}``."""
        with self._lock:
            self._failure = (how, errcode)

    def revoke_tokens(self) -> None:
        """Void every access token issued so far, as a refresh elsewhere or expiry would."""
        with self._lock:
            self.tokens.clear()

    # --- the API -----------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            if path == "/sns/oauth2/access_token":
                return self._exchange(query)
            if path == "/cgi-bin/token":
                return self._token(query)
            if path == "/cgi-bin/ticket/getticket":
                return self._getticket(query)
        return {"errcode": 404, "errmsg": "no such api"}

    def _credentials_ok(self, query: dict[str, str]) -> bool:
        return query.get("appid") == self.app_id and query.get("secret") == self.secret

    def _exchange(self, query: dict[str, str]) -> dict[str, Any]:
        self.exchange_calls += 1
        if not self._credentials_ok(query):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        code = query.get("code", "")
        if code in self.used_codes:
            return {"errcode": 40163, "errmsg": "code been used"}
        issued = self.codes.get(code)
        if issued is None:
            return {"errcode": 40029, "errmsg": "invalid code"}
        self.used_codes.add(code)
        body = {
            "access_token": f"web-{code}",
            "expires_in": 7200,
            "refresh_token": f"refresh-{code}",
            "openid": issued["openid"],
            "scope": "snsapi_base",
        }
        if issued["is_snapshotuser"]:
            body["is_snapshotuser"] = 1
        return body

    def _token(self, query: dict[str, str]) -> dict[str, Any]:
        self.token_calls += 1
        if query.get("grant_type") != "client_credential":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        if not self._credentials_ok(query):
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        token = f"token-{self.token_calls}"
        self.tokens = {token}  # a new token voids the previous one
        return {"access_token": token, "expires_in": self.expires_in}

    def _getticket(self, query: dict[str, str]) -> dict[str, Any]:
        self.ticket_calls += 1
        if query.get("access_token") not in self.tokens:
            return {"errcode": 40001, "errmsg": "invalid credential"}
        if query.get("type") != "jsapi":
            return {"errcode": 40097, "errmsg": "invalid args"}
        self.ticket = f"ticket-{self.ticket_calls}"
        return {"errcode": 0, "errmsg": "ok", "ticket": self.ticket, "expires_in": self.expires_in}

    def take_failure(self) -> tuple[Failure, int] | None:
        with self._lock:
            failure, self._failure = self._failure, None
        return failure


class _Handler(BaseHTTPRequestHandler):
    owner: FakeWeChat

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        failure = self.owner.take_failure()
        if failure is not None:
            how, errcode = failure
            if how == "hang":
                # Past the client's timeout; the client has gone by then, so answer nothing.
                self.owner.released.wait(self.owner.hang_seconds)
                self.close_connection = True
                return
            if how == "500":
                self._send(500, b"<html>500 Internal Server Error</html>", "text/html")
                return
            if how == "garbage":
                self._send(200, b"<html>gateway</html>", "text/html")
                return
            body = {"errcode": errcode, "errmsg": "system error"}
        else:
            body = self.owner.answer(parts.path, query)
        # WeChat answers JSON as text/plain.
        self._send(200, json.dumps(body).encode(), "text/plain")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


FakeWeChat.handler = _Handler
