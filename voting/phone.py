"""Phone voters (the ``sms`` provider): a one-time code by text message proves a phone number.

- ``send_code``: a 6-digit code to a Chinese mainland mobile number, counted per phone, per
  client address and per device cookie (``ZUIMEI_SMS_*_LIMIT``). Redis keeps only an HMAC of
  (phone, code), with its expiry (``SMS_CODE_TTL``, 5 min) and a count of wrong answers; the
  code is stored only once the provider has accepted the message, so a provider failure changes
  nothing stored.
- ``verify``: checks an answer in one Lua call: a right answer spends the code (single use), an
  expired code is gone, and ``SMS_CODE_MAX_TRIES`` (5) wrong answers burn it. Then:

  * without a WeChat voter token: the voter of that phone — the voter its ``voter_phones`` row
    names (the WeChat voter it was verified for, or its ``sms`` voter), else a new ``sms``
    voter whose subject is ``subject_hash("sms", phone)``, made together with its row;
  * with a WeChat voter token: an **upgrade** — the same voter, with a new token carrying
    ``pv: 1``. One phone verifies one voter: if the phone already belongs to another voter
    (an ``sms`` voter, or another WeChat voter), 409 ``phone_in_use``. One voter holds one
    phone: a WeChat voter that verified a phone and now verifies another is refused, 409
    ``voter_has_other_phone`` (a replacement would free the first phone to verify a second
    voter, and 一人一号 would be one phone at a time, not one phone).

  Either way the token carries ``pv: 1`` (``identity.voter_token``), so the vote path checks a
  campaign's phone rule from the token alone (``phone_verified``).

Where the phone → voter mapping lives: the ``voter_phones`` table (``VoterPhone``: the phone's
keyed hash as primary key, ``voter_id`` unique, ``verified_at``), for ``sms`` voters and
upgraded WeChat voters alike; Redis holds only codes and counters, so losing Redis data forgets
no claim. A claim is an INSERT inside a SAVEPOINT: of two voters verifying one phone at the same
moment the database lets exactly one row in, and the other's IntegrityError becomes 409. An
``sms`` voter without a row (made by a process older than the table; the migration gave every
earlier one its row) still owns its phone: the look-up falls back to it.

Phone numbers are never stored or logged in the clear: the keyed hash in the database and Redis,
``138****1234`` in log lines.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

import redis
from flask import current_app
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from core import clock, sms
from core.auth import IssuedToken, keyed_digest
from core.errors import AppError, Conflict, Forbidden, NotFound, ServiceUnavailable
from core.extensions import db, redis_store
from core.ratelimit import limit
from voting import identity
from voting.models import Voter, VoterPhone

log = logging.getLogger("zuimei.phone")

# The campaign rule (``require_phone``): what the vote path answers a voter without ``pv``.
REFUSAL = ("phone_required", 403, "本活动需验证手机号后投票")
PHONE_CLAIM = "pv"
CODE_DIGITS = 6
RESEND_AFTER = 60  # seconds the page waits before offering another code (the 1/minute limit)

_DISABLED = "未启用手机号验证"
_EXPIRED = "验证码已过期或已使用，请重新获取"
_INVALID = "验证码不正确"
_IN_USE = "该手机号已用于验证其他投票身份"
_HAS_OTHER = "该投票身份已验证过其他手机号，请使用原手机号验证"
_UNAVAILABLE = "短信服务暂时不可用，请稍后再试"

# KEYS[1] the code's hash; ARGV: the answer's HMAC, now (app clock, s), tries allowed.
# Returns {1, 0} right (code spent), {0, 0} no live code (never sent, used, burned or expired),
# {-1, tries left} wrong (0 left: burned).
_VERIFY = """
local stored = redis.call('HMGET', KEYS[1], 'h', 'exp')
if not stored[1] then return {0, 0} end
if tonumber(ARGV[2]) > tonumber(stored[2]) then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
if stored[1] == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
local tries = redis.call('HINCRBY', KEYS[1], 'tries', 1)
local left = tonumber(ARGV[3]) - tries
if left <= 0 then
  redis.call('DEL', KEYS[1])
  left = 0
end
return {-1, left}
"""


def phone_verified(claims: dict[str, Any]) -> bool:
    """Whether a voter token's claims say the voter proved a phone (``pv: 1``)."""
    return claims.get(PHONE_CLAIM) == 1


def enabled() -> bool:
    return sms.enabled()


def _require_enabled() -> sms.SmsProvider:
    provider = sms.provider()
    if provider is None:
        raise NotFound(_DISABLED, code="provider_disabled")
    return provider


def phone_hash(phone: str) -> str:
    """The keyed hash that stands for a phone number everywhere (the voter's subject)."""
    return identity.subject_hash("sms", phone)


def _code_key(hashed: str) -> str:
    return redis_store.key("sms", "code", hashed)


def _answer_hmac(hashed: str, code: str) -> str:
    return keyed_digest("sms-code", f"{hashed}:{code}").hex()


# --- sending a code ----------------------------------------------------------------------------


def send_code(
    phone: str, *, address: str, device: str | None = None, campaign: str | None = None
) -> dict[str, Any]:
    """Text a new code to ``phone`` (11 digits, already validated); it replaces any earlier one.

    Refusals: 404 ``provider_disabled``; 429 ``rate_limited`` (with Retry-After) past the limits
    per address, device and phone; the provider's: 422 ``sms_bad_number``, 429
    ``sms_frequency_limit``, 502 ``sms_provider_refused``, 503 ``sms_unavailable``."""
    provider = _require_enabled()
    hashed = phone_hash(phone)
    try:
        # The address and the device first: a script spraying numbers from one place stops
        # there before it spends each victim's per-phone allowance.
        limit("SMS_IP_LIMIT", "sms-code-ip", address)
        if device:
            limit("SMS_DEVICE_LIMIT", "sms-code-device", device)
        limit("SMS_PHONE_LIMIT", "sms-code-phone", hashed)
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    template = str(current_app.config.get("SMS_TEMPLATE_ID") or "")
    try:
        result = provider.send_code(phone, code, template=template)
    except sms.SmsError as exc:
        raise _provider_refusal(exc, phone) from exc
    ttl = int(current_app.config.get("SMS_CODE_TTL") or 300)
    key = _code_key(hashed)
    try:
        pipe = redis_store.client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(
            key,
            mapping={"h": _answer_hmac(hashed, code), "exp": clock.epoch() + ttl, "tries": 0},
        )
        pipe.expire(key, ttl + 60)  # Redis's own clean-up; the expiry that counts is "exp"
        pipe.execute()
    except (redis.RedisError, OSError) as exc:
        # Sent but not kept: the voter asks again once the per-phone minute has passed.
        log.error("sms code for %s sent but not stored: %s", sms.mask(phone), type(exc).__name__)
        raise ServiceUnavailable() from exc
    log.info(
        "sms code sent to %s (campaign %s, provider %s, message %s)",
        sms.mask(phone),
        campaign or "-",
        result.provider,
        result.message_id,
    )
    return {"phone": sms.mask(phone), "expires_in": ttl, "resend_after": RESEND_AFTER}


def _provider_refusal(exc: sms.SmsError, phone: str) -> AppError:
    masked = sms.mask(phone)
    if exc.code == "bad_number":
        return AppError("该手机号无法接收短信，请检查后重试", code="sms_bad_number", status=422)
    if exc.code == "frequency_limit":
        return AppError(
            "该手机号接收验证码太频繁，请稍后再试",
            code="sms_frequency_limit",
            status=429,
            headers={"Retry-After": str(RESEND_AFTER)},
            details={"retry_after": RESEND_AFTER},
        )
    if exc.transient:
        log.error("sms provider unavailable for %s: %s (%s)", masked, exc.code, exc.provider_code)
        return AppError(_UNAVAILABLE, code="sms_unavailable", status=503)
    log.error("sms provider refused %s: %s (%s)", masked, exc.code, exc.provider_code)
    return AppError(
        "短信服务暂时无法发送验证码，请稍后再试", code="sms_provider_refused", status=502
    )


# --- checking an answer --------------------------------------------------------------------------


def _spend(hashed: str, code: str) -> None:
    """Check ``code`` against the live code of the phone; spend it when right."""
    tries = int(current_app.config.get("SMS_CODE_MAX_TRIES") or 5)
    try:
        script = redis_store.client.register_script(_VERIFY)
        outcome, left = script(
            keys=[_code_key(hashed)], args=[_answer_hmac(hashed, code), clock.epoch(), tries]
        )
    except (redis.RedisError, OSError) as exc:
        raise ServiceUnavailable() from exc
    if int(outcome) == 1:
        return
    if int(outcome) == 0:
        raise AppError(_EXPIRED, code="sms_code_expired", status=410)
    left = int(left)
    message = f"{_INVALID}，还可尝试 {left} 次" if left else f"{_INVALID}，请重新获取"
    raise AppError(message, code="sms_code_invalid", status=400, details={"tries_left": left})


def verify(
    phone: str, code: str, claims: dict[str, Any] | None = None
) -> tuple[Voter, IssuedToken, bool]:
    """Spend the code; the voter for the phone (or the caller's WeChat voter, upgraded) and a
    token with ``pv: 1``; and whether it was an upgrade. The caller commits.

    Refusals: 404 ``provider_disabled``; 410 ``sms_code_expired``; 400 ``sms_code_invalid``;
    409 ``phone_in_use`` (the phone verified another voter) or ``voter_has_other_phone`` (this
    WeChat voter verified another phone); 403 ``invalid_voter`` (a blocked voter); 503 when
    Redis is down."""
    _require_enabled()
    hashed = phone_hash(phone)
    _spend(hashed, code)
    if claims is not None and claims.get("p") == "wechat":
        voter = _upgrade(hashed, claims)
        upgraded = True
    else:
        voter = _phone_voter(hashed)
        upgraded = False
    log.info(
        "phone %s verified for voter %s (%s)",
        sms.mask(phone),
        voter.id,
        "upgrade" if upgraded else voter.provider,
    )
    return voter, identity.voter_token(voter, phone_verified=True), upgraded


def _owner(hashed: str) -> int | None:
    """The id of the voter the phone belongs to, or None while it belongs to nobody."""
    owner = db.session.scalar(select(VoterPhone.voter_id).where(VoterPhone.phone_hash == hashed))
    if owner is None:
        # An sms voter made without its row (by a process older than the table) owns it still.
        owner = db.session.scalar(
            select(Voter.id).where(Voter.provider == "sms", Voter.subject == hashed)
        )
    return owner


def _usable(voter: Voter | None) -> Voter:
    if voter is None:
        raise Forbidden("投票身份无效，请重新进入", code="invalid_voter")
    if voter.blocked:
        raise Forbidden("该投票身份已被停用", code="invalid_voter")
    return voter


def _claim_row(hashed: str, voter_id: int) -> VoterPhone:
    return VoterPhone(phone_hash=hashed, voter_id=voter_id, verified_at=clock.utcnow())


def _phone_voter(hashed: str) -> Voter:
    """The one voter of this phone: the voter its row names, else a new sms voter with its row.

    Two first logins of one phone at once: one makes the voter and the row, the other's
    savepoint fails on the unique keys and it takes the winner's voter."""
    owner = _owner(hashed)
    if owner is None:
        try:
            with db.session.begin_nested():
                voter = identity.voter_for("sms", hashed)
                db.session.add(_claim_row(hashed, voter.id))
            return voter
        except IntegrityError:
            owner = _owner(hashed)
            if owner is None:
                # A conflict that left the phone unclaimed: nothing to hand out, try again.
                raise Conflict("请稍后重试", code="concurrent_update") from None
    return _usable(db.session.get(Voter, owner))


def _upgrade(hashed: str, claims: dict[str, Any]) -> Voter:
    try:
        voter_id = int(claims["sub"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Forbidden("投票身份无效，请重新进入", code="invalid_voter") from exc
    voter = _usable(db.session.get(Voter, voter_id))
    owner = _owner(hashed)
    if owner is None:
        held = db.session.scalar(
            select(VoterPhone.phone_hash).where(VoterPhone.voter_id == voter.id)
        )
        if held is not None:
            raise Conflict(_HAS_OTHER, code="voter_has_other_phone")
        try:
            with db.session.begin_nested():
                db.session.add(_claim_row(hashed, voter.id))
            return voter
        except IntegrityError:
            # Another verification got in first: of this phone (the primary key), or of another
            # phone for this same voter (the unique voter_id).
            owner = _owner(hashed)
            if owner is None:
                raise Conflict(_HAS_OTHER, code="voter_has_other_phone") from None
    if owner != voter.id:
        raise Conflict(_IN_USE, code="phone_in_use")
    return voter
