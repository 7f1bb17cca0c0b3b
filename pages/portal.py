"""The unit portal: a clinic clerk's nominations, the form, uploads, submit and resubmit.

The pages are server-rendered shells: what a clerk may see is decided here through the same
services as the API (another unit's nomination is the API's own 404), and every write goes
from portal.js through /api/v1 with the session cookie and the CSRF header."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, g, request
from marshmallow import fields, validate

from campaigns import services as campaign_services
from campaigns.labels import ROLE_LABELS, phase_label
from campaigns.models import Account, Campaign, Unit
from core.errors import AppError
from media import gallery as media_gallery
from media import services as media_services
from media.labels import MEDIA_STATUS_LABELS, VIDEO_PROGRESS_LABELS
from media.models import PHOTOS_MAX, MediaAsset
from nominations import form_fields, labels, levels
from nominations import services as nomination_services
from nominations.labels import (
    ACTION_LABELS,
    GENDER_LABELS,
    LEVEL_DECISION_LABELS,
    STATUS_LABELS,
    level_label,
)
from nominations.models import EDITABLE, HOLDS_QUOTA, Nomination, NominationReview
from nominations.schemas import NominationCreateSchema, NominationUpdateSchema
from pages.common import error_page, local_time, render_page, staff_page

bp = Blueprint("portal", __name__, url_prefix="/portal", template_folder="templates")
bp.register_error_handler(AppError, error_page)

# --- words the clerk reads (statuses, phases, roles, genders, media: see the domains' labels) -

# The form: labels and hints per API field name; limits come from the schemas themselves.
FIELD_LABELS = {
    "category": "奖项",
    "unit_code": "推荐单位",
    "name": "姓名",
    "gender": "性别",
    "title": "职称",
    "position": "职务",
    "department": "科室 / 部门",
    "years_of_service": "从业年限（年）",
    "summary": "一句话简介",
    "deeds": "事迹材料",
    "unit_opinion": "推荐单位意见",
    "extra": "本活动的其他填报项",
}
FIELD_HINTS = {
    "title": "如：主任医师、主管护师",
    "position": "如：急诊科副主任（选填）",
    "years_of_service": "选填",
    "summary": "用于候选人卡片，一句话概括主要事迹",
    "deeds": "真实、具体地写出主要事迹，换行会保留",
    "unit_opinion": "推荐单位对候选人的推荐意见",
}
FIELD_ORDER = (
    "category",
    "unit_code",
    "name",
    "gender",
    "title",
    "position",
    "department",
    "years_of_service",
    "extra",
    "summary",
    "deeds",
    "unit_opinion",
)
TEXTAREA_ROWS = {"summary": 2, "deeds": 16, "unit_opinion": 4}
CHOICE_LABELS = {"gender": GENDER_LABELS}
# The words portal.js says, handed to it with the page data (media.labels).
SCRIPT_LABELS = {"video_progress": VIDEO_PROGRESS_LABELS}


def _rule(name: str, field: fields.Field, *, required: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "name": name,
        "label": FIELD_LABELS.get(name, name),
        "hint": FIELD_HINTS.get(name, ""),
        "required": required,
        "nullable": bool(field.allow_none),
        "type": "integer" if isinstance(field, fields.Integer) else "string",
        "rows": TEXTAREA_ROWS.get(name),
        "min_length": None,
        "max_length": None,
        "min": None,
        "max": None,
        "choices": None,
    }
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            rule["min_length"], rule["max_length"] = validator.min, validator.max
        elif isinstance(validator, validate.Range):
            rule["min"], rule["max"] = validator.min, validator.max
        elif isinstance(validator, validate.OneOf):
            labels = CHOICE_LABELS.get(name, {})
            rule["choices"] = [(value, labels.get(value, value)) for value in validator.choices]
    return rule


def form_rules() -> list[dict[str, Any]]:
    """Every field of the create and update schemas, with the schemas' own limits: the page
    validates with exactly what the API will check."""
    create, update = NominationCreateSchema(), NominationUpdateSchema()
    names = [n for n in FIELD_ORDER if n in create.fields or n in update.fields]
    names += [n for n in (*create.fields, *update.fields) if n not in names]
    rules = []
    for name in dict.fromkeys(names):
        if name in create.fields:
            rules.append(_rule(name, create.fields[name], required=create.fields[name].required))
        else:
            rules.append(_rule(name, update.fields[name], required=False))
    return rules


EXTRA_ROWS = 4  # a long-text extra field's textarea


def extra_rules(campaign: Campaign) -> list[dict[str, Any]]:
    """The campaign's own fields (nominations.form_fields) as form rules, named ``extra.<key>``:
    portal.js sends them inside ``extra`` and the API's per-field errors come back by that name."""
    rules = []
    for field in form_fields.definition(campaign.id):
        kind = field.type
        rules.append(
            {
                "name": f"extra.{field.key}",
                "label": field.label,
                "hint": "不公开" if kind == "phone" else ("公开展示" if field.public else ""),
                "required": field.required,
                "nullable": True,
                "type": kind if kind in ("integer", "date", "phone") else "string",
                "rows": EXTRA_ROWS if kind == "long_text" else None,
                "min_length": None,
                "max_length": field.max_length,
                "min": field.min_value,
                "max": field.max_value,
                "choices": [(o, o) for o in field.options or []] if kind == "choice" else None,
            }
        )
    return rules


# --- shared helpers ---------------------------------------------------------------------------


def status_key(nomination: Nomination) -> str:
    return labels.status_key(nomination.status, nomination.recommended)


def _history(nomination: Nomination) -> list[dict[str, Any]]:
    campaign = nomination.campaign
    return [
        {
            "action": step.action,
            "action_label": ACTION_LABELS.get(step.action, step.action),
            "actor": step.actor_unit or ROLE_LABELS.get(step.actor_role, step.actor_role),
            "actor_role": step.actor_role,
            "comment": step.comment,
            "at": local_time(step.at, campaign),
            "to_status": step.to_status,
        }
        for step in nomination.reviews
    ]


def level_trail(nomination: Nomination) -> list[dict[str, Any]]:
    """Every level's decision (chain campaigns), as the clerk reads it: level, bureau, who,
    when, why, and where a return sent it."""
    return [
        {
            **step,
            "decision_label": LEVEL_DECISION_LABELS.get(step["decision"], step["decision"]),
            "returned_to_label": level_label(step["returned_to"]) if step["returned_to"] else "",
            "at": local_time(step["at"], nomination.campaign),
        }
        for step in levels.trail(nomination)
    ]


def waiting_at(nomination: Nomination) -> str:
    """Where a submitted nomination of a chain campaign waits, e.g. 「县（旗）级 · 某县卫健局」."""
    if nomination.status != "submitted" or not nomination.at_level:
        return ""
    where = level_label(nomination.at_level)
    return f"{where} · {nomination.at_unit.name}" if nomination.at_unit is not None else where


def _reviewer_comments(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [h for h in history if h["comment"] and h["actor_role"] in ("reviewer", "admin")]


def _last_return(nomination: Nomination) -> NominationReview | None:
    returns = [step for step in nomination.reviews if step.action == "return"]
    return returns[-1] if returns else None


def _may_act(account: Account, nomination: Nomination) -> bool:
    return account.role == "admin" or (
        account.role == "unit" and nomination.unit_id == account.unit_id
    )


def _flags(account: Account, nomination: Nomination) -> dict[str, bool]:
    """What the clerk may do now: the same conditions the workflow services check."""
    owner = _may_act(account, nomination)
    campaign = nomination.campaign
    editable = (
        owner and nomination.status in EDITABLE and campaign.phase in ("nominating", "reviewing")
    )
    submittable = editable and (
        nomination_services.nomination_open(campaign) if nomination.status == "draft" else True
    )
    withdrawable = owner and nomination.status in ("draft", "submitted", "returned")
    return {"editable": editable, "submittable": submittable, "withdrawable": withdrawable}


def _quota(
    unit: Unit,
    campaign: Campaign,
    nominations: list[Nomination],
    own: dict[tuple[int, int], int] | None = None,
) -> list[dict[str, Any]]:
    """The unit's places per category: the category's ``max_per_unit``, or the unit's own figure
    where the committee set one (``own``: nominations.levels.own_places)."""
    if own is None:
        own = levels.own_places(unit, [campaign.id])
    rows = []
    for category in campaign.categories:
        limit = own.get((campaign.id, category.id), category.max_per_unit)
        used = sum(
            1
            for n in nominations
            if n.unit_id == unit.id and n.category_id == category.id and n.status in HOLDS_QUOTA
        )
        rows.append(
            {
                "code": category.code,
                "name": category.name,
                "used": used,
                "max": limit,
                "full": used >= limit,
            }
        )
    return rows


def _portal_unit(account: Account) -> Unit | None:
    """The unit whose portal this is: the clerk's own; an admin picks one with ?unit=CODE."""
    if account.role == "unit":
        return account.unit
    code = (request.args.get("unit") or "").strip()
    return campaign_services.get_unit(code) if code else None


def _list_url(account: Account, unit: Unit | None) -> str:
    if account.role == "admin" and unit is not None:
        return f"/portal?unit={unit.code}"
    return "/portal"


# --- the list ---------------------------------------------------------------------------------


@bp.route("")
@staff_page("unit", "admin", login="portal")
def index() -> Any:
    account: Account = g.account
    unit = _portal_unit(account)
    blocks: list[dict[str, Any]] = []
    if unit is not None:
        campaigns = nomination_services.campaigns_for_unit(unit)
        nominations = nomination_services.unit_nominations(unit, campaigns)
        own = levels.own_places(unit, [c.id for c in campaigns])
        for campaign in campaigns:
            mine = [n for n in nominations if n.campaign_id == campaign.id]
            rows = []
            for nomination in mine:
                history = _history(nomination)
                comments = _reviewer_comments(history)
                key = status_key(nomination)
                rows.append(
                    {
                        "n": nomination,
                        "status": key,
                        "status_label": STATUS_LABELS.get(key, key),
                        "history": history,
                        "comments": comments,
                        "last_comment": comments[-1] if comments else None,
                        "waiting_at": waiting_at(nomination),
                        "updated": local_time(nomination.updated_at, campaign),
                        **_flags(account, nomination),
                    }
                )
            blocks.append(
                {
                    "campaign": campaign,
                    "phase_label": phase_label(campaign.phase),
                    "open": nomination_services.nomination_open(campaign),
                    "window": (
                        local_time(campaign.nomination_start, campaign),
                        local_time(campaign.nomination_end, campaign),
                    ),
                    "quota": _quota(unit, campaign, mine, own),
                    "rows": rows,
                }
            )
    return render_page(
        "pages/portal/index.html",
        unit=unit,
        units=campaign_services.institutions() if account.role == "admin" else [],
        blocks=blocks,
        unit_query=f"?unit={unit.code}" if account.role == "admin" and unit else "",
    )


# --- the form ---------------------------------------------------------------------------------


def _categories(campaign: Campaign, unit: Unit | None) -> list[dict[str, Any]]:
    nominations = nomination_services.unit_nominations(unit, [campaign]) if unit is not None else []
    quota = {q["code"]: q for q in _quota(unit, campaign, nominations)} if unit else {}
    return [
        {"code": c.code, "name": c.name, "quota": quota.get(c.code)} for c in campaign.categories
    ]


def _media(nomination: Nomination) -> dict[str, Any]:
    assets = media_services.nomination_assets(nomination)

    def shown(asset: MediaAsset | None, cover: bool | None = None) -> dict[str, Any] | None:
        if asset is None:
            return None
        body = media_services.describe(
            asset, token=media_services.preview_token(asset), cover=cover
        )
        body["status_label"] = MEDIA_STATUS_LABELS.get(asset.status, asset.status)
        body["name"] = asset.original_name
        if asset.status == "receiving":
            body["upload_url"] = f"/api/v1/uploads/{asset.id}"
        return body

    def current(kind: str) -> MediaAsset | None:
        return next(
            (a for a in assets if a.kind == kind and a.is_current and a.status == "ready"), None
        )

    # The gallery, cover first (media.gallery's order), and the cover on its own as before.
    photos = [shown(a, cover=i == 0) for i, a in enumerate(media_gallery.gallery_of(nomination.id))]
    video = current("video")
    latest_video = next((a for a in assets if a.kind == "video"), None)
    pending = (
        latest_video
        if latest_video is not None
        and latest_video is not video
        and latest_video.status in ("receiving", "uploaded", "processing", "failed")
        else None
    )
    return {
        "photo": photos[0] if photos else None,
        "photos": photos,
        "video": shown(video),
        "pending_video": shown(pending),
        "receiving": [shown(a) for a in assets if a.kind == "video" and a.status == "receiving"],
    }


def _values(nomination: Nomination | None, unit: Unit | None) -> dict[str, Any]:
    if nomination is None:
        return {"unit_code": unit.code if unit else ""}
    values = {name: getattr(nomination, name, None) for name in FIELD_LABELS}
    values["category"] = nomination.category.code
    values["unit_code"] = nomination.unit.code
    values.update((f"extra.{key}", value) for key, value in (nomination.extra or {}).items())
    return values


def _render_form(
    campaign: Campaign,
    nomination: Nomination | None,
    unit: Unit | None,
) -> Any:
    account: Account = g.account
    config = current_app.config
    if nomination is None:
        flags = {
            "editable": nomination_services.nomination_open(campaign),
            "submittable": nomination_services.nomination_open(campaign),
            "withdrawable": False,
        }
        media: dict[str, Any] = {
            "photo": None,
            "photos": [],
            "video": None,
            "pending_video": None,
            "receiving": [],
        }
        history: list[dict[str, Any]] = []
        returned = None
    else:
        flags = _flags(account, nomination)
        media = _media(nomination)
        history = _history(nomination)
        step = _last_return(nomination)
        returned = (
            {"comment": step.comment, "at": local_time(step.at, campaign), "actor": step.actor_unit}
            if step is not None and nomination.status == "returned"
            else None
        )
    list_url = _list_url(account, unit)
    data = {
        "mode": "edit" if nomination else "new",
        "campaign": campaign.slug,
        "nomination_id": nomination.id if nomination else None,
        "status": nomination.status if nomination else None,
        "is_admin": account.role == "admin",
        "list_url": list_url,
        "photo_max_bytes": config["MEDIA_PHOTO_MAX_BYTES"],
        "photos_max": PHOTOS_MAX,
        "video_max_bytes": config["MEDIA_VIDEO_MAX_BYTES"],
        **flags,
        **media,
        "labels": SCRIPT_LABELS,
    }
    key = status_key(nomination) if nomination else None
    return render_page(
        "pages/portal/form.html",
        campaign=campaign,
        nomination=nomination,
        unit=unit,
        units=(
            campaign_services.institutions()
            if account.role == "admin"
            else ([unit] if unit is not None else [])
        ),
        rules=[
            rule | {"fields": extra_rules(campaign)} if rule["name"] == "extra" else rule
            for rule in form_rules()
        ],
        extra_shown=(
            form_fields.shown(campaign.id, nomination.extra, public_only=False)
            if nomination is not None
            else []
        ),
        values=_values(nomination, unit),
        categories=_categories(campaign, unit),
        gender_labels=GENDER_LABELS,
        badge=key,
        status_label=STATUS_LABELS.get(key or "", ""),
        phase_label=phase_label(campaign.phase),
        window=(
            local_time(campaign.nomination_start, campaign),
            local_time(campaign.nomination_end, campaign),
        ),
        history=history,
        trail=level_trail(nomination) if nomination is not None else [],
        waiting_at=waiting_at(nomination) if nomination is not None else "",
        returned=returned,
        media=media,
        flags=flags,
        list_url=list_url,
        data=data,
        is_admin=account.role == "admin",
        limits_mb={
            "photo": config["MEDIA_PHOTO_MAX_BYTES"] // (1024 * 1024),
            "video": config["MEDIA_VIDEO_MAX_BYTES"] // (1024 * 1024),
            "video_minutes": config["MEDIA_VIDEO_MAX_SECONDS"] // 60,
        },
    )


@bp.route("/c/<slug>/new")
@staff_page("unit", "admin", login="portal")
def new_nomination(slug: str) -> Any:
    account: Account = g.account
    campaign = campaign_services.get_public_campaign(slug)
    unit = _portal_unit(account)
    return _render_form(campaign, None, unit)


@bp.route("/nominations/<id:nomination_id>")
@staff_page("unit", "admin", login="portal")
def edit_nomination(nomination_id: int) -> Any:
    account: Account = g.account
    # The API's own check: another unit's nomination is "not found", exactly like a missing one.
    nomination = nomination_services.get_for(account, nomination_id)
    return _render_form(nomination.campaign, nomination, nomination.unit)
