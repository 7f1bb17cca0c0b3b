"""The 公示 page for phones: the published result and the objections to it.

``/c/<slug>/publicity`` shows, once a result is published (during publicity and after it), the
winners by category and award tier with photo, video link and deeds, the method and weights,
each winner's vote count (unless the campaign hides counts), the vote ledger's chain head the
result was computed from and how anyone can check it, and the committee's published answers to
objections. Before publication: 「公示尚未开始」. Its body is public (the same for every visitor:
no CSRF token, no cookie read or set), cached like the other H5 pages (``H5_MAX_AGE``, ETag).

Nominees come from the cached public view through the nominee page's output schema
(``NomineeDetailSchema``), the winners through the public winners schema (``WinnerSchema``) and
the answers through ``ObjectionPublicSchema``: the page shows no field the public API would not.

``/c/<slug>/publicity/objection`` is the objection form (real name, phone, reason, an optional
JPG/PNG/PDF): not a public body — it carries the CSRF token, so it is ``no-store``. It works as a
plain multipart form; the page script checks the file first and sends the same fields as JSON
(the attachment as a data URL). Both go through ``awards.services.file_objection``, the service
``POST /api/v1/campaigns/<slug>/objections`` uses, with its limits per address and per person.
The phone is never shown back: a refused form comes back with everything but the phone."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from marshmallow import ValidationError

from awards import services as award_services
from awards.labels import objection_status_label
from awards.schemas import ObjectionCreateSchema, ObjectionPublicSchema, WinnerSchema
from campaigns import services as campaign_services
from core.errors import AppError, NotFound, ServiceUnavailable, ValidationFailed
from core.extensions import db
from core.http import client_address
from core.ratelimit import rate_limit
from core.types import utcnow
from core.web import require_csrf
from nominations import public_view
from nominations.public_view import CampaignView
from nominations.schemas import NomineeDetailSchema
from pages.common import error_page, local_time, render_page
from pages.h5 import public_page
from voting import services as voting_services

bp = Blueprint("h5_publicity", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

PAGE = "pages/h5/publicity.html"
FORM = "pages/h5/publicity_objection.html"
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "application/pdf")
_detail = NomineeDetailSchema()
_winner = WinnerSchema()
_answer = ObjectionPublicSchema()
WEIGHT_LABELS = (("public", "大众投票"), ("jury", "评委评分"), ("organizer", "组织方评分"))


def _person(view: CampaignView, number: str, counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    """A winner's public card with deeds, through the nominee page's schema; without the vote
    rank (the result's rank is the one that counts here). Empty when no longer public."""
    try:
        card = view.nominee(number)
    except NotFound:
        return {}
    person = _detail.dump(
        card | counts.get(card["number"], {}) | public_view.nominee_text(view, card["number"])
    )
    person.pop("rank", None)
    renditions = sorted(
        (person.get("video") or {}).get("renditions") or [], key=lambda r: r.get("height") or 0
    )
    person["video_url"] = renditions[0].get("url") if renditions else None
    return person


def _counts(view: CampaignView, winners: list[Any], hidden: bool) -> tuple[dict[str, Any], bool]:
    """The winners' vote counts from the vote Redis (as every public read), or none when the
    campaign hides counts; ``True`` beside them when the counts could not be read."""
    if hidden or not winners:
        return {}, False
    pairs = [(e.number, e.category_code) for e in winners]
    try:
        return voting_services.vote_counts(view, pairs), False
    except ServiceUnavailable:
        return {}, True


def _groups(campaign: Any, winners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The winners by category (the campaign's order), then award tier (the category's order;
    one unnamed group in a category without tiers)."""
    groups = []
    for category in campaign.categories:
        mine = [w for w in winners if w["category"] == category.code]
        if not mine:
            continue
        tiers = [
            {"name": tier["name"], "count": tier["count"], "winners": []}
            for tier in category.tier_list
        ]
        by_name = {tier["name"]: tier for tier in tiers}
        loose: list[dict[str, Any]] = []
        for winner in mine:
            by_name.get(winner.get("tier_name") or "", {"winners": loose})["winners"].append(winner)
        if loose:
            tiers.append({"name": None, "count": len(loose), "winners": loose})
        groups.append(
            {
                "code": category.code,
                "name": category.name,
                "tiers": [tier for tier in tiers if tier["winners"]],
                "total": len(mine),
            }
        )
    return groups


def _build(view: CampaignView) -> dict[str, Any]:
    campaign = campaign_services.get_public_campaign(view.slug)
    version = award_services.published(campaign)
    hidden = voting_services.counts_hidden(view)
    context: dict[str, Any] = {"campaign": view, "counts_hidden": hidden, "version": None}
    if version is None:
        return context
    entries = award_services.winners_of(campaign, version)
    counts, unavailable = _counts(view, entries, hidden)
    winners = []
    for entry in entries:
        winner = _winner.dump(entry)
        winner["person"] = _person(view, entry.number, counts)
        winners.append(winner)
    ends = version.publicity_ends_at
    weights = award_services.weights_of(version)
    answers = []
    names = {w["number"]: w["name"] for w in winners} | {
        card["number"]: card["name"] for card in view.nominees
    }
    for objection in award_services.public_objections(campaign):
        answer = _answer.dump(objection)
        answer["status_label"] = objection_status_label(answer["status"])
        answer["nominee_name"] = names.get(answer.get("nominee") or "", "")
        answer["answered_local"] = local_time(objection.answered_at, view)
        answers.append(answer)
    context.update(
        version=version.version,
        published_local=local_time(version.published_at, view),
        ends_local=local_time(ends, view),
        open=campaign.phase == "publicity" and ends is not None and utcnow() < ends,
        groups=_groups(campaign, winners),
        winners=winners,
        weights=[(label, weights[key]) for key, label in WEIGHT_LABELS],
        ledger_head=version.ledger_head,
        ledger_votes=version.ledger_votes,
        answers=answers,
        unavailable=unavailable,
    )
    return context


def _fingerprint(context: dict[str, Any]) -> int:
    """What changes the body on one view version: the published version, the window's state, the
    counts shown and the answers published."""
    return hash(
        (
            context["version"],
            context.get("open"),
            context.get("ends_local"),
            context.get("unavailable"),
            tuple(
                (w["number"], w.get("tier_name"), w["person"].get("votes"))
                for w in context.get("winners", ())
            ),
            tuple((a["id"], a["status"], a.get("answer")) for a in context.get("answers", ())),
        )
    )


@bp.route("/c/<slug>/publicity")
def page(slug: str) -> Any:
    """The 公示 page: a public, cacheable body (``public, max-age=5`` with an ETag)."""
    view = public_view.campaign_view(slug)
    key = ("h5-publicity", request.full_path, voting_services.counts_hidden(view))
    return public_page(view, key, PAGE, lambda: _build(view), _fingerprint)


# --- the objection form (not cached: it carries the CSRF token) ---------------------------------


def _window(view: CampaignView) -> dict[str, Any]:
    """The published version's window and winners, for the form; 404 before publication."""
    campaign = campaign_services.get_public_campaign(view.slug)
    version = award_services.published(campaign)
    if version is None:
        raise NotFound("公示尚未开始", code="results_not_published")
    return award_services.publicity_window(campaign, version)


def _form_page(view: CampaignView, *, status: int = 200, **context: Any) -> Response:
    window = _window(view)
    response: Response = render_page(
        FORM,
        status=status,
        campaign=view,
        window=window,
        ends_local=local_time(window["ends_at"], view),
        max_bytes=current_app.config["OBJECTION_ATTACHMENT_MAX_BYTES"],
        types=",".join(ATTACHMENT_TYPES),
        **context,
    )
    return response


def _wants_json() -> bool:
    return request.is_json or request.accept_mimetypes.best == "application/json"


def _posted() -> dict[str, Any]:
    """The posted fields as ``ObjectionCreateSchema`` reads them: from JSON (the script; the
    attachment already a data URL) or from a multipart form (the file made into a data URL; its
    kind is checked by content in the service, never by the name or type the browser gives)."""
    if request.is_json:
        body = request.get_json(silent=True)
        data = body if isinstance(body, dict) else {}
        fields = {k: data.get(k) for k in ("nominee", "contact_name", "contact_phone", "text")}
        fields["attachment"] = data.get("attachment") or None
    else:
        fields = {
            k: request.form.get(k) for k in ("nominee", "contact_name", "contact_phone", "text")
        }
        fields["attachment"] = _upload_as_data_url()
    clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in fields.items()}
    clean["nominee"] = clean.get("nominee") or None
    return {k: v for k, v in clean.items() if v is not None or k in ("nominee", "attachment")}


def _upload_as_data_url() -> str | None:
    """The form's file as a data: URL (read up to one byte past the limit, so the service can
    refuse a larger one as 413); None without a file."""
    upload = request.files.get("attachment")
    if upload is None:
        return None
    raw = upload.read(current_app.config["OBJECTION_ATTACHMENT_MAX_BYTES"] + 1)
    if not raw:
        return None
    kind = upload.mimetype or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode(raw).decode()}"


@bp.route("/c/<slug>/publicity/objection")
def objection_form(slug: str) -> Any:
    """The form while the window is open; after it, the page says objections are closed."""
    view = public_view.campaign_view(slug)
    return _form_page(view, chosen=(request.args.get("nominee") or "")[:16].upper())


@bp.route("/c/<slug>/publicity/objection", methods=["POST"])
@rate_limit("CHALLENGE_IP_LIMIT")
def file_objection(slug: str) -> Any:
    """File an objection (form: the receipt page, 201; JSON: 201 ``{id, status}``). CSRF
    required. Refusals: the form again with the message (JSON: the API's error envelope)."""
    require_csrf()
    view = public_view.campaign_view(slug)
    fields = _posted()
    try:
        try:
            body = ObjectionCreateSchema().load(fields)
        except ValidationError as exc:
            raise ValidationFailed(
                "请检查填写的内容", details={"fields": exc.messages_dict}
            ) from exc
        campaign = campaign_services.get_public_campaign(view.slug)
        objection = award_services.file_objection(campaign, body, client_address())
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        if _wants_json():
            raise
        kept = {k: fields.get(k) or "" for k in ("nominee", "contact_name", "text")}
        return _form_page(
            view,
            status=exc.status,
            error=exc,
            errors=(exc.details or {}).get("fields", {}),
            chosen=kept["nominee"],
            kept=kept,
        )
    if _wants_json():
        return jsonify({"id": objection.id, "status": objection.status}), 201
    return _form_page(view, status=201, filed=objection.id)
