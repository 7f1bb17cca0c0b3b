"""Campaign, unit and account rules: login, access, the campaign lifecycle."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import redis
from flask import current_app, g
from sqlalchemy import select

from campaigns.labels import AUDIT_LABELS
from campaigns.models import PHASES, Account, Campaign, Unit
from core import audit
from core.audit import AuditLog
from core.auth import (
    IssuedToken,
    bearer_token,
    hash_password,
    issue_token,
    password_needs_rehash,
    read_token,
    read_token_lifetime,
    verify_password,
)
from core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Unauthorized,
    ValidationFailed,
)
from core.extensions import db, redis_store
from core.signals import campaign_changed, phase_changing
from core.types import utcnow
from core.web import STAFF_COOKIE, request_credential

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("zuimei.campaigns")


# --- login -------------------------------------------------------------------------------------

# Reserve one password check, or refuse. KEYS are failure counters (hashes {n, last}): the
# client address's, then the (account, address) pair's. ARGV: now, window, lock seconds, longest
# wait, then slow_after and lock_after per key. Check and count are one step, so parallel guesses
# cannot slip past a limit; a success gives its slot back (_RELEASE).
_RESERVE = """
local now, window, lock_seconds, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), tonumber(ARGV[4])
for i, key in ipairs(KEYS) do
  local slow, lock = tonumber(ARGV[3 + 2 * i]), tonumber(ARGV[4 + 2 * i])
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  if n >= lock then
    return {'locked', i, math.max(redis.call('TTL', key), 1)}
  end
  if n >= slow then
    local wait = math.min(2 ^ (n - slow), max_wait)
    local elapsed = now - tonumber(redis.call('HGET', key, 'last') or '0')
    if elapsed < wait then
      return {'throttled', i, math.max(math.ceil(wait - elapsed), 1)}
    end
  end
end
for i, key in ipairs(KEYS) do
  local n = redis.call('HINCRBY', key, 'n', 1)
  redis.call('HSET', key, 'last', ARGV[1])
  if n >= tonumber(ARGV[4 + 2 * i]) then
    redis.call('EXPIRE', key, lock_seconds)
  else
    redis.call('EXPIRE', key, window)
  end
end
return {'ok', 0, 0}
"""
_RELEASE = """
if redis.call('HINCRBY', KEYS[1], 'n', -1) <= 0 then redis.call('DEL', KEYS[1]) end
redis.call('DEL', KEYS[2])
"""
# Per address (a NAT'd hospital shares one): more room than one account's pair gets.
LOGIN_IP_DEFAULTS = {"LOGIN_IP_SLOW_AFTER": 10, "LOGIN_IP_LOCK_AFTER": 30}


class _LoginGuard:
    """Failed password checks per client address and per (account, address) pair.

    After a few failures each try waits 1, 2, 4 … s (login_throttled); after more, the address or
    the pair is refused for a while (login_locked). Nothing counts per account alone: a guesser
    elsewhere can never lock the real user out of their own address."""

    def __init__(self, username: str, ip: str) -> None:
        self.keys = [
            redis_store.key("login", "fail", "ip", ip),
            redis_store.key("login", "fail", "pair", ip, username.lower()),
        ]

    def reserve(self) -> None:
        cfg = current_app.config
        ip_limits = [cfg.get(name, default) for name, default in LOGIN_IP_DEFAULTS.items()]
        args = [
            time.time(),
            cfg["LOGIN_WINDOW"],
            cfg["LOGIN_LOCK_SECONDS"],
            60,
            *ip_limits,
            cfg["LOGIN_SLOW_AFTER"],
            cfg["LOGIN_LOCK_AFTER"],
        ]
        verdict, which, retry = redis_store.client.eval(_RESERVE, len(self.keys), *self.keys, *args)
        if verdict == b"ok":
            return
        scope = "address" if which == 1 else "account"
        details = {"retry_after": retry, "scope": scope}
        headers = {"Retry-After": str(retry)}
        if verdict == b"locked":
            where = "本网络" if scope == "address" else "该账号在本网络"
            raise RateLimited(
                f"{where}登录失败次数过多，已暂停登录，请稍后再试或联系评选办重置密码",
                code="login_locked",
                details=details,
                headers=headers,
            )
        raise RateLimited(
            "登录尝试过于频繁，请稍后再试", code="login_throttled", details=details, headers=headers
        )

    def release(self) -> None:
        redis_store.client.eval(_RELEASE, len(self.keys), *self.keys)


def _staff_token(account: Account) -> IssuedToken:
    """A staff token with its own id (jti), so that one session can be revoked alone."""
    claims = {
        "sub": account.id,
        "role": account.role,
        "v": account.token_version,
        "jti": secrets.token_urlsafe(12),
    }
    return issue_token("staff", claims, current_app.config["STAFF_TOKEN_TTL"])


def login(username: str, password: str, ip: str) -> tuple[Account, IssuedToken]:
    guard = _LoginGuard(username, ip)
    try:
        guard.reserve()
        account = db.session.scalar(select(Account).where(Account.username == username))
        ok = verify_password(account.password_hash if account else None, password)
        if not ok or account is None:
            raise Unauthorized("用户名或密码错误", code="invalid_credentials")
        guard.release()
    except redis.RedisError as exc:
        raise ServiceUnavailable() from exc
    if not account.is_active:  # told only to whoever knows the password
        raise Forbidden("账号已停用，请联系评选办", code="account_inactive")
    if password_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = utcnow()
    return account, _staff_token(account)


def _revocation_key(token: str, claims: dict[str, Any]) -> str:
    # Tokens signed before ids existed are named by their digest.
    token_id = claims.get("jti") or hashlib.sha256(token.encode()).hexdigest()[:32]
    return redis_store.key("auth", "revoked", token_id)


def current_account() -> Account:
    """The staff account behind the request's bearer token (or the pages' staff cookie).

    A token revoked by logout is refused. Revocations live in Redis; while Redis does not
    answer, the console must still work (the committee watches an outage from it), so the check
    is skipped with an error logged. Deactivation and password changes revoke through
    ``token_version`` in the database and hold during an outage too."""
    token = request_credential(STAFF_COOKIE)
    if not token:
        raise Unauthorized()
    claims = read_token("staff", token)
    account = db.session.get(Account, claims.get("sub"))
    if (
        account is None
        or not account.is_active
        or account.token_version != claims.get("v")
        or account.role != claims.get("role")
    ):
        raise Unauthorized("登录凭证已失效，请重新登录", code="invalid_token")
    try:
        revoked = redis_store.client.exists(_revocation_key(token, claims))
    except redis.RedisError as exc:
        log.error("cannot check staff token revocation (Redis down); allowing: %s", exc)
        revoked = False
    if revoked:
        raise Unauthorized("您已退出登录，请重新登录", code="token_revoked")
    return account


def logout() -> bool:
    """Revoke the caller's staff token until it would have expired. A missing, expired or
    invalid token needs nothing. Whether the credential came from the page cookie is returned."""
    from_cookie = bearer_token() is None
    token = request_credential(STAFF_COOKIE)
    if not token:
        return from_cookie
    try:
        claims, remaining = read_token_lifetime("staff", token)
    except Unauthorized:
        return from_cookie
    try:
        redis_store.client.set(_revocation_key(token, claims), 1, ex=max(1, int(remaining) + 2))
    except redis.RedisError as exc:
        raise ServiceUnavailable() from exc
    return from_cookie


def staff_required(*roles: str) -> Callable[[F], F]:
    """Route decorator: a valid staff token whose role is one of ``roles`` (any staff if none)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            account = current_account()
            if roles and account.role not in roles:
                raise Forbidden()
            g.account = account
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


# --- units ------------------------------------------------------------------------------------


def get_unit(code: str) -> Unit:
    unit = db.session.scalar(select(Unit).where(Unit.code == code))
    if unit is None:
        raise NotFound("单位不存在", code="unit_not_found", details={"unit_code": code})
    return unit


_LEVEL_ORDER = {"province": 0, "city": 1, "county": 2, "institution": 3}


def create_unit(code: str, name: str, level: str, parent_code: str | None = None) -> Unit:
    parent = get_unit(parent_code) if parent_code else None
    if parent is not None and _LEVEL_ORDER[parent.level] >= _LEVEL_ORDER[level]:
        raise ValidationFailed(
            "上级单位的层级必须高于本单位",
            code="invalid_parent",
            details={"parent_code": parent_code},
        )
    if db.session.scalar(select(Unit.id).where(Unit.code == code)):
        raise Conflict("单位代码已存在", code="unit_exists", details={"code": code})
    unit = Unit(code=code, name=name, level=level, parent=parent)
    db.session.add(unit)
    db.session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    audit.record("unit.create", "unit", unit.code, after={"name": name, "level": level})
    return unit


def institutions() -> list[Unit]:
    """Every institution (the units that nominate), by code."""
    return list(
        db.session.scalars(select(Unit).where(Unit.level == "institution").order_by(Unit.code))
    )


def visible_units(account: Account) -> list[Unit]:
    query = select(Unit).order_by(Unit.path)
    if account.role in ("reviewer", "unit"):
        if account.unit is None:
            return []
        if account.role == "unit":
            query = query.where(Unit.id == account.unit_id)
        else:
            query = query.where(Unit.path.startswith(account.unit.path))
    return list(db.session.scalars(query))


# --- accounts ---------------------------------------------------------------------------------


def create_account(
    username: str,
    password: str,
    role: str,
    unit_code: str | None = None,
    display_name: str | None = None,
) -> Account:
    if role in ("unit", "reviewer") and not unit_code:
        raise ValidationFailed(
            "单位账号和审核账号必须指定所属单位", code="unit_required", details={"role": role}
        )
    unit = get_unit(unit_code) if unit_code else None
    if role == "unit" and unit is not None and unit.level != "institution":
        raise ValidationFailed(
            "推荐单位账号只能属于基层单位（医院、卫生院等）", code="invalid_unit_level"
        )
    if role == "reviewer" and unit is not None and unit.level == "institution":
        raise ValidationFailed("审核账号只能属于主管部门", code="invalid_unit_level")
    if password.strip().lower() == username.lower():
        raise ValidationFailed(
            "密码不能与用户名相同",
            code="weak_password",
            details={"fields": {"password": ["密码不能与用户名相同"]}},
        )
    if db.session.scalar(select(Account.id).where(Account.username == username)):
        raise Conflict("用户名已存在", code="account_exists", details={"username": username})
    account = Account(
        username=username,
        password_hash=hash_password(password),
        role=role,
        unit=unit,
        display_name=display_name,
    )
    db.session.add(account)
    db.session.flush()
    audit.record(
        "account.create",
        "account",
        account.id,
        after={"username": username, "role": role, "unit": unit_code},
    )
    return account


def list_accounts() -> list[Account]:
    return list(db.session.scalars(select(Account).order_by(Account.id)))


def get_account(username: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.username == username))
    if account is None:
        raise NotFound("账号不存在", code="account_not_found", details={"username": username})
    return account


def check_password_policy(username: str, password: str, current_hash: str | None = None) -> None:
    """At least 10 characters, not the username, not the password it replaces."""
    problem = None
    if len(password) < 10:
        problem = "密码至少需要 10 个字符"
    elif password.strip().lower() == username.lower():
        problem = "密码不能与用户名相同"
    elif current_hash and verify_password(current_hash, password):
        problem = "新密码不能与当前密码相同"
    if problem:
        raise ValidationFailed(
            problem, code="weak_password", details={"fields": {"new_password": [problem]}}
        )


def _revoke_all(account: Account) -> None:
    """Every token issued to the account so far stops working (each carries the old version)."""
    account.token_version = (account.token_version or 0) + 1


def change_own_password(
    account: Account, current_password: str, new_password: str, ip: str
) -> IssuedToken:
    """The caller proves the current password (throttled like a login), sets a new one, and gets
    a fresh token: every other session of the account ends."""
    guard = _LoginGuard(account.username, ip)
    try:
        guard.reserve()
        if not verify_password(account.password_hash, current_password):
            raise Forbidden("当前密码不正确", code="wrong_password")
        guard.release()
    except redis.RedisError as exc:
        raise ServiceUnavailable() from exc
    check_password_policy(account.username, new_password, account.password_hash)
    account.password_hash = hash_password(new_password)
    _revoke_all(account)
    db.session.flush()
    audit.record("account.password_change", "account", account.id, after=_state(account))
    return _staff_token(account)


def _state(account: Account) -> dict[str, Any]:
    return {"username": account.username, "role": account.role, "is_active": account.is_active}


def reset_password(
    account: Account, new_password: str, actor: Account, reason: str | None = None
) -> Account:
    """An admin sets another account's password; that account's sessions all end."""
    if account.id == actor.id:
        raise Conflict(
            "请通过「修改密码」修改自己的密码（需要输入当前密码）", code="use_password_change"
        )
    check_password_policy(account.username, new_password)
    account.password_hash = hash_password(new_password)
    _revoke_all(account)
    db.session.flush()
    audit.record(
        "account.password_reset",
        "account",
        account.id,
        after=_state(account),
        reason=(reason or "").strip() or None,
    )
    return account


def set_account_active(
    account: Account, active: bool, actor: Account, reason: str | None = None
) -> Account:
    """Deactivate (with a reason) or reactivate an account; either way its tokens are revoked."""
    if not active and account.id == actor.id:
        raise Conflict("不能停用自己的账号", code="cannot_deactivate_self")
    if account.is_active == active:
        code, message = (
            ("already_active", "账号已是启用状态") if active else ("already_inactive", "账号已停用")
        )
        raise Conflict(message, code=code, details={"username": account.username})
    reason = (reason or "").strip() or None
    if not active and not reason:
        raise ValidationFailed("停用账号必须填写原因", code="reason_required")
    before = _state(account)
    account.is_active = active
    _revoke_all(account)
    db.session.flush()
    audit.record(
        "account.activate" if active else "account.deactivate",
        "account",
        account.id,
        before=before,
        after=_state(account),
        reason=reason,
    )
    return account


# --- campaigns --------------------------------------------------------------------------------


def get_campaign(slug: str) -> Campaign:
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise NotFound("评选活动不存在", code="campaign_not_found")
    return campaign


def get_public_campaign(slug: str) -> Campaign:
    """A campaign the public may see: anything but a draft."""
    campaign = get_campaign(slug)
    if campaign.phase == "draft":
        raise NotFound("评选活动不存在", code="campaign_not_found")
    return campaign


def list_campaigns(include_drafts: bool = False) -> list[Campaign]:
    query = select(Campaign).order_by(Campaign.id.desc())
    if not include_drafts:
        query = query.where(Campaign.phase != "draft")
    return list(db.session.scalars(query))


def settings_history(campaign: Campaign) -> tuple[list[AuditLog], list[AuditLog]]:
    """The campaign's settings history: its audited phase moves (newest first) and its last 50
    other changes (settings and categories, as AUDIT_LABELS names them)."""
    history = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.campaign_id == campaign.id, AuditLog.action.in_(list(AUDIT_LABELS)))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(200)
    ).all()
    phase_moves = [entry for entry in history if entry.action == "campaign.phase"]
    changes = [entry for entry in history if entry.action != "campaign.phase"][:50]
    return phase_moves, changes


def _check_windows(values: dict[str, datetime]) -> None:
    errors: dict[str, list[str]] = {}
    if values["nomination_start"] >= values["nomination_end"]:
        errors["nomination_end"] = ["推荐截止时间必须晚于开始时间"]
    if values["voting_start"] >= values["voting_end"]:
        errors["voting_end"] = ["投票截止时间必须晚于开始时间"]
    if values["voting_start"] < values["nomination_start"]:
        errors["voting_start"] = ["投票不能早于推荐开始"]
    if errors:
        raise ValidationFailed(details={"fields": errors})


def _rules_for_storage(rules: dict[str, Any]) -> dict[str, Any]:
    stored = dict(rules)
    if stored.get("hide_counts_from") is not None:
        stored["hide_counts_from"] = stored["hide_counts_from"].isoformat()
    return stored


def create_campaign(fields: dict[str, Any]) -> Campaign:
    _check_windows(fields)
    if db.session.scalar(select(Campaign.id).where(Campaign.slug == fields["slug"])):
        raise Conflict("活动标识已被使用", code="campaign_exists", details={"slug": fields["slug"]})
    values = dict(fields)
    values["rules"] = _rules_for_storage(values["rules"])
    campaign = Campaign(phase="draft", **values)
    db.session.add(campaign)
    db.session.flush()
    audit.record(
        "campaign.create",
        "campaign",
        campaign.slug,
        campaign_id=campaign.id,
        after=snapshot(campaign),
    )
    campaign_changed.send(campaign)
    return campaign


def snapshot(campaign: Campaign) -> dict[str, Any]:
    return {
        "title": campaign.title,
        "organizer": campaign.organizer,
        "timezone": campaign.timezone,
        "phase": campaign.phase,
        "nomination_start": campaign.nomination_start,
        "nomination_end": campaign.nomination_end,
        "voting_start": campaign.voting_start,
        "voting_end": campaign.voting_end,
        "rules": campaign.rules,
        "weights": campaign.weights,
        "require_recommendation": campaign.require_recommendation,
        "publicity_days": campaign.publicity_days,
    }


# Rules that must not change once the public is voting: a voter was told them.
_FROZEN_WHILE_VOTING = ("rules", "voting_start", "timezone")


def update_campaign(campaign: Campaign, changes: dict[str, Any]) -> Campaign:
    if campaign.phase == "closed":
        raise Conflict("活动已结束，不能再修改", code="campaign_closed")
    if campaign.phase == "voting":
        locked = [name for name in _FROZEN_WHILE_VOTING if name in changes]
        if locked:
            raise Conflict(
                "投票进行中，不能修改投票规则或开始时间",
                code="rules_locked",
                details={"fields": locked},
            )
    before = snapshot(campaign)
    windows = {
        name: changes.get(name, getattr(campaign, name))
        for name in ("nomination_start", "nomination_end", "voting_start", "voting_end")
    }
    _check_windows(windows)
    for name, value in changes.items():
        if name == "rules":
            value = _rules_for_storage(value)
        setattr(campaign, name, value)
    db.session.flush()
    audit.record(
        "campaign.update",
        "campaign",
        campaign.slug,
        campaign_id=campaign.id,
        before=before,
        after=snapshot(campaign),
    )
    campaign_changed.send(campaign)
    return campaign


def change_phase(campaign: Campaign, phase: str, reason: str | None) -> Campaign:
    old = PHASES.index(campaign.phase)
    new = PHASES.index(phase)
    if new == old:
        raise Conflict("活动已处于该阶段", code="phase_unchanged", details={"phase": phase})
    reason = (reason or "").strip() or None
    if new < old and not reason:
        raise ValidationFailed(
            "退回到之前的阶段必须填写原因",
            code="reason_required",
            details={"from": campaign.phase, "to": phase},
        )
    if phase != "draft" and not campaign.categories:
        raise Conflict("请先添加至少一个奖项", code="no_categories")
    phase_changing.send(campaign, phase=phase)
    before = campaign.phase
    campaign.phase = phase
    db.session.flush()
    audit.record(
        "campaign.phase",
        "campaign",
        campaign.slug,
        campaign_id=campaign.id,
        before={"phase": before},
        after={"phase": phase},
        reason=reason,
    )
    campaign_changed.send(campaign)
    return campaign


def set_banner(campaign: Campaign, key: str | None) -> str | None:
    """Make ``key`` (a stored banner image's folder, or None to remove it) the campaign's H5
    banner, audited as a settings change; returns the key it replaced (its folder is the
    caller's to delete once this commits). The public view is rebuilt after the commit."""
    previous = campaign.banner_key
    if previous == key:
        return None
    campaign.banner_key = key
    db.session.flush()
    audit.record(
        "campaign.update",
        "campaign",
        campaign.slug,
        campaign_id=campaign.id,
        before={"banner": previous},
        after={"banner": key},
    )
    campaign_changed.send(campaign)
    return previous
