"""Programmes, windows, encounters (validated row by row), one-time links, answers, 退订 and
the retention purge. Services flush, never commit; routes and jobs commit."""

from __future__ import annotations

import base64
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from appraisal import pii
from appraisal.labels import REFUSALS
from appraisal.models import (
    CHOICES,
    Encounter,
    Invitation,
    OptOut,
    Programme,
    Rating,
    Upload,
    Window,
)
from campaigns import services as campaign_services
from campaigns.models import Account, Unit
from core import audit, clock
from core.auth import keyed_digest
from core.clock import utcnow
from core.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from nominations.models import Nomination

MAX_COMMENT = 300


class LinkExpired(AppError):
    status, code, message = 410, "link_expired", "评价链接已过期，感谢您的关注"


# --- programmes and who may touch them ---------------------------------------------------------


def zone(programme: Programme) -> ZoneInfo:
    return clock.zone(programme.timezone)


def local_today(programme: Programme, now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(zone(programme)).date()


def get_programme(code: str) -> Programme:
    programme = db.session.scalar(select(Programme).where(Programme.code == code))
    if programme is None:
        raise NotFound("评议项目不存在", code="programme_not_found", details={"code": code})
    return programme


def _staff_unit(account: Account) -> Unit:
    if account.unit is None:
        raise Forbidden("账号未关联单位", code="no_unit")
    return account.unit


def check_manage(account: Account, programme: Programme) -> None:
    """Admins manage every programme; a bureau's reviewers those of their bureau or below."""
    if account.role == "admin":
        return
    if account.role == "reviewer" and _staff_unit(account).contains(programme.bureau):
        return
    raise Forbidden("只有主办的卫健局可以管理该评议项目", code="not_programme_bureau")


def visible_programmes(account: Account) -> list[Programme]:
    query = select(Programme).join(Unit, Unit.id == Programme.bureau_unit_id).order_by(Programme.id)
    programmes = list(db.session.scalars(query))
    if account.role == "admin":
        return programmes
    unit = _staff_unit(account)
    if account.role == "reviewer":
        return [p for p in programmes if unit.contains(p.bureau)]
    return [p for p in programmes if p.bureau.contains(unit) and p.status == "active"]


def create_programme(account: Account, fields: dict[str, Any]) -> Programme:
    bureau = campaign_services.get_unit(fields["bureau_code"])
    if bureau.level == "institution":
        raise ValidationFailed("评议项目须由卫健局主办", code="bureau_required")
    if account.role != "admin" and not _staff_unit(account).contains(bureau):
        raise Forbidden("只能为本局或下级卫健局设立评议项目", code="not_programme_bureau")
    if db.session.scalar(select(Programme.id).where(Programme.code == fields["code"])):
        raise Conflict("评议项目代码已存在", code="programme_exists")
    try:
        ZoneInfo(fields.get("timezone") or "Asia/Shanghai")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationFailed("时区无效", code="invalid_timezone") from exc
    programme = Programme(
        code=fields["code"],
        title=fields["title"],
        bureau=bureau,
        timezone=fields.get("timezone") or "Asia/Shanghai",
        retention_days=fields.get("retention_days") or 90,
        status="active",
        campaign_id=_campaign_id(fields.get("campaign_slug")),
        phone_cap=fields.get("phone_cap"),
    )
    db.session.add(programme)
    db.session.flush()
    audit.record(
        "appraisal.programme.create",
        "appraisal_programme",
        programme.code,
        after={
            "title": programme.title,
            "bureau": bureau.code,
            "retention_days": programme.retention_days,
        },
    )
    return programme


def _campaign_id(slug: str | None) -> int | None:
    return campaign_services.get_campaign(slug).id if slug else None


def update_programme(account: Account, programme: Programme, changes: dict[str, Any]) -> Programme:
    check_manage(account, programme)
    changes = dict(changes)
    if "campaign_slug" in changes:
        changes["campaign_id"] = _campaign_id(changes.pop("campaign_slug"))
    before = {k: getattr(programme, k) for k in changes}
    for key, value in changes.items():
        setattr(programme, key, value)
    if "retention_days" in changes:
        # The new period applies to the numbers already stored too.
        for encounter in db.session.scalars(
            select(Encounter).where(
                Encounter.programme_id == programme.id, Encounter.purged_at.is_(None)
            )
        ):
            encounter.purge_after = purge_moment(programme, encounter.encounter_date)
    audit.record(
        "appraisal.programme.update",
        "appraisal_programme",
        programme.code,
        before=before,
        after=dict(changes),
    )
    return programme


def programme_unit(
    account: Account, programme: Programme, unit_code: str | None, *, writing: bool = True
) -> Unit:
    """The unit a clerk works for: a unit account's own; staff above name one under the bureau.
    ``writing``: refused once the programme is closed (reading is not)."""
    if account.role == "unit":
        unit = _staff_unit(account)
        if unit_code and unit_code != unit.code:
            raise Forbidden("只能登记本单位的就诊记录", code="not_own_unit")
    else:
        check_manage(account, programme)
        if not unit_code:
            raise ValidationFailed("请指定单位", code="unit_required")
        unit = campaign_services.get_unit(unit_code)
    if not programme.bureau.contains(unit) or unit.id == programme.bureau_unit_id:
        raise Forbidden("该单位不在本评议项目范围内", code="unit_not_in_programme")
    if writing and programme.status != "active":
        raise Conflict("评议项目已结束", code="programme_closed")
    return unit


# --- windows (walk-in QR codes) -----------------------------------------------------------------


def create_window(
    account: Account, programme: Programme, unit_code: str | None, name: str
) -> Window:
    unit = programme_unit(account, programme, unit_code)
    window = Window(programme=programme, unit=unit, name=name, token=secrets.token_urlsafe(9))
    db.session.add(window)
    db.session.flush()
    audit.record(
        "appraisal.window.create",
        "appraisal_window",
        window.id,
        after={"unit": unit.code, "name": name},
    )
    return window


def windows_of(account: Account, programme: Programme) -> list[Window]:
    query = select(Window).where(Window.programme_id == programme.id).order_by(Window.id)
    if account.role == "unit":
        query = query.where(Window.unit_id == _staff_unit(account).id)
    else:
        check_manage(account, programme)
    return list(db.session.scalars(query))


def uploads_of(
    account: Account, programme: Programme, unit_code: str | None, limit: int = 50
) -> list[Upload]:
    """The latest uploads, newest first: a unit clerk's unit's own; the bureau every unit's (or
    one unit's)."""
    query = select(Upload).where(Upload.programme_id == programme.id)
    if account.role == "unit" or unit_code:
        unit = programme_unit(account, programme, unit_code, writing=False)
        query = query.where(Upload.unit_id == unit.id)
    else:
        check_manage(account, programme)
    return list(db.session.scalars(query.order_by(Upload.id.desc()).limit(limit)))


def get_upload(account: Account, programme: Programme, upload_id: int) -> Upload:
    """One upload of the programme: for the unit that uploaded it (404 for another unit) and
    its bureau."""
    record = db.session.get(Upload, upload_id)
    if record is None or record.programme_id != programme.id:
        raise NotFound("上传记录不存在", code="upload_not_found")
    if account.role == "unit":
        if record.unit_id != account.unit_id:
            raise NotFound("上传记录不存在", code="upload_not_found")
    else:
        check_manage(account, programme)
    return record


def get_window(token: str) -> Window:
    window = db.session.scalar(select(Window).where(Window.token == token))
    if window is None or window.programme.status != "active":
        raise NotFound("该二维码已失效", code="window_not_found")
    return window


# --- encounters ---------------------------------------------------------------------------------


def match_nominee(programme: Programme, unit_id: int, staff_name: str | None) -> int | None:
    """The programme's campaign's approved nominee of this unit by that name, if exactly one."""
    if programme.campaign_id is None or not staff_name:
        return None
    ids = list(
        db.session.scalars(
            select(Nomination.id)
            .where(
                Nomination.campaign_id == programme.campaign_id,
                Nomination.unit_id == unit_id,
                Nomination.name == staff_name.strip(),
                Nomination.status == "approved",
            )
            .limit(2)
        )
    )
    return ids[0] if len(ids) == 1 else None


@dataclass
class Refusal:
    row: int
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "code": self.code, "message": self.message}


@dataclass
class Outcome:
    accepted: list[Encounter] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d")


def parse_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    text = re.sub(r"[ T]\d{1,2}:\d{2}(:\d{2})?$", "", text)  # a time of day is dropped
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def purge_moment(programme: Programme, day: date) -> datetime:
    start = datetime.combine(day, time(0), tzinfo=zone(programme))
    return (start + timedelta(days=programme.retention_days + 1)).astimezone(UTC)


def _refuse(row: int, code: str, **fmt: Any) -> Refusal:
    return Refusal(row, code, REFUSALS[code].format(**fmt))


def register(
    programme: Programme,
    unit: Unit,
    rows: list[tuple[int, dict[str, Any]]],
    *,
    source: str,
    upload: Upload | None = None,
) -> Outcome:
    """Validate each ``(row number, fields)`` and store the good ones with a queued invitation.
    Refused rows keep no phone number, only their row, code and reason."""
    outcome = Outcome()
    today = local_today(programme)
    oldest = today - timedelta(days=programme.retention_days)
    seen: dict[str, int] = {}
    candidates: list[tuple[int, dict[str, Any]]] = []
    for number, raw in rows:
        phone = pii.normalise(_text(raw.get("phone")))
        day = parse_date(raw.get("date"))
        department = _text(raw.get("department"))
        staff_name = _text(raw.get("staff_name")) or None
        staff_number = _text(raw.get("staff_number")) or None
        if phone is None:
            refusal = _refuse(number, "bad_phone")
        elif day is None:
            refusal = _refuse(number, "bad_date")
        elif day > today:
            refusal = _refuse(number, "future_date")
        elif day < oldest:
            refusal = _refuse(number, "too_old", days=programme.retention_days)
        elif not department:
            refusal = _refuse(number, "missing_department")
        elif len(department) > 60 or len(staff_name or "") > 40 or len(staff_number or "") > 40:
            refusal = _refuse(number, "too_long")
        else:
            key = keyed_digest(
                "appraisal-visit", f"{programme.id}|{phone}|{day.isoformat()}|{department}"
            ).hex()
            if key in seen:
                refusal = _refuse(number, "duplicate_in_file", first=seen[key])
            else:
                seen[key] = number
                candidates.append(
                    (
                        number,
                        {
                            "phone": phone,
                            "day": day,
                            "department": department,
                            "staff_name": staff_name,
                            "staff_number": staff_number,
                            "key": key,
                        },
                    )
                )
                continue
        outcome.refused.append(refusal)
    keys = [c[1]["key"] for c in candidates]
    hashes = {c[1]["phone"]: pii.phone_hash(c[1]["phone"]) for c in candidates}
    known: set[str] = set()
    opted: set[str] = set()
    for start in range(0, len(keys), 500):
        known.update(
            db.session.scalars(
                select(Encounter.dedupe_key).where(
                    Encounter.programme_id == programme.id,
                    Encounter.dedupe_key.in_(keys[start : start + 500]),
                )
            )
        )
    values = list(set(hashes.values()))
    for start in range(0, len(values), 500):
        opted.update(
            db.session.scalars(
                select(OptOut.phone_hash).where(OptOut.phone_hash.in_(values[start : start + 500]))
            )
        )
    now = utcnow()
    nominees: dict[str | None, int | None] = {}
    for number, row in candidates:
        phone_hash = hashes[row["phone"]]
        if row["key"] in known:
            outcome.refused.append(_refuse(number, "duplicate"))
            continue
        if phone_hash in opted:
            outcome.refused.append(_refuse(number, "opted_out"))
            continue
        if row["staff_name"] not in nominees:
            nominees[row["staff_name"]] = match_nominee(programme, unit.id, row["staff_name"])
        encounter = Encounter(
            programme_id=programme.id,
            unit_id=unit.id,
            upload_id=upload.id if upload is not None else None,
            source=source,
            phone_cipher=pii.encrypt(row["phone"]),
            phone_hash=phone_hash,
            phone_masked=pii.mask(row["phone"]),
            dedupe_key=row["key"],
            encounter_date=row["day"],
            department=row["department"],
            staff_name=row["staff_name"],
            staff_number=row["staff_number"],
            nomination_id=nominees[row["staff_name"]],
            link_nonce=secrets.token_urlsafe(12),
            purge_after=purge_moment(programme, row["day"]),
        )
        db.session.add(encounter)
        db.session.add(
            Invitation(
                encounter=encounter,
                programme_id=programme.id,
                status="queued",
                next_attempt_at=now,
            )
        )
        outcome.accepted.append(encounter)
    db.session.flush()
    outcome.refused.sort(key=lambda r: r.row)
    return outcome


def encounters_of(
    account: Account, programme: Programme, unit_code: str | None, page: int, per_page: int
) -> tuple[list[tuple[Encounter, Invitation | None, Rating | None]], int]:
    query = (
        select(Encounter, Invitation, Rating)
        .outerjoin(Invitation, Invitation.encounter_id == Encounter.id)
        .outerjoin(Rating, Rating.encounter_id == Encounter.id)
        .where(Encounter.programme_id == programme.id)
    )
    if account.role == "unit" or unit_code:
        unit = programme_unit(account, programme, unit_code, writing=False)
        query = query.where(Encounter.unit_id == unit.id)
    else:
        check_manage(account, programme)
    total = db.session.scalar(
        select(db.func.count()).select_from(query.with_only_columns(Encounter.id).subquery())
    )
    rows = db.session.execute(
        query.order_by(Encounter.id.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return [(r[0], r[1], r[2]) for r in rows], int(total or 0)


# --- the one-time link ------------------------------------------------------------------------


def _link_signature(encounter_id: int, nonce: str) -> str:
    digest = keyed_digest("appraisal-link", f"{encounter_id}:{nonce}")[:15]
    return base64.urlsafe_b64encode(digest).decode()


def link_token(encounter: Encounter) -> str:
    """``<id, hex>.<signature>``: 31 characters or so, short enough for a text message."""
    return f"{encounter.id:x}.{_link_signature(encounter.id, encounter.link_nonce)}"


def link_path(encounter: Encounter) -> str:
    return f"/r/{link_token(encounter)}"


def encounter_for_token(token: str) -> Encounter:
    """The encounter a link names; 404 link_invalid for anything forged, 410 link_expired."""
    head, _, signature = (token or "").partition(".")
    invalid = NotFound("评价链接无效，请核对短信中的链接", code="link_invalid")
    if not re.fullmatch(r"[0-9a-f]{1,8}", head) or len(signature) != 20:
        raise invalid
    if int(head, 16) > 2_147_483_647:  # past any id (and PostgreSQL's integer)
        raise invalid
    encounter = db.session.get(Encounter, int(head, 16))
    if encounter is None or not hmac.compare_digest(
        signature, _link_signature(encounter.id, encounter.link_nonce)
    ):
        raise invalid
    days = int(current_app.config.get("APPRAISAL_LINK_DAYS") or 30)
    if encounter.purged_at is not None or utcnow() > encounter.created_at + timedelta(days=days):
        raise LinkExpired()
    return encounter


def answered(encounter: Encounter) -> Rating | None:
    return db.session.scalar(select(Rating).where(Rating.encounter_id == encounter.id))


def _check_answer(
    choice: str, comment: str | None, staff_name: str | None
) -> tuple[str | None, str | None]:
    if choice not in CHOICES:
        raise ValidationFailed("请选择满意、基本满意或不满意", code="invalid_choice")
    comment = (comment or "").replace("\r\n", "\n").strip() or None
    if comment and len(comment) > MAX_COMMENT:
        raise ValidationFailed(f"意见最多 {MAX_COMMENT} 字", code="comment_too_long")
    staff_name = (staff_name or "").strip() or None
    if staff_name and len(staff_name) > 40:
        raise ValidationFailed("工作人员姓名过长", code="staff_too_long")
    return comment, staff_name


def answer_invited(
    token: str, choice: str, comment: str | None = None, staff_name: str | None = None
) -> Rating:
    """The patient's answer through the link: once only (409 already_answered after)."""
    encounter = encounter_for_token(token)
    comment, staff_name = _check_answer(choice, comment, staff_name)
    if answered(encounter) is not None:
        raise Conflict("您已经评价过了，感谢您的参与", code="already_answered")
    rating = Rating(
        programme_id=encounter.programme_id,
        unit_id=encounter.unit_id,
        encounter_id=encounter.id,
        kind="invited",
        choice=choice,
        comment=comment,
        staff_name=staff_name or encounter.staff_name,
        nomination_id=(
            match_nominee(encounter.programme, encounter.unit_id, staff_name)
            if staff_name and staff_name != encounter.staff_name
            else encounter.nomination_id
        ),
        department=encounter.department,
    )
    try:
        with db.session.begin_nested():
            db.session.add(rating)
    except IntegrityError as exc:  # the same link answered at the same moment
        raise Conflict("您已经评价过了，感谢您的参与", code="already_answered") from exc
    return rating


def answer_walk_in(
    window: Window, choice: str, comment: str | None = None, staff_name: str | None = None
) -> Rating:
    comment, staff_name = _check_answer(choice, comment, staff_name)
    rating = Rating(
        programme_id=window.programme_id,
        unit_id=window.unit_id,
        window_id=window.id,
        kind="walk_in",
        choice=choice,
        comment=comment,
        staff_name=staff_name,
        nomination_id=match_nominee(window.programme, window.unit_id, staff_name),
        department=window.name,
    )
    db.session.add(rating)
    db.session.flush()
    return rating


# --- 退订 and the retention purge ---------------------------------------------------------------


def opt_out_hash(phone_hash: str, source: str) -> bool:
    """Record the opt-out (for good) and stop every invitation to it not yet sent. True if new."""
    new = db.session.get(OptOut, phone_hash) is None
    if new:
        db.session.add(OptOut(phone_hash=phone_hash, source=source))
    pending = select(Encounter.id).where(Encounter.phone_hash == phone_hash)
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.encounter_id.in_(pending),
            Invitation.status.in_(("queued", "retrying")),
        )
        .values(status="opted_out", updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return new


def opt_out_link(token: str) -> bool:
    encounter = encounter_for_token(token)
    if encounter.phone_hash is None:
        return False
    new = opt_out_hash(encounter.phone_hash, "link")
    if new:
        audit.record(
            "appraisal.opt_out", "appraisal_encounter", encounter.id, after={"source": "link"}
        )
    return new


def opt_out_phone(phone: str, source: str) -> bool:
    number = pii.normalise(phone)
    if number is None:
        raise ValidationFailed(REFUSALS["bad_phone"], code="bad_phone")
    new = opt_out_hash(pii.phone_hash(number), source)
    if new:
        audit.record("appraisal.opt_out", "phone", pii.mask(number), after={"source": source})
    return new


def purge_expired(now: datetime | None = None, batch: int = 1000) -> int:
    """Delete the phone numbers (cipher, hash, mask, visit key) past their retention; an
    invitation not yet sent to one is given up. The visit and its rating stay, anonymous."""
    now = now or utcnow()
    ids = list(
        db.session.scalars(
            select(Encounter.id)
            .where(Encounter.purge_after <= now, Encounter.purged_at.is_(None))
            .order_by(Encounter.id)
            .limit(batch)
        )
    )
    if not ids:
        return 0
    db.session.execute(
        update(Encounter)
        .where(Encounter.id.in_(ids))
        .values(
            phone_cipher=None, phone_hash=None, dedupe_key=None, phone_masked="***", purged_at=now
        )
        .execution_options(synchronize_session=False)
    )
    db.session.execute(
        update(Invitation)
        .where(
            Invitation.encounter_id.in_(ids),
            Invitation.status.in_(("queued", "retrying", "sending")),
        )
        .values(status="failed", error_code="purged", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.flush()
    return len(ids)


def nominees_by_id(ids: list[int | None]) -> dict[int | None, Nomination]:
    wanted = [i for i in set(ids) if i is not None]
    if not wanted:
        return {}
    return {
        n.id: n for n in db.session.scalars(select(Nomination).where(Nomination.id.in_(wanted)))
    }
