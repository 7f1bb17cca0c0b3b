"""What every page shares: rendering with the security headers, versioned assets, staff
sessions (login and logout through the same service as the API) and Chinese error pages."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    send_from_directory,
    url_for,
)
from marshmallow import Schema, ValidationError

from campaigns import services as campaign_services
from core import clock
from core.auth import client_ip
from core.errors import AppError, ServiceUnavailable, error_response
from core.extensions import db
from core.web import (
    STAFF_COOKIE,
    clear_credential,
    content_security_policy,
    require_csrf,
    rotate_csrf,
    set_credential,
)

F = TypeVar("F", bound=Callable[..., Any])
STATIC = Path(__file__).resolve().parent / "static"
WECHAT_JSSDK_ORIGIN = "https://res.wx.qq.com"
# Where each role lands after login; units have the portal, everyone else the console.
HOME_BY_ROLE = {"unit": "/portal", "admin": "/console", "reviewer": "/console", "judge": "/console"}

assets = Blueprint("assets", __name__)
auth = Blueprint("page_auth", __name__, template_folder="templates")
log = logging.getLogger("zuimei.pages")

_digests: dict[str, tuple[float, str]] = {}


def _digest(name: str) -> str:
    path = STATIC / name
    mtime = path.stat().st_mtime
    cached = _digests.get(name)
    if cached is None or cached[0] != mtime:
        cached = (mtime, hashlib.sha256(path.read_bytes()).hexdigest()[:10])
        _digests[name] = cached
    return cached[1]


def asset_url(name: str) -> str:
    """A URL with a content hash, so the file can be cached for a year and still change."""
    return url_for("assets.asset", filename=name, v=_digest(name))


@assets.route("/assets/<path:filename>")
def asset(filename: str) -> Response:
    response = send_from_directory(STATIC, filename, max_age=300)
    # A year only for the current content: during a rolling release an old host may be asked
    # for a new hash (or the reverse), and that answer must not stick in browsers.
    wanted = request.args.get("v")
    if wanted and response.status_code == 200 and wanted == _digest(filename):
        response.cache_control.max_age = 31_536_000
        response.cache_control.public = True
        response.cache_control.immutable = True
    return response


def render_page(template: str, *, status: int = 200, wechat_sdk: bool = False, **context: Any):  # type: ignore[no-untyped-def]
    """Render a page with its Content-Security-Policy: no inline script, no inline style."""
    response = make_response(render_template(template, asset_url=asset_url, **context), status)
    extra = (WECHAT_JSSDK_ORIGIN,) if wechat_sdk else ()
    response.headers["Content-Security-Policy"] = content_security_policy(extra)
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def error_page(exc: AppError):  # type: ignore[no-untyped-def]
    """A Chinese error page for browsers; the usual JSON error shape for page scripts."""
    if request.is_json or request.accept_mimetypes.best == "application/json":
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    return render_page("pages/error.html", status=exc.status, error=exc)


def campaign_zone(campaign: Any) -> ZoneInfo:
    """The campaign's time zone: every window and daily quota is counted in it."""
    return clock.zone(campaign.timezone)


def local_time(value: datetime | None, campaign: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A moment as the campaign's people read it, e.g. ``2026-11-25 14:30``."""
    if value is None:
        return ""
    return value.astimezone(campaign_zone(campaign)).strftime(fmt)


def query_args(schema: Schema, args: Mapping[str, Any]) -> dict[str, Any]:
    """The query string loaded by an API query-args schema, as leniently as a link must open: only
    the schema's own fields are read, blanks are dropped, and each value the schema refuses falls
    back to the schema's default instead of failing the page."""
    values = {}
    for name in schema.fields:
        value = args.get(name)
        if isinstance(value, str):
            value = value.strip()
        if value not in (None, ""):
            values[name] = value
    try:
        return schema.load(values)
    except ValidationError as exc:
        refused = exc.messages_dict
        return schema.load({name: v for name, v in values.items() if name not in refused})


def safe_next(value: str | None, fallback: str) -> str:
    """A same-site path only (no scheme, no host, no "//"), else the fallback."""
    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and all(ch.isprintable() and not ch.isspace() for ch in value)
    ):
        return value
    return fallback


def current_staff() -> Any | None:
    """The staff account behind the session cookie, or None when there is none or it is stale."""
    try:
        return campaign_services.current_account()
    except AppError:
        return None


def staff_page(*roles: str, login: str = "portal") -> Callable[[F], F]:
    """A page for staff of ``roles``: no session → the login page; another role → 403 page."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_staff()
            if account is None:
                target = quote(request.full_path.rstrip("?"), safe="/?=&")
                return redirect(f"/{login}/login?next={target}")
            if roles and account.role not in roles:
                return render_page(
                    "pages/error.html",
                    status=403,
                    error=AppError("此页面不对您的账号开放", code="forbidden", status=403),
                )
            g.account = account
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def _login_view(area: str) -> Any:
    title = "单位申报平台" if area == "portal" else "评选委员会工作台"
    fallback = f"/{area}"
    target = safe_next(request.values.get("next"), fallback)
    if request.method == "GET":
        if current_staff() is not None:
            return redirect(target)
        return render_page("pages/login.html", area=area, title=title, next=target)
    try:
        require_csrf()
        username = request.form.get("username", "").strip()[:64]
        password = request.form.get("password", "")[:256]
        if not username or not password:
            raise AppError("请输入用户名和密码", code="invalid_credentials", status=400)
        account, token = campaign_services.login(username, password, client_ip())
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return render_page(
            "pages/login.html",
            status=exc.status,
            area=area,
            title=title,
            next=target,
            error=exc,
            username=request.form.get("username", "")[:64],
        )
    if target == fallback:
        target = HOME_BY_ROLE.get(account.role, fallback)
    response = redirect(target, code=303)
    rotate_csrf()
    set_credential(response, STAFF_COOKIE, token.token, current_app.config["STAFF_TOKEN_TTL"])
    return response


@auth.route("/portal/login", methods=["GET", "POST"])
def portal_login() -> Any:
    return _login_view("portal")


@auth.route("/console/login", methods=["GET", "POST"])
def console_login() -> Any:
    return _login_view("console")


@auth.route("/logout", methods=["POST"])
def logout() -> Any:
    try:
        require_csrf()
    except AppError as exc:
        return error_page(exc)
    account = current_staff()
    target = "/console/login" if account is not None and account.role != "unit" else "/portal/login"
    try:
        campaign_services.logout()
    except ServiceUnavailable:
        # The cookie goes anyway; the token itself stays valid until it expires.
        log.warning("logout could not revoke the staff token: Redis unavailable")
    response = redirect(target, code=303)
    rotate_csrf()
    clear_credential(response, STAFF_COOKIE)
    return response


@auth.route("/account/password", methods=["GET", "POST"])
def change_password() -> Any:
    """Any staff member changes their own password; the page keeps its session (a new cookie)."""
    if request.method == "POST":
        try:
            require_csrf()
        except AppError as exc:
            return error_page(exc)
    account = current_staff()
    if account is None:
        target = quote(request.full_path.rstrip("?"), safe="/?=&")
        return redirect(f"/portal/login?next={target}")
    g.account = account
    home = HOME_BY_ROLE.get(account.role, "/portal")
    if request.method == "GET":
        return render_page("pages/console/accounts_password.html", home=home)
    try:
        current = request.form.get("current_password", "")[:256]
        new = request.form.get("new_password", "")[:256]
        if new != request.form.get("new_password_again", "")[:256]:
            raise AppError("两次输入的新密码不一致", code="password_mismatch", status=422)
        token = campaign_services.change_own_password(account, current, new, client_ip())
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        return render_page(
            "pages/console/accounts_password.html", status=exc.status, home=home, error=exc
        )
    response = render_page("pages/console/accounts_password.html", home=home, done=True)
    set_credential(response, STAFF_COOKIE, token.token, current_app.config["STAFF_TOKEN_TTL"])
    return response


auth.register_error_handler(AppError, error_page)


def in_wechat() -> bool:
    """Whether the page is open in WeChat's in-app browser."""
    return "MicroMessenger" in request.headers.get("User-Agent", "")


def wechat_enabled() -> bool:
    """Whether the official account is configured (WeChat login and the JS-SDK)."""
    config = current_app.config
    return bool(config.get("WECHAT_APP_ID") and config.get("WECHAT_APP_SECRET"))
