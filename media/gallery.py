"""A nomination's photo gallery: up to PHOTOS_MAX photos, one of them the cover.

The one definition of "the cover" lives here (`cover_first`): the photo marked ``is_cover``, or,
for rows that carry no mark (made before the gallery, or written around the services), the
earliest photo of the gallery. Everything that shows "the photo" of a nominee (cards, ranking,
poster, dossier, 公示, judges' sheets) reads it through `cover_first`, by way of
`media.services.public_media` or `gallery_of`.

The order of a gallery: the cover first, then the other photos in upload order. Removing the
cover makes the next one (the earliest of the rest) the cover.

Services flush and never commit; rights are checked by the callers in `media.services`.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select

from core.errors import Conflict, NotFound
from core.extensions import db
from media.models import LIVE_PHOTO_STATUSES, PHOTOS_MAX, MediaAsset
from nominations.models import Nomination

PHOTO_LIMIT_MESSAGE = f"每位候选人最多上传 {PHOTOS_MAX} 张照片，请先删除不需要的照片再上传"


def cover_first(photos: Iterable[MediaAsset]) -> list[MediaAsset]:
    """Gallery photos in their order: the cover first, then the others by upload (id)."""
    ordered = sorted(photos, key=lambda asset: asset.id)
    cover = next((asset for asset in ordered if asset.is_cover), None)
    if cover is None:
        return ordered
    return [cover, *(asset for asset in ordered if asset is not cover)]


def gallery_of(nomination_id: int) -> list[MediaAsset]:
    """The nomination's gallery (ready, current photos), cover first."""
    return cover_first(
        db.session.scalars(
            select(MediaAsset).where(
                MediaAsset.nomination_id == nomination_id,
                MediaAsset.kind == "photo",
                MediaAsset.status == "ready",
                MediaAsset.is_current.is_(True),
            )
        ).all()
    )


def cover_of(nomination_id: int) -> MediaAsset | None:
    """The nomination's cover photo, or None without a photo."""
    photos = gallery_of(nomination_id)
    return photos[0] if photos else None


def lock(nomination_id: int) -> None:
    """Serialise the gallery changes of one nomination (a photo added, removed, made the cover)
    on its row (PostgreSQL); SQLite write transactions are already serialised by BEGIN
    IMMEDIATE."""
    db.session.execute(
        select(Nomination.id).where(Nomination.id == nomination_id).with_for_update()
    )


def live_count(nomination_id: int) -> int:
    """Photos that count against PHOTOS_MAX: the gallery and any photo still being made."""
    return int(
        db.session.scalar(
            select(func.count(MediaAsset.id)).where(
                MediaAsset.nomination_id == nomination_id,
                MediaAsset.kind == "photo",
                MediaAsset.status.in_(LIVE_PHOTO_STATUSES),
            )
        )
        or 0
    )


def require_room(nomination_id: int) -> None:
    """409 ``photo_limit`` once the nomination holds PHOTOS_MAX photos. Checked before a
    photo's body is read (no quota spent) and again, under `lock`, before the photo is kept."""
    count = live_count(nomination_id)
    if count >= PHOTOS_MAX:
        raise Conflict(
            PHOTO_LIMIT_MESSAGE,
            code="photo_limit",
            details={"limit": PHOTOS_MAX, "photos": count},
        )


def settle_cover(nomination_id: int) -> MediaAsset | None:
    """Make sure a gallery with photos has exactly one marked cover (the first in order when
    none is marked); returns the cover."""
    photos = gallery_of(nomination_id)
    if not photos:
        return None
    cover = photos[0]
    if not cover.is_cover:
        cover.is_cover = True
        db.session.flush()
    return cover


def photo_in_gallery(nomination_id: int, asset_id: int) -> MediaAsset:
    """A photo of the nomination's gallery; 404 ``media_not_found`` otherwise (another
    nomination's, a video, a removed or replaced photo)."""
    asset = db.session.get(MediaAsset, asset_id)
    if (
        asset is None
        or asset.nomination_id != nomination_id
        or asset.kind != "photo"
        or asset.status != "ready"
        or not asset.is_current
    ):
        raise NotFound("照片不存在或已删除", code="media_not_found")
    return asset


def remove(nomination_id: int, asset_id: int) -> MediaAsset:
    """Take a photo out of the gallery ("removed": its files stay, like a replaced asset's, for
    the record); the next photo becomes the cover if it was. Call under `lock`."""
    asset = photo_in_gallery(nomination_id, asset_id)
    asset.status = "removed"
    asset.is_current = False
    asset.is_cover = False
    db.session.flush()
    settle_cover(nomination_id)
    return asset


def choose_cover(nomination_id: int, asset_id: int) -> MediaAsset:
    """Make a photo of the gallery its cover. Call under `lock`."""
    asset = photo_in_gallery(nomination_id, asset_id)
    for other in gallery_of(nomination_id):
        if other.is_cover and other is not asset:
            other.is_cover = False
    # The old mark goes first: the unique index allows one cover per nomination at any time.
    db.session.flush()
    asset.is_cover = True
    db.session.flush()
    return asset
