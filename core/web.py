"""Browser sessions for the pages: credential cookies, CSRF tokens and security headers.

API clients send ``Authorization: Bearer``; the pages keep the same signed tokens in HttpOnly
cookies instead, so page scripts never see them. A cookie is an ambient credential, so any
state-changing request authenticated by one must also carry the CSRF token that only our own
pages can read (``X-CSRF-Token`` header, or a ``csrf_token`` form field).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import Flask, Response, current_app, g, request

from core.auth import bearer_token, keyed_digest
from core.errors import Forbidden

STAFF_COOKIE = "zm_staff"
VOTER_COOKIE = "zm_voter"
CSRF_COOKIE = "zm_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def cookie_secure() -> bool:
    """``Secure`` cookies in production (always behind TLS), else whenever the request is HTTPS."""
    configured = current_app.config.get("COOKIE_SECURE")
    if configured is not None:
        return bool(configured)
    return current_app.config["ENV_NAME"] == "production" or request.is_secure


def _csrf_seed() -> str:
    """The browser's CSRF seed: an HttpOnly random cookie, created on first use."""
    if "csrf_seed" not in g:
        seed = request.cookies.get(CSRF_COOKIE, "")
        if len(seed) < 20 or len(seed) > 100:
            seed = secrets.token_urlsafe(24)
            g.csrf_seed_new = True
        g.csrf_seed = seed
    return g.csrf_seed  # type: ignore[no-any-return]


def _sign(seed: str) -> str:
    return keyed_digest("csrf", seed).hex()


def csrf_token() -> str:
    """The token pages embed (meta tag and hidden fields): an HMAC of the cookie seed."""
    return _sign(_csrf_seed())


def rotate_csrf() -> None:
    """A new seed at login and logout, so a token seen before cannot ride a new session."""
    g.csrf_seed = secrets.token_urlsafe(24)
    g.csrf_seed_new = True


def csrf_ok() -> bool:
    seed = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get(CSRF_HEADER) or ""
    if not sent and request.mimetype in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        sent = request.form.get(CSRF_FIELD, "")
    return csrf_matches(seed, sent)


def csrf_matches(seed: str, sent: str) -> bool:
    """Whether ``sent`` is the token of the cookie seed ``seed`` (both present)."""
    return bool(seed) and bool(sent) and hmac.compare_digest(_sign(seed), sent)


def require_csrf() -> None:
    if not csrf_ok():
        raise Forbidden("页面已过期，请刷新后重试", code="csrf_failed")


def request_credential(cookie: str) -> str | None:
    """The caller's token: the bearer header, else the page cookie (CSRF-checked on writes)."""
    token = bearer_token()
    if token:
        return token
    token = request.cookies.get(cookie) or None
    if token and request.method not in SAFE_METHODS:
        require_csrf()
    return token


def credential_is_cookie(cookie: str) -> bool:
    """The request authenticates with the page cookie (no bearer header), as a page script does."""
    return bearer_token() is None and bool(request.cookies.get(cookie))


def set_credential(response: Response, cookie: str, token: str, max_age: int) -> None:
    response.set_cookie(
        cookie,
        token,
        max_age=max_age,
        httponly=True,
        secure=cookie_secure(),
        # Staff cookies never ride a cross-site navigation; the voter's must survive the
        # top-level redirect back from WeChat's authorisation page.
        samesite="Strict" if cookie == STAFF_COOKIE else "Lax",
        path="/",
    )


def clear_credential(response: Response, cookie: str) -> None:
    response.delete_cookie(cookie, path="/", secure=cookie_secure(), httponly=True)


def content_security_policy(extra_script: tuple[str, ...] = ()) -> str:
    """No inline script or style anywhere; only our own origin (and WeChat's JS-SDK when on)."""
    scripts = " ".join(("'self'", *extra_script))
    return (
        "default-src 'self'; "
        f"script-src {scripts}; "
        "style-src 'self'; "
        "img-src 'self' data: blob:; "
        "media-src 'self' blob:; "
        "connect-src 'self'; "
        "object-src 'none'; "
        "base-uri 'self'; "
        "form-action 'self'; "
        "frame-ancestors 'none'"
    )


def init_app(app: Flask) -> None:
    @app.after_request
    def _csrf_cookie(response: Response) -> Response:
        if g.get("csrf_seed_new"):
            response.set_cookie(
                CSRF_COOKIE,
                g.csrf_seed,
                httponly=True,
                secure=cookie_secure(),
                samesite="Lax",
                path="/",
            )
        return response

    @app.context_processor
    def _csrf_in_templates() -> dict[str, Any]:
        return {"csrf_token": csrf_token}
