"""HTTP routes: criteria and judges, score sheets, results, publicity, objections, audit."""

from __future__ import annotations

from typing import Any

from flask import Response, g, jsonify, redirect, request, send_file, stream_with_context, url_for
from flask_smorest import Blueprint

from awards import exports, jobs, services
from awards.schemas import (
    AdjustSchema,
    AnswerResultSchema,
    AuditArgsSchema,
    AuditPageSchema,
    ComputeSchema,
    ConflictCreateSchema,
    CriteriaSchema,
    ExportCreateSchema,
    ExportListSchema,
    ExportStatusSchema,
    JudgeAssignmentSchema,
    JudgeAssignSchema,
    JudgeQueueSchema,
    ObjectionAnswerSchema,
    ObjectionCreateSchema,
    ObjectionFiledSchema,
    ObjectionListSchema,
    OrganizerScoreSchema,
    ProgressSchema,
    PublicObjectionListSchema,
    SensitivitySchema,
    SheetSaveSchema,
    SheetSchema,
    VersionSchema,
    WinnersSchema,
)
from campaigns import services as campaign_services
from core.auth import client_ip
from core.errors import NotFound
from core.extensions import db, sqlite_write_intent
from core.ratelimit import rate_limit
from core.schemas import ErrorEnvelopeSchema
from voting import exports as vote_exports
from voting.schemas import VoteFilterSchema

blp = Blueprint(
    "awards",
    __name__,
    url_prefix="/api/v1",
    description="评审打分、综合结果、定稿、公示与异议 (judging, results, publicity, objections)",
)
STAFF = [{"bearerAuth": []}]
staff_required = campaign_services.staff_required
get_campaign = campaign_services.get_campaign


@blp.route("/admin/campaigns/<slug>/criteria", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(
    CriteriaSchema,
    example={
        "items": [
            {"code": "deeds", "name": "先进事迹", "max_points": 40},
            {"code": "service", "name": "服务群众", "max_points": 30},
            {"code": "influence", "name": "社会影响", "max_points": 30},
        ]
    },
)
@blp.response(200, CriteriaSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="criteria_locked")
@staff_required("admin")
def put_criteria(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Set the campaign's scoring criteria and their maximum points.

    Admins only. The list replaces the criteria (codes unique: 422 duplicate_criterion); once
    a judge has saved a sheet they are locked (409 criteria_locked). A judge's total is out of
    the sum of the maximum points."""
    made = services.set_criteria(get_campaign(slug), body["items"])
    db.session.commit()
    return {"items": made}


@blp.route("/admin/campaigns/<slug>/judges", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(JudgeAssignSchema)
@blp.response(200, JudgeAssignmentSchema)
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, judge_not_found, category_not_found",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="panel_locked")
@staff_required("admin")
def assign_judge(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Assign a judge to categories, on a panel.

    Admins only. The list replaces the judge's assignments here; ``panel`` (jury, peer, leader)
    is fixed once it has saved a sheet (409 panel_locked). Not a judge: 404 judge_not_found.
    Jury and leaders never score their own unit's nominees, peers may. Audited."""
    made = services.assign_judge(
        get_campaign(slug), body["username"], body["categories"], body["panel"]
    )
    db.session.commit()
    return {
        "username": body["username"],
        "categories": [a.category.code for a in made],
        "panel": body["panel"],
    }


@blp.route("/admin/campaigns/<slug>/judging", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, ProgressSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def judging_progress(slug: str) -> dict[str, Any]:
    """Judging progress: who has scored what.

    Admins only. Per assigned judge: nominees to score, sheets submitted and sheets still in
    draft."""
    return {"items": services.progress(get_campaign(slug))}


@blp.route("/judging/<slug>/conflicts", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ConflictCreateSchema)
@blp.response(201, ConflictCreateSchema)
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, judge_not_found, nominee_not_found",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="judging_closed")
@staff_required("judge", "admin")
def declare_conflict(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Declare a judge's conflict of interest (回避) with a nominee.

    A judge for itself, or an admin naming the ``judge``; only while the campaign is judging
    (409 judging_closed). From then on the judge cannot score the nominee, and a sheet
    already saved is removed from the average. Audited with the reason."""
    judge = g.account
    if g.account.role == "admin":
        judge = services.get_judge(body["judge"] or "")
    services.declare_conflict(judge, get_campaign(slug), body["nominee"], body["reason"])
    db.session.commit()
    return body


@blp.route("/judging/<slug>/sheets", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, JudgeQueueSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("judge")
def judge_queue(slug: str) -> dict[str, Any]:
    """The signed-in judge's nominees, criteria and sheets.

    Judges only. The approved nominees of the categories the judge is assigned to, without
    those of its own unit or declared conflicts, each with the judge's sheet so far. No vote
    count is shown while scoring."""
    campaign = get_campaign(slug)
    return {
        "criteria": services.criteria(campaign),
        "items": services.judge_queue(g.account, campaign),
    }


@blp.route("/judging/<slug>/sheets/<number>", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(
    SheetSaveSchema,
    example={"scores": {"deeds": 36, "service": 27.5, "influence": 25}, "submit": True},
)
@blp.response(200, SheetSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_assigned, conflict_of_interest")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="judging_closed")
@staff_required("judge")
def save_sheet(body: dict[str, Any], slug: str, number: str) -> Any:
    """Save, submit or revise a score sheet.

    Judges only, while the campaign is judging (409 judging_closed), for a nominee of a
    category they are assigned to (403 not_assigned) and without a conflict (403
    conflict_of_interest). Each score is 0 to its criterion's maximum; ``submit: true`` needs
    every criterion scored, and so does revising a submitted sheet (422 invalid_scores with
    the fields). Only submitted sheets count in the jury score. Audited."""
    sheet = services.save_sheet(
        g.account, get_campaign(slug), number, body["scores"], body["comment"], body["submit"]
    )
    db.session.commit()
    return sheet


@blp.route("/admin/campaigns/<slug>/organizer-scores/<number>", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(OrganizerScoreSchema)
@blp.response(200, OrganizerScoreSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="judging_closed")
@staff_required("admin")
def organizer_score(body: dict[str, Any], slug: str, number: str) -> Any:
    """Set the organiser's 0–100 score of a nominee.

    Admins only, while the campaign is judging (409 judging_closed). Counts in the combined
    score with the weight ``weights.organizer`` (0 by default). Audited with the reason."""
    score = services.set_organizer_score(get_campaign(slug), number, body["points"], body["reason"])
    db.session.commit()
    return score


@blp.route("/admin/campaigns/<slug>/results", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ComputeSchema)
@blp.response(201, VersionSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="results_closed, ledger_not_drained, ledger_quarantine_unresolved, "
    "ledger_rewind_unacknowledged",
)
@staff_required("admin")
def compute_results(body: dict[str, Any], slug: str) -> Any:
    """Compute a new draft result version.

    Admins only, in the judging or publicity phase (409 results_closed). Uses the valid
    votes of the ledger (every vote must be drained into the database first: 409
    ledger_not_drained, ledger_quarantine_unresolved, ledger_rewind_unacknowledged), the
    submitted score sheets and the organiser's scores, with the campaign's weights. The
    method is written next to the version, with the chain head it counted up to. After a
    publication, the earlier version's adjustments are carried forward."""
    version = services.compute(get_campaign(slug), g.account, body["reason"])
    db.session.commit()
    return version


@blp.route("/admin/campaigns/<slug>/results/<id:number>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, VersionSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, result_not_found"
)
@staff_required("admin")
def get_results(slug: str, number: int) -> Any:
    """A result version with every nominee's scores, rank and winner flag.

    Admins only. Each entry has the valid votes, the public, jury, organiser and combined
    scores, the rank, whether it wins and in which tier; the committee's adjustments are
    listed with their reasons."""
    return services.get_version(get_campaign(slug), number)


@blp.route("/admin/campaigns/<slug>/results/<id:number>/sensitivity", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, SensitivitySchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, result_not_found"
)
@staff_required("admin")
def sensitivity(slug: str, number: int) -> dict[str, Any]:
    """How sensitive the winners are to the weights.

    Admins only. Per category: would the winners change if 5 or 10 points of weight moved
    between public and jury, either way? Each scenario lists the winners it adds and drops."""
    campaign = get_campaign(slug)
    return {"items": services.sensitivity(campaign, services.get_version(campaign, number))}


@blp.route("/admin/campaigns/<slug>/results/<id:number>/adjustments", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(
    AdjustSchema,
    examples={
        "exclude": {
            "summary": "exclude a nominee",
            "value": {
                "nominee": "D007",
                "action": "exclude",
                "reason": "经评审委员会复核，该候选人事迹材料存在重大失实，取消入选资格",
            },
        },
        "tier": {
            "summary": "move a winner to another award tier",
            "value": {
                "nominee": "D012",
                "action": "tier",
                "tier": "top10",
                "reason": "评审委员会一致认为其事迹突出，调整为十佳",
            },
        },
    },
)
@blp.response(200, VersionSchema)
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, result_not_found, nominee_not_found",
)
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="version_locked; action tier: tiers_not_set, not_a_winner, tier_full",
)
@blp.alt_response(
    422, schema=ErrorEnvelopeSchema, description="reason_required; action tier: unknown_tier"
)
@staff_required("admin")
def adjust(body: dict[str, Any], slug: str, number: int) -> Any:
    """Adjust a draft result: exclude, promote, move to a tier, or clear.

    Admins only, on a draft version (409 version_locked), with a written reason (422
    reason_required). ``exclude``: the nominee never wins; ``promote``: it wins and the
    lowest-ranked unadjusted winner makes room; ``tier``: a winner moves into another award
    tier (409 tiers_not_set, not_a_winner, tier_full; 422 unknown_tier); ``clear`` takes
    the nominee's adjustment out. The draft's winners and tiers are derived again. Audited."""
    campaign = get_campaign(slug)
    action = None if body["action"] == "clear" else body["action"]
    version = services.adjust(
        campaign,
        services.get_version(campaign, number),
        body["nominee"],
        action,
        body["reason"],
        tier=body["tier"],
    )
    db.session.commit()
    return version


@blp.route("/admin/campaigns/<slug>/results/<id:number>/finalize", methods=["POST"])
@blp.doc(security=STAFF)
@blp.response(200, VersionSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, result_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="version_locked")
@staff_required("admin")
def finalize(slug: str, number: int) -> Any:
    """Finalise a draft result version.

    Admins only. The version can no longer be adjusted (a finalised one: 409 version_locked);
    an earlier final version is superseded. Moving the campaign to publicity then publishes
    it."""
    campaign = get_campaign(slug)
    version = services.finalize(campaign, services.get_version(campaign, number))
    db.session.commit()
    return version


@blp.route("/admin/campaigns/<slug>/results/<id:number>/publish", methods=["POST"])
@blp.doc(security=STAFF)
@blp.response(200, VersionSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, result_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="not_in_publicity, not_final")
@staff_required("admin")
def republish(slug: str, number: int) -> Any:
    """Publish a newer final version during publicity.

    Admins only, in the publicity phase (409 not_in_publicity), for a final version (409
    not_final): after an upheld objection reopened the result. The new publication starts a
    fresh publicity window of ``publicity_days``."""
    version = services.republish(get_campaign(slug), number)
    db.session.commit()
    return version


@blp.route("/campaigns/<slug>/winners", methods=["GET"])
@blp.response(200, WinnersSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, results_not_published"
)
def winners(slug: str) -> dict[str, Any]:
    """The published winners (公示名单).

    Public, no token. The winners by category, tier and rank, with the method, the vote
    ledger's chain head and vote count the result was computed from, and the end of the
    publicity window (objections until then). In a category with award tiers each winner
    carries its tier (e.g. 十佳, 优秀). Before publication: 404 results_not_published."""
    campaign = campaign_services.get_public_campaign(slug)
    version = services.published(campaign)
    if version is None:
        raise NotFound("评选结果尚未公示", code="results_not_published")
    return {
        "version": version.version,
        "published_at": version.published_at,
        "publicity_ends_at": version.publicity_ends_at,
        "method": version.method,
        "ledger_head": version.ledger_head,
        "ledger_votes": version.ledger_votes,
        "categories": campaign.categories,
        "winners": services.winners_of(campaign, version),
    }


@blp.route("/campaigns/<slug>/objections", methods=["POST"])
@blp.arguments(
    ObjectionCreateSchema,
    example={
        "nominee": "D002",
        "contact_name": "张伟",
        "contact_phone": "13812341234",
        "text": "该候选人所述获奖情况与实际不符。",
    },
)
@blp.response(201, ObjectionFiledSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="publicity_closed")
@blp.alt_response(413, schema=ErrorEnvelopeSchema, description="attachment_too_large")
@blp.alt_response(
    429,
    schema=ErrorEnvelopeSchema,
    description="rate_limited, with Retry-After; objection_quota_exhausted: "
    "OBJECTION_ATTACHMENTS_PER_IP_PER_DAY objections with an attachment from this address "
    "today (Retry-After: until local midnight); objection_person_limit: "
    "OBJECTION_PER_PERSON objections from one contact phone in this publicity window",
)
@rate_limit("CHALLENGE_IP_LIMIT")
def file_objection(body: dict[str, Any], slug: str) -> Any:
    """File an objection (异议) to the published result.

    Public, no token; only while the publicity window is open (409 publicity_closed). A
    contact name and phone are required and never published; the text is published with
    the committee's answer. An optional attachment (JPEG, PNG or PDF as a data: URL, at most
    1 MB: 413 attachment_too_large, 422 bad_attachment). Limited per address (429
    rate_limited), objections with an attachment per address and day (429
    objection_quota_exhausted), and objections per contact phone in one publicity window (429
    objection_person_limit)."""
    objection = services.file_objection(
        campaign_services.get_public_campaign(slug), body, client_ip()
    )
    db.session.commit()
    return objection


@blp.route("/campaigns/<slug>/objections", methods=["GET"])
@blp.response(200, PublicObjectionListSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
def public_objections(slug: str) -> dict[str, Any]:
    """Answered objections with the committee's answers.

    Public, no token. Never a contact detail; objections still open are not listed."""
    return {"items": services.public_objections(campaign_services.get_public_campaign(slug))}


@blp.route("/admin/campaigns/<slug>/objections", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, ObjectionListSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def admin_objections(slug: str) -> dict[str, Any]:
    """Every objection of the campaign, with its contact.

    Admins only. Open and answered ones, with the objector's name and phone and whether a
    file is attached."""
    return {"items": services.objections(get_campaign(slug))}


@blp.route("/admin/campaigns/<slug>/objections/<id:objection_id>", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(
    ObjectionAnswerSchema,
    example={"decision": "dismissed", "answer": "经核实，相关获奖证书真实有效，异议不成立。"},
)
@blp.response(200, AnswerResultSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, objection_not_found"
)
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="objection_answered; upheld reopens the results: results_closed, "
    "ledger_not_drained, ledger_quarantine_unresolved, ledger_rewind_unacknowledged",
)
@staff_required("admin")
def answer_objection(body: dict[str, Any], slug: str, objection_id: int) -> dict[str, Any]:
    """Answer an objection: upheld or dismissed.

    Admins only; an objection is answered once (409 objection_answered). The answer is
    published with it. ``upheld`` computes a new draft result version from the current data
    (``reopened_version``; the same refusals as computing), for the committee to adjust,
    finalise and publish; the published list stands until then. Audited."""
    objection, reopened = services.answer_objection(
        get_campaign(slug), objection_id, body["decision"], body["answer"], g.account
    )
    db.session.commit()
    return {"objection": objection, "reopened_version": reopened.version if reopened else None}


@blp.route("/admin/campaigns/<slug>/audit", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(AuditArgsSchema, location="query")
@blp.response(200, AuditPageSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def audit_report(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """The campaign's audit trail.

    Admins only. Every recorded decision with actor, role, time, reason, address, before and
    after, paginated."""
    items, total = services.audit_trail(get_campaign(slug), args["page"], args["per_page"])
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


# --- exports ----------------------------------------------------------------------------------


def _export_state(slug: str, state: dict[str, Any]) -> dict[str, Any]:
    finished = state["status"] == "finished" and state["file"]
    return {
        **state,
        "status_url": url_for("awards.get_export", slug=slug, job_id=state["job_id"]),
        "download_url": url_for("awards.download_export", slug=slug, job_id=state["job_id"])
        if finished
        else None,
    }


def _launch(campaign: Any, kind: str, filters: dict[str, Any] | None) -> dict[str, Any]:
    """Start an export job, or join the identical one (same kind and filters) still on its way."""
    job_id = exports.running_export(campaign, kind, filters)
    if job_id is None:
        if db.engine.dialect.name == "sqlite" and not sqlite_write_intent.get():
            # A GET that records (the audit entry): take SQLite's write lock as a POST would,
            # so it queues behind another writer instead of failing on a stale read snapshot.
            sqlite_write_intent.set(True)
            db.session.rollback()
        job_id = services.start_export(campaign, kind, filters)
        db.session.commit()
        jobs.enqueue_export(
            campaign.id, kind, job_id, vote_exports.dump_filters(filters), g.account.username
        )
    return _export_state(campaign.slug, services.export_status(campaign, job_id))


@blp.route("/admin/campaigns/<slug>/exports", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ExportCreateSchema)
@blp.response(202, ExportStatusSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def create_export(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Start an export job.

    Admins only. Kinds: the campaign workbook (xlsx), the printable winners' list (HTML), the
    audit log (CSV), or every vote (votes_xlsx, votes_csv; with the vote browser's
    ``filters``, 422 filters_not_supported for the other kinds). An identical export still
    queued or running is answered instead of starting a second one. Answers 202; poll the
    job for progress, then download the file."""
    return _launch(get_campaign(slug), body["kind"], body["filters"])


@blp.route("/admin/campaigns/<slug>/exports", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, ExportListSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def list_exports(slug: str) -> dict[str, Any]:
    """The campaign's latest exports.

    Admins only. At most 20, newest first, while their jobs are kept (about a day), whoever
    started them, with status, progress and download links."""
    campaign = get_campaign(slug)
    return {"items": [_export_state(slug, s) for s in exports.recent_exports(campaign)]}


@blp.route("/admin/campaigns/<slug>/exports/<job_id>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, ExportStatusSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, export_not_found"
)
@staff_required("admin")
def get_export(slug: str, job_id: str) -> dict[str, Any]:
    """An export job's status and progress.

    Admins only. ``progress`` 0–100 (the vote kinds also give ``rows_done`` of
    ``rows_total``); ``download_url`` once it has finished. A job of another campaign: 404
    export_not_found."""
    campaign = get_campaign(slug)
    return _export_state(slug, services.export_status(campaign, job_id))


@blp.route("/admin/campaigns/<slug>/exports/<job_id>/download", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, description="the exported file (xlsx, html or csv) as an attachment")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, export_not_found"
)
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="export_not_ready (still running), export_failed"
)
@staff_required("admin")
def download_export(slug: str, job_id: str) -> Response:
    """Download a finished export.

    Admins only. The file as an attachment (xlsx, html or csv), never cached. Before it has
    finished: 409 export_not_ready; a failed job: 409 export_failed."""
    campaign = get_campaign(slug)
    path = services.export_file(campaign, job_id)
    kind = services.kind_of(path)
    response = send_file(
        path,
        mimetype=services.MIMETYPES[kind],
        as_attachment=True,
        download_name=services.download_name(campaign, kind),
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- the vote browser's exports (same URLs as before, now jobs) ---------------------------------


def _wants_page() -> bool:
    """A browser following the vote browser's link (it prefers HTML to JSON)."""
    accept = request.accept_mimetypes
    return accept.best_match(("application/json", "text/html")) == "text/html"


def _accepted(campaign: Any, state: dict[str, Any]) -> Response:
    """202 with the job's state and its status URL in ``Location``; a browser is sent (303) to
    the console's exports page instead, which shows the job's progress and its download."""
    if _wants_page():
        return redirect(
            url_for("console_awards.exports_page", slug=campaign.slug, job=state["job_id"]),
            code=303,
        )
    response = jsonify(ExportStatusSchema().dump(state))
    response.status_code = 202
    response.headers["Location"] = state["status_url"]
    response.headers["Cache-Control"] = "private, no-store"
    return response


_JOB_ANSWER = (
    "202 with the export job's state (``status_url`` to poll, also in ``Location``; "
    "``download_url`` once finished); a browser (Accept prefers text/html) gets 303 to the "
    "console's exports page. An identical export still queued or running is reused."
)


@blp.route("/admin/campaigns/<slug>/votes.xlsx", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(VoteFilterSchema, location="query")
@blp.response(202, ExportStatusSchema, description=_JOB_ANSWER)
@blp.alt_response(303, description="a browser: to /console/c/{slug}/exports?job={job_id}")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def export_votes_xlsx(args: dict[str, Any], slug: str) -> Response:
    """The vote browser's filters, as an Excel workbook (an export job).

    Admins only. Built by an export job (kind ``votes_xlsx``), never inside this request.
    Changed: this answered the workbook itself (200) before; now it starts the job (or joins
    the identical running one) and answers 202. The workbook has a 导出说明 sheet, then the
    votes on 投票明细-1, -2, …: a new sheet before Excel's 1,048,576 rows (header included).
    Times are in UTC."""
    campaign = get_campaign(slug)
    return _accepted(campaign, _launch(campaign, "votes_xlsx", args))


@blp.route("/admin/campaigns/<slug>/votes.csv", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(VoteFilterSchema, location="query")
@blp.response(
    200,
    description="CSV (UTF-8 with BOM), streamed, when at most "
    f"{vote_exports.CSV_STREAM_MAX_ROWS:,} votes match",
)
@blp.alt_response(202, schema=ExportStatusSchema, description="more match: " + _JOB_ANSWER)
@blp.alt_response(303, description="a browser, more match: to the console's exports page")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("admin")
def export_votes(args: dict[str, Any], slug: str) -> Response:
    """The vote browser's filters, as CSV.

    Admins only. Up to 100,000 matching votes (``CSV_STREAM_MAX_ROWS`` of
    ``voting.exports``) it is streamed in this response (UTF-8 with BOM), read in keyset
    pages; above that it runs as an export job (kind ``votes_csv``) like the workbook: 202
    (or 303 for a browser)."""
    campaign = get_campaign(slug)
    if vote_exports.exceeds(campaign, args, vote_exports.CSV_STREAM_MAX_ROWS):
        return _accepted(campaign, _launch(campaign, "votes_csv", args))
    return Response(
        stream_with_context(vote_exports.csv_chunks(campaign, args)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename={slug}-votes.csv",
            "Cache-Control": "private, no-store",
        },
    )
