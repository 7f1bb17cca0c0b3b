"""The public view of a campaign: what every public read shows of it, built with a constant
number of column-only queries and kept in each process until it changes.

A view holds the campaign's public settings (title, windows, rules, categories) and the cards of
its approved nominees (number, name, unit, category, the cover photo and the photo gallery in
order, summary — never the deeds, which are read one nominee at a time and kept beside the view;
media comes from ``ports.public_media`` in the one media statement). Counts and ranks are not
in it: they come from the vote Redis at each read.

Freshness: each campaign has a version token in the control Redis. Every read asks for it (one
GET) and uses the view it has only if it was built for that token; a change that commits
(a nomination approved or withdrawn, the campaign edited, a phase moved, a category added: every
``core.signals.campaign_changed``) replaces the token after the commit, so the next read in every
process rebuilds. A photo added, removed or made the cover, or a video made current, replaces
the token too (``changed``, from media); a video whose processing finishes is also covered by
``VIEW_MAX_AGE``: a view is rebuilt after that many seconds at the latest, and kept (with its
deeds and the bodies rendered from it) when the rebuilt one shows the same (``digest``). Without
the control Redis, every read builds afresh.

A process asks for the token at most once per ``PUBLIC_VIEW_TOKEN_SECONDS`` (1 s; 0 under test,
where every read asks): another process's change is seen within that second, the process's own
change at once (``invalidate`` records the token it set).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask, current_app
from sqlalchemy import event, select
from sqlalchemy.orm import Session, scoped_session

from campaigns.models import Campaign, Category, Unit
from core.errors import NotFound
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.signals import campaign_changed
from nominations import form_fields, ports
from nominations.models import Nomination

log = logging.getLogger("zuimei.public_view")

# A view serves this long at most, token unchanged (photos and videos change no token).
VIEW_MAX_AGE = 60.0
# Deeds kept per view (a campaign's nominee pages; the oldest half goes when full).
DETAILS_KEPT = 2000
_PENDING = "zuimei_public_view"

_CARD_COLUMNS = (
    Nomination.id,
    Nomination.number,
    Nomination.number_seq,
    Nomination.name,
    Nomination.category_id,
    Nomination.title,
    Nomination.position,
    Nomination.department,
    Nomination.summary,
    Nomination.gender,
    Nomination.years_of_service,
    Unit.name,
)


@dataclass(frozen=True)
class CategoryView:
    id: int
    code: str
    name: str
    prefix: str
    award_count: int
    position: int


@dataclass
class CampaignView:
    """A campaign as the public sees it; duck-compatible with ``Campaign`` for what the public
    reads use (slug, title, windows, rules, weights, categories, is_voting_open)."""

    id: int
    slug: str
    title: str
    organizer: str
    description: str
    timezone: str
    phase: str
    nomination_start: datetime
    nomination_end: datetime
    voting_start: datetime
    voting_end: datetime
    rules: dict[str, Any]
    weights: dict[str, Any]
    categories: tuple[CategoryView, ...]
    # Approved nominees' cards in the public order (category position, then number).
    nominees: tuple[dict[str, Any], ...]
    token: str
    built_at: float
    # What the view shows, as one number (campaign, categories, cards, media): a view rebuilt
    # after VIEW_MAX_AGE with the same digest is the same view, and keeps its rendered bodies.
    digest: int = 0
    # The banner image's storage key (Campaign.banner_key); its URL names it, so it is cached.
    banner_key: str | None = None
    by_number: dict[str, dict[str, Any]] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    # What the reads derive from the view alone (e.g. cards through the output schemas), kept
    # as long as the view: ``derived``.
    kept: dict[Any, Any] = field(default_factory=dict)

    def is_voting_open(self, now: datetime) -> bool:
        return self.phase == "voting" and self.voting_start <= now < self.voting_end

    @property
    def banner_url(self) -> str | None:
        """Where the H5 page loads the banner from (pages.h5 serves it, immutable)."""
        return f"/c/{self.slug}/banner/{self.banner_key}.jpg" if self.banner_key else None

    def category(self, code: str) -> CategoryView:
        for category in self.categories:
            if category.code == code:
                return category
        raise NotFound("奖项不存在", code="category_not_found", details={"category": code})

    def nominee(self, number: str) -> dict[str, Any]:
        card = self.by_number.get(number.strip().upper())
        if card is None:
            raise NotFound("候选人不存在", code="nominee_not_found")
        return card


_views: dict[tuple[str, str], CampaignView] = {}
# The version token last read per (key prefix, slug), and when: (token, monotonic time).
_tokens: dict[tuple[str, str], tuple[str, float]] = {}
_lock = threading.Lock()


def _version_key(slug: str) -> str:
    return redis_store.key("public-view", slug)


def token_seconds() -> float:
    """How long a process trusts the version token it read (``PUBLIC_VIEW_TOKEN_SECONDS``):
    1 s by default, 0 under test (TESTING), where every read asks."""
    app = current_app
    return float(app.config.get("PUBLIC_VIEW_TOKEN_SECONDS", 0.0 if app.testing else 1.0))


def _current_token(slug: str) -> str | None:
    """The campaign's version token (made on first use: a token missing after a flush must
    never match a view built before it), read at most once per ``token_seconds``; None when
    the control Redis cannot say."""
    memo_key = (redis_store.key(), slug)
    seconds = token_seconds()
    if seconds > 0:
        known = _tokens.get(memo_key)
        if known is not None and time.monotonic() - known[1] < seconds:
            return known[0]
    key = _version_key(slug)
    try:
        client = redis_store.client
        token = client.get(key)
        if token is None:
            client.set(key, secrets.token_hex(8), nx=True)
            token = client.get(key)
    except VOTE_REDIS_ERRORS:
        log.warning("public view of %s built without a version: control Redis unavailable", slug)
        _tokens.pop(memo_key, None)
        return None
    value = token.decode() if isinstance(token, bytes) else token
    if value is not None:
        _tokens[memo_key] = (value, time.monotonic())
    return value


def campaign_view(slug: str) -> CampaignView:
    """The public view of ``slug`` (any phase but draft): 404 ``campaign_not_found`` otherwise.
    No SQL while the cached view is current; five column-only statements when it is built."""
    token = _current_token(slug)
    cache_key = (redis_store.key(), slug)
    view = _views.get(cache_key)
    if (
        token is not None
        and view is not None
        and view.token == token
        and time.monotonic() - view.built_at < VIEW_MAX_AGE
    ):
        return view
    built = _build(slug, token or "")
    if (
        view is not None
        and token is not None
        and (view.token, view.digest) == (token, built.digest)
    ):
        # Rebuilt after VIEW_MAX_AGE and nothing shown changed: keep the view (its deeds and
        # the bodies rendered from it).
        view.built_at = built.built_at
        return view
    if token is not None:
        with _lock:
            _views[cache_key] = built
    return built


def _build(slug: str, token: str) -> CampaignView:
    row = db.session.execute(
        select(
            Campaign.id,
            Campaign.title,
            Campaign.organizer,
            Campaign.description,
            Campaign.timezone,
            Campaign.phase,
            Campaign.nomination_start,
            Campaign.nomination_end,
            Campaign.voting_start,
            Campaign.voting_end,
            Campaign.rules,
            Campaign.weights,
            Campaign.banner_key,
        ).where(Campaign.slug == slug)
    ).first()
    if row is None or row.phase == "draft":
        raise NotFound("评选活动不存在", code="campaign_not_found")
    categories = tuple(
        CategoryView(*values)
        for values in db.session.execute(
            select(
                Category.id,
                Category.code,
                Category.name,
                Category.prefix,
                Category.award_count,
                Category.position,
            )
            .where(Category.campaign_id == row.id)
            .order_by(Category.position, Category.id)
        )
    )
    by_id = {category.id: category for category in categories}
    order = {category.id: index for index, category in enumerate(categories)}
    rows = db.session.execute(
        select(*_CARD_COLUMNS)
        .join(Unit, Nomination.unit_id == Unit.id)
        .where(Nomination.campaign_id == row.id, Nomination.status == "approved")
    ).all()
    rows = sorted(rows, key=lambda r: (order.get(r[4], len(order)), r[2] or 0))
    media = ports.public_media([r[0] for r in rows])
    nominees = []
    for (
        nid,
        number,
        seq,
        name,
        category_id,
        title,
        position,
        dept,
        summary,
        gender,
        years,
        unit,
    ) in rows:
        category = by_id[category_id]
        card = {
            "nomination_id": nid,
            "number": number,
            "number_seq": seq,
            "name": name,
            "category": category.code,
            "category_name": category.name,
            "unit": unit,
            "title": title,
            "position": position,
            "department": dept,
            "summary": summary,
            "gender": gender,
            "years_of_service": years,
        }
        card.update(media.get(nid, {}))
        nominees.append(card)
    view = CampaignView(
        id=row.id,
        slug=slug,
        title=row.title,
        organizer=row.organizer,
        description=row.description or "",
        timezone=row.timezone or "Asia/Shanghai",
        phase=row.phase,
        nomination_start=row.nomination_start,
        nomination_end=row.nomination_end,
        voting_start=row.voting_start,
        voting_end=row.voting_end,
        rules=dict(row.rules or {}),
        weights=dict(row.weights or {}),
        categories=categories,
        nominees=tuple(nominees),
        token=token,
        built_at=time.monotonic(),
        banner_key=row.banner_key,
    )
    view.digest = hash(repr((tuple(row), categories, nominees)))
    view.by_number.update((card["number"], card) for card in nominees if card["number"])
    return view


def derived(view: CampaignView, key: Any, make: Callable[[], Any]) -> Any:
    """``make()`` once per view under ``key`` (say, a card through an output schema): kept with
    the view, dropped with it when the view changes."""
    try:
        return view.kept[key]
    except KeyError:
        value = make()
        with _lock:
            if len(view.kept) >= DETAILS_KEPT:
                view.kept.clear()
            view.kept[key] = value
        return value


def nominee_text(view: CampaignView, number: str) -> dict[str, Any]:
    """The deeds, the unit's opinion and the public extra fields (nominations.form_fields) of one
    approved nominee of ``view``: one column-only statement the first time (and the campaign's
    field definitions when the nominee has values), none after (until the view is replaced)."""
    card = view.nominee(number)
    text = view.details.get(card["number"])
    if text is None:
        found = db.session.execute(
            select(
                Nomination.deeds, Nomination.unit_opinion, Nomination.campaign_id, Nomination.extra
            ).where(Nomination.id == card["nomination_id"])
        ).first()
        text = {"deeds": found[0] if found else "", "unit_opinion": found[1] if found else ""}
        # The campaign's field definitions are read only for a nominee with values to show.
        text["extra"] = (
            form_fields.shown(found[2], found[3], public_only=True) if found and found[3] else []
        )
        with _lock:
            if len(view.details) >= DETAILS_KEPT:
                for stale in list(view.details)[: DETAILS_KEPT // 2]:
                    view.details.pop(stale, None)
            view.details[card["number"]] = text
    return text


# --- invalidation, after commit ----------------------------------------------------------------


def invalidate(slug: str) -> None:
    """Give ``slug`` a new version token now: every process rebuilds its view on the next read.
    Call after the change committed (``campaign_changed`` does it for you)."""
    token = secrets.token_hex(8)
    try:
        redis_store.client.set(_version_key(slug), token)
    except VOTE_REDIS_ERRORS:
        log.warning("public view of %s not invalidated: control Redis unavailable", slug)
        _tokens.pop((redis_store.key(), slug), None)
        return
    # This process sees its own change at once, whatever token_seconds says.
    _tokens[(redis_store.key(), slug)] = (token, time.monotonic())


def _queue(campaign: Campaign, **_: Any) -> None:
    db.session.info.setdefault(_PENDING, set()).add(campaign.slug)


def changed(campaign: Campaign) -> None:
    """Rebuild the campaign's public view once the current transaction commits (a change the
    ``campaign_changed`` signal does not carry: a nominee's photo added, removed or made the
    cover, a video made current)."""
    _queue(campaign)


def _after_commit(session: Session) -> None:
    for slug in session.info.pop(_PENDING, None) or ():
        invalidate(slug)


def _after_soft_rollback(session: Session, _transaction: Any) -> None:
    session.info.pop(_PENDING, None)


def listen(session: scoped_session[Any]) -> None:
    """Invalidate a campaign's view after each commit of ``session`` that changed it (the
    ``campaign_changed`` signal, sent inside the transaction). Idempotent."""
    campaign_changed.connect(_queue, weak=False)
    for name, hook in (
        ("after_commit", _after_commit),
        ("after_soft_rollback", _after_soft_rollback),
    ):
        if not event.contains(session, name, hook):
            event.listen(session, name, hook)


def init_app(app: Flask) -> None:
    """Wired by ``nominations.init_app`` from the app factory."""
    listen(db.session)


# --- rendered bodies of the public reads --------------------------------------------------------


@dataclass
class Body:
    """A public answer (bytes and headers) kept per process; with a ``fill``, also the rendered
    template it was filled from and the ``shape`` that template was rendered for."""

    fingerprint: int
    at: float
    data: bytes
    headers: list[tuple[str, str]]
    shape: Any = None
    template: bytes | None = None


_bodies: dict[tuple[Any, ...], Body] = {}
BODIES_KEPT = 4000


def render_seconds(name: str, default: float = 1.0) -> float:
    """How long a process reuses a rendered public answer without reading the counts: the
    ``name`` setting (``H5_RENDER_SECONDS``, ``API_RENDER_SECONDS``, ``H5_RANKING_SECONDS``),
    by default ``default`` seconds, and 0 under test (TESTING), where a read right after a vote
    must show it; tests that exercise the window set it."""
    app = current_app
    return float(app.config.get(name, 0.0 if app.testing else default))


def counts_fingerprint(*rows: dict[str, Any], extra: Any = None) -> int:
    """What changes between two answers of one URL on one view: the counts and ranks shown."""
    return hash(
        (extra, tuple((row.get("number"), row.get("votes"), row.get("rank")) for row in rows))
    )


Fill = Callable[[bytes, dict[str, Any]], bytes]


def json_body(payload: Any) -> tuple[bytes, list[tuple[str, str]]]:
    """``payload`` as the app's JSON answer would carry it (bytes and content type): the
    ``render`` of the public API reads."""
    response = current_app.json.response(payload)
    return response.get_data(), [("Content-Type", response.content_type)]


def _filled(
    template: bytes, headers: list[tuple[str, str]], context: dict[str, Any], fill: Fill
) -> tuple[bytes, list[tuple[str, str]]]:
    data = fill(template, context)
    etag = f'"{hashlib.sha1(data, usedforsecurity=False).hexdigest()}"'
    return data, [(k, etag if k == "ETag" else v) for k, v in headers]


def cached_body(
    view: CampaignView,
    key: tuple[Any, ...],
    seconds: float,
    build: Callable[[], dict[str, Any]],
    fingerprint: Callable[[dict[str, Any]], int],
    render: Callable[[dict[str, Any]], tuple[bytes, list[tuple[str, str]]]],
    *,
    shape: Callable[[dict[str, Any]], Any] | None = None,
    fill: Fill | None = None,
) -> Body:
    """The answer under ``key`` on ``view``'s version: reused without calling ``build`` (which
    reads the counts) for ``seconds``, then for as long as ``build`` gives the same
    ``fingerprint``; rendered afresh otherwise. A view without a version is never kept.

    With ``shape`` and ``fill``, ``render`` makes a template whose counts are markers and
    ``fill`` writes a context's counts into it: counts that moved cost a fill (a byte
    substitution, and a new ETag), not a render, as long as the ``shape`` (what the template
    decides from the counts, e.g. the order of a ranking) is unchanged."""
    # The view's digest too: a view rebuilt after VIEW_MAX_AGE showing something new (a
    # photo) renders afresh; one showing the same keeps its bodies.
    full_key = (view.token, view.digest, *key)
    now = time.monotonic()
    body = _bodies.get(full_key) if view.token else None
    if body is not None and now - body.at < seconds:
        return body
    context = build()
    mark = fingerprint(context)
    if body is not None and body.fingerprint == mark:
        body.at = now
        return body
    form = shape(context) if shape is not None else None
    if fill is not None and body is not None and body.template is not None and body.shape == form:
        data, headers = _filled(body.template, body.headers, context, fill)
        body = Body(mark, now, data, headers, form, body.template)
    else:
        data, headers = render(context)
        template = None
        if fill is not None:
            template = data
            data, headers = _filled(template, headers, context, fill)
        body = Body(mark, now, data, headers, form, template)
    if view.token:
        with _lock:
            if len(_bodies) >= BODIES_KEPT:
                _bodies.clear()
            _bodies[full_key] = body
    return body
