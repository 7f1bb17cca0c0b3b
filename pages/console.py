"""The committee console: the campaign list (with the form that creates a campaign), the live
dashboard, campaign settings, the review queue, the fraud desk (with the held votes) and the vote
browser. (Judging, results, publicity and exports are in console_awards.)

The pages are server-rendered shells: what the server knows without Redis (the campaign, its
categories, the review queue, the phase history) is rendered here; live figures, decisions and
edits go through the same /api/v1 endpoints as any other client, from console.js."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, g, request
from marshmallow import ValidationError, fields, missing, validate
from sqlalchemy import func, select

from awards.models import JudgeAssignment
from campaigns import services as campaign_services
from campaigns.models import PHASES, Account, Campaign, Unit
from campaigns.schemas import CampaignCreateSchema
from core.audit import AuditLog
from core.errors import AppError
from core.extensions import db
from nominations import services as nomination_services
from nominations.models import Nomination
from pages.common import campaign_zone, error_page, local_time, render_page, staff_page
from voting import fraud as voting_fraud
from voting.models import FraudFlag, FraudScan, Vote
from voting.schemas import FlagSchema, ScanSchema, VoteFilterSchema

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

PHASE_LABELS = {
    "draft": "筹备中",
    "nominating": "推荐申报",
    "reviewing": "审核",
    "voting": "公众投票",
    "judging": "专家评审",
    "publicity": "结果公示",
    "closed": "已结束",
}
STATUS_LABELS = {
    "draft": "草稿",
    "submitted": "待审核",
    "returned": "已退回",
    "approved": "已通过",
    "rejected": "未通过",
    "withdrawn": "已撤回",
}
GENDER_LABELS = {"male": "男", "female": "女"}
AUDIT_LABELS = {
    "campaign.create": "创建活动",
    "campaign.update": "修改设置",
    "campaign.phase": "调整阶段",
    "category.create": "新增奖项",
}
# The review queue's views. "todo" is what the caller should act on next.
QUEUE_VIEWS = (
    ("todo", "待我处理"),
    ("submitted", "全部待审"),
    ("recommended", "已推荐待审"),
    ("returned", "已退回"),
    ("approved", "已通过"),
    ("rejected", "未通过"),
    ("withdrawn", "已撤回"),
    ("all", "全部"),
)
QUEUE_PER_PAGE = 50
FLAG_STATUSES = (("open", "待处理"), ("confirmed", "已确认"), ("dismissed", "已排除"), ("", "全部"))

# The form that creates a campaign (/console, admins only): API field names in form order, nested
# ones dotted. Limits come from CampaignCreateSchema itself, so the page checks what the API will.
CREATE_FIELDS = (
    "slug",
    "title",
    "organizer",
    "description",
    "timezone",
    "nomination_start",
    "nomination_end",
    "voting_start",
    "voting_end",
    "rules.votes_per_day",
    "rules.votes_per_nominee_per_day",
    "rules.hide_counts",
    "weights.public",
    "weights.jury",
    "weights.organizer",
    "require_recommendation",
    "publicity_days",
)
CREATE_LABELS = {
    "slug": "活动标识",
    "title": "活动名称",
    "organizer": "主办单位",
    "description": "活动简介",
    "timezone": "时区",
    "nomination_start": "推荐开始",
    "nomination_end": "推荐截止",
    "voting_start": "投票开始",
    "voting_end": "投票截止",
    "rules.votes_per_day": "每人每日票数",
    "rules.votes_per_nominee_per_day": "每人每日投同一候选人票数",
    "rules.hide_counts": "隐藏票数与排名",
    "weights.public": "公众投票权重",
    "weights.jury": "专家评审权重",
    "weights.organizer": "组织评价权重",
    "require_recommendation": "须经主管部门推荐",
    "publicity_days": "公示天数",
}
# Where the API has no default, what the form starts with (the admin changes it at will).
CREATE_SUGGESTED: dict[str, Any] = {
    "rules.votes_per_day": 5,
    "rules.votes_per_nominee_per_day": 1,
    "weights.public": 30,
    "weights.jury": 70,
}
SLUG_HINT = (
    "用于网址，创建后不能更改：只能用小写英文字母、数字和连字符“-”，"
    "以字母或数字开头，共 2–63 位，如 2026-xian-doctor"
)

# Why the vote script held a vote (Vote.status_reason while pending), and what later decisions
# wrote there.
HELD_REASONS = {"velocity": "得票速度远超该候选人自身平均，系统自动暂扣"}
VOTE_STATUSES = (("", "全部"), ("valid", "有效"), ("pending", "待审"), ("invalid", "无效"))
VOTE_STATUS_LABELS = dict(VOTE_STATUSES[1:])
VOTES_PER_PAGE = 50
VOTE_FILTERS = ("status", "nominee", "prefix", "voter", "flag", "start", "end")
VOTE_FILTER_ERRORS = {
    "nominee": "候选人编号格式不正确",
    "prefix": "网段前缀只能包含数字、字母 a–f、点和冒号，如 10.2.3.",
    "voter": "投票人编号应为正整数",
    "flag": "线索编号应为正整数",
    "start": "请填写有效的时间",
    "end": "请填写有效的时间",
}


# --- helpers ------------------------------------------------------------------------------------


def input_time(value: datetime | None, campaign: Campaign) -> str:
    """The value of an <input type="datetime-local"> in the campaign's time zone."""
    return local_time(value, campaign, "%Y-%m-%dT%H:%M")


def _campaign(slug: str) -> Campaign:
    return campaign_services.get_campaign(slug)


def _page(template: str, campaign: Campaign | None, section: str | None, **context: Any) -> Any:
    return render_page(
        template,
        campaign=campaign,
        section=section,
        phase_labels=PHASE_LABELS,
        status_labels=STATUS_LABELS,
        local_time=local_time,
        **context,
    )


def _visibility(query: Any, account: Account) -> Any:
    """The nominations a reviewer or admin may review (the same rule as nominations.list_for):
    never drafts; a reviewer only its sub-tree."""
    query = query.join(Unit, Nomination.unit_id == Unit.id).where(Nomination.status != "draft")
    if account.role == "reviewer":
        if account.unit is None:
            return query.where(Nomination.id.is_(None))
        query = query.where(Unit.path.startswith(account.unit.path))
    return query


def status_counts(account: Account, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign: visible nominations per status, with submitted split into recommended
    (``recommended``) and not yet recommended (``unrecommended``)."""
    if not campaign_ids:
        return {}
    query = select(
        Nomination.campaign_id,
        Nomination.status,
        Nomination.recommended_at.is_not(None),
        func.count(Nomination.id),
    ).where(Nomination.campaign_id.in_(campaign_ids))
    query = _visibility(query, account).group_by(
        Nomination.campaign_id, Nomination.status, Nomination.recommended_at.is_not(None)
    )
    out: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for campaign_id, status, recommended, count in db.session.execute(query):
        counts = out[campaign_id]
        counts[status] += count
        counts["all"] += count
        if status == "submitted":
            counts["recommended" if recommended else "unrecommended"] += count
    return out


def todo_count(account: Account, campaign: Campaign, counts: dict[str, int]) -> int:
    """What waits for the caller: a reviewer recommends; the committee decides (only on
    recommended nominations when the campaign requires a recommendation)."""
    if account.role == "reviewer":
        return counts.get("unrecommended", 0)
    if campaign.require_recommendation:
        return counts.get("recommended", 0)
    return counts.get("submitted", 0)


def review_queue(
    account: Account, campaign: Campaign, view: str, category: str | None, page: int
) -> tuple[list[Nomination], int]:
    """One page of the review queue in ``view`` (see QUEUE_VIEWS)."""
    if view in ("returned", "approved", "rejected", "withdrawn", "all"):
        return nomination_services.list_for(
            account,
            campaign,
            status=None if view == "all" else view,
            category=category,
            page=page,
            per_page=QUEUE_PER_PAGE,
        )
    recommended: bool | None = None
    if view == "recommended":
        recommended = True
    elif view == "todo" and account.role == "reviewer":
        recommended = False
    elif view == "todo" and campaign.require_recommendation:
        recommended = True
    return nomination_services.list_for(
        account,
        campaign,
        status="submitted",
        category=category,
        recommended=recommended,
        page=page,
        per_page=QUEUE_PER_PAGE,
    )


def nominee_directory(campaign: Campaign) -> dict[str, dict[str, str]]:
    """Every numbered nominee of the campaign (withdrawn ones too: their votes stay in the
    ledger), so that the dashboard and the fraud desk can show names beside numbers."""
    rows = db.session.scalars(
        select(Nomination).where(
            Nomination.campaign_id == campaign.id, Nomination.number.is_not(None)
        )
    )
    return {
        n.number: {
            "name": n.name,
            "category": n.category.code,
            "unit": n.unit.name,
            "status": n.status,
            "id": n.id,
        }
        for n in rows
        if n.number
    }


def _categories(campaign: Campaign) -> list[dict[str, Any]]:
    return [
        {
            "code": c.code,
            "name": c.name,
            "prefix": c.prefix,
            "award_count": c.award_count,
            "max_per_unit": c.max_per_unit,
        }
        for c in campaign.categories
    ]


def _field_rule(name: str, field: fields.Field) -> dict[str, Any]:
    if isinstance(field, fields.Integer):
        kind = "integer"
    elif isinstance(field, fields.Boolean):
        kind = "boolean"
    elif isinstance(field, fields.DateTime):
        kind = "datetime"
    else:
        kind = "string"
    default = field.load_default
    if default is missing or callable(default):
        default = CREATE_SUGGESTED.get(name)
    rule: dict[str, Any] = {
        "name": name,
        "label": CREATE_LABELS[name],
        "type": kind,
        "required": bool(field.required),
        "value": default,
        "min": None,
        "max": None,
        "min_length": None,
        "max_length": None,
        "pattern": None,
    }
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            rule["min_length"], rule["max_length"] = validator.min, validator.max
        elif isinstance(validator, validate.Range):
            rule["min"], rule["max"] = validator.min, validator.max
        elif isinstance(validator, validate.Regexp):
            rule["pattern"] = validator.regex.pattern
    return rule


def create_form_rules() -> dict[str, dict[str, Any]]:
    """Every field of the create form with CampaignCreateSchema's own limits: required, ranges,
    lengths, the slug's pattern, and the API's default (or a suggestion) as the initial value."""
    schema = CampaignCreateSchema()
    rules: dict[str, dict[str, Any]] = {}
    for name in CREATE_FIELDS:
        head, _, sub = name.partition(".")
        field = schema.fields[head]
        if sub:
            if not isinstance(field, fields.Nested):
                raise KeyError(name)
            field = field.schema.fields[sub]
        rules[name] = _field_rule(name, field)
    return rules


def held_votes(campaign: Campaign, directory: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Nominees with held ("pending") votes in the ledger, most held first: how many, the first
    and last, why the vote script held them, and the nominee's valid count beside them. Read from
    the votes table only (no Redis), so the fraud desk renders it even when counters are down."""
    rows = db.session.execute(
        select(
            Vote.nominee_number,
            Vote.category_code,
            Vote.status_reason,
            func.count(Vote.id),
            func.min(Vote.at),
            func.max(Vote.at),
        )
        .where(Vote.campaign_id == campaign.id, Vote.status == "pending")
        .group_by(Vote.nominee_number, Vote.category_code, Vote.status_reason)
    ).all()
    per: dict[str, dict[str, Any]] = {}
    for number, category, reason, count, first, last in rows:
        entry = per.setdefault(
            number,
            {
                "nominee": number,
                "category": category,
                "pending": 0,
                "first_at": first,
                "last_at": last,
                "reasons": defaultdict(int),
            },
        )
        entry["pending"] += count
        entry["first_at"] = min(entry["first_at"], first)
        entry["last_at"] = max(entry["last_at"], last)
        entry["reasons"][reason or ""] += count
    if not per:
        return []
    valid = dict(
        db.session.execute(
            select(Vote.nominee_number, func.count(Vote.id))
            .where(
                Vote.campaign_id == campaign.id,
                Vote.status == "valid",
                Vote.nominee_number.in_(list(per)),
            )
            .group_by(Vote.nominee_number)
        ).all()
    )
    categories = {c.code: c.name for c in campaign.categories}
    out = []
    for number, entry in per.items():
        known = directory.get(number, {})
        entry["name"] = known.get("name", "")
        entry["category_name"] = categories.get(entry["category"], entry["category"])
        entry["valid"] = valid.get(number, 0)
        entry["reasons"] = [
            {"code": code, "label": HELD_REASONS.get(code, code or "未注明"), "count": count}
            for code, count in sorted(entry["reasons"].items(), key=lambda item: -item[1])
        ]
        out.append(entry)
    out.sort(key=lambda e: (-e["pending"], e["nominee"]))
    return out


def _wall_time(value: str, campaign: Campaign) -> str | None:
    """A datetime-local value read as a wall time in the campaign's time zone → ISO 8601 with
    that zone's offset (what the API's time filters take)."""
    for fmt in ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"):
        try:
            naive = datetime.strptime(value, fmt)  # a wall time; its zone is set below
        except ValueError:
            continue
        return naive.replace(tzinfo=campaign_zone(campaign)).isoformat()
    return None


def vote_filters(
    campaign: Campaign, args: Any
) -> tuple[dict[str, str], dict[str, str], dict[str, Any] | None, dict[str, str]]:
    """The vote browser's filters from the page's query string: the values the form shows, the
    API's query (the CSV and Excel links carry exactly it), the filters loaded by the API's own
    VoteFilterSchema for fraud.browse_votes (None when something is wrong), and the problems in
    Chinese by field."""
    form = {name: str(args.get(name) or "").strip() for name in VOTE_FILTERS}
    if form["status"] not in VOTE_STATUS_LABELS:
        form["status"] = ""
    form["nominee"] = form["nominee"].upper()
    query = {name: form[name] for name in VOTE_FILTERS[:5] if form[name]}
    errors: dict[str, str] = {}
    for name in ("start", "end"):
        if form[name]:
            iso = _wall_time(form[name], campaign)
            if iso is None:
                errors[name] = VOTE_FILTER_ERRORS[name]
            else:
                query[name] = iso
    try:
        loaded: dict[str, Any] | None = VoteFilterSchema().load(query)
    except ValidationError as exc:
        for name in exc.messages_dict:
            errors.setdefault(name, VOTE_FILTER_ERRORS.get(name, "筛选条件有误"))
        loaded = None
    if loaded and loaded["start"] and loaded["end"] and loaded["end"] <= loaded["start"]:
        errors["end"] = "截止时间应晚于开始时间"
    return form, query, (None if errors else loaded), errors


def describe_vote_reason(reason: str | None) -> str:
    """Vote.status_reason in Chinese: why it was held, or which decision set its status."""
    if not reason:
        return ""
    kind, _, rest = reason.partition(":")
    if kind == "flag":
        return f"刷票线索 #{rest}"
    if kind == "release":
        return f"已放行（{rest}）"
    if kind == "void":
        return f"已作废（{rest}）"
    if reason == "velocity":
        return "速度异常暂扣"
    return reason


# --- pages --------------------------------------------------------------------------------------


@bp.route("")
@staff_page("admin", "reviewer", "judge", login="console")
def index() -> Any:
    account: Account = g.account
    rows: list[dict[str, Any]] = []
    if account.role == "judge":
        assignments = db.session.scalars(
            select(JudgeAssignment).where(JudgeAssignment.account_id == account.id)
        ).all()
        by_campaign: dict[int, list[str]] = defaultdict(list)
        for assignment in assignments:
            by_campaign[assignment.campaign_id].append(assignment.category.name)
        campaigns = (
            db.session.scalars(
                select(Campaign)
                .where(Campaign.id.in_(list(by_campaign)))
                .order_by(Campaign.id.desc())
            ).all()
            if by_campaign
            else []
        )
        rows = [{"campaign": c, "categories": by_campaign[c.id]} for c in campaigns]
    else:
        campaigns = campaign_services.list_campaigns(include_drafts=account.role == "admin")
        counts = status_counts(account, [c.id for c in campaigns])
        for campaign in campaigns:
            mine = counts.get(campaign.id, {})
            todo = todo_count(account, campaign, mine)
            if account.role == "reviewer" and not (
                todo or mine.get("all") or campaign.phase in ("nominating", "reviewing")
            ):
                continue  # nothing of the reviewer's sub-tree, and no review under way
            rows.append({"campaign": campaign, "counts": mine, "todo": todo})
        if account.role == "reviewer":
            rows.sort(key=lambda row: -row["todo"])
    create = None
    data = None
    if account.role == "admin":
        create = create_form_rules()
        data = {
            "page": "index",
            "slug": "",
            "timezone": create["timezone"]["value"],
            "fields": create,
            # Slugs already taken (admins list every campaign, drafts included).
            "slugs": [row["campaign"].slug for row in rows],
        }
    return _page(
        "pages/console/index.html",
        None,
        None,
        rows=rows,
        role=account.role,
        create=create,
        data=data,
        slug_hint=SLUG_HINT,
        timezones=_timezones(create["timezone"]["value"]) if create else [],
    )


@bp.route("/c/<slug>")
@staff_page("admin", "reviewer", login="console")
def dashboard(slug: str) -> Any:
    campaign = _campaign(slug)
    account: Account = g.account
    counts = status_counts(account, [campaign.id]).get(campaign.id, {})
    data = {
        "page": "dashboard",
        "slug": campaign.slug,
        "role": account.role,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "categories": _categories(campaign),
        "nominees": nominee_directory(campaign) if account.role == "admin" else {},
        # Standings exist once voting has begun; the ranking endpoint hides drafts.
        "standings": campaign.phase in ("voting", "judging", "publicity", "closed"),
        "refresh_seconds": 10,
        "trend_seconds": 60,
    }
    return _page(
        "pages/console/dashboard.html",
        campaign,
        "dashboard",
        data=data,
        counts=counts,
        todo=todo_count(account, campaign, counts),
        role=account.role,
        categories=campaign.categories,
    )


@bp.route("/c/<slug>/settings")
@staff_page("admin", login="console")
def settings(slug: str) -> Any:
    campaign = _campaign(slug)
    rules = dict(campaign.rules or {})
    weights = dict(campaign.weights or {})
    history = db.session.scalars(
        select(AuditLog)
        .where(AuditLog.campaign_id == campaign.id, AuditLog.action.in_(list(AUDIT_LABELS)))
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(200)
    ).all()
    phase_moves = [entry for entry in history if entry.action == "campaign.phase"]
    changes = [entry for entry in history if entry.action != "campaign.phase"][:50]
    hide_from = rules.get("hide_counts_from")
    hide_from_dt = None
    if hide_from:
        try:
            hide_from_dt = datetime.fromisoformat(hide_from)
        except ValueError:
            hide_from_dt = None
    data = {
        "page": "settings",
        "slug": campaign.slug,
        "phase": campaign.phase,
        "phases": list(PHASES),
        "phase_labels": PHASE_LABELS,
        "timezone": campaign.timezone,
        "rules": rules,
        "weights": weights,
        "categories": _categories(campaign),
    }
    return _page(
        "pages/console/settings.html",
        campaign,
        "settings",
        data=data,
        rules=rules,
        weights=weights,
        phases=PHASES,
        phase_index=PHASES.index(campaign.phase),
        hide_from=input_time(hide_from_dt, campaign),
        input_time=input_time,
        phase_moves=phase_moves,
        changes=changes,
        audit_labels=AUDIT_LABELS,
        describe_change=describe_change,
        categories_locked=PHASES.index(campaign.phase) > PHASES.index("nominating"),
        rules_locked=campaign.phase == "voting",
        timezones=_timezones(campaign.timezone),
    )


def _timezones(current: str) -> list[str]:
    common = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei"]
    return common if current in common else [current, *common]


_FIELD_LABELS = {
    "title": "名称",
    "organizer": "主办单位",
    "description": "简介",
    "timezone": "时区",
    "nomination_start": "推荐开始",
    "nomination_end": "推荐截止",
    "voting_start": "投票开始",
    "voting_end": "投票截止",
    "rules": "投票规则",
    "weights": "计分权重",
    "require_recommendation": "须经主管部门推荐",
    "publicity_days": "公示天数",
    "phase": "阶段",
}


def describe_change(entry: AuditLog) -> str:
    """A one-line Chinese summary of an audited campaign change."""
    if entry.action == "category.create":
        after = entry.after or {}
        return f"{after.get('name', '')}（{after.get('code', entry.object_id)}）"
    if entry.action == "campaign.create":
        return "活动已创建"
    before, after = entry.before or {}, entry.after or {}
    changed = [key for key in after if before.get(key) != after.get(key)]
    return "、".join(_FIELD_LABELS.get(key, key) for key in changed) or "无实际变化"


@bp.route("/c/<slug>/review")
@staff_page("admin", "reviewer", login="console")
def review(slug: str) -> Any:
    campaign = _campaign(slug)
    account: Account = g.account
    views = dict(QUEUE_VIEWS)
    view = request.args.get("status", "todo")
    if view not in views:
        view = "todo"
    codes = {c.code for c in campaign.categories}
    category = request.args.get("category") or None
    if category not in codes:
        category = None
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        page = 1
    items, total = review_queue(account, campaign, view, category, page)
    counts = status_counts(account, [campaign.id]).get(campaign.id, {})
    view_counts = {
        "todo": todo_count(account, campaign, counts),
        "submitted": counts.get("submitted", 0),
        "recommended": counts.get("recommended", 0),
        "returned": counts.get("returned", 0),
        "approved": counts.get("approved", 0),
        "rejected": counts.get("rejected", 0),
        "withdrawn": counts.get("withdrawn", 0),
        "all": counts.get("all", 0),
    }
    pages = max(1, -(-total // QUEUE_PER_PAGE))
    data = {
        "page": "review",
        "slug": campaign.slug,
        "role": account.role,
        "phase": campaign.phase,
        "review_open": campaign.phase in ("nominating", "reviewing"),
        "require_recommendation": campaign.require_recommendation,
        "timezone": campaign.timezone,
        "view": view,
        "selected": request.args.get("id", type=int),
    }
    return _page(
        "pages/console/review.html",
        campaign,
        "review",
        data=data,
        items=items,
        total=total,
        page=page,
        pages=pages,
        view=view,
        views=QUEUE_VIEWS,
        view_counts=view_counts,
        category=category,
        categories=campaign.categories,
        role=account.role,
        review_open=data["review_open"],
    )


@bp.route("/c/<slug>/fraud")
@staff_page("admin", login="console")
def fraud(slug: str) -> Any:
    campaign = _campaign(slug)
    status = request.args.get("status", "open")
    if status not in dict(FLAG_STATUSES):
        status = "open"
    by_status = dict(
        db.session.execute(
            select(FraudFlag.status, func.count(FraudFlag.id))
            .where(FraudFlag.campaign_id == campaign.id)
            .group_by(FraudFlag.status)
        ).all()
    )
    listed = voting_fraud.list_flags(campaign, status or None)
    scan = db.session.scalar(
        select(FraudScan)
        .where(FraudScan.campaign_id == campaign.id)
        .order_by(FraudScan.id.desc())
        .limit(1)
    )
    directory = nominee_directory(campaign)
    held = held_votes(campaign, directory)
    data = {
        "page": "fraud",
        "slug": campaign.slug,
        "role": g.account.role,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "status": status,
        "flags": FlagSchema(many=True).dump(listed),
        "scan": ScanSchema().dump(scan) if scan else None,
        "nominees": directory,
        "categories": _categories(campaign),
        "selected": request.args.get("flag", type=int),
        "held": [
            {"nominee": h["nominee"], "pending": h["pending"], "valid": h["valid"]} for h in held
        ],
    }
    return _page(
        "pages/console/fraud.html",
        campaign,
        "fraud",
        data=data,
        statuses=FLAG_STATUSES,
        flag_status=status,
        by_status=by_status,
        held=held,
        held_total=sum(h["pending"] for h in held),
    )


@bp.route("/c/<slug>/votes")
@staff_page("admin", login="console")
def votes(slug: str) -> Any:
    """The vote browser: every stored vote by status, nominee, address prefix, voter, flag and
    time (in the campaign's time zone), a page at a time, with CSV and Excel downloads of exactly
    the filtered votes through the API's exports."""
    campaign = _campaign(slug)
    form, query, loaded, errors = vote_filters(campaign, request.args)
    try:
        page = max(1, min(int(request.args.get("page", "1")), 100000))
    except ValueError:
        page = 1
    items: list[Vote] = []
    total = 0
    if loaded is not None:
        items, total = voting_fraud.browse_votes(campaign, loaded, page, VOTES_PER_PAGE)
    pages = max(1, -(-total // VOTES_PER_PAGE))
    shown = {name: value for name, value in form.items() if value}

    def page_url(number: int) -> str:
        return "?" + urlencode({**shown, "page": number})

    without_flag = {name: value for name, value in shown.items() if name != "flag"}
    api = f"/api/v1/admin/campaigns/{campaign.slug}"
    suffix = f"?{urlencode(query)}" if query else ""
    return _page(
        "pages/console/votes.html",
        campaign,
        "votes",
        data={"page": "votes", "slug": campaign.slug, "timezone": campaign.timezone},
        form=form,
        errors=errors,
        filtered=bool(shown),
        items=items,
        total=total,
        page=page,
        pages=pages,
        page_url=page_url,
        without_flag_url="?" + urlencode(without_flag),
        csv_url=f"{api}/votes.csv{suffix}",
        xlsx_url=f"{api}/votes.xlsx{suffix}",
        statuses=VOTE_STATUSES,
        vote_status_labels=VOTE_STATUS_LABELS,
        describe_vote_reason=describe_vote_reason,
        nominees=nominee_directory(campaign),
        categories={c.code: c.name for c in campaign.categories},
    )
