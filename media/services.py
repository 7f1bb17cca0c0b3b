"""Uploads (resumable, tus 1.0 core + creation), photo processing, the steps of the video
processing job, and which files the public and the owners may fetch.

Services flush and never commit: the routes and the jobs in `media.jobs` commit, including the
commits an upload needs before its slow part (the body streaming in, ffmpeg running).
"""

from __future__ import annotations

import base64
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO

from flask import current_app, url_for
from redis.exceptions import LockError
from sqlalchemy import select, update
from werkzeug.exceptions import RequestEntityTooLarge

from campaigns.models import Account
from core import audit
from core.auth import issue_token, read_token
from core.errors import AppError, Conflict, Forbidden, NotFound
from core.extensions import db, redis_store
from core.types import utcnow
from media import gallery, quotas
from media.models import MediaAsset
from media.photos import process_photo
from media.probing import VideoProbe, probe_video
from media.rejections import MediaRejected
from media.storage import IncompleteChunk, storage
from media.transcoding import TranscodeResult, transcode
from nominations import public_view
from nominations import services as nomination_services
from nominations.models import EDITABLE, Nomination

log = logging.getLogger("zuimei.media")

ORIGINAL = "original"
TUS_VERSION = "1.0.0"
PUBLIC_FILES = ("poster.jpg", "photo.jpg", "thumb.jpg")


class UploadTooLarge(AppError):
    status, code, message = 413, "upload_too_large", "文件太大，超过了允许的上限"


# --- who may upload ---------------------------------------------------------------------------


def require_uploader(account: Account, nomination: Nomination) -> None:
    """The nominating unit (or an admin), while the nomination can still be edited."""
    if account.role != "admin" and not (
        account.role == "unit" and nomination.unit_id == account.unit_id
    ):
        raise Forbidden("只有推荐单位可以上传照片和视频", code="not_owner")
    if nomination.status not in EDITABLE or nomination.campaign.phase not in (
        "nominating",
        "reviewing",
    ):
        raise Conflict(
            "只有草稿或被退回的材料可以上传照片和视频",
            code="not_editable",
            details={"status": nomination.status},
        )


def _new_asset(account: Account, nomination: Nomination, kind: str, size: int, name: str | None):  # type: ignore[no-untyped-def]
    asset = MediaAsset(
        nomination_id=nomination.id,
        kind=kind,
        status="receiving",
        storage_key=f"{kind[0]}-{secrets.token_hex(16)}",
        original_name=(name or "")[:200] or None,
        declared_size=size,
        received=0,
        created_by_id=account.id,
        renditions=[],
    )
    db.session.add(asset)
    db.session.flush()
    return asset


# --- video: resumable upload ------------------------------------------------------------------


def parse_upload_metadata(header: str | None) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated "key base64value" pairs."""
    values: dict[str, str] = {}
    for pair in (header or "").split(","):
        parts = pair.strip().split(" ")
        if not parts[0]:
            continue
        try:
            values[parts[0]] = base64.b64decode(parts[1]).decode() if len(parts) > 1 else ""
        except (ValueError, UnicodeDecodeError) as exc:
            raise AppError("Upload-Metadata 格式不正确", code="bad_upload_metadata") from exc
    return values


def start_video_upload(
    account: Account, nomination: Nomination, length: int, filename: str | None
) -> MediaAsset:
    require_uploader(account, nomination)
    limit = current_app.config["MEDIA_VIDEO_MAX_BYTES"]
    if length <= 0:
        raise AppError("视频文件为空", code="empty_upload", status=400)
    if length > limit:
        raise UploadTooLarge(
            f"视频不能超过 {limit // (1024 * 1024)} MB", details={"max_bytes": limit}
        )
    spend_upload_quota(nomination)
    asset = _new_asset(account, nomination, "video", length, filename)
    audit.record(
        "media.upload_start",
        "media",
        asset.id,
        campaign_id=nomination.campaign_id,
        after={"nomination": nomination.id, "kind": "video", "size": length},
    )
    return asset


def get_asset_for(account: Account, asset_id: int) -> MediaAsset:
    """An asset of a nomination the caller may see; others' are 404."""
    asset = db.session.get(MediaAsset, asset_id)
    if asset is None or not nomination_services.can_see(account, asset.nomination):
        raise NotFound("文件不存在", code="media_not_found")
    return asset


@contextmanager
def upload_lock(asset_id: int) -> Iterator[None]:
    """Keeps two PATCHes of one upload from interleaving: the offset is checked, the bytes are
    appended and the new offset is committed all under this one Redis lock."""
    lock = redis_store.client.lock(redis_store.key("upload", asset_id), timeout=3600)
    if not lock.acquire(blocking=False):
        raise Conflict("该文件正在上传中，请稍后重试", code="upload_busy")
    try:
        yield
    finally:
        try:
            lock.release()
        except LockError:
            log.warning("upload lock for %s expired before release", asset_id)


@dataclass(frozen=True)
class ChunkSlot:
    """Where a PATCH body goes, read from the database before the body streams in."""

    asset_id: int
    storage_key: str
    received: int
    remaining: int


def check_chunk(account: Account, asset_id: int, offset: int, length: int | None) -> ChunkSlot:
    """May a PATCH body of ``length`` bytes be appended at ``offset``? Call under `upload_lock`."""
    asset = get_asset_for(account, asset_id)
    db.session.refresh(asset)
    require_uploader(account, asset.nomination)
    if asset.status != "receiving":
        raise Conflict("该文件已上传完成", code="upload_complete")
    if offset != asset.received:
        raise Conflict(
            "上传位置不一致，请从服务器记录的位置继续",
            code="offset_mismatch",
            details={"expected_offset": asset.received},
            headers={"Upload-Offset": str(asset.received), "Tus-Resumable": TUS_VERSION},
        )
    remaining = asset.declared_size - asset.received
    if length is not None and length > remaining:
        raise UploadTooLarge("上传的数据超过了声明的文件大小", details={"remaining": remaining})
    return ChunkSlot(asset.id, asset.storage_key, asset.received, remaining)


def append_chunk(slot: ChunkSlot, body: BinaryIO) -> None:
    """Stream the body to storage, then record the new offset with an UPDATE that applies only
    if the offset is still the one checked. No database work until the body is in: call under
    `upload_lock`, with no transaction open."""
    store = storage()
    key, received = slot.storage_key, slot.received
    # A crash after writing but before recording leaves extra bytes: the record wins.
    store.truncate(key, ORIGINAL, received)
    try:
        written = store.append(key, ORIGINAL, body, slot.remaining)
    except IncompleteChunk as exc:
        if isinstance(exc.__cause__, RequestEntityTooLarge):
            store.truncate(key, ORIGINAL, received)
            raise UploadTooLarge("上传的数据超过了允许的大小") from exc
        # The connection dropped: keep what arrived; the client asks HEAD and resumes.
        written = exc.written
        log.info("upload %s interrupted after %d bytes", slot.asset_id, written)
    db.session.execute(
        update(MediaAsset)
        .where(MediaAsset.id == slot.asset_id, MediaAsset.received == received)
        .values(received=received + written, updated_at=utcnow())
    )


def finish_chunk(asset_id: int) -> MediaAsset:
    """The asset after a PATCH: 'uploaded' once every declared byte has arrived."""
    asset = db.session.get(MediaAsset, asset_id, populate_existing=True)
    assert asset is not None
    if asset.received == asset.declared_size:
        asset.status = "uploaded"
        db.session.flush()
        audit.record(
            "media.uploaded",
            "media",
            asset.id,
            campaign_id=asset.nomination.campaign_id,
            after={"size": asset.received},
        )
    return asset


# --- photo ------------------------------------------------------------------------------------


def check_photo_upload(account: Account, nomination: Nomination, length: int | None) -> None:
    """Refuse a photo before its body is read: not the uploader's, declared too large, or the
    gallery full (409 photo_limit, no quota spent)."""
    require_uploader(account, nomination)
    limit = current_app.config["MEDIA_PHOTO_MAX_BYTES"]
    if length is not None and length > limit:
        raise UploadTooLarge(f"照片不能超过 {limit // (1024 * 1024)} MB")
    gallery.require_room(nomination.id)
    spend_upload_quota(nomination)


def spend_upload_quota(nomination: Nomination) -> None:
    """Count an upload (photo or video) of the nomination today; 429 past the daily quota."""
    limit = int(current_app.config["MEDIA_UPLOADS_PER_NOMINATION_PER_DAY"] or 0)
    quotas.spend(
        "uploads",
        nomination.id,
        limit=limit,
        timezone=nomination.campaign.timezone,
        code="upload_quota_exhausted",
        message=f"这份推荐材料今天已上传 {limit} 次照片或视频，已达上限，请明天再试",
    )


def store_photo(account: Account, nomination_id: int, body: BinaryIO) -> MediaAsset:
    """Photos are small: stored, checked by content, re-encoded without metadata, right away,
    and added to the gallery (the first one is its cover). No database work until the body is
    in: call with no transaction open. The gallery's limit is checked again under the
    nomination's lock, so two uploads racing for the last place cannot both be kept."""
    limit = current_app.config["MEDIA_PHOTO_MAX_BYTES"]
    key = f"p-{secrets.token_hex(16)}"
    store = storage()
    try:
        written = store.append(key, ORIGINAL, body, limit + 1)
    except IncompleteChunk as exc:
        store.delete(key)
        if isinstance(exc.__cause__, RequestEntityTooLarge):
            raise UploadTooLarge(f"照片不能超过 {limit // (1024 * 1024)} MB") from exc
        raise AppError("照片没有上传完整，请重试", code="incomplete_upload", status=400) from exc
    if written > limit:
        store.delete(key)
        raise UploadTooLarge(f"照片不能超过 {limit // (1024 * 1024)} MB")
    if written == 0:
        store.delete(key)
        raise AppError("照片文件为空", code="empty_upload", status=400)
    try:
        result = process_photo(
            store.local_path(key, ORIGINAL),
            store.workdir(key),
            max_pixels=current_app.config["MEDIA_PHOTO_MAX_PIXELS"],
            decode_pixels=current_app.config["MEDIA_PHOTO_DECODE_PIXELS"],
        )
    except MediaRejected as exc:
        store.delete(key)
        raise AppError(exc.message, code=exc.code, status=422) from exc
    store.local_path(key, ORIGINAL).unlink(missing_ok=True)  # EXIF lives there
    gallery.lock(nomination_id)
    nomination = db.session.get(Nomination, nomination_id)
    assert nomination is not None
    try:
        require_uploader(account, nomination)  # still editable after the upload
        gallery.require_room(nomination.id)  # and still room: another upload may have won
    except AppError:
        store.delete(key)
        raise
    asset = MediaAsset(
        nomination_id=nomination.id,
        kind="photo",
        status="uploaded",
        storage_key=key,
        declared_size=written,
        received=written,
        created_by_id=account.id,
        renditions=[],
    )
    db.session.add(asset)
    asset.width, asset.height = result.width, result.height
    asset.renditions = [
        {"label": "photo", "file": "photo.jpg"},
        {"label": "thumb", "file": "thumb.jpg"},
    ]
    _make_current(asset)
    audit.record(
        "media.photo",
        "media",
        asset.id,
        campaign_id=nomination.campaign_id,
        after={"nomination": nomination.id, "width": asset.width, "height": asset.height},
    )
    return asset


def _make_current(asset: MediaAsset) -> None:
    """The new asset is ready: a video replaces the nomination's previous one; a photo joins
    the gallery (the cover if it is the first)."""
    if asset.kind == "video":
        previous = db.session.scalars(
            select(MediaAsset).where(
                MediaAsset.nomination_id == asset.nomination_id,
                MediaAsset.kind == asset.kind,
                MediaAsset.is_current.is_(True),
                MediaAsset.id != asset.id,
            )
        ).all()
        for old in previous:
            old.is_current = False
            old.status = "replaced"
    asset.status = "ready"
    asset.is_current = True
    asset.ready_at = utcnow()
    db.session.flush()
    if asset.kind == "photo":
        gallery.settle_cover(asset.nomination_id)
    # The public cards show the current photo and video: rebuild them after the commit.
    public_view.changed(asset.nomination.campaign)


# --- the steps of the processing job (media.jobs.process_video) ------------------------------


@dataclass(frozen=True)
class UploadedVideo:
    """What transcoding needs of an asset, read before the job's transaction ends."""

    storage_key: str
    declared_size: int


def get_asset(asset_id: int) -> MediaAsset | None:
    return db.session.get(MediaAsset, asset_id)


def needs_processing(asset: MediaAsset) -> bool:
    """Uploaded, or left processing by a worker that died; not still receiving, not settled."""
    return asset.status not in ("ready", "failed", "replaced", "removed", "receiving")


def start_processing(asset: MediaAsset) -> UploadedVideo:
    """Mark the video processing and count the attempt (`put_back_stuck_videos` gives up after
    three)."""
    asset.status = "processing"
    asset.attempts += 1
    db.session.flush()
    return UploadedVideo(asset.storage_key, asset.declared_size)


def make_renditions(video: UploadedVideo) -> tuple[VideoProbe, TranscodeResult]:
    """Probe and transcode the original, or raise `MediaRejected`. No database work: this is
    the part that takes minutes."""
    store = storage()
    source = store.local_path(video.storage_key, ORIGINAL)
    config = current_app.config
    probe = probe_video(
        source,
        max_duration=config["MEDIA_VIDEO_MAX_SECONDS"],
        declared_size=video.declared_size,
    )
    result = transcode(
        source,
        store.workdir(video.storage_key),
        timeout=config["MEDIA_TRANSCODE_TIMEOUT"],
        threads=config["MEDIA_TRANSCODE_THREADS"],
        memory_limit_mb=config["MEDIA_TRANSCODE_MEMORY_MB"],
    )
    return probe, result


def reject_video(asset: MediaAsset, rejected: MediaRejected) -> None:
    """The video cannot be used: the unit reads why, and the previous video stays."""
    log.info("video %s rejected: %s", asset.id, rejected.code)
    asset.status = "failed"
    asset.failure_code = rejected.code
    asset.failure_reason = rejected.message
    db.session.flush()


def finish_video(asset: MediaAsset, probe: VideoProbe, result: TranscodeResult) -> str:
    """Record the renditions and make the video current ("ready"), unless the nomination was
    decided while the video was processing ("failed")."""
    nomination = asset.nomination
    if nomination.status not in EDITABLE:
        # Approved (or otherwise decided) while this video was processing: the reviewers saw
        # the previous one, so this one does not replace it.
        asset.status = "failed"
        asset.failure_code = "nomination_locked"
        asset.failure_reason = "推荐材料已审核，不能再更换视频；如需更换请联系评选办"
        db.session.flush()
        return "failed"
    asset.duration = result.duration
    asset.width, asset.height = probe.width, probe.height
    asset.renditions = [
        {
            "label": r.label,
            "file": r.path.name,
            "width": r.width,
            "height": r.height,
            "size": r.size,
            "bitrate": r.bitrate,
        }
        for r in result.renditions
    ]
    _make_current(asset)
    audit.record(
        "media.ready",
        "media",
        asset.id,
        campaign_id=asset.nomination.campaign_id,
        after={"renditions": [r["label"] for r in asset.renditions], "duration": asset.duration},
    )
    return "ready"


def put_back_stuck_videos() -> list[int]:
    """Videos left 'processing' by a worker that died (or 'uploaded' but never queued) go back
    to 'uploaded', or fail after three attempts. Returns the ids to queue again."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["MEDIA_TRANSCODE_TIMEOUT"] + 300)
    stuck = db.session.scalars(
        select(MediaAsset).where(
            MediaAsset.kind == "video",
            MediaAsset.status.in_(("processing", "uploaded")),
            MediaAsset.updated_at < cutoff,
        )
    ).all()
    for asset in stuck:
        if asset.attempts >= 3:
            asset.status = "failed"
            asset.failure_code = "transcode_gave_up"
            asset.failure_reason = "视频处理多次失败，请重新上传或换一个文件"
            continue
        asset.status = "uploaded"
        asset.updated_at = utcnow()
    db.session.flush()
    return [a.id for a in stuck if a.status == "uploaded"]


# --- what is served to whom -------------------------------------------------------------------


def preview_token(asset: MediaAsset) -> str:
    return issue_token("media", {"a": asset.id}, 3600).token


def may_fetch(asset: MediaAsset, name: str, token: str | None) -> bool:
    """Public: the current, ready files of an approved nominee. Owners: a signed preview link."""
    if name == ORIGINAL or name not in _files(asset):
        return False
    if asset.status == "ready" and asset.is_current and asset.nomination.status == "approved":
        return True
    if token:
        try:
            return read_token("media", token).get("a") == asset.id
        except AppError:
            return False
    return False


def fetchable_asset(asset_id: int, name: str, token: str | None) -> MediaAsset:
    """The asset whose file ``name`` the caller may fetch (see `may_fetch`); otherwise 404."""
    asset = db.session.get(MediaAsset, asset_id)
    if asset is None or not may_fetch(asset, name, token):
        raise AppError("文件不存在", code="media_not_found", status=404)
    return asset


def is_public(asset: MediaAsset) -> bool:
    return asset.status == "ready" and asset.is_current and asset.nomination.status == "approved"


def _files(asset: MediaAsset) -> set[str]:
    names = {r["file"] for r in asset.renditions or []}
    if asset.kind == "video" and asset.status == "ready":
        names.add("poster.jpg")
    return names


def file_url(asset: MediaAsset, name: str, token: str | None = None) -> str:
    url = url_for("media_files.media_file", asset_id=asset.id, name=name)
    return f"{url}?t={token}" if token else url


def describe(
    asset: MediaAsset, *, token: str | None = None, cover: bool | None = None
) -> dict[str, Any]:
    """The asset as its owner (with preview links) or the public (plain links) sees it; a photo
    says whether it is the gallery's ``cover`` when the caller knows (see `cover_id`)."""
    body: dict[str, Any] = {
        "id": asset.id,
        "kind": asset.kind,
        "status": asset.status,
        "received": asset.received,
        "size": asset.declared_size,
        "failure_code": asset.failure_code,
        "failure_reason": asset.failure_reason,
        "duration": asset.duration,
        "width": asset.width,
        "height": asset.height,
    }
    if asset.kind == "photo" and cover is not None:
        body["cover"] = cover
    if asset.status in ("ready", "replaced", "removed"):
        if asset.kind == "video":
            body["poster_url"] = file_url(asset, "poster.jpg", token)
            body["renditions"] = [
                {k: r[k] for k in ("label", "width", "height")}
                | {"url": file_url(asset, r["file"], token)}
                for r in asset.renditions
            ]
        else:
            body["photo_url"] = file_url(asset, "photo.jpg", token)
            body["thumb_url"] = file_url(asset, "thumb.jpg", token)
    return body


def nomination_assets(nomination: Nomination) -> list[MediaAsset]:
    """Every photo and video uploaded for a nomination, newest first."""
    return list(
        db.session.scalars(
            select(MediaAsset)
            .where(MediaAsset.nomination_id == nomination.id)
            .order_by(MediaAsset.id.desc())
        ).all()
    )


def cover_id(nomination: Nomination) -> int | None:
    """The id of the nomination's cover photo (`media.gallery.cover_first`), None without one."""
    cover = gallery.cover_of(nomination.id)
    return cover.id if cover is not None else None


def described_assets(nomination: Nomination) -> list[dict[str, Any]]:
    """`nomination_assets` as their owner sees them (preview links), photos with ``cover``."""
    cover = cover_id(nomination)
    return [
        describe(a, token=preview_token(a), cover=a.id == cover if a.kind == "photo" else None)
        for a in nomination_assets(nomination)
    ]


def photo_list(nomination: Nomination) -> list[dict[str, Any]]:
    """The gallery as its owner sees it: cover first (``cover: true``), then by upload."""
    return [
        describe(a, token=preview_token(a), cover=index == 0)
        for index, a in enumerate(gallery.gallery_of(nomination.id))
    ]


def remove_photo(account: Account, nomination: Nomination, asset_id: int) -> None:
    """Take a photo out of the gallery, under the same rule as an upload (the unit or an
    admin, while the nomination can be edited); the next photo becomes the cover."""
    require_uploader(account, nomination)
    gallery.lock(nomination.id)
    was_cover = gallery.cover_of(nomination.id)
    asset = gallery.remove(nomination.id, asset_id)
    audit.record(
        "media.photo_removed",
        "media",
        asset.id,
        campaign_id=nomination.campaign_id,
        before={"nomination": nomination.id, "cover": was_cover is asset},
        after={"cover": cover_id(nomination)},
    )
    public_view.changed(nomination.campaign)


def set_cover(account: Account, nomination: Nomination, asset_id: int) -> None:
    """Make a photo of the gallery its cover (same rule as an upload)."""
    require_uploader(account, nomination)
    gallery.lock(nomination.id)
    before = cover_id(nomination)
    asset = gallery.choose_cover(nomination.id, asset_id)
    audit.record(
        "media.cover",
        "media",
        asset.id,
        campaign_id=nomination.campaign_id,
        before={"nomination": nomination.id, "cover": before},
        after={"cover": asset.id},
    )
    public_view.changed(nomination.campaign)


def public_media(nomination_ids: list[int]) -> dict[int, dict[str, Any]]:
    """{nomination id: {photo_url, thumb_url, photos, video}} for the current ready assets, in
    one statement: ``photo_url``/``thumb_url`` are the cover's, ``photos`` the gallery in order
    ([{id, photo_url, thumb_url, width, height, cover}], cover first)."""
    if not nomination_ids:
        return {}
    assets = db.session.scalars(
        select(MediaAsset).where(
            MediaAsset.nomination_id.in_(nomination_ids),
            MediaAsset.is_current.is_(True),
            MediaAsset.status == "ready",
        )
    ).all()
    out: dict[int, dict[str, Any]] = {}
    photos: dict[int, list[MediaAsset]] = {}
    for asset in assets:
        entry = out.setdefault(asset.nomination_id, {})
        if asset.kind == "photo":
            photos.setdefault(asset.nomination_id, []).append(asset)
        else:
            described = describe(asset)
            entry["video"] = {
                "poster_url": described["poster_url"],
                "duration": asset.duration,
                "renditions": described["renditions"],
            }
    for nomination_id, found in photos.items():
        shown = [
            {
                "id": asset.id,
                "photo_url": file_url(asset, "photo.jpg"),
                "thumb_url": file_url(asset, "thumb.jpg"),
                "width": asset.width,
                "height": asset.height,
                "cover": index == 0,
            }
            for index, asset in enumerate(gallery.cover_first(found))
        ]
        entry = out[nomination_id]
        entry["photo_url"], entry["thumb_url"] = shown[0]["photo_url"], shown[0]["thumb_url"]
        entry["photos"] = shown
    return out
