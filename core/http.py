"""Per-request plumbing: request ids, client addresses, JSON-only bodies, SQLite write intent,
API docs assets."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, request, send_from_directory
from werkzeug.routing import IntegerConverter

from core.errors import error_response
from core.extensions import sqlite_write_intent

log = logging.getLogger("zuimei.http")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# What a client address is recorded as when neither the forwarded value nor the socket peer is
# an IP address (a unix-socket listener, a broken proxy): a label, never free text.
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 - a label, not a bind address


def canonical_ip(value: str | None) -> str | None:
    """``value`` as an IP address in its canonical text (at most 39 characters), or None.

    An IPv4 address mapped into IPv6 (a dual-stack socket) is the IPv4 address, so one client
    is one address; an IPv6 zone (``%eth0``, any length) says nothing about the client and is
    dropped."""
    try:
        address = ipaddress.ip_address(value)  # type: ignore[arg-type]
    except ValueError:
        return None
    if address.version == 6:
        if address.ipv4_mapped is not None:  # type: ignore[union-attr]
            return str(address.ipv4_mapped)  # type: ignore[union-attr]
        if address.scope_id is not None:  # type: ignore[union-attr]
            address = ipaddress.IPv6Address(address.packed)
    return str(address)


def client_address() -> str:
    """The caller's IP address: ``request.remote_addr`` (ProxyFix has applied
    ZUIMEI_TRUSTED_PROXIES hops of X-Forwarded-For) when that is an IP address; otherwise the
    socket peer as the server saw it before ProxyFix. A forwarded value is whatever the client
    or a proxy wrote, so it is parsed, never stored or keyed on as free text."""
    return address_of(request.environ)


def address_of(environ: dict[str, Any]) -> str:
    """``client_address`` of a WSGI environ (the vote's lane answers without a request)."""
    address = canonical_ip(environ.get("REMOTE_ADDR"))
    if address is not None:
        return address
    original = environ.get("werkzeug.proxy_fix.orig") or {}
    peer = original.get("REMOTE_ADDR", environ.get("REMOTE_ADDR"))
    return canonical_ip(peer) or UNKNOWN_ADDRESS


def request_id(incoming: str) -> str:
    """The request's id: the client's ``X-Request-ID`` when it looks like one, else a new one."""
    return incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex


class IdConverter(IntegerConverter):
    """Database ids in paths: positive and within a 32-bit integer, so an absurd id is a plain
    404 instead of an overflow deep in the database driver.

    The pattern itself admits only 1 … 2147483647 (no leading zeros). Were a matched value
    refused later by ``to_python``, werkzeug would answer 405 for a method the path does declare
    (it has seen the path's other methods by then) instead of 404."""

    regex = (
        r"(?:[1-9][0-9]{0,8}|1[0-9]{9}|20[0-9]{8}|21[0-3][0-9]{7}|214[0-6][0-9]{6}"
        r"|2147[0-3][0-9]{5}|21474[0-7][0-9]{4}|214748[0-2][0-9]{3}|2147483[0-5][0-9]{2}"
        r"|21474836[0-3][0-9]|214748364[0-7])"
    )

    def __init__(self, url_map: Any) -> None:
        super().__init__(url_map, min=1, max=2_147_483_647)


def accepts_any_body(view):  # type: ignore[no-untyped-def]
    """Mark a view that takes a non-JSON body (uploads); others get 415 for one."""
    view.accepts_any_body = True
    return view


def cacheable(seconds: int):  # type: ignore[no-untyped-def]
    """Mark a public GET whose answer a CDN or browser may keep for ``seconds`` (with an ETag)."""

    def mark(view):  # type: ignore[no-untyped-def]
        view.cache_seconds = seconds
        return view

    return mark


class _NumberTooLong(ValueError):
    pass


# Python refuses to make an int of more digits than this (sys.get_int_max_str_digits(), which
# json.loads hits as a ValueError deep in webargs); no field of ours needs a tenth of it.
MAX_INT_DIGITS = 4300
_SURROGATE = re.compile("[\ud800-\udfff]")


def _bounded_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _NumberTooLong(text[:20])
    return int(text)


def _json_body() -> tuple[Any, str | None]:
    """The request's JSON body parsed the strict way, and why it is unusable (or None): not
    UTF-8, not JSON, nested too deeply, or a number too long to be one. Every route reads it
    through webargs or Flask afterwards; both would raise a ValueError, i.e. a 500, on some of
    these."""
    data = request.get_data(cache=True)
    if not data:
        return None, None
    try:
        return json.loads(data.decode("utf-8"), parse_int=_bounded_int), None
    except UnicodeDecodeError:
        return None, "not UTF-8"
    except _NumberTooLong:
        return None, f"a number has more than {MAX_INT_DIGITS} digits"
    except RecursionError:  # json (and any walk) refuses nesting this deep
        return None, "nested too deeply"
    except ValueError:
        return None, "not JSON"


def parsed_json_body() -> Any:
    """The request's JSON body as ``_begin`` parsed and checked it (None without one): a view
    that reads it here parses nothing again."""
    return g.get("json_body")


def _unstorable(value: Any) -> str | None:
    """Why a string (or one inside a list or object) cannot be stored as text, or None: a NUL
    (PostgreSQL text cannot hold one, the driver raises) or a lone UTF-16 surrogate such as
    ``"\\ud800"`` (valid JSON escape, but no character: encoding it to UTF-8 for the database or
    Redis raises)."""
    if isinstance(value, str):
        if "\x00" in value:
            return "不能包含空字符"
        if _SURROGATE.search(value):
            return "包含无效的字符（单独的代理项）"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            reason = _unstorable(key) or _unstorable(item)
            if reason:
                return reason
        return None
    if isinstance(value, list):
        for item in value:
            reason = _unstorable(item)
            if reason:
                return reason
    return None


def _unstorable_fields(body: Any) -> dict[str, list[str]]:
    """Query parameters and top-level JSON fields holding text that cannot be stored, refused up
    front on every database alike (a marshmallow String field lets both through)."""
    bad: dict[str, list[str]] = {}
    for name, value in request.args.items(multi=True):
        reason = _unstorable(name) or _unstorable(value)
        if reason:
            bad[_printable(name)] = [reason]
    if isinstance(body, dict):
        for key, value in body.items():
            reason = _unstorable(key) or _unstorable(value)
            if reason:
                bad[_printable(key)] = [reason]
    else:
        reason = _unstorable(body)
        if reason:
            bad["_body"] = [reason]
    return dict(sorted(bad.items()))


def _printable(name: str) -> str:
    """A field name fit for the error body (which is JSON, hence UTF-8, itself)."""
    return _SURROGATE.sub("\ufffd", name.replace("\x00", "\\0"))


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter

    @app.before_request
    def _begin() -> Response | None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = request_id(incoming)
        sqlite_write_intent.set(request.method in _WRITE_METHODS)
        if "\x00" in request.path:
            return error_response(404, "not_found", "未找到请求的地址")
        if request.routing_exception is not None:
            return None  # 404 / 405 answer first: no route means no body to judge
        view = app.view_functions.get(request.endpoint or "")
        if request.method in _WRITE_METHODS and request.path.startswith("/api/"):
            has_body = bool(request.content_length) or "chunked" in request.headers.get(
                "Transfer-Encoding", ""
            )
            if has_body and not getattr(view, "accepts_any_body", False) and not request.is_json:
                return error_response(
                    415,
                    "unsupported_media_type",
                    "请求内容类型不受支持，请使用 application/json",
                    {"content_type": request.mimetype or None},
                )
        body = None
        # Upload views read raw bytes (and answer their own 415): their body is never parsed.
        if request.is_json and not getattr(view, "accepts_any_body", False):
            body, problem = _json_body()
            if problem:
                return error_response(
                    400, "malformed_json", "请求体不是合法的 JSON", {"reason": problem}
                )
            g.json_body = body
        if request.path.startswith("/api/"):
            try:
                unstorable = _unstorable_fields(body)
            except RecursionError:  # pragma: no cover - json.loads refuses this depth first
                unstorable = {"_body": ["嵌套过深"]}
            if unstorable:
                return error_response(
                    422,
                    "validation_error",
                    "提交的内容包含无法保存的字符",
                    {"fields": unstorable},
                )
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        view = app.view_functions.get(request.endpoint or "")
        seconds = getattr(view, "cache_seconds", None)
        if seconds and request.method in ("GET", "HEAD") and response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={seconds}"
            response.add_etag()
            response.make_conditional(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/api/v1/") and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    try:
        import swagger_ui_bundle
    except ImportError:  # pragma: no cover - a dependency; the docs page then loads nothing
        return
    assets = swagger_ui_bundle.swagger_ui_path
    app.config["OPENAPI_SWAGGER_UI_URL"] = "/api/docs/assets/"

    @app.get("/api/docs/assets/<path:filename>")
    def _docs_assets(filename: str) -> Response:
        return send_from_directory(assets, filename, max_age=86400)
