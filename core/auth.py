"""Signed, expiring tokens and password hashing. Who may do what lives in the domains."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.errors import Unauthorized

_hasher = PasswordHasher()
# Verified against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("zuimei-no-such-account")


def configure_hasher(params: dict[str, int] | None) -> None:
    """Use other argon2 cost parameters (the test suite's cheaper ones); None keeps the default."""
    global _hasher, _DUMMY_HASH
    if params:
        _hasher = PasswordHasher(**params)
        _DUMMY_HASH = _hasher.hash("zuimei-no-such-account")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


@functools.lru_cache(maxsize=32)
def _serializer_for(secret: str, kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"zuimei.{kind}.v1")


def _serializer(kind: str) -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"], kind)


def issue_token(kind: str, claims: dict[str, Any], ttl: int) -> IssuedToken:
    """Sign ``claims`` for ``kind`` ('staff' or 'voter'); valid for ``ttl`` seconds."""
    body = dict(claims, ttl=ttl)
    token = _serializer(kind).dumps(body)
    return IssuedToken(token, datetime.now(UTC) + timedelta(seconds=ttl))


def read_token(kind: str, token: str) -> dict[str, Any]:
    """The claims of a token of ``kind``; Unauthorized if it is tampered with or expired.

    The signature is checked once; the lifetime is the ``ttl`` signed inside the token."""
    try:
        claims, signed_at = _serializer(kind).loads(token, return_timestamp=True)
    except (BadSignature, ValueError, TypeError) as exc:
        raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token") from exc
    if not isinstance(claims, dict):
        raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token")
    age = (datetime.now(UTC) - signed_at).total_seconds()
    if age > int(claims.get("ttl", 0)) or age < -60:
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    return claims


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_ip() -> str:
    """The caller's address; ProxyFix has already applied ZUIMEI_TRUSTED_PROXIES."""
    return request.remote_addr or "0.0.0.0"  # noqa: S104 - a label, not a bind address
