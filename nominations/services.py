"""The nomination workflow: draft, submit, review (recommend / approve / return / reject), withdraw,
and the public listing of approved nominees."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select, update
from sqlalchemy.orm import joinedload, selectinload

from campaigns import categories as campaign_categories
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Unit
from core import audit
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.signals import campaign_changed
from core.types import utcnow
from nominations import form_fields, levels, ports, public_view
from nominations.labels import status_key
from nominations.models import (
    COMMITTEE,
    EDITABLE,
    HOLDS_QUOTA,
    STATUSES,
    Nomination,
    NumberCounter,
)
from nominations.public_view import CampaignView

_DOSSIER_FIELDS = form_fields.DOSSIER_FIELDS

_NOT_FOUND = "推荐材料不存在"


def _dossier(nomination: Nomination) -> dict[str, Any]:
    return {name: getattr(nomination, name) for name in _DOSSIER_FIELDS}


# --- who sees what ----------------------------------------------------------------------------


def can_see(account: Account, nomination: Nomination) -> bool:
    if account.role == "admin":
        return True
    if account.role == "unit":
        return account.unit_id is not None and nomination.unit_id == account.unit_id
    if account.role == "reviewer":
        return (
            account.unit is not None
            and nomination.status != "draft"
            and nomination.unit.path.startswith(account.unit.path)
        )
    return False


def get_for(account: Account, nomination_id: int, *, lock: bool = False) -> Nomination:
    """A nomination the caller may see. Others' nominations are 404, so existence cannot leak."""
    query = select(Nomination).where(Nomination.id == nomination_id)
    if lock:
        query = query.with_for_update()
    nomination = db.session.scalar(query)
    if nomination is None or not can_see(account, nomination):
        raise NotFound(_NOT_FOUND, code="nomination_not_found")
    return nomination


def _visible(account: Account, query: Select[Any], *, drafts: bool = False) -> Select[Any] | None:
    """``query`` (which joins Unit) narrowed to the nominations ``account`` may list: a clerk its
    unit's own, a reviewer its sub-tree's but never a draft, an admin every one (drafts only with
    ``drafts``, when asked for by status). None when nothing is visible."""
    if account.role == "unit":
        return query.where(Nomination.unit_id == account.unit_id)
    if account.role == "reviewer":
        if account.unit is None:
            return None
        # Drafts are the unit's own business until submitted.
        return query.where(Unit.path.startswith(account.unit.path), Nomination.status != "draft")
    if account.role != "admin":
        raise Forbidden()
    return query if drafts else query.where(Nomination.status != "draft")


def list_for(
    account: Account,
    campaign: Campaign,
    *,
    status: str | None = None,
    category: str | None = None,
    unit: str | None = None,
    recommended: bool | None = None,
    awaiting: bool | None = None,
    page: int = 1,
    per_page: int = 20,
) -> tuple[list[Nomination], int]:
    query = _visible(
        account,
        select(Nomination)
        .join(Unit, Nomination.unit_id == Unit.id)
        .where(Nomination.campaign_id == campaign.id),
        drafts=bool(status),
    )
    if query is None:
        return [], 0
    if status:
        query = query.where(Nomination.status == status)
    if category:
        query = query.where(
            Nomination.category_id == campaign_categories.get_category(campaign, category).id
        )
    if unit:
        query = query.where(Unit.code == unit)
    if recommended is not None:
        mark = Nomination.recommended_at
        query = query.where(mark.is_not(None) if recommended else mark.is_(None))
    if awaiting is not None:
        # Chain campaigns (nominations.levels): what waits for the caller's own decision.
        waiting = levels.awaiting(account)
        query = query.where(waiting if awaiting else ~waiting)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    items = db.session.scalars(
        query.options(joinedload(Nomination.category), joinedload(Nomination.unit))
        .order_by(Nomination.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return list(items), total


def count_by_status(account: Account, campaigns: list[Campaign]) -> dict[int, dict[str, int]]:
    """Per campaign id, the nominations ``list_for`` shows the caller (no status asked for) per
    status as a person reads it (labels.status_key: a recommended submission counts under
    "recommended", not "submitted"). One query for all the campaigns; absent statuses are 0."""
    counts: dict[int, dict[str, int]] = {
        campaign.id: dict.fromkeys((*STATUSES, "recommended"), 0) for campaign in campaigns
    }
    if not counts:
        return counts
    recommended = Nomination.recommended_at.is_not(None).label("recommended")
    query = _visible(
        account,
        select(Nomination.campaign_id, Nomination.status, recommended, func.count())
        .join(Unit, Nomination.unit_id == Unit.id)
        .where(Nomination.campaign_id.in_(list(counts))),
    )
    if query is None:
        return counts
    rows = db.session.execute(
        query.group_by(Nomination.campaign_id, Nomination.status, recommended)
    ).all()
    for campaign_id, status, is_recommended, total in rows:
        counts[campaign_id][status_key(status, bool(is_recommended))] += total
    return counts


def campaigns_for_unit(unit: Unit) -> list[Campaign]:
    """The campaigns a unit's portal lists, newest first: those nominating now and those the unit
    has nominations in, with their categories loaded."""
    held = select(Nomination.campaign_id).where(Nomination.unit_id == unit.id)
    return list(
        db.session.scalars(
            select(Campaign)
            .where(or_(Campaign.phase == "nominating", Campaign.id.in_(held)))
            .options(selectinload(Campaign.categories))
            .order_by(Campaign.id.desc())
        )
    )


def unit_nominations(unit: Unit, campaigns: list[Campaign]) -> list[Nomination]:
    """A unit's own nominations in ``campaigns`` (drafts too), oldest first, with their category
    and trail loaded."""
    if not campaigns:
        return []
    return list(
        db.session.scalars(
            select(Nomination)
            .where(
                Nomination.unit_id == unit.id,
                Nomination.campaign_id.in_([campaign.id for campaign in campaigns]),
            )
            .options(joinedload(Nomination.category), selectinload(Nomination.reviews))
            .order_by(Nomination.id)
        ).unique()
    )


def numbered_nominations(campaign: Campaign) -> list[Nomination]:
    """Every nomination of the campaign that was given a number (withdrawn ones too: their votes
    stay in the ledger), with category and unit loaded."""
    return list(
        db.session.scalars(
            select(Nomination)
            .where(Nomination.campaign_id == campaign.id, Nomination.number.is_not(None))
            .options(joinedload(Nomination.category), joinedload(Nomination.unit))
            .order_by(Nomination.id)
        )
    )


# --- the unit's side --------------------------------------------------------------------------


def _nominating_unit(account: Account, unit_code: str | None) -> Unit:
    if account.role == "unit":
        if unit_code and (account.unit is None or unit_code != account.unit.code):
            raise Forbidden("只能为本单位推荐", code="foreign_unit")
        if account.unit is None:
            raise Forbidden("账号未绑定单位", code="no_unit")
        return account.unit
    if account.role == "admin":
        if not unit_code:
            raise ValidationFailed(
                "请指定推荐单位", code="unit_required", details={"fields": {"unit_code": ["必填"]}}
            )
        unit = campaign_services.get_unit(unit_code)
        if unit.level != "institution":
            raise ValidationFailed("只能为基层单位推荐人选", code="invalid_unit_level")
        return unit
    raise Forbidden()


def nomination_open(campaign: Campaign) -> bool:
    """New drafts and first submissions: the nominating phase, inside its window."""
    now = utcnow()
    return campaign.phase == "nominating" and (
        campaign.nomination_start <= now < campaign.nomination_end
    )


def _require_nominating(campaign: Campaign) -> None:
    if not nomination_open(campaign):
        raise Conflict(
            "当前不在推荐时间内",
            code="nomination_closed",
            details={
                "phase": campaign.phase,
                "nomination_start": campaign.nomination_start.isoformat(),
                "nomination_end": campaign.nomination_end.isoformat(),
            },
        )


def create(account: Account, campaign: Campaign, fields: dict[str, Any]) -> Nomination:
    fields = dict(fields)
    unit = _nominating_unit(account, fields.pop("unit_code", None))
    category = campaign_categories.get_category(campaign, fields.pop("category"))
    _require_nominating(campaign)
    if "extra" in fields:  # the campaign's own fields (nominations.form_fields)
        fields["extra"] = form_fields.clean(campaign.id, fields["extra"]) or None
    nomination = Nomination(
        campaign=campaign,
        category=category,
        unit=unit,
        created_by_id=account.id,
        status="draft",
        **fields,
    )
    db.session.add(nomination)
    db.session.flush()
    audit.record(
        "nomination.create",
        "nomination",
        nomination.id,
        campaign_id=campaign.id,
        after={**levels.state(nomination), "name": nomination.name, "unit": unit.code},
    )
    return nomination


def _require_owner(account: Account, nomination: Nomination) -> None:
    """Units act on their own nominations; admins on any; reviewers only review."""
    if account.role == "admin":
        return
    if account.role == "unit" and nomination.unit_id == account.unit_id:
        return
    raise Forbidden("只有推荐单位可以修改推荐材料", code="not_owner")


def _require_editable(nomination: Nomination) -> None:
    if nomination.status not in EDITABLE:
        raise Conflict(
            "只有草稿或被退回的材料可以修改",
            code="not_editable",
            details={"status": nomination.status},
        )
    if nomination.campaign.phase not in ("nominating", "reviewing"):
        raise Conflict("当前阶段不能修改推荐材料", code="nomination_closed")


def update_dossier(account: Account, nomination: Nomination, changes: dict[str, Any]) -> Nomination:
    if not levels.may_fix(account, nomination):  # a bureau corrects what waits at its level
        _require_owner(account, nomination)
        _require_editable(nomination)
    before = _dossier(nomination)
    changes = dict(changes)
    if "category" in changes:
        code = changes.pop("category")
        if nomination.status != "draft" and code != nomination.category.code:
            raise Conflict("退回修改时不能更换奖项", code="category_locked")
        nomination.category = campaign_categories.get_category(nomination.campaign, code)
    if "extra" in changes:  # merged over what is stored; a new dict, so the change is seen
        stored = nomination.extra
        extra = form_fields.clean(nomination.campaign_id, changes.pop("extra"), stored)
        nomination.extra = extra or None
    for name, value in changes.items():
        setattr(nomination, name, value)
    _flush_or_conflict()
    after = _dossier(nomination)
    audit.record(
        "nomination.update",
        "nomination",
        nomination.id,
        campaign_id=nomination.campaign_id,
        before={k: v for k, v in before.items() if after[k] != v},
        after={k: v for k, v in after.items() if before[k] != v},
    )
    return nomination


_flush_or_conflict = levels.flush_or_conflict
_transition = levels.record_step


def submit(account: Account, nomination: Nomination) -> Nomination:
    _require_owner(account, nomination)
    if nomination.status not in EDITABLE:
        raise Conflict(
            "只有草稿或被退回的材料可以提交",
            code="not_submittable",
            details={"status": nomination.status},
        )
    campaign = nomination.campaign
    if nomination.status == "draft":
        _require_nominating(campaign)
    elif campaign.phase not in ("nominating", "reviewing"):
        raise Conflict("当前阶段不能重新提交", code="nomination_closed")
    form_fields.require_complete(nomination)
    _check_quota(nomination)
    before = levels.state(nomination)
    levels.enter(nomination)  # a chain campaign: to the first bureau on its way
    nomination.submitted_at = utcnow()
    _transition(account, nomination, "submit", "submitted", before=before)
    return nomination


def _check_quota(nomination: Nomination) -> None:
    # Lock the unit's row so two submits by one unit cannot both see a free place (PostgreSQL);
    # SQLite write transactions are already serialised by BEGIN IMMEDIATE.
    db.session.execute(select(Unit.id).where(Unit.id == nomination.unit_id).with_for_update())
    held = db.session.scalar(
        select(func.count(Nomination.id)).where(
            Nomination.campaign_id == nomination.campaign_id,
            Nomination.category_id == nomination.category_id,
            Nomination.unit_id == nomination.unit_id,
            Nomination.status.in_(HOLDS_QUOTA),
            Nomination.id != nomination.id,
        )
    )
    limit = levels.submit_quota(nomination)
    if (held or 0) >= limit:
        raise Conflict(
            f"本单位在「{nomination.category.name}」奖项的推荐名额（{limit} 名）已用完",
            code="unit_quota_exceeded",
            details={"category": nomination.category.code, "max_per_unit": limit},
        )


def withdraw(account: Account, nomination: Nomination, comment: str | None) -> Nomination:
    _require_owner(account, nomination)
    allowed = ("draft", "submitted", "returned")
    if account.role == "admin":
        allowed = (*allowed, "approved")
    if nomination.status not in allowed:
        raise Conflict(
            "当前状态不能撤回", code="not_withdrawable", details={"status": nomination.status}
        )
    if nomination.status == "approved" and not (comment or "").strip():
        raise ValidationFailed("撤回已通过的候选人必须填写原因", code="reason_required")
    was_public = nomination.status == "approved"
    before = levels.state(nomination)
    levels.leave(nomination)  # the bureaus' places it held are free again
    _transition(account, nomination, "withdraw", "withdrawn", comment, before=before)
    if was_public:
        campaign_changed.send(nomination.campaign)
    return nomination


# --- review -----------------------------------------------------------------------------------


def review(
    account: Account, nomination: Nomination, decision: str, comment: str | None
) -> Nomination:
    if account.role not in ("admin", "reviewer"):
        raise Forbidden()
    chained = levels.has_chain(nomination.campaign)
    if chained and account.role == "reviewer":
        # A chain campaign: a bureau's approve passes the nomination up from its level.
        levels.decide(account, nomination, "pass" if decision == "approve" else decision, comment)
        return nomination
    if nomination.status != "submitted":
        raise Conflict(
            "只有已提交的材料可以审核", code="not_reviewable", details={"status": nomination.status}
        )
    if nomination.campaign.phase not in ("nominating", "reviewing"):
        raise Conflict("当前阶段不能审核", code="review_closed")
    comment = (comment or "").strip() or None
    if decision in ("return", "reject") and not comment:
        raise ValidationFailed(
            "退回或不通过时必须填写意见",
            code="comment_required",
            details={"fields": {"comment": ["必填"]}},
        )
    if chained:
        levels.committee_gate(nomination)
    if decision == "return" and chained:
        levels.committee_return(account, nomination, comment)
    elif decision == "return":
        # A returned dossier will change: the bureau must recommend the new version afresh.
        nomination.recommended_at = None
        nomination.recommended_by_id = None
        _transition(account, nomination, "return", "returned", comment)
    elif decision == "reject":
        if chained:
            levels.committee_reject(account, nomination, comment)
        _transition(account, nomination, "reject", "rejected", comment)
    elif account.role == "reviewer":
        _recommend(account, nomination, comment)
    else:
        _approve(account, nomination, comment)
    return nomination


def _recommend(account: Account, nomination: Nomination, comment: str | None) -> None:
    if nomination.recommended:
        raise Conflict("该材料已推荐至评选办", code="already_recommended")
    nomination.recommended_at = utcnow()
    nomination.recommended_by_id = account.id
    _transition(account, nomination, "recommend", "submitted", comment)


def _approve(account: Account, nomination: Nomination, comment: str | None) -> None:
    # A chain campaign's committee_gate has checked every level (a unit with no bureau above it
    # nominates straight to the committee).
    passed = nomination.recommended or nomination.at_level == COMMITTEE
    if nomination.campaign.require_recommendation and not passed:
        raise Conflict("该材料尚未经主管部门推荐", code="recommendation_required")
    # The number is taken inside this transaction; if the status change below loses a race,
    # the rollback gives the number back.
    seq = _next_number(nomination.campaign_id, nomination.category.prefix)
    nomination.number_seq = seq
    nomination.number = f"{nomination.category.prefix}{seq:03d}"
    nomination.approved_at = utcnow()
    _transition(account, nomination, "approve", "approved", comment)
    campaign_changed.send(nomination.campaign)


def _next_number(campaign_id: int, prefix: str) -> int:
    """Bump the counter in this transaction: the row lock orders concurrent approvals, and a
    rollback returns the number, so numbers stay unique and gapless."""
    bump = (
        update(NumberCounter)
        .where(NumberCounter.campaign_id == campaign_id, NumberCounter.prefix == prefix)
        .values(value=NumberCounter.value + 1)
        .returning(NumberCounter.value)
    )
    value = db.session.execute(bump).scalar()
    if value is None:
        # First number of this prefix. Two first approvals may race to insert the row; the
        # loser's savepoint fails on the primary key and it bumps the winner's row instead.
        try:
            with db.session.begin_nested():
                db.session.add(NumberCounter(campaign_id=campaign_id, prefix=prefix, value=1))
            return 1
        except Exception:
            value = db.session.execute(bump).scalar()
    if value is None:
        raise Conflict("编号分配失败，请重试", code="concurrent_update")
    return int(value)


# --- public -----------------------------------------------------------------------------------
#
# The public reads (API and H5 pages) go through nominations.public_view: a cached view of the
# campaign with its approved nominees' cards, built with a constant number of column-only
# statements. public_nominee stays for the committee's judging, which needs the row.


def public_nominee(campaign: Campaign, number: str) -> Nomination:
    nomination = db.session.scalar(
        select(Nomination).where(
            Nomination.campaign_id == campaign.id,
            Nomination.number == number.strip().upper(),
            Nomination.status == "approved",
        )
    )
    if nomination is None:
        raise NotFound("候选人不存在", code="nominee_not_found")
    return nomination


def _counts_reader(campaign: Campaign | CampaignView) -> ports.CountsReader | None:
    """Vote counts come from the voting package's Redis counters (through nominations.ports),
    unless the campaign hides them (or voting has not begun: there is nothing to show)."""
    if campaign.phase in ("draft", "nominating", "reviewing") or ports.counts_hidden(campaign):  # type: ignore[arg-type]
        return None
    return ports.vote_counts


def _matches(card: dict[str, Any], term: str) -> bool:
    return term in card["name"] or card["number"] == term.upper()


def nominee_listing(
    view: CampaignView,
    *,
    category: str | None = None,
    q: str | None = None,
    sort: str = "number",
    page: int = 1,
    per_page: int = 20,
) -> dict[str, Any]:
    """A page of public nominee cards with their counts and media, as the API returns it: no SQL
    while the view is cached; counts in one or two Redis round trips."""
    cards: list[dict[str, Any]] = list(view.nominees)
    if category:
        code = view.category(category).code  # a Chinese 404 if unknown
        cards = [card for card in cards if card["category"] == code]
    term = (q or "").strip()
    if term:
        cards = [card for card in cards if _matches(card, term)]
    reader = _counts_reader(view)
    window = slice((page - 1) * per_page, page * per_page)
    if sort == "votes" and reader is not None:
        counts = reader(view, [(card["number"], card["category"]) for card in cards])  # type: ignore[arg-type]
        cards.sort(key=lambda card: -counts.get(card["number"], {}).get("votes", 0))
        items = cards[window]
    else:
        items = cards[window]
        pairs = [(card["number"], card["category"]) for card in items]
        counts = reader(view, pairs) if reader is not None and pairs else {}  # type: ignore[arg-type]
    return {
        "items": [card | counts.get(card["number"], {}) for card in items],
        "page": page,
        "per_page": per_page,
        "total": len(cards),
    }


def nominee_detail(view: CampaignView, number: str, *, count_view: bool = True) -> dict[str, Any]:
    """One public nominee with counts, media, deeds and the unit's opinion. With
    ``count_view`` (the API's read), a view during voting counts toward the fraud detectors'
    view/vote ratio; the H5 page counts its views with a beacon instead (its body is cached)."""
    card = view.nominee(number)
    if count_view and view.phase == "voting":
        ports.count_view(view.slug, card["number"])
    reader = _counts_reader(view)
    counts = reader(view, [(card["number"], card["category"])]) if reader else {}  # type: ignore[arg-type]
    return card | counts.get(card["number"], {}) | public_view.nominee_text(view, card["number"])
