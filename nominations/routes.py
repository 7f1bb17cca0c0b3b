"""HTTP routes for the nomination workflow and the public nominee listing."""

from __future__ import annotations

from typing import Any

from flask import Response, g, request
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.extensions import db
from core.http import accepts_any_body, cacheable
from core.schemas import ErrorEnvelopeSchema
from nominations import (
    form_fields,
    level_config,
    level_forms,
    levels,
    ports,
    public_view,
    services,
)
from nominations.form_fields import FormFieldsInSchema, FormFieldsSchema
from nominations.level_schemas import (
    ExtendSchema,
    LevelDecisionSchema,
    LevelFormArgsSchema,
    LevelFormsSchema,
    LevelFormUploadArgsSchema,
    LevelsInSchema,
    LevelsSchema,
    UnitQuotasInSchema,
)
from nominations.schemas import (
    NominationCreateSchema,
    NominationListArgsSchema,
    NominationPageSchema,
    NominationSchema,
    NominationUpdateSchema,
    NomineeDetailSchema,
    NomineePageSchema,
    NomineeQueryArgsSchema,
    NomineeSchema,
    ReviewSchema,
    WithdrawSchema,
)

blp = Blueprint(
    "nominations",
    __name__,
    url_prefix="/api/v1",
    description="推荐、审核与候选人公开信息 (nominations, review, public nominees)",
)

STAFF = [{"bearerAuth": []}]
staff_required = campaign_services.staff_required


@blp.route("/campaigns/<slug>/nominations", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(
    NominationCreateSchema,
    example={
        "category": "nurse",
        "name": "李芳",
        "gender": "female",
        "title": "主任护师",
        "position": "护士长",
        "department": "急诊科",
        "years_of_service": 22,
        "summary": "扎根急诊二十二年，带出一支「永不掉线」的护理团队",
        "deeds": "2020年起连续三年带队支援乡镇卫生院……",
        "unit_opinion": "同意推荐。",
    },
)
@blp.response(201, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="foreign_unit, no_unit")
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, category_not_found, unit_not_found",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="nomination_closed")
@staff_required("unit", "admin")
def create_nomination(body: dict[str, Any], slug: str) -> Any:
    """Create a draft nomination (推荐申报).

    A unit clerk nominates for its own unit; an admin names the institution in ``unit_code``
    (required for admins). Only while the campaign is ``nominating`` and inside its
    nomination window (409 nomination_closed, with the window in ``details``). The draft can
    be edited, given a photo and a video, then submitted; the unit's quota is checked at
    submit, not here."""
    campaign = campaign_services.get_campaign(slug)
    nomination = services.create(g.account, campaign, body)
    db.session.commit()
    return nomination


@blp.route("/campaigns/<slug>/nominations", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(NominationListArgsSchema, location="query")
@blp.response(200, NominationPageSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("unit", "reviewer", "admin")
def list_nominations(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Nominations the caller may see, paginated.

    A unit clerk: its unit's own (drafts included). A reviewer: its sub-tree's, never a draft.
    An admin: every nomination but drafts (drafts when asked for by ``status=draft``). Filter
    by status, category, unit and ``recommended``."""
    campaign = campaign_services.get_campaign(slug)
    items, total = services.list_for(g.account, campaign, **args)
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/nominations/<id:nomination_id>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, NominationSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@staff_required("unit", "reviewer", "admin")
def get_nomination(nomination_id: int) -> Any:
    """One nomination: the dossier, its status and its review history.

    Staff who may see it: its unit's clerk, a reviewer whose sub-tree holds the unit (not a
    draft), admins. Anything else is 404 nomination_not_found, exactly like an id that does
    not exist, so ids cannot be probed."""
    return services.get_for(g.account, nomination_id)


@blp.route("/nominations/<id:nomination_id>", methods=["PATCH"])
@blp.doc(security=STAFF)
@blp.arguments(NominationUpdateSchema)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="nomination_not_found, category_not_found"
)
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_editable, nomination_closed, category_locked, concurrent_update",
)
@staff_required("unit", "reviewer", "admin")
def update_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Edit the dossier of a draft or returned nomination.

    Its unit's clerk or an admin; in a chain campaign also the bureau holding a submitted
    nomination at its open level (it corrects what was returned to it); other reviewers: 403
    not_owner. Only the dossier fields: ``status``,
    ``number`` and ``unit_id`` are refused with 422. A nomination in another state is 409
    not_editable; outside the nominating and reviewing phases 409 nomination_closed; a
    returned nomination keeps its category (409 category_locked). A concurrent change of the
    same nomination: 409 concurrent_update (reload and retry)."""
    nomination = services.get_for(g.account, nomination_id)
    services.update_dossier(g.account, nomination, body)
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/submit", methods=["POST"])
@blp.doc(security=STAFF)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_submittable, nomination_closed, unit_quota_exceeded, concurrent_update",
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="extra_required")
@staff_required("unit", "admin")
def submit_nomination(nomination_id: int) -> Any:
    """Submit a draft, or resubmit a returned nomination.

    Its unit's clerk or an admin. A draft is submitted only inside the nomination window (409
    nomination_closed); a returned one until reviewing ends. The unit's quota per category
    (``max_per_unit``) is checked here: submitted, returned and approved nominations hold a
    place (409 unit_quota_exceeded, naming the category and its quota)."""
    nomination = services.get_for(g.account, nomination_id)
    services.submit(g.account, nomination)
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/withdraw", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(WithdrawSchema)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="not_withdrawable, concurrent_update"
)
@staff_required("unit", "admin")
def withdraw_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Withdraw a nomination; it frees its place in the unit's quota.

    Its unit's clerk: a draft, submitted or returned nomination. An admin may also withdraw an
    approved nominee, with a ``comment`` as the reason (422 reason_required without one); it
    leaves the public list at once. Other states: 409 not_withdrawable."""
    nomination = services.get_for(g.account, nomination_id)
    services.withdraw(g.account, nomination, body["comment"])
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/review", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ReviewSchema, example={"decision": "return", "comment": "请补充近三年的获奖情况"})
@blp.response(200, NominationSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_reviewable, review_closed, already_recommended, recommendation_required, "
    "concurrent_update",
)
@staff_required("reviewer", "admin")
def review_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Review a submitted nomination: approve, return or reject.

    A bureau reviewer (for units in its sub-tree) or an admin, while the campaign is
    nominating or reviewing (409 review_closed). A reviewer's ``approve`` recommends the
    nomination to the committee (``recommended: true``; twice: 409 already_recommended); an
    admin's ``approve`` approves it and gives its public number (D001 …), refused with 409
    recommendation_required when the campaign requires a bureau's recommendation first.
    ``return`` sends it back to the unit for changes and ``reject`` ends it; both need a
    ``comment`` (422 comment_required). Only submitted nominations: 409 not_reviewable. In a
    campaign with a recommendation chain a bureau reviewer's call is its level decision (as
    ``POST …/level-decision``), and the committee decides only what every level passed up (409
    recommendation_required); its ``return`` goes to the last level that passed it up."""
    nomination = services.get_for(g.account, nomination_id)
    services.review(g.account, nomination, body["decision"], body["comment"])
    db.session.commit()
    return nomination


# --- the campaign's own form fields (nominations.form_fields) ----------------------------------


@blp.route("/campaigns/<slug>/form-fields", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, FormFieldsSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("unit", "reviewer", "admin")
def get_form_fields(slug: str) -> dict[str, Any]:
    """The campaign's extra form fields (推荐表 填报项), in display order.

    Staff read them to fill in or review ``extra`` on nominations; ``locked`` tells whether a
    nomination was submitted already (see PUT)."""
    campaign = campaign_services.get_campaign(slug)
    return form_fields.answer(campaign)


@blp.route("/campaigns/<slug>/form-fields", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(
    FormFieldsInSchema,
    example={
        "fields": [
            {"key": "birth_month", "label": "出生年月", "type": "date", "required": True},
            {
                "key": "ethnicity",
                "label": "民族",
                "type": "choice",
                "options": ["汉族", "蒙古族", "回族", "其他"],
                "public": True,
            },
            {"key": "phone", "label": "联系电话", "type": "phone", "required": True},
            {"key": "honours", "label": "荣誉及获奖情况", "type": "long_text", "max_length": 2000},
        ]
    },
)
@blp.response(200, FormFieldsSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden (not the committee)")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="form_fields_locked")
@blp.alt_response(
    422,
    schema=ErrorEnvelopeSchema,
    description="invalid_field_key, duplicate_field_key, invalid_field_label, phone_not_public, "
    "invalid_field_limit, invalid_field_options, too_many_fields",
)
@staff_required("admin")
def put_form_fields(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Set the campaign's extra form fields (committee only); replaces the whole list.

    Each field: a key, a label, a type (text, long_text, integer, date, choice, phone), its
    limit (length, range or options), whether it is required at submit and whether it is
    public. A phone is never public (422 phone_not_public). Once a nomination was submitted, a
    field cannot be removed, change type or become required, a new field cannot be required,
    and new limits or options must keep every stored value valid (409 form_fields_locked);
    labels, order and limits that fit the stored values still change. Audited as
    ``form_fields.set``."""
    campaign = campaign_services.get_campaign(slug)
    form_fields.configure(campaign, body["fields_"])
    db.session.commit()
    return form_fields.answer(campaign)


# --- recommendation level by level (nominations.levels) ----------------------------------------


def _levels_answer(campaign: Any) -> dict[str, Any]:
    return {
        "levels": level_config.describe(campaign, levels.chain(campaign)),
        "unit_quotas": level_config.unit_quotas(campaign),
        "unit_stamped_form": level_config.unit_form_required(campaign),
        "mine": levels.my_level(g.account, campaign),
    }


@blp.route("/campaigns/<slug>/levels", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, LevelsSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("unit", "reviewer", "admin")
def get_levels(slug: str) -> dict[str, Any]:
    """The campaign's recommendation chain (推荐层级): levels, quotas, deadlines.

    Empty ``levels``: a single-level campaign. A bureau reviewer also gets ``mine``: its level,
    deadline, what waits for it and its places used per category."""
    campaign = campaign_services.get_campaign(slug)
    return _levels_answer(campaign)


@blp.route("/campaigns/<slug>/levels", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(
    LevelsInSchema,
    example={
        "levels": [
            {
                "unit_level": "county",
                "deadline": "2026-05-10T18:00:00+08:00",
                "quotas": {"doctor": 2, "nurse": 2},
            },
            {
                "unit_level": "city",
                "deadline": "2026-05-20T18:00:00+08:00",
                "quotas": {"doctor": 3, "nurse": 3},
            },
        ]
    },
)
@blp.response(200, LevelsSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden (not the committee)")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="levels_locked")
@blp.alt_response(
    422,
    schema=ErrorEnvelopeSchema,
    description="invalid_level_order, invalid_deadline_order, quota_required, too_many_levels",
)
@staff_required("admin")
def put_levels(body: dict[str, Any], slug: str) -> dict[str, Any]:
    """Set the recommendation chain (committee only).

    Bureau levels lowest first, each with a deadline and a quota per category. Nominations
    climb the bureaus among their unit's ancestors (a unit directly under a city skips the
    county). Once a nomination was submitted, the levels themselves cannot change (409
    levels_locked); quotas and deadlines still can. ``stamped_form`` per level and
    ``unit_stamped_form`` say who must upload a stamped recommendation form (盖章推荐表) before
    passing up or submitting; absent, they stay as they are. Audited as ``levels.set``."""
    campaign = campaign_services.get_campaign(slug)
    level_config.configure(campaign, body["levels"], body.get("unit_stamped_form"))
    db.session.commit()
    return _levels_answer(campaign)


@blp.route("/campaigns/<slug>/levels/<unit_level>/extend", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ExtendSchema)
@blp.response(200, LevelsSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden (not the committee)")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, level_not_found"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="invalid_deadline")
@staff_required("admin")
def extend_level(body: dict[str, Any], slug: str, unit_level: str) -> dict[str, Any]:
    """Extend one level's deadline (committee only): its locked list opens until then.

    The new deadline must be later than the old one and than now (422 invalid_deadline); the
    ``reason`` is kept in the audit log (``levels.extend``)."""
    campaign = campaign_services.get_campaign(slug)
    level_config.extend(campaign, unit_level, body["deadline"], body["reason"])
    db.session.commit()
    return _levels_answer(campaign)


@blp.route("/campaigns/<slug>/unit-quotas/<unit_code>", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.arguments(UnitQuotasInSchema)
@blp.response(200, LevelsSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden (not the committee)")
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, unit_not_found, category_not_found",
)
@staff_required("admin")
def put_unit_quotas(body: dict[str, Any], slug: str, unit_code: str) -> dict[str, Any]:
    """Set one unit's own places per category (committee only).

    For a unit directly under a higher level (厅直属单位, 三级医院): how many it may submit,
    instead of the category's ``max_per_unit``; for a bureau: how many it may pass up, instead
    of its level's quota. ``null`` returns a category to the usual figure."""
    campaign = campaign_services.get_campaign(slug)
    unit = campaign_services.get_unit(unit_code)
    level_config.set_unit_quotas(campaign, unit, body["quotas"])
    db.session.commit()
    return _levels_answer(campaign)


@blp.route("/nominations/<id:nomination_id>/level-decision", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(LevelDecisionSchema, example={"decision": "pass", "comment": "同意推荐上报"})
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden, not_a_level")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_at_your_level, level_closed, level_quota_exceeded, review_closed, "
    "concurrent_update",
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="comment_required")
@staff_required("reviewer")
def decide_at_level(body: dict[str, Any], nomination_id: int) -> Any:
    """A bureau's decision on a nomination waiting at its level (chain campaigns).

    ``pass`` (推荐上报) sends it to the next level, or to the committee from the top level,
    taking one of the bureau's places in the category, exact under parallel requests (409
    level_quota_exceeded). ``return`` (退回修改) sends it back to the level that passed it up,
    freeing that level's place (from the lowest level: back to the unit, status returned).
    ``reject`` (不予推荐) ends it with the level and reason recorded. Only a reviewer of the
    bureau holding it: a bureau outside the chain is 403 not_a_level, a nomination outside the
    caller's sub-tree 404, one waiting elsewhere 409 not_at_your_level; after the level's
    deadline 409 level_closed. ``POST …/review`` by a bureau reviewer does the same
    (``approve`` = ``pass``)."""
    nomination = services.get_for(g.account, nomination_id)
    levels.decide(g.account, nomination, body["decision"], body["comment"])
    db.session.commit()
    return nomination


# --- stamped recommendation forms (nominations.level_forms) ------------------------------------


@blp.route("/nominations/<id:nomination_id>/level-forms", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, LevelFormsSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@staff_required("unit", "reviewer", "admin")
def list_level_forms(nomination_id: int) -> dict[str, Any]:
    """The stamped recommendation forms (盖章推荐表) of a nomination, level by level.

    Anyone who sees the nomination: per level of its way (the nominating unit first, then each
    bureau), whether the committee requires a form, the current one (who uploaded it, when, its
    kind, pages and SHA-256) and those it replaced, and whether the caller may upload there
    now. Download links are given only to those who may fetch the file: the committee, the
    unit whose form it is and the bureaus above its level."""
    nomination = services.get_for(g.account, nomination_id)
    return levels.form_overview(g.account, nomination)


@accepts_any_body
@blp.route("/nominations/<id:nomination_id>/level-forms/<unit_level>", methods=["POST"])
@blp.doc(
    security=STAFF,
    requestBody={
        "description": "the file itself: a PDF, or a JPEG or PNG scan. Any Content-Type is "
        "accepted (the content decides); application/pdf, image/jpeg or image/png must match "
        "the content",
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
)
@blp.arguments(LevelFormUploadArgsSchema, location="query")
@blp.response(201, LevelFormsSchema)
@blp.alt_response(400, schema=ErrorEnvelopeSchema, description="incomplete_upload")
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="forbidden, not_a_level")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="nomination_not_found, level_not_found"
)
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_at_your_level, nomination_closed, review_closed, level_closed",
)
@blp.alt_response(413, schema=ErrorEnvelopeSchema, description="form_too_large")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="invalid_form_file")
@staff_required("unit", "reviewer", "admin")
def upload_level_form(args: dict[str, Any], nomination_id: int, unit_level: str) -> Any:
    """Upload the stamped recommendation form (盖章推荐表) of a level: ``unit`` or a bureau level.

    The body is the file itself: a PDF, or a JPEG or PNG scan, at most ``LEVEL_FORM_MAX_BYTES``
    (20 MB; 413 form_too_large). Its type is read from its content, never from its name or
    Content-Type: anything else, a damaged file, or one whose name (``?name=``) or Content-Type
    claims another kind (a PNG named .pdf) is 422 invalid_form_file. ``unit``: the
    nominating unit's clerk (or an admin for it) while the nomination is a draft or returned; a
    bureau level: that bureau's reviewer while the nomination waits at its open level. Another
    role is 403, a nomination waiting elsewhere 409 not_at_your_level, a level not in the chain
    404 level_not_found. A new upload replaces the current form; the old one is kept for the
    trail. Audited as ``level_form.upload``. Answers the nomination's forms, as the GET."""
    nomination = services.get_for(g.account, nomination_id)
    levels.form_holder(g.account, nomination, unit_level)
    level_forms.check_length(request.content_length)
    request.max_content_length = level_forms.max_bytes()
    # Committed mid-request on purpose: no transaction (on SQLite, the write lock a write request
    # takes) may stay open while the body streams in. Checked again once it is in.
    db.session.commit()
    with level_forms.receive(request.stream, args["name"], request.content_type) as staged:
        nomination = services.get_for(g.account, nomination_id, lock=True)
        unit = levels.form_holder(g.account, nomination, unit_level)
        level_forms.record(g.account, nomination, unit_level, unit, staged)
        db.session.commit()
    return levels.form_overview(g.account, nomination), 201


@blp.route("/nominations/<id:nomination_id>/level-forms/<unit_level>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(LevelFormArgsSchema, location="query")
@blp.response(
    200,
    description="the form itself (application/pdf, image/jpeg or image/png) as an attachment",
    content_type="application/octet-stream",
)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="nomination_not_found, level_form_not_found"
)
@staff_required("unit", "reviewer", "admin")
def download_level_form(args: dict[str, Any], nomination_id: int, unit_level: str) -> Response:
    """Download a level's stamped recommendation form (盖章推荐表).

    The current form, or an earlier (replaced) one by ``form``. The committee, the unit whose
    form it is and the bureaus above its level may fetch it; anyone else who
    sees the nomination gets 404 level_form_not_found, as when there is none, and anyone who
    does not 404 nomination_not_found. Served with its content type as an attachment, with
    ``X-Content-Type-Options: nosniff``, never cached."""
    nomination = services.get_for(g.account, nomination_id)
    form = levels.form_to_download(g.account, nomination, unit_level, args["form"])
    return level_forms.send(form, nomination)


# The public reads answer from the cached public view (no SQL while it is current) and keep
# their serialised answer per process like the H5 pages (public_view.cached_body): reused for
# API_RENDER_SECONDS (1 s; 0 under test) without reading the counts, then while the counts it shows
# are unchanged. The schemas below still describe (and, on a miss, make) every answer.
_page_schema = NomineePageSchema()
_card_schema = NomineeSchema()
_detail_schema = NomineeDetailSchema()


_COUNTS = ("votes", "rank")


def _dumped_card(view: public_view.CampaignView, card: dict[str, Any], schema: Any) -> Any:
    """``card`` (with its counts) through ``schema``: the card without its counts is dumped once
    per view and kept with it; the counts, plain integers in the schema, are added as they are
    (the JSON's keys are sorted, so the answer is the schema's own dump)."""
    fixed = public_view.derived(
        view,
        (id(schema), card["number"]),
        lambda: schema.dump({k: v for k, v in card.items() if k not in _COUNTS}),
    )
    return fixed | {k: int(card[k]) for k in _COUNTS if card.get(k) is not None}


def _answer(body: public_view.Body) -> Response:
    return Response(body.data, status=200, headers=body.headers)


@blp.route("/campaigns/<slug>/nominees", methods=["GET"])
@blp.arguments(NomineeQueryArgsSchema, location="query")
@blp.response(200, NomineePageSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@cacheable(5)
def list_nominees(args: dict[str, Any], slug: str) -> Any:
    """Approved nominees (候选人), public.

    No token. Search with ``q`` (a name in part, or a number exactly), filter by category,
    sort by number or votes, paginate. Vote counts and ranks are absent while the campaign
    hides counts. Only card fields: never an account, a review comment or an internal id.
    Cached for 5 seconds. A draft campaign is 404 campaign_not_found."""
    view = public_view.campaign_view(slug)
    if args["category"] is not None:
        view.category(args["category"])  # 404 before anything is kept
    key = ("api-nominees", *sorted(args.items()))
    body = public_view.cached_body(
        view,
        key,
        public_view.render_seconds("API_RENDER_SECONDS"),
        lambda: services.nominee_listing(view, **args),
        lambda listing: public_view.counts_fingerprint(*listing["items"]),
        lambda listing: public_view.json_body(
            _page_schema.dump(listing | {"items": []})
            | {"items": [_dumped_card(view, card, _card_schema) for card in listing["items"]]}
        ),
    )
    return _answer(body)


@blp.route("/campaigns/<slug>/nominees/<number>", methods=["GET"])
@blp.response(200, NomineeDetailSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@cacheable(5)
def get_nominee(slug: str, number: str) -> Any:
    """One approved nominee by number, public: deeds and the unit's recommendation.

    No token; cached for 5 seconds. A read during voting counts as a view of the nominee (the
    fraud detectors compare views with votes). A number that is not an approved nominee of
    the campaign: 404 nominee_not_found."""
    view = public_view.campaign_view(slug)
    card = view.nominee(number[:16])
    if view.phase == "voting":
        ports.count_view(view.slug, card["number"])
    body = public_view.cached_body(
        view,
        ("api-nominee", card["number"]),
        public_view.render_seconds("API_RENDER_SECONDS"),
        lambda: services.nominee_detail(view, card["number"], count_view=False),
        lambda detail: public_view.counts_fingerprint(detail),
        lambda detail: public_view.json_body(_dumped_card(view, detail, _detail_schema)),
    )
    return _answer(body)
