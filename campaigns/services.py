"""Campaign, unit and account rules: login, access, the campaign lifecycle."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import redis
from flask import current_app, g
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from campaigns.models import PHASES, Account, Campaign, Category, Unit
from core import audit
from core.auth import (
    IssuedToken,
    hash_password,
    issue_token,
    password_needs_rehash,
    read_token,
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


# --- login -------------------------------------------------------------------------------------


class _LoginGuard:
    """Failed logins per username and per IP: slowed after a few, refused for a while after more."""

    def __init__(self, username: str, ip: str) -> None:
        self.subjects = [("user", username.lower()), ("ip", ip)]

    def _keys(self, kind: str, value: str) -> tuple[str, str]:
        return (
            redis_store.key("login", "fail", kind, value),
            redis_store.key("login", "lock", kind, value),
        )

    def check(self) -> None:
        cfg = current_app.config
        client = redis_store.client
        now = time.time()
        for kind, value in self.subjects:
            fail_key, lock_key = self._keys(kind, value)
            lock_ttl = client.ttl(lock_key)
            if lock_ttl and lock_ttl > 0:
                raise RateLimited(
                    "登录失败次数过多，账号或网络已被暂时锁定，请稍后再试",
                    code="login_locked",
                    details={"retry_after": lock_ttl},
                    headers={"Retry-After": str(lock_ttl)},
                )
            state = client.hgetall(fail_key)
            failures = int(state.get(b"n", 0))
            if failures >= cfg["LOGIN_SLOW_AFTER"]:
                wait = min(2 ** (failures - cfg["LOGIN_SLOW_AFTER"]), 60)
                elapsed = now - float(state.get(b"last", 0))
                if elapsed < wait:
                    retry = max(1, int(wait - elapsed + 0.999))
                    raise RateLimited(
                        "登录尝试过于频繁，请稍后再试",
                        code="login_throttled",
                        details={"retry_after": retry},
                        headers={"Retry-After": str(retry)},
                    )

    def failed(self) -> None:
        cfg = current_app.config
        client = redis_store.client
        for kind, value in self.subjects:
            fail_key, lock_key = self._keys(kind, value)
            pipe = client.pipeline()
            pipe.hincrby(fail_key, "n", 1)
            pipe.hset(fail_key, "last", time.time())
            pipe.expire(fail_key, cfg["LOGIN_WINDOW"])
            failures = pipe.execute()[0]
            if failures >= cfg["LOGIN_LOCK_AFTER"]:
                client.set(lock_key, 1, ex=cfg["LOGIN_LOCK_SECONDS"])
                client.delete(fail_key)

    def succeeded(self) -> None:
        fail_key, _ = self._keys(*self.subjects[0])
        redis_store.client.delete(fail_key)


def login(username: str, password: str, ip: str) -> tuple[Account, IssuedToken]:
    guard = _LoginGuard(username, ip)
    try:
        guard.check()
        account = db.session.scalar(select(Account).where(Account.username == username))
        ok = verify_password(account.password_hash if account else None, password)
        if not ok or account is None or not account.is_active:
            guard.failed()
            raise Unauthorized("用户名或密码错误", code="invalid_credentials")
        guard.succeeded()
    except redis.RedisError as exc:
        raise ServiceUnavailable() from exc
    if password_needs_rehash(account.password_hash):
        account.password_hash = hash_password(password)
    account.last_login_at = utcnow()
    token = issue_token(
        "staff",
        {"sub": account.id, "role": account.role, "v": account.token_version},
        current_app.config["STAFF_TOKEN_TTL"],
    )
    return account, token


def current_account() -> Account:
    """The staff account behind the request's bearer token (or the pages' staff cookie)."""
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
    return account


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


def add_category(campaign: Campaign, fields: dict[str, Any]) -> Category:
    if PHASES.index(campaign.phase) > PHASES.index("nominating"):
        raise Conflict("推荐阶段结束后不能再添加奖项", code="categories_locked")
    clash = db.session.scalar(
        select(Category).where(
            Category.campaign_id == campaign.id,
            (Category.code == fields["code"]) | (Category.prefix == fields["prefix"]),
        )
    )
    if clash is not None:
        raise Conflict(
            "奖项代码或编号前缀已被使用",
            code="category_exists",
            details={"code": fields["code"], "prefix": fields["prefix"]},
        )
    position = db.session.scalar(
        select(func.count(Category.id)).where(Category.campaign_id == campaign.id)
    )
    category = Category(campaign=campaign, position=position or 0, **fields)
    db.session.add(category)
    try:
        db.session.flush()
    except IntegrityError as exc:  # a concurrent insert of the same code or prefix
        db.session.rollback()
        raise Conflict("奖项代码或编号前缀已被使用", code="category_exists") from exc
    audit.record(
        "category.create", "category", category.code, campaign_id=campaign.id, after=fields
    )
    return category


def get_category(campaign: Campaign, code: str) -> Category:
    for category in campaign.categories:
        if category.code == code:
            return category
    raise NotFound("奖项不存在", code="category_not_found", details={"category": code})
