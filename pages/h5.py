"""The H5 voting page for phones: campaign home, nominee page, ranking, and the vote.

Every page works as plain links and forms (tabs, search and paging are GET URLs); the script adds
"load more", the vote button, the captcha dialog, the countdown and WeChat share cards. Nominee
data comes from the same cached public view the public API serves (nominations.public_view) and
goes through the same output schemas, so the page cannot show a field the API would not.

A page's body is public: the same for every visitor (no voter state, no CSRF token, nothing from
a cookie or the user agent), so it is sent ``Cache-Control: public, max-age=H5_MAX_AGE`` with an
ETag and may be kept by nginx and the phone. What belongs to one visitor — their identity, the
CSRF token, votes left today and whom they voted for (the vote buttons' 已投 / 明日再来) — comes
from ``GET /c/<slug>/me``, and every page view (the stats bar's 访问量; a nominee page's also for
the fraud detectors) is counted by ``POST /c/<slug>/beacon``; the page script makes both calls.

The campaign's banner image is uploaded from the console's settings page (a form post handled
here, stored by pages.console_campaign as photos are) and served here under its storage key, so
its URL changes with the image and the file is cached for good."""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from markupsafe import Markup, escape
from marshmallow import ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from campaigns import services as campaign_services
from core import device
from core.auth import read_voter_token
from core.errors import AppError, NotFound, RateLimited, ServiceUnavailable, ValidationFailed
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.http import client_address
from core.ratelimit import limit, rate_limit
from core.types import utcnow
from core.web import VOTER_COOKIE, csrf_token, require_csrf, set_credential
from media.serving import send_media
from media.storage import storage
from nominations import ports as nomination_ports
from nominations import public_view
from nominations import services as nomination_services
from nominations.public_view import CampaignView
from nominations.schemas import NomineeDetailSchema, NomineeQueryArgsSchema, NomineeSchema
from pages.common import (
    campaign_zone,
    error_page,
    in_wechat,
    query_args,
    render_page,
    staff_page,
    wechat_enabled,
)
from pages.console_campaign import BANNER_FILE, banner_limit, store_banner
from voting import phone
from voting import services as voting_services
from voting.keys import CampaignKeys
from voting.schemas import DeviceVoterSchema

bp = Blueprint("h5", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)

PER_PAGE = 12
# Seconds a phone or nginx may keep a public page body (counts are at most this stale there).
H5_MAX_AGE = 5
_card = NomineeSchema()
_detail = NomineeDetailSchema()
_listing_schema = NomineeQueryArgsSchema(only=("category", "q", "sort", "page"))


# Where a campaign's title may break besides spaces and after punctuation: after a leading year
# (「2026年度」), and before an opening quote or bracket, so that a quoted name and what follows
# it stay whole (「“最美医务工作者”评选」). With ``word-break: keep-all`` (h5.css) these are the
# only breaks inside CJK text: without them Chromium finds none in 「”“」 and breaks mid-word.
_TITLE_BREAKS = re.compile(r"(?<=^\d{4}年度)|(?<=^\d{4}年)(?!度)|(?<=.)(?=[“「『《（(‘])")


@bp.app_template_filter("title_breaks")
def title_breaks(title: str) -> Markup:
    """``title`` escaped, with ``<wbr>`` at its word boundaries (``_TITLE_BREAKS``)."""
    parts = [part for part in _TITLE_BREAKS.split(str(title or "")) if part]
    return Markup("<wbr>").join(escape(part) for part in parts)


def _no_csrf_token() -> str:
    """Public bodies carry no CSRF token (pages/base.html asks for one): the script gets it
    from /me. Not making one also means no seed cookie is set on a cacheable answer."""
    return ""


def _identity() -> str:
    """How this browser gets (or already has) a voter identity: ``ready`` with a valid voter
    cookie; ``wechat`` inside WeChat when the official account is configured; ``device`` where
    the demo provider is on; ``sms`` where text messages are configured (a phone browser proves
    a phone number, voting/phone.py); otherwise ``none`` (the page says to open it in WeChat)."""
    token = request.cookies.get(VOTER_COOKIE)
    if token:
        try:
            read_voter_token(token)
            return "ready"
        except AppError:
            pass
    if in_wechat() and wechat_enabled():
        return "wechat"
    if current_app.config["DEVICE_IDENTITY"]:
        return "device"
    if phone.enabled():
        return "sms"
    if wechat_enabled():
        return "wechat"
    return "none"


def stage(view: CampaignView) -> str:
    """Where the campaign stands for a voter: before, open, nominating or closed."""
    now = utcnow()
    if view.phase == "voting" and now < view.voting_start:
        return "before"
    if view.is_voting_open(now):
        return "open"
    if view.phase in ("draft", "nominating", "reviewing"):
        return "nominating"
    return "closed"


def _page_context(view: CampaignView) -> dict[str, Any]:
    zone = campaign_zone(view)
    return {
        "campaign": view,
        "categories": list(view.categories),
        "stage": stage(view),
        "voting_start_local": view.voting_start.astimezone(zone),
        "voting_end_local": view.voting_end.astimezone(zone),
        "counts_hidden": voting_services.counts_hidden(view),
        # The script loads WeChat's JS-SDK only inside WeChat; the body is the same everywhere.
        "wechat_sdk_enabled": wechat_enabled(),
    }


def _fingerprint(ctx: dict[str, Any]) -> int:
    rows = _rows(ctx)
    stats = ctx.get("stats")
    extra = (ctx.get("unavailable"), tuple(sorted(stats.items())) if stats else None)
    return public_view.counts_fingerprint(*rows, extra=extra)


def _dumped(ctx: dict[str, Any]) -> dict[str, Any]:
    """The context through the API's output schemas (done only when a body is rendered)."""
    if "listing" in ctx:
        listing = ctx["listing"]
        ctx["listing"] = listing | {"items": [_card.dump(item) for item in listing["items"]]}
    if "person" in ctx:
        person = _detail.dump(ctx["person"])
        ctx["person"] = person
        ctx["renditions"] = sorted(
            (person.get("video") or {}).get("renditions") or [],
            key=lambda r: r.get("height") or 0,
        )
    return ctx


def public_page(
    view: CampaignView,
    key: tuple[Any, ...],
    template: str,
    build: Callable[[], dict[str, Any]],
    fingerprint: Callable[[dict[str, Any]], int],
    prepare: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    *,
    live: bool = False,
    seconds: float | None = None,
) -> Response:
    """A public H5 body (this module's pages, the 公示 page): the same for every visitor, no
    CSRF token, cacheable for H5_MAX_AGE seconds with an ETag (304 on If-None-Match).

    The rendered body is kept per process under (view version, ``key``): reused without
    calling ``build`` for ``seconds`` (default ``H5_RENDER_SECONDS``: 1 s, 0 under test), then
    for as long as ``fingerprint`` of a fresh context is unchanged (public_view.cached_body).
    ``prepare`` turns the context into the template's (only when a body is rendered). With
    ``live``, the template writes its counts through ``live`` (markers) and counts that moved
    are filled into the kept template (``_fill_counts``) instead of rendering it again, while
    the rows shown, their order and whether each shows a count (``_shape``) stay the same."""

    def render(ctx: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
        rendered: Response = render_page(template, csrf_token=_no_csrf_token, **prepare(ctx))
        rendered.headers["Cache-Control"] = f"public, max-age={H5_MAX_AGE}"
        rendered.add_etag()
        return rendered.get_data(), list(rendered.headers.items())

    body = public_view.cached_body(
        view,
        key,
        public_view.render_seconds("H5_RENDER_SECONDS") if seconds is None else seconds,
        build,
        fingerprint,
        render,
        shape=_shape if live else None,
        fill=_fill_counts if live else None,
    )
    return Response(body.data, headers=body.headers).make_conditional(request)


# A count in a kept body: U+E000 kind ":" name U+E001 (Unicode's private use area, which no
# text of ours contains), written by ``live`` and replaced by ``_fill_counts``.
_LIVE = re.compile("\ue000([a-z]+):([^\ue001]{1,40})\ue001".encode())


@bp.app_template_global("live")
def live(kind: str, row: Any) -> Markup:
    """A count in a public page (``votes``, ``place`` — a card's 第N名 badge —, ``rank`` — the
    nominee page's 「· 第 N 名」 — of the row's nominee, or ``stat`` named by ``row``): a marker
    that ``_fill_counts`` replaces with the current figure at every answer."""
    name = row if isinstance(row, str) else str(row["number"])
    return Markup("\ue000{0}:{1}\ue001").format(kind, name)


def _rows(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [*ctx.get("listing", {}).get("items", ()), *ctx.get("items", ())]
    if "person" in ctx:
        rows.append(ctx["person"])
    return rows


def _shape(ctx: dict[str, Any]) -> Any:
    """What a live page's template decides from its counts besides the markers: which rows,
    in what order, and whether each shows a count at all."""
    rows = tuple((row.get("number"), row.get("votes") is None) for row in _rows(ctx))
    return rows, ctx.get("unavailable"), ctx.get("stats") is None


def _fill_counts(template: bytes, ctx: dict[str, Any]) -> bytes:
    """``template`` with every ``live`` marker replaced by ``ctx``'s figure."""
    rows = {row.get("number"): row for row in _rows(ctx)}
    stats = ctx.get("stats") or {}

    def figure(match: re.Match[bytes]) -> bytes:
        kind, name = match.group(1).decode(), match.group(2).decode()
        if kind == "stat":
            return str(int(stats.get(name) or 0)).encode()
        row = rows.get(name) or {}
        votes, rank = row.get("votes"), row.get("rank")
        if kind == "votes":
            return b"" if votes is None else str(int(votes)).encode()
        if not (rank and votes):
            return b""
        if kind == "place":
            return f'<span class="badge place">第{int(rank)}名</span>'.encode()
        return f" · 第 {int(rank)} 名".encode()

    return _LIVE.sub(figure, template)


def _public(
    template: str,
    view: CampaignView,
    build: Callable[[], dict[str, Any]],
    *,
    live: bool = True,
    seconds: float | None = None,
) -> Response:
    """One of this module's pages: ``build`` makes the page's own context (it reads the counts
    from Redis); the body is kept per (URL, stage, counts hidden, WeChat SDK) besides the view
    version, its counts at most ``seconds`` (H5_RENDER_SECONDS, 1 s) older than Redis before
    any cache's H5_MAX_AGE. ``live``: the template writes its counts with ``live``
    (public_page)."""
    page = _page_context(view)

    def prepare(ctx: dict[str, Any]) -> dict[str, Any]:
        ctx = _dumped(dict(ctx))
        return ctx | {"wechat_sdk": ctx["wechat_sdk_enabled"]}

    key = ("h5", request.full_path, page["stage"], page["counts_hidden"])
    key += (page["wechat_sdk_enabled"],)
    return public_page(
        view,
        key,
        template,
        lambda: page | build(),
        _fingerprint,
        prepare,
        live=live,
        seconds=seconds,
    )


def _listing_args() -> dict[str, Any]:
    """The listing's query string as the public API reads it (NomineeQueryArgsSchema), leniently:
    text is clipped to the search box's 40 characters, and a bad sort or page falls back to the
    default. The page size is the page's own."""
    raw = {name: str(request.args.get(name) or "").strip() for name in _listing_schema.fields}
    for name in ("category", "q"):
        raw[name] = raw[name][:40]
    return query_args(_listing_schema, raw) | {"per_page": PER_PAGE}


def _listing(view: CampaignView, args: dict[str, Any]) -> dict[str, Any]:
    listing = nomination_services.nominee_listing(view, **args)  # a Chinese 404 for a bad tab
    listing["has_more"] = args["page"] * args["per_page"] < listing["total"]
    return listing


@bp.route("/")
def landing() -> Any:
    """The campaigns the public can open, newest first; staff find their way in from here."""
    campaigns = [c for c in campaign_services.list_campaigns() if c.phase != "draft"]
    return render_page("pages/h5/landing.html", campaigns=campaigns)


@bp.route("/c/<slug>")
def home(slug: str) -> Any:
    view = public_view.campaign_view(slug)
    args = _listing_args()
    return _public(
        "pages/h5/home.html",
        view,
        lambda: {"listing": _listing(view, args), "args": args, "stats": _stats(view)},
    )


@bp.route("/c/<slug>/cards")
def cards(slug: str) -> Any:
    """The next page of nominee cards as an HTML fragment (one renderer for first and later
    pages); the script appends it for "load more"."""
    view = public_view.campaign_view(slug)
    args = _listing_args()
    return _public(
        "pages/h5/_cards.html", view, lambda: {"listing": _listing(view, args), "args": args}
    )


@bp.route("/c/<slug>/n/<number>")
def nominee(slug: str, number: str) -> Any:
    view = public_view.campaign_view(slug)
    view.nominee(number[:16])  # a Chinese 404 before anything else

    def build() -> dict[str, Any]:
        return {"person": nomination_services.nominee_detail(view, number[:16], count_view=False)}

    return _public("pages/h5/nominee.html", view, build)


@bp.route("/c/<slug>/ranking")
def ranking(slug: str) -> Any:
    view = public_view.campaign_view(slug)
    if not view.categories:
        raise AppError("该活动尚未设置评选类别", code="category_not_found", status=404)
    category = view.category((request.args.get("category") or view.categories[0].code)[:40])

    def build() -> dict[str, Any]:
        items: list[dict[str, Any]] = []
        unavailable = False
        if not voting_services.counts_hidden(view) and view.phase not in (
            "nominating",
            "reviewing",
        ):
            try:
                items = _with_photos_and_gaps(view, voting_services.ranking(view, category))
            except ServiceUnavailable:
                unavailable = True
        # The podium: the first three, once anyone has a vote (a podium of noughts says nothing).
        podium = items[:3] if items and items[0]["votes"] > 0 else []
        return {"category": category, "items": items, "podium": podium, "unavailable": unavailable}

    # The standings decide the order, the podium and the gaps: rendered again when they move,
    # at most every H5_RANKING_SECONDS (5 s; a render of a 100-row page is ~8 ms of a worker,
    # and with votes flowing the standings move every second).
    seconds = public_view.render_seconds("H5_RANKING_SECONDS", 5.0)
    return _public("pages/h5/ranking.html", view, build, live=False, seconds=seconds)


def _with_photos_and_gaps(view: CampaignView, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The standings with each nominee's photo (from the cached view's cards) and ``gap``: the
    votes between a nominee and the nearest place above with more votes (None for the first
    place and those tied with it), for 「距上一名差 X 票」."""
    above: int | None = None  # the votes of the nearest place above with more votes
    previous: int | None = None
    for item in items:
        card = view.by_number.get(item["number"]) or {}
        item["photo"] = card.get("thumb_url") or card.get("photo_url")
        if previous is not None and item["votes"] < previous:
            above = previous
        item["gap"] = None if above is None else above - item["votes"]
        previous = item["votes"]
    return items


def _stats(view: CampaignView) -> dict[str, int] | None:
    """The home page's stats bar: 参与人数 (distinct voters so far, the drain's HyperLogLog:
    voting.ledger.count_voters), 累计票数 (the sum of the live vote counters) and 访问量 (pages
    opened, counted by the beacon): one pipeline to the vote Redis, no SQL. None where no bar
    is shown: while the campaign hides its counts, before the ballot is public, or when the
    vote Redis cannot say."""
    if voting_services.counts_hidden(view) or stage(view) == "nominating":
        return None
    memo = (redis_store.key(), view.slug)
    known = _stats_read.get(memo)
    seconds = voting_services.counts_seconds()
    if known is not None and seconds > 0 and time.monotonic() - known[0] < seconds:
        return known[1]
    keys = CampaignKeys.of(view.slug)
    try:
        pipe = redis_store.votes.pipeline(transaction=False)
        pipe.hvals(keys.counts)
        pipe.get(keys.pageviews)
        pipe.pfcount(keys.voters)
        counts, views, voters = pipe.execute()
    except VOTE_REDIS_ERRORS:
        return None
    stats = {
        "voters": int(voters or 0),
        "votes": sum(int(value) for value in counts),
        "views": int(views or 0),
    }
    # Read at most once per PUBLIC_COUNTS_SECONDS by a process, whatever the URL (as the counts).
    _stats_read[memo] = (time.monotonic(), stats)
    return stats


_stats_read: dict[tuple[str, str], tuple[float, dict[str, int]]] = {}


def _count_page_view(slug: str) -> None:
    """One more 访问量: every page the script runs on calls the beacon once (bodies are cached,
    so the server cannot count them as it renders). Lost, not failed, without the vote Redis."""
    with contextlib.suppress(*VOTE_REDIS_ERRORS):
        redis_store.votes.incr(CampaignKeys.of(slug).pageviews)


# --- the banner image ---------------------------------------------------------------------------


@bp.route("/c/<slug>/banner/<key>.jpg")
def banner(slug: str, key: str) -> Response:
    """The campaign's banner image (JPEG). Its URL names its storage key, which changes with
    every upload, so the file is served immutable (a year's caching); a replaced or unknown key
    is a 404. Read from the cached public view: no SQL."""
    view = public_view.campaign_view(slug)
    if not view.banner_key or key != view.banner_key:
        raise NotFound("图片不存在", code="media_not_found")
    return send_media(
        storage().local_path(key, BANNER_FILE),
        mime="image/jpeg",
        etag=key,
        immutable=True,
        accel_prefix=current_app.config.get("MEDIA_ACCEL_PREFIX"),
        accel_path=f"{key}/{BANNER_FILE}",
    )


def _banner_form(view: Callable[..., Any]) -> Callable[..., Any]:
    """The settings page's banner form: the body is bounded (the photos' limit and room for the
    form) before it is parsed, and its CSRF token checked before the session, so a stale page
    gets "页面已过期" rather than a trip to the login page."""

    @functools.wraps(view)
    def wrapper(slug: str) -> Any:
        room = banner_limit() + 64 * 1024
        if (request.content_length or 0) > room:
            return _back_to_settings(slug, "upload_too_large")
        request.max_content_length = room
        try:
            require_csrf()  # reads the form: the file is spooled to disk past 500 KB
        except RequestEntityTooLarge:
            return _back_to_settings(slug, "upload_too_large")
        return view(slug)

    return wrapper


def _back_to_settings(slug: str, outcome: str) -> Response:
    return redirect(f"/console/c/{slug}/settings?banner={outcome}#banner-panel", 303)


@bp.route("/console/c/<slug>/banner", methods=["POST"])
@_banner_form
@staff_page("admin", login="console")
def upload_banner(slug: str) -> Response:
    """The console's banner upload (admins; a multipart form with ``banner``, the image, or
    ``remove=1``), then back to the settings page, which says what happened. The image is
    checked and re-encoded with no transaction open; the replaced file is deleted after the
    commit."""
    campaign = campaign_services.get_campaign(slug)
    key: str | None = None
    if not request.form.get("remove"):
        upload = request.files.get("banner")
        db.session.commit()  # no transaction (SQLite's write lock) open while the image is worked
        try:
            if upload is None or not upload.filename:
                raise AppError("请选择一张图片", code="empty_upload", status=400)
            key = store_banner(upload.stream)
        except AppError as exc:
            return _back_to_settings(slug, exc.code)
        campaign = campaign_services.get_campaign(slug)
    replaced = campaign_services.set_banner(campaign, key)
    db.session.commit()
    if replaced:
        storage().delete(replaced)
    return _back_to_settings(slug, "saved" if key else "removed")


# --- the visitor's own state, apart from the public body ----------------------------------------


@bp.route("/c/<slug>/me")
def me(slug: str) -> Any:
    """This visitor's state for the page script: how they vote (``identity``), the CSRF token for
    their writes, the server's clock, and votes left today once they have an identity. Read from
    the cookies, the cached view and the vote Redis: no SQL. Never cached."""
    view = public_view.campaign_view(slug)
    stage_now = stage(view)
    identity = _identity()
    state: dict[str, Any] = {
        "identity": identity,
        "csrf_token": csrf_token(),
        "server_now": utcnow().isoformat(),
        "stage": stage_now,
        "in_wechat": in_wechat(),
    }
    if identity == "ready" and stage_now == "open":
        try:
            claims = read_voter_token(request.cookies.get(VOTER_COOKIE, ""))
            quota = voting_services.my_quota(view.slug, claims)
            state["remaining_today"] = quota["remaining_today"]
            # Whom they voted for today (number → votes): the script marks those buttons 已投.
            state["voted_today"] = quota["voted_today"]
            state["votes_per_nominee_per_day"] = quota["votes_per_nominee_per_day"]
        except (AppError, ServiceUnavailable):
            pass  # the page shows no counter; the vote itself says what is left
    response = jsonify(state)
    response.headers["Cache-Control"] = "no-store, private"
    response.headers["Vary"] = "Cookie"
    return response


@bp.route("/c/<slug>/beacon", methods=["POST"])
def beacon(slug: str) -> Any:
    """The page script's call on every page: gives a browser without one the signed HttpOnly
    device cookie (``core.device``; at most ``DEVICE_COOKIE_ADDRESS_LIMIT`` new devices per
    address, past it the browser simply gets none), counts the page view (the stats bar's
    访问量), and a nominee page's view (``{"number": "D001"}``) for the fraud detectors'
    view/vote ratio while voting. 204."""
    view = public_view.campaign_view(slug)
    body = request.get_json(silent=True)
    number = body.get("number") if isinstance(body, dict) else None
    if number is not None and (not isinstance(number, str) or not 1 <= len(number.strip()) <= 16):
        raise ValidationFailed(details={"fields": {"number": ["请提供候选人编号"]}})
    if number is not None:
        card = view.nominee(number)
        if view.phase == "voting":
            nomination_ports.count_view(view.slug, card["number"])
    _count_page_view(view.slug)
    response = Response(status=204)
    response.headers["Cache-Control"] = "no-store"
    if device.read(request.cookies.get(device.DEVICE_COOKIE)) is None and _may_issue_device():
        device.set_cookie(response, device.issue()[1])
    return response


def _may_issue_device() -> bool:
    """Whether this address may be given another new device now (a script minting devices to
    spread its votes over them meets this budget; a hospital's Wi-Fi at lunch does not)."""
    try:
        limit("DEVICE_COOKIE_ADDRESS_LIMIT", "device-cookie", client_address())
    except RateLimited:
        return False
    return True


@bp.route("/c/<slug>/voter", methods=["POST"])
@rate_limit("VOTER_CREATE_IP_LIMIT")
def device_voter(slug: str) -> Any:
    """The demo device identity for a browser outside WeChat, kept in the HttpOnly voter
    cookie (the token never reaches page scripts). Off in production unless configured on."""
    require_csrf()
    public_view.campaign_view(slug)
    try:
        body = DeviceVoterSchema().load(request.get_json(silent=True) or {})
    except ValidationError as exc:
        raise ValidationFailed(details=exc.messages) from exc  # type: ignore[arg-type]
    _, token = voting_services.device_voter(body["device_id"])
    db.session.commit()
    response = jsonify({"identity": "ready"})
    set_credential(response, VOTER_COOKIE, token.token, current_app.config["VOTER_TOKEN_TTL"])
    return response
