"""The share poster (拉票海报): a 750×1334 PNG per nominee for a phone's gallery and WeChat chats.

``GET /c/<slug>/n/<number>/poster.png`` draws the campaign title, the nominee's photo (the
gallery's cover, as every card shows it; or a placeholder with the first character of the
name), name, number, category, unit, one plain line asking for a vote, and a QR code of the
nominee's H5 page. Only what the public view shows goes on it, and only while the nominee page
itself is public (any phase but draft, approved nominees); an unknown campaign or nominee is
the usual Chinese 404 page.

No reward wording: WeChat forbids inducing shares or votes with prizes, so the fixed lines say
only 「请为我投上宝贵的一票」 and how to open the page (``FORBIDDEN_WORDS`` lists what a test
keeps off the poster).

Cache. A poster is drawn once per content fingerprint — a SHA-256 over the campaign, the
nominee's card as the public view has it (name, unit, category, title, the cover photo's URL,
which names the photo asset, so a new cover is a new URL), the page URL in the QR code and the
layout's version — and kept as a file in the instance folder, ``posters/<campaign id>/
<number>-<fingerprint>.png``. The public view is rebuilt after an edit commits (a new cover
too), so an edit gives a new fingerprint and a new poster; the file of the previous version is
removed when the new one is written, so the folder holds at most one file per nominee and URL
base. Files rather than Redis: a poster is 100–300 KB, the control
Redis (embedded: append-only file synced on every write) is no place for blobs; the files are
shared by the host's workers, survive restarts, and cost nothing to read. Several hosts each draw
a poster once; the drawing is deterministic, and the ETag is the fingerprint, so every host
answers the same ETag. The answer is ``Cache-Control: public, max-age=300`` with that ETag; an
``If-None-Match`` that matches is a 304 without reading or drawing anything.

The QR code's URL is absolute (``url_for(..., _external=True)``): the request's host and scheme
(ProxyFix trusts ``X-Forwarded-Proto`` from ``ZUIMEI_TRUSTED_PROXIES`` hops), or Flask's
``SERVER_NAME`` and ``PREFERRED_URL_SCHEME`` when set (``ZUIMEI_SERVER_NAME``,
``ZUIMEI_PREFERRED_URL_SCHEME``). The app has no separate public-base-URL setting.

Chinese text is drawn with WenQuanYi Micro Hei (Debian's ``fonts-wqy-microhei``, installed by
``scripts/system-packages``); without it the poster falls back to Pillow's default font (no
Chinese glyphs) and logs a warning once."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import segno
from flask import Blueprint, Response, current_app, request, url_for
from PIL import Image, ImageDraw, ImageFont, ImageOps
from werkzeug.exceptions import HTTPException

from core.errors import AppError
from core.http import client_address
from core.ratelimit import limit
from media import services as media_services
from media.storage import storage
from nominations import public_view
from nominations.public_view import CampaignView
from pages.common import error_page

bp = Blueprint("poster", __name__)
bp.register_error_handler(AppError, error_page)

log = logging.getLogger("zuimei.poster")

WIDTH, HEIGHT = 750, 1334
# Bump when the drawing changes: every poster's fingerprint (and ETag) changes with it.
LAYOUT_VERSION = 1
MAX_AGE = 300
# Posters one address may have drawn: POSTER_DRAW_IP_LIMIT (a made-up Host header is a new QR
# URL and so a new drawing, ~0.3 s of a worker each; kept posters and 304s are not counted).
FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

CALL_TO_VOTE = "请为我投上宝贵的一票"
SCAN_HINT = "长按识别二维码"
SCAN_SUB = "查看事迹 · 为TA投票"
# Reward and "share for a prize" wording WeChat's rules forbid (诱导分享/诱导投票); none of the
# poster's own lines may contain any of these (tests/pages/test_poster.py).
FORBIDDEN_WORDS = (
    "奖品",
    "红包",
    "抽奖",
    "领取",
    "奖励",
    "中奖",
    "礼品",
    "好礼",
    "有礼",
    "返现",
    "现金",
    "福利",
    "集赞",
    "免费领",
)

_RED = (200, 16, 46)
_RED_LIGHT = (226, 74, 58)
_INK = (34, 34, 34)
_MUTED = (110, 110, 110)
_PALE = (255, 232, 224)
_CARD_MARGIN = 40
_QR_SIZE = 220
# Closing marks never start a line; opening marks never end one (Chinese line-breaking rules).
_NO_LINE_START = set("，。、；：？！）》」』】〕”’…—·,.;:?!)]}%")
_NO_LINE_END = set("（《「『【〔“‘([{")
_LATIN_RUN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-+/&']*")
_SAFE_NAME = re.compile(r"[A-Za-z0-9-]{1,32}")


# --- fonts --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _font_file() -> str | None:
    if os.path.isfile(FONT_PATH):
        return FONT_PATH
    log.warning(
        "poster font %s is missing: posters use Pillow's default font, without Chinese glyphs "
        "(install fonts-wqy-microhei: scripts/system-packages)",
        FONT_PATH,
    )
    return None


@functools.lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The poster's font at ``size`` pixels: WenQuanYi Micro Hei, or Pillow's default."""
    path = _font_file()
    if path is not None:
        return ImageFont.truetype(path, size, index=0)
    return ImageFont.load_default(size)


def reset_fonts() -> None:
    """Forget the loaded fonts (after ``FONT_PATH`` changed; tests)."""
    _font_file.cache_clear()
    font.cache_clear()


# --- text layout --------------------------------------------------------------------------------


def _tokens(text: str) -> list[str]:
    """Units a line may break between: each Chinese character alone, a Latin word or number
    whole, punctuation glued to its neighbour (closing to the one before, opening to the one
    after)."""
    raw: list[str] = []
    position = 0
    while position < len(text):
        match = _LATIN_RUN.match(text, position)
        if match:
            raw.append(match.group())
            position = match.end()
        else:
            raw.append(text[position])
            position += 1
    tokens: list[str] = []
    carry = ""
    for token in raw:
        if token in _NO_LINE_END:
            carry += token
            continue
        token = carry + token
        carry = ""
        if tokens and (token[0] in _NO_LINE_START or (token.isspace() and tokens)):
            tokens[-1] += token
        else:
            tokens.append(token)
    if carry:
        if tokens:
            tokens[-1] += carry
        else:
            tokens.append(carry)
    return tokens


def _width(text: str, face: Any) -> float:
    return float(face.getlength(text))


def wrap(text: str, face: Any, max_width: float) -> list[str]:
    """``text`` in lines no wider than ``max_width`` (a single unit wider than that is cut by
    characters), broken only between units (``_tokens``); no line starts with a closing mark
    or with a space."""
    lines: list[str] = []
    line = ""
    for token in _tokens(" ".join(text.split())):
        candidate = line + token
        if not line or _width(candidate, face) <= max_width:
            line = candidate
        else:
            lines.append(line.rstrip())
            line = token.lstrip()
        while _width(line, face) > max_width and len(line) > 1:
            cut = len(line) - 1
            while cut > 1 and _width(line[:cut], face) > max_width:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    return lines


def balanced(text: str, face: Any, max_width: float) -> list[str]:
    """``wrap`` in as few lines as fit ``max_width``, but with lines of similar length (the
    narrowest width that needs no more lines), so a title does not leave one word alone."""
    lines = wrap(text, face, max_width)
    if len(lines) < 2:
        return lines
    low, high = max_width / len(lines), max_width
    while high - low > 4:
        middle = (low + high) / 2
        if len(wrap(text, face, middle)) <= len(lines):
            high = middle
        else:
            low = middle
    return wrap(text, face, high)


def _fit(
    text: str, sizes: tuple[int, ...], max_width: float, max_lines: int
) -> tuple[Any, list[str]]:
    """The largest of ``sizes`` at which ``text`` fits in ``max_lines`` (balanced lines); at
    the smallest, the last line ends with an ellipsis."""
    for size in sizes:
        face = font(size)
        lines = wrap(text, face, max_width)
        if len(lines) <= max_lines:
            return face, balanced(text, face, max_width)
    lines = lines[:max_lines]
    last = lines[-1]
    while last and _width(last + "…", face) > max_width:
        last = last[:-1]
    lines[-1] = last + "…"
    return face, lines


# --- drawing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PosterContent:
    """What a poster shows; everything it draws comes from here."""

    campaign_title: str
    organizer: str
    name: str
    number: str
    category_name: str
    unit: str
    page_url: str
    photo: Path | None = None
    # The card names a photo: without a readable file the poster is drawn but not kept.
    photo_expected: bool = False


@dataclass
class Drawn:
    """A drawn poster: the PNG, every line of text on it, and whether the photo it should
    show was there (an incomplete poster is served but not kept)."""

    png: bytes
    texts: list[str] = field(default_factory=list)
    complete: bool = True


class _Canvas:
    def __init__(self) -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT), _RED)
        self.draw = ImageDraw.Draw(self.image)
        self.texts: list[str] = []

    def text(
        self, y: float, line: str, face: Any, fill: tuple[int, int, int], *, x: float | None = None
    ) -> None:
        """Draw ``line`` with its top at ``y``: centred, or from ``x``."""
        self.texts.append(line)
        left = (WIDTH - _width(line, face)) / 2 if x is None else x
        self.draw.text((left, y), line, font=face, fill=fill)

    def bold(self, y: float, line: str, face: Any, fill: tuple[int, int, int]) -> None:
        """Micro Hei has no bold face: a one-pixel stroke of the same colour stands in."""
        self.texts.append(line)
        left = (WIDTH - _width(line, face)) / 2
        self.draw.text((left, y), line, font=face, fill=fill, stroke_width=1, stroke_fill=fill)


def _background(canvas: _Canvas) -> None:
    top, bottom = _RED, _RED_LIGHT
    for y in range(HEIGHT):
        t = y / (HEIGHT - 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        canvas.draw.line([(0, y), (WIDTH, y)], fill=colour)


def _rounded(image: Image.Image, radius: int) -> Image.Image:
    mask = Image.new("L", image.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle([0, 0, image.width - 1, image.height - 1], radius, 255)
    image.putalpha(mask)
    return image


def _load_photo(path: Path, size: tuple[int, int]) -> Image.Image | None:
    """The photo cover-cropped to ``size`` (faces sit high in a portrait: crop from 40%)."""
    try:
        with Image.open(path) as opened:
            opened.draft("RGB", (size[0], size[1]))  # a JPEG decodes at 1/2…1/8 when it can
            picture = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        log.warning("poster photo %s could not be read", path)
        return None
    return ImageOps.fit(picture, size, Image.Resampling.LANCZOS, centering=(0.5, 0.4))


def _placeholder(content: PosterContent, size: tuple[int, int], canvas: _Canvas) -> Image.Image:
    """A soft red panel with the name's first character, as the page's placeholder."""
    panel = Image.new("RGB", size, (229, 138, 138))
    draw = ImageDraw.Draw(panel)
    for y in range(size[1]):
        t = y / max(size[1] - 1, 1)
        colour = tuple(round(a + (b - a) * t) for a, b in zip((236, 150, 150), _RED, strict=True))
        draw.line([(0, y), (size[0], y)], fill=colour)
    initial = content.name.strip()[:1] or "?"
    face = font(min(size) // 2)
    canvas.texts.append(initial)
    left, top, right, bottom = draw.textbbox((0, 0), initial, font=face)
    draw.text(
        ((size[0] - (right - left)) / 2 - left, (size[1] - (bottom - top)) / 2 - top),
        initial,
        font=face,
        fill=(255, 255, 255),
    )
    return panel


def _qr(url: str, size: int) -> Image.Image:
    """The QR code of ``url`` (error correction M or better), black on white, with a two-module
    quiet zone inside ``size`` (the white card around it adds the rest)."""
    code = segno.make(url, error="m", micro=False)
    matrix = [list(row) for row in code.matrix]
    modules = len(matrix)
    border = 2
    scale = max(size // (modules + 2 * border), 1)
    side = (modules + 2 * border) * scale
    image = Image.new("RGB", (side, side), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                x, y = (c + border) * scale, (r + border) * scale
                draw.rectangle([x, y, x + scale - 1, y + scale - 1], fill=(0, 0, 0))
    return image


def draw_poster(content: PosterContent) -> Drawn:
    """The poster as a PNG (750×1334), with the text it carries."""
    canvas = _Canvas()
    _background(canvas)
    inner = WIDTH - 2 * (_CARD_MARGIN + 20)

    y = 54.0
    face, lines = _fit(content.campaign_title, (48, 44, 40, 36), inner, 3)
    step = face.size * 1.32 if hasattr(face, "size") else 50
    for line in lines:
        canvas.bold(y, line, face, (255, 255, 255))
        y += step
    if content.organizer:
        small, organizer = _fit(content.organizer, (26, 22), inner, 1)
        y += 6
        canvas.text(y, organizer[0], small, _PALE)
        y += 38

    card_top = int(y + 24)
    card_bottom = HEIGHT - _CARD_MARGIN
    canvas.draw.rounded_rectangle(
        [_CARD_MARGIN, card_top, WIDTH - _CARD_MARGIN, card_bottom], 28, fill=(255, 255, 255)
    )

    # Bottom up: the QR block, the divider, then the text block; the photo takes what is left.
    qr_top = card_bottom - 36 - _QR_SIZE
    divider = qr_top - 34
    name_face = font(54)
    number_face = font(30)
    unit_face, unit_lines = _fit(content.unit, (28, 24), inner, 2)
    call_face = font(32)
    text_block = 74 + 48 + 40 * len(unit_lines) + 62
    photo_top = card_top + 40
    photo_height = min(440, divider - 24 - text_block - 24 - photo_top)
    photo_width = photo_height * 3 // 4
    size = (photo_width, photo_height)
    complete = True
    picture = _load_photo(content.photo, size) if content.photo is not None else None
    if content.photo_expected and picture is None:
        complete = False
    if picture is None:
        picture = _placeholder(content, size, canvas)
    framed = _rounded(picture.convert("RGB"), 18)
    canvas.image.paste(framed, ((WIDTH - photo_width) // 2, photo_top), framed)

    y = photo_top + photo_height + 24
    name_lines = wrap(content.name, name_face, inner)[:1] or [""]
    canvas.bold(y, name_lines[0], name_face, _INK)
    y += 74
    number_line = f"编号 {content.number}"
    if content.category_name:
        number_line += f" · {content.category_name}"
    canvas.text(y, number_line, number_face, _RED)
    y += 48
    for line in unit_lines:
        canvas.text(y, line, unit_face, _MUTED)
        y += 40
    y += 12
    canvas.bold(y, CALL_TO_VOTE, call_face, _RED)

    for x in range(_CARD_MARGIN + 30, WIDTH - _CARD_MARGIN - 30, 16):
        canvas.draw.line([(x, divider), (x + 8, divider)], fill=(230, 210, 205), width=2)

    code = _qr(content.page_url, _QR_SIZE)
    qr_left = _CARD_MARGIN + 44
    canvas.image.paste(code, (qr_left, qr_top + (_QR_SIZE - code.height) // 2))
    hint_x = qr_left + _QR_SIZE + 36
    canvas.text(qr_top + 62, SCAN_HINT, font(36), _INK, x=hint_x)
    canvas.text(qr_top + 118, SCAN_SUB, font(28), _RED, x=hint_x)

    out = io.BytesIO()
    canvas.image.save(out, format="PNG", optimize=False, compress_level=6)
    return Drawn(out.getvalue(), canvas.texts, complete)


# --- the route ----------------------------------------------------------------------------------


def _page_url(view: CampaignView, number: str) -> str:
    return url_for("h5.nominee", slug=view.slug, number=number, _external=True)


def _photo_path(card: dict[str, Any]) -> Path | None:
    """The local file of the card's public photo, found through the media service (the URL
    names the asset); None when the card has none or it cannot be found."""
    url = card.get("photo_url")
    if not url:
        return None
    path = urlsplit(url).path
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root) :]
    try:
        endpoint, args = current_app.url_map.bind("localhost").match(path, method="GET")
        if endpoint != "media_files.media_file":
            raise ValueError(endpoint)
        asset = media_services.fetchable_asset(args["asset_id"], args["name"], None)
    except (HTTPException, ValueError, AppError):
        log.warning("poster photo %s of %s not found", url, card.get("number"))
        return None
    return storage().local_path(asset.storage_key, args["name"])


def fingerprint(view: CampaignView, card: dict[str, Any], page_url: str) -> str:
    """What the poster shows, hashed: any change draws a new poster under a new ETag."""
    shown = [
        LAYOUT_VERSION,
        view.slug,
        view.title,
        view.organizer,
        card.get("number"),
        card.get("name"),
        card.get("unit"),
        card.get("category_name"),
        card.get("photo_url"),
        page_url,
    ]
    encoded = json.dumps(shown, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:32]


def _cache_file(view: CampaignView, number: str, digest: str) -> Path:
    safe = number if _SAFE_NAME.fullmatch(number) else hashlib.sha256(number.encode()).hexdigest()
    return Path(current_app.instance_path) / "posters" / str(view.id) / f"{safe}-{digest}.png"


def _keep(path: Path, png: bytes) -> None:
    """Write atomically, then remove the nominee's older posters."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        temporary.write_bytes(png)
        os.replace(temporary, path)
        prefix = path.name.rsplit("-", 1)[0] + "-"
        for old in path.parent.glob(f"{prefix}*.png"):
            if old.name != path.name:
                old.unlink(missing_ok=True)
    except OSError:
        log.warning("poster not kept: cannot write %s", path, exc_info=True)


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _answer(png: bytes | None, digest: str, *, cacheable: bool = True) -> Response:
    response = Response(png, mimetype="image/png", status=200 if png is not None else 304)
    if cacheable:
        response.set_etag(digest)
        response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    else:
        response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.route("/c/<slug>/n/<number>/poster.png")
def poster(slug: str, number: str) -> Response:
    """The nominee's share poster (PNG); 404 like the nominee page; 304 on a matching ETag."""
    view = public_view.campaign_view(slug)
    card = view.nominee(number[:16])
    page_url = _page_url(view, card["number"])
    digest = fingerprint(view, card, page_url)
    if request.if_none_match.contains_weak(digest):
        return _answer(None, digest)
    path = _cache_file(view, card["number"], digest)
    png = _read(path)
    if png is None:
        limit("POSTER_DRAW_IP_LIMIT", "poster-draw", client_address())
        content = PosterContent(
            campaign_title=view.title,
            organizer=view.organizer,
            name=card.get("name") or "",
            number=card["number"],
            category_name=card.get("category_name") or "",
            unit=card.get("unit") or "",
            page_url=page_url,
            photo=_photo_path(card),
            photo_expected=bool(card.get("photo_url")),
        )
        drawn = draw_poster(content)
        png = drawn.png
        if not drawn.complete:
            return _answer(png, digest, cacheable=False)
        _keep(path, png)
    return _answer(png, digest).make_conditional(request)
