"""Per-request plumbing: request ids, JSON-only bodies, SQLite write intent, API docs assets."""

from __future__ import annotations

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


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


def _nul_fields() -> dict[str, list[str]]:
    """Query parameters and top-level JSON fields holding a NUL character: PostgreSQL text cannot
    store one (the driver raises), so such input is refused up front, on SQLite alike."""
    bad = {name for name, value in request.args.items(multi=True) if _holds_nul(name + value)}
    if request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            bad.update(key for key, value in body.items() if _holds_nul(key) or _holds_nul(value))
        elif _holds_nul(body):
            bad.add("_body")
    return {name.replace("\x00", "\\0"): ["不能包含空字符"] for name in sorted(bad)}


def init_app(app: Flask) -> None:
    app.url_map.converters["id"] = IdConverter

    @app.before_request
    def _begin() -> Response | None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        sqlite_write_intent.set(request.method in _WRITE_METHODS)
        if "\x00" in request.path:
            return error_response(404, "not_found", "未找到请求的地址")
        if request.method in _WRITE_METHODS and request.path.startswith("/api/"):
            has_body = bool(request.content_length) or "chunked" in request.headers.get(
                "Transfer-Encoding", ""
            )
            view = app.view_functions.get(request.endpoint or "")
            if has_body and not getattr(view, "accepts_any_body", False) and not request.is_json:
                return error_response(
                    415,
                    "unsupported_media_type",
                    "请求内容类型不受支持，请使用 application/json",
                    {"content_type": request.mimetype or None},
                )
        if request.path.startswith("/api/"):
            try:
                nul = _nul_fields()
            except RecursionError:  # json (and the walk) refuse nesting this deep
                return error_response(
                    400, "malformed_json", "请求体不是合法的 JSON", {"reason": "nested too deeply"}
                )
            if nul:
                return error_response(
                    422, "validation_error", "提交的内容不能包含空字符", {"fields": nul}
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
