"""The stamped recommendation form (盖章推荐表) of each level of a recommendation chain.

The committee decides, per bureau level of a campaign's chain and for the nominating unit's own
submission (``unit``), whether the unit acting there must upload the form it signed and stamped:
the nominating unit before it submits, each bureau before it passes the nomination up
(nominations.levels enforces it: 409 ``stamped_form_required``). A form is a PDF or a JPEG/PNG
scan, checked by its content, never by its name or declared type: a PDF must start with ``%PDF-``,
end with ``%%EOF`` and show its page tree (pages counted, compressed object streams included); an
image must open with Pillow. One form per nomination and level is current; a new upload replaces
it and the old one stays stored, for the trail. Uploads are audited (``level_form.upload``).

Files live in media's storage backend, which media hands over at start-up (``register_media``,
from media.init_app): nominations may not import media. Nothing here decides who may upload or
download: nominations.levels does, from where the nomination stands on its way.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import struct
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from flask import Response, current_app, send_file
from PIL import Image
from sqlalchemy import BigInteger, Boolean, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.exceptions import RequestEntityTooLarge

from campaigns.models import Account, Campaign, Unit
from core import audit
from core.errors import AppError, Conflict
from core.extensions import db
from core.types import UTCDateTime, utcnow
from nominations.labels import level_label
from nominations.models import Nomination

UNIT = "unit"  # the nominating unit's own form, uploaded before it submits
# LEVEL_FORM_MAX_BYTES in the app config overrides this (core.config).
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 80_000_000  # a scan of A3 at 600 dpi is about 70 million
CONTENT_TYPES = {"pdf": "application/pdf", "jpeg": "image/jpeg", "png": "image/png"}
EXTENSIONS = {"pdf": "pdf", "jpeg": "jpg", "png": "png"}
FILE = "form"  # the one file in a form's storage folder
MB = 1024 * 1024


# --- the models -----------------------------------------------------------------------------------


class LevelFormRule(db.Model):
    """The committee requires a stamped form at this level of the campaign's chain (``unit``:
    the nominating unit's own submission). No row: not required."""

    __tablename__ = "level_form_rules"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    unit_level: Mapped[str] = mapped_column(String(20), primary_key=True)


class LevelForm(db.Model):
    """One stamped form uploaded for a nomination at a level, by the unit acting there. The
    current one of a nomination and level has ``is_current``; replaced ones stay, with the time
    they were replaced."""

    __tablename__ = "level_forms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    unit_level: Mapped[str] = mapped_column(String(20))
    # The unit whose form it is: the nominating unit, or the bureau of that level.
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    kind: Mapped[str] = mapped_column(String(10))  # pdf, jpeg or png, from the content
    size: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str | None] = mapped_column(String(200))
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    uploaded_by: Mapped[str] = mapped_column(String(80))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    unit: Mapped[Unit] = relationship()


# --- the storage media hands over -----------------------------------------------------------------


class FormStore(Protocol):
    """The calls of media.storage's backend used here."""

    def append(self, key: str, name: str, chunk_source: BinaryIO, limit: int) -> int: ...

    def local_path(self, key: str, name: str) -> Path: ...

    def delete(self, key: str) -> None: ...


@dataclass
class _Media:
    storage: Callable[[], FormStore] | None = None
    sniff: Callable[[Path], str] | None = None


_media = _Media()


def register_media(*, storage: Callable[[], FormStore], sniff: Callable[[Path], str]) -> None:
    """media.init_app: its storage backend and its content sniffer (media.probing.sniff)."""
    _media.storage = storage
    _media.sniff = sniff


def _store() -> FormStore:
    if _media.storage is None:
        raise RuntimeError("stamped forms need media's storage (media.init_app registers it)")
    return _media.storage()


# --- the committee's rules ------------------------------------------------------------------------


def required_levels(campaign_id: int) -> set[str]:
    """The levels of the campaign that require a stamped form (``unit`` among them)."""
    return set(
        db.session.scalars(
            select(LevelFormRule.unit_level).where(LevelFormRule.campaign_id == campaign_id)
        )
    )


def set_required(campaign: Campaign, wanted: dict[str, bool | None], keep: list[str]) -> None:
    """Apply the committee's choices (``None``: unchanged) and drop the rules of levels that
    are no longer in the chain (``keep``: its bureau levels; an empty chain keeps none)."""
    current = required_levels(campaign.id)
    allowed = set(keep) | ({UNIT} if keep else set())
    for unit_level in current - allowed:
        db.session.delete(db.session.get(LevelFormRule, (campaign.id, unit_level)))
    for unit_level, required in wanted.items():
        if required is None or unit_level not in allowed:
            continue
        if required and unit_level not in current:
            db.session.add(LevelFormRule(campaign_id=campaign.id, unit_level=unit_level))
        elif not required and unit_level in current:
            db.session.delete(db.session.get(LevelFormRule, (campaign.id, unit_level)))
    db.session.flush()


def current_form(nomination_id: int, unit_level: str) -> LevelForm | None:
    return db.session.scalar(
        select(LevelForm).where(
            LevelForm.nomination_id == nomination_id,
            LevelForm.unit_level == unit_level,
            LevelForm.is_current.is_(True),
        )
    )


def require(nomination: Nomination, unit_level: str) -> None:
    """409 stamped_form_required when the level requires a form and none is uploaded."""
    if unit_level not in required_levels(nomination.campaign_id):
        return
    if current_form(nomination.id, unit_level) is not None:
        return
    if unit_level == UNIT:
        message = "本活动要求推荐单位上传加盖公章的推荐表，请上传后再提交"
    else:
        message = f"本活动要求{level_label(unit_level)}上传加盖公章的推荐表，请上传后再推荐上报"
    raise Conflict(message, code="stamped_form_required", details={"unit_level": unit_level})


# --- checking a file by its content ---------------------------------------------------------------


class InvalidForm(AppError):
    status, code, message = 422, "invalid_form_file", "盖章推荐表只能是 PDF 文件或 JPG、PNG 图片"


def max_bytes() -> int:
    return int(current_app.config.get("LEVEL_FORM_MAX_BYTES") or MAX_BYTES)


def check_length(length: int | None) -> None:
    """Refuse a body declared too large before any byte of it is read (413 form_too_large)."""
    limit = max_bytes()
    if length is not None and length > limit:
        raise too_large(limit)


def too_large(limit: int) -> AppError:
    return AppError(
        f"盖章推荐表不能超过 {limit / MB:.0f} MB",
        code="form_too_large",
        status=413,
        details={"max_bytes": limit},
    )


_PDF_HEADER = re.compile(rb"%PDF-[12]\.[0-9]")
_PAGE_TREE = re.compile(rb"/Type\s*/Pages(?![A-Za-z0-9])")
_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z0-9])")
_COUNT = re.compile(rb"/Count\s+([0-9]{1,7})")
_OBJECT_STREAM = re.compile(rb"/Type\s*/ObjStm(?![A-Za-z0-9])")
_LENGTH = re.compile(rb"/Length\s+([0-9]{1,10})(?!\s+[0-9]+\s+R)")
_DICT_WINDOW = 64 * 1024  # how far a page tree's dictionary may reach around /Type /Pages
_INFLATE_BUDGET = 32 * MB  # what the object streams of one PDF may inflate to, in all
_OBJECT_STREAMS_MAX = 2000


def _dict_around(data: bytes, pos: int) -> tuple[int, int] | None:
    """The extent of the PDF dictionary ``<< … >>`` that holds ``pos``, if within the window."""
    depth, i, floor = 0, pos, max(0, pos - _DICT_WINDOW)
    start = None
    while i > floor:
        pair = data[i - 2 : i]
        if pair == b">>":
            depth, i = depth + 1, i - 2
        elif pair == b"<<":
            if depth == 0:
                start = i - 2
                break
            depth, i = depth - 1, i - 2
        else:
            i -= 1
    if start is None:
        return None
    depth, i, ceiling = 0, start + 2, min(len(data), pos + _DICT_WINDOW)
    while i < ceiling:
        pair = data[i : i + 2]
        if pair == b"<<":
            depth, i = depth + 1, i + 2
        elif pair == b">>":
            if depth == 0:
                return start, i + 2
            depth, i = depth - 1, i + 2
        else:
            i += 1
    return None


def _object_streams(data: bytes) -> Iterator[bytes]:
    """The inflated object streams (PDF 1.5+ keeps the page tree compressed in them)."""
    budget = _INFLATE_BUDGET
    for found, match in enumerate(_OBJECT_STREAM.finditer(data)):
        extent = _dict_around(data, match.start())
        if extent is None or found >= _OBJECT_STREAMS_MAX or budget <= 0:
            continue
        head = data[extent[0] : extent[1]]
        begin = data.find(b"stream", extent[1], extent[1] + 32)
        if begin < 0 or b"/FlateDecode" not in head:
            continue
        begin += len(b"stream")
        begin += 2 if data[begin : begin + 2] == b"\r\n" else 1
        length = _LENGTH.search(head)
        end = begin + int(length.group(1)) if length else data.find(b"endstream", begin)
        if end < begin:
            continue
        try:
            inflated = zlib.decompressobj().decompress(data[begin:end], budget)
        except zlib.error:
            continue
        budget -= len(inflated)
        yield inflated


def pdf_pages(data: bytes) -> int:
    """How many pages a PDF has, from its page tree (``/Type /Pages`` with its ``/Count``, the
    root's being the largest), or by counting its pages; ValueError when it is no complete PDF."""
    if not _PDF_HEADER.match(data):
        raise ValueError("no PDF header")
    if b"%%EOF" not in data[-4096:]:
        raise ValueError("no %%EOF at the end: truncated")
    texts = [data, *_object_streams(data)]
    counts = []
    for text in texts:
        for match in _PAGE_TREE.finditer(text):
            extent = _dict_around(text, match.start())
            found = _COUNT.search(text, *extent) if extent else None
            if found:
                counts.append(int(found.group(1)))
    pages = max(counts) if counts else sum(len(_PAGE.findall(text)) for text in texts)
    if pages < 1:
        raise ValueError("no pages")
    return pages


def _check_image(path: Path, kind: str) -> None:
    """The image must open and decode with Pillow: a JPEG at 1/8 scale (cheap, and a truncated
    one fails), a PNG by verifying every chunk's checksum; no more than MAX_PIXELS."""
    try:
        with Image.open(path, formats=[kind.upper()]) as image:
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise InvalidForm("图片像素过多，请以较低分辨率重新扫描后上传")
            if kind == "jpeg":
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))
                image.load()
            else:
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidForm("图片像素过多，请以较低分辨率重新扫描后上传") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise InvalidForm("图片文件已损坏或不完整，请重新扫描后上传") from exc


_DECLARED_BY_NAME = {".pdf": "pdf", ".jpg": "jpeg", ".jpeg": "jpeg", ".png": "png"}
_DECLARED_BY_TYPE = {
    "application/pdf": "pdf",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
}


def check_declared(kind: str, name: str | None, content_type: str | None) -> None:
    """The content decides; a name or a type that claims another kind of form (a PNG renamed
    ``.pdf``) is a fake: 422 invalid_form_file. Names and types that claim nothing we know of
    (``application/octet-stream``, no extension) are ignored."""
    claimed = {
        _DECLARED_BY_NAME.get(Path(name or "").suffix.lower()),
        _DECLARED_BY_TYPE.get((content_type or "").split(";")[0].strip().lower()),
    } - {None}
    if claimed and claimed != {kind}:
        raise InvalidForm(
            "文件内容与文件类型不符，请上传真实的 PDF 文件或 JPG、PNG 图片",
            details={"content": kind},
        )


def inspect(path: Path) -> tuple[str, int]:
    """The file's kind (pdf, jpeg, png) and its pages, from its content (422 invalid_form_file)."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"%PDF-"):
        try:
            return "pdf", pdf_pages(path.read_bytes())
        except ValueError as exc:
            raise InvalidForm("PDF 文件已损坏或不完整，请重新导出后上传") from exc
    sniff = _media.sniff
    kind = sniff(path) if sniff is not None else "unknown"
    if kind not in ("jpeg", "png"):
        raise InvalidForm()
    _check_image(path, kind)
    return kind, 1


# --- an upload ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Staged:
    """An upload stored and checked, not yet recorded."""

    key: str
    kind: str
    size: int
    pages: int
    sha256: str
    original_name: str | None


@contextmanager
def receive(
    body: BinaryIO, original_name: str | None, content_type: str | None
) -> Iterator[Staged]:
    """Stream ``body`` into storage (at most max_bytes: 413 form_too_large) and check it by its
    content (422 invalid_form_file, also when its name or type claims another kind). The stored
    file is deleted again if the block raises (the upload was refused after all). Call with no
    transaction open: no database work here."""
    limit = max_bytes()
    key = f"f-{secrets.token_hex(16)}"
    store = _store()
    try:
        try:
            written = store.append(key, FILE, body, limit + 1)
        except Exception as exc:
            # media.storage.IncompleteChunk: the body stopped early, or came over the limit.
            if not hasattr(exc, "written"):
                raise
            if isinstance(exc.__cause__, RequestEntityTooLarge):
                raise too_large(limit) from exc
            raise AppError(
                "文件没有上传完整，请重试", code="incomplete_upload", status=400
            ) from exc
        if written > limit:
            raise too_large(limit)
        if written == 0:
            raise InvalidForm("上传的文件是空的")
        path = store.local_path(key, FILE)
        kind, pages = inspect(path)
        check_declared(kind, original_name, content_type)
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(MB), b""):
                digest.update(chunk)
        name = (original_name or "").strip()[:200] or None
        yield Staged(key, kind, written, pages, digest.hexdigest(), name)
    except BaseException:
        store.delete(key)
        raise


def record(
    account: Account, nomination: Nomination, unit_level: str, unit: Unit, staged: Staged
) -> LevelForm:
    """Make the staged file the current form of the nomination at ``unit_level``; the one it
    replaces stays for the trail. Call with the nomination's row locked (services.get_for with
    ``lock``): two uploads at once then replace one another in turn."""
    previous = current_form(nomination.id, unit_level)
    now = utcnow()
    if previous is not None:
        previous.is_current = False
        previous.replaced_at = now
        db.session.flush()
    form = LevelForm(
        nomination_id=nomination.id,
        campaign_id=nomination.campaign_id,
        unit_level=unit_level,
        unit_id=unit.id,
        storage_key=staged.key,
        kind=staged.kind,
        size=staged.size,
        pages=staged.pages,
        sha256=staged.sha256,
        original_name=staged.original_name,
        is_current=True,
        uploaded_by_id=account.id,
        uploaded_by=account.display_name or account.username,
        uploaded_at=now,
    )
    db.session.add(form)
    db.session.flush()
    audit.record(
        "level_form.upload",
        "nomination",
        nomination.id,
        campaign_id=nomination.campaign_id,
        before={"unit_level": unit_level, "form": previous.id if previous else None},
        after={
            "unit_level": unit_level,
            "unit": unit.code,
            "form": form.id,
            "kind": form.kind,
            "size": form.size,
            "pages": form.pages,
            "sha256": form.sha256,
        },
    )
    return form


# --- reading them ---------------------------------------------------------------------------------


def forms_of(nomination_id: int) -> dict[str, list[LevelForm]]:
    """Every form uploaded for the nomination, by level, newest first."""
    out: dict[str, list[LevelForm]] = {}
    for form in db.session.scalars(
        select(LevelForm)
        .where(LevelForm.nomination_id == nomination_id)
        .order_by(LevelForm.id.desc())
    ):
        out.setdefault(form.unit_level, []).append(form)
    return out


def get_form(nomination_id: int, unit_level: str, form_id: int | None) -> LevelForm | None:
    """The current form of a level, or one of its earlier ones by id."""
    if form_id is None:
        return current_form(nomination_id, unit_level)
    form = db.session.get(LevelForm, form_id)
    if form is None or form.nomination_id != nomination_id or form.unit_level != unit_level:
        return None
    return form


def describe(form: LevelForm, download_url: str | None) -> dict[str, Any]:
    return {
        "id": form.id,
        "kind": form.kind,
        "content_type": CONTENT_TYPES[form.kind],
        "size": form.size,
        "pages": form.pages,
        "sha256": form.sha256,
        "original_name": form.original_name,
        "unit": form.unit.name,
        "uploaded_by": form.uploaded_by,
        "uploaded_at": form.uploaded_at,
        "replaced_at": form.replaced_at,
        "download_url": download_url,
    }


_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')


def send(form: LevelForm, nomination: Nomination) -> Response:
    """The file as an attachment of its own content type, never sniffed, never cached."""
    path = _store().local_path(form.storage_key, FILE)
    if not path.is_file():
        raise AppError("盖章推荐表文件已不存在", code="level_form_not_found", status=404)
    title = _UNSAFE_NAME.sub("", f"{nomination.name}-{level_label(form.unit_level)}盖章推荐表")
    response = send_file(
        path,
        mimetype=CONTENT_TYPES[form.kind],
        as_attachment=True,
        download_name=f"{title}.{EXTENSIONS[form.kind]}",
        conditional=True,
        etag=form.sha256,
    )
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
