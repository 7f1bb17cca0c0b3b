"""The committee console: the campaign list (with the form that creates a campaign), the live
dashboard, campaign settings, the review queue, the fraud desk (with the held votes) and the vote
browser. (Judging, results, publicity and exports are in console_awards.)

The pages are server-rendered shells: what the server knows without Redis (the campaign, its
categories, the review queue, the phase history) is rendered here; live figures, decisions and
edits go through the same /api/v1 endpoints as any other client, from console.js. The reads
behind each page live beside it by concern: console_campaign (the create form and settings),
console_review (the queue) and console_fraud (the vote browser's filters and blocked voters);
the fraud desk's held votes, flags and scans come from voting.services. The vote browser's 屏蔽
and 解除屏蔽 are plain form posts (with the page's CSRF token) handled here by voting.blocks."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, g, jsonify, redirect, request

from appraisal import services as appraisal_services
from awards import services as award_services
from campaigns import services as campaign_services
from campaigns.labels import AUDIT_LABELS, PHASE_LABELS, ROLE_LABELS
from campaigns.models import PHASES, Account, Campaign
from core.errors import AppError
from core.extensions import db
from core.web import require_csrf
from media.labels import MEDIA_STATUS_LABELS
from nominations.labels import ACTION_LABELS, STATUS_LABELS
from nominations.schemas import NominationListArgsSchema
from pages.common import error_page, local_time, query_args, render_page, staff_page
from pages.console_campaign import (
    SLUG_HINT,
    category_rows,
    create_form_rules,
    describe_change,
    hidden_counts_from,
    input_time,
    nominee_directory,
    timezones,
)
from pages.console_fraud import (
    BLOCKS_SHOWN,
    FLAG_STATUSES,
    VOTE_STATUSES,
    back_query,
    back_url,
    block_notice,
    blocked_rows,
    form_voter_id,
    vote_filters,
)
from pages.console_review import QUEUE_VIEWS, review_queue, status_counts, todo_count, view_counts
from voting import blocks as voting_blocks
from voting import services as voting_services
from voting.labels import (
    DECISION_LABELS,
    FLAG_STATUS_LABELS,
    RULE_LABELS,
    SEVERITY_LABELS,
    VOTE_STATUS_LABELS,
)
from voting.models import Vote
from voting.schemas import FlagListArgsSchema, FlagSchema, ScanSchema, VoteBrowseArgsSchema
from voting.services import describe_vote_reason

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

QUEUE_PER_PAGE = 50
VOTES_PER_PAGE = 50
# The query-args schemas of the API lists these pages mirror (only the fields a page takes).
_QUEUE_ARGS = NominationListArgsSchema(only=("category", "page"))
_FLAG_ARGS = FlagListArgsSchema()
_VOTE_PAGE_ARGS = VoteBrowseArgsSchema(only=("page",))
# The words console.js shows, handed to it with the page data: the domains' own labels
# (campaigns, nominations, voting, media), so the script and the templates say one wording.
SCRIPT_LABELS = {
    "phases": PHASE_LABELS,
    "statuses": STATUS_LABELS,
    "actions": ACTION_LABELS,
    "roles": ROLE_LABELS,
    "rules": RULE_LABELS,
    "severities": SEVERITY_LABELS,
    "flag_statuses": FLAG_STATUS_LABELS,
    "decisions": DECISION_LABELS,
    "media_statuses": MEDIA_STATUS_LABELS,
}


def _campaign(slug: str) -> Campaign:
    return campaign_services.get_campaign(slug)


def _page(
    template: str,
    campaign: Campaign | None,
    section: str | None,
    *,
    data: dict[str, Any] | None = None,
    **context: Any,
) -> Any:
    return render_page(
        template,
        campaign=campaign,
        section=section,
        data=None if data is None else data | {"labels": SCRIPT_LABELS},
        phase_labels=PHASE_LABELS,
        status_labels=STATUS_LABELS,
        local_time=local_time,
        **context,
    )


def _judge_rows(account: Account) -> list[dict[str, Any]]:
    """A judge's campaigns, newest first, with the categories they score in each."""
    return [
        {"campaign": campaign, "categories": categories}
        for campaign, categories in award_services.judge_campaigns(account)
    ]


def _review_rows(account: Account) -> list[dict[str, Any]]:
    """The campaigns an admin or reviewer reviews, with their counts and what waits."""
    rows = []
    campaigns = campaign_services.list_campaigns(include_drafts=account.role == "admin")
    counts = status_counts(account, campaigns)
    for campaign in campaigns:
        mine = counts[campaign.id]
        todo = todo_count(account, campaign, mine)
        if account.role == "reviewer" and not (
            todo or mine["all"] or campaign.phase in ("nominating", "reviewing")
        ):
            continue  # nothing of the reviewer's sub-tree, and no review under way
        rows.append({"campaign": campaign, "counts": mine, "todo": todo})
    if account.role == "reviewer":
        rows.sort(key=lambda row: -row["todo"])
    return rows


# --- pages --------------------------------------------------------------------------------------


@bp.route("")
@staff_page("admin", "reviewer", "judge", login="console")
def index() -> Any:
    account: Account = g.account
    rows = _judge_rows(account) if account.role == "judge" else _review_rows(account)
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
    # 群众评议: the programmes this account may read reports of (their own page each).
    programmes = (
        appraisal_services.visible_programmes(account)
        if account.role in ("admin", "reviewer")
        else []
    )
    return _page(
        "pages/console/index.html",
        None,
        None,
        rows=rows,
        programmes=programmes,
        role=account.role,
        create=create,
        data=data,
        slug_hint=SLUG_HINT,
        timezones=timezones(create["timezone"]["value"]) if create else [],
    )


@bp.route("/c/<slug>")
@staff_page("admin", "reviewer", login="console")
def dashboard(slug: str) -> Any:
    campaign = _campaign(slug)
    account: Account = g.account
    counts = status_counts(account, [campaign])[campaign.id]
    data = {
        "page": "dashboard",
        "slug": campaign.slug,
        "role": account.role,
        "phase": campaign.phase,
        "timezone": campaign.timezone,
        "categories": category_rows(campaign),
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
    phase_moves, changes = campaign_services.settings_history(campaign)
    data = {
        "page": "settings",
        "slug": campaign.slug,
        "phase": campaign.phase,
        "phases": list(PHASES),
        "timezone": campaign.timezone,
        "rules": rules,
        "weights": weights,
        "categories": category_rows(campaign),
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
        hide_from=hidden_counts_from(campaign),
        input_time=input_time,
        phase_moves=phase_moves,
        changes=changes,
        audit_labels=AUDIT_LABELS,
        describe_change=describe_change,
        categories_locked=PHASES.index(campaign.phase) > PHASES.index("nominating"),
        rules_locked=campaign.phase == "voting",
        timezones=timezones(campaign.timezone),
    )


@bp.route("/c/<slug>/review")
@staff_page("admin", "reviewer", login="console")
def review(slug: str) -> Any:
    campaign = _campaign(slug)
    account: Account = g.account
    # The queue's tabs are the page's own views (not the API's statuses); category and page are
    # read as the API's list reads them.
    view = request.args.get("status", "todo")
    if view not in dict(QUEUE_VIEWS):
        view = "todo"
    args = query_args(_QUEUE_ARGS, request.args)
    page = args["page"]
    category = args["category"]
    if category not in {c.code for c in campaign.categories}:
        category = None
    items, total = review_queue(account, campaign, view, category, page, QUEUE_PER_PAGE)
    counts = status_counts(account, [campaign])[campaign.id]
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
        view_counts=view_counts(account, campaign, counts),
        category=category,
        categories=campaign.categories,
        role=account.role,
        review_open=data["review_open"],
    )


@bp.route("/c/<slug>/review/counts")
@staff_page("admin", "reviewer", login="console")
def review_counts(slug: str) -> Response:
    """The figures beside the review queue's tabs, as they stand now (JSON): the page rereads
    them after each decision it makes, so 「待我处理」 and 「已通过」 never lag behind."""
    campaign = _campaign(slug)
    account: Account = g.account
    counts = status_counts(account, [campaign])[campaign.id]
    response = jsonify({"views": view_counts(account, campaign, counts)})
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/c/<slug>/fraud")
@staff_page("admin", login="console")
def fraud(slug: str) -> Any:
    campaign = _campaign(slug)
    # No status is the open flags; an empty one (the "全部" tab) is every flag.
    status = request.args.get("status", "open")
    if status:
        status = query_args(_FLAG_ARGS, {"status": status})["status"] or "open"
    by_status = voting_services.flag_counts(campaign)
    listed = voting_services.list_flags(campaign, status or None)
    scan = voting_services.latest_scan(campaign)
    directory = nominee_directory(campaign)
    held = voting_services.held_votes(campaign, directory)
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
        "categories": category_rows(campaign),
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
        blocked_total=voting_blocks.count_blocks(campaign, True),
    )


@bp.route("/c/<slug>/votes")
@staff_page("admin", login="console")
def votes(slug: str) -> Any:
    """The vote browser: every stored vote by status, nominee, address prefix, voter, flag and
    time (in the campaign's time zone), a page at a time, with CSV and Excel downloads of exactly
    the filtered votes through the API's exports; each voter can be blocked (屏蔽) with a reason,
    and the blocked voters are listed with 解除屏蔽."""
    return _votes_page(_campaign(slug), request.args, notice=block_notice(request.args))


def _votes_page(
    campaign: Campaign, args: Mapping[str, Any], *, status: int = 200, **extra: Any
) -> Any:
    form, query, loaded, errors = vote_filters(campaign, args)
    page = query_args(_VOTE_PAGE_ARGS, args)["page"]
    items: list[Vote] = []
    total = 0
    if loaded is not None:
        items, total = voting_services.browse_votes(campaign, loaded, page, VOTES_PER_PAGE)
    pages = max(1, -(-total // VOTES_PER_PAGE))
    shown = {name: value for name, value in form.items() if value}

    def page_url(number: int) -> str:
        return "?" + urlencode({**shown, "page": number})

    without_flag = {name: value for name, value in shown.items() if name != "flag"}
    api = f"/api/v1/admin/campaigns/{campaign.slug}"
    suffix = f"?{urlencode(query)}" if query else ""
    blocked, blocked_total = blocked_rows(campaign)
    return _page(
        "pages/console/votes.html",
        campaign,
        "votes",
        status=status,
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
        # The page the block forms come back to: these filters, this page.
        back=urlencode({**shown, **({"page": page} if page > 1 else {})}),
        blocked=blocked,
        blocked_total=blocked_total,
        blocked_shown=BLOCKS_SHOWN,
        blocked_ids=voting_blocks.refused_among(campaign, sorted({v.voter_id for v in items})),
        **({"notice": None, "block_error": None, "lift_error": None} | extra),
    )


def _csrf_first(view: Any) -> Any:
    """A form post's CSRF token is checked before the session: a stale page gets the 403 page
    "页面已过期" instead of a trip to the login page."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        require_csrf()
        return view(*args, **kwargs)

    return wrapper


@bp.route("/c/<slug>/votes/block", methods=["POST"])
@_csrf_first
@staff_page("admin", login="console")
def block_voter(slug: str) -> Any:
    """The vote browser's 屏蔽 form: block one voter, with a reason, then back to the same page."""
    campaign = _campaign(slug)
    back = back_query(request.form.get("back"))
    reason = request.form.get("reason", "")[:1000]
    try:
        voter_id = form_voter_id(request.form.get("voter_id"))
        voting_blocks.block_voter(campaign, voter_id, g.account, reason, "browser")
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        failed = {
            "voter_id": str(request.form.get("voter_id", ""))[:12],
            "reason": reason,
            "error": exc,
        }
        return _votes_page(campaign, back, status=exc.status, block_error=failed)
    warning = voting_blocks.publish_blocks(campaign, [voter_id])
    return redirect(back_url(campaign, back, blocked=voter_id, unpublished=warning and 1), 303)


@bp.route("/c/<slug>/votes/blocks/<id:voter_id>/lift", methods=["POST"])
@_csrf_first
@staff_page("admin", login="console")
def lift_block(slug: str, voter_id: int) -> Any:
    """The blocked list's 解除屏蔽 form: lift a voter's block, with a reason."""
    campaign = _campaign(slug)
    back = back_query(request.form.get("back"))
    reason = request.form.get("reason", "")[:1000]
    try:
        voting_blocks.unblock_voter(campaign, voter_id, g.account, reason)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        failed = {"voter_id": str(voter_id), "reason": reason, "error": exc}
        return _votes_page(campaign, back, status=exc.status, lift_error=failed)
    warning = voting_blocks.publish_blocks(campaign, [voter_id])
    return redirect(back_url(campaign, back, lifted=voter_id, unpublished=warning and 1), 303)
