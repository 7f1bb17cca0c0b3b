"""Media assets: an uploaded photo or video of a nomination, its status and its renditions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime, utcnow
from nominations.models import Nomination

KINDS = ("photo", "video")
# receiving → uploaded → processing → ready | failed. A ready video becomes "replaced" when a
# newer one of the same nomination is ready (one current video). Photos accumulate: every ready
# photo is current (the nomination's gallery, at most PHOTOS_MAX), until the unit removes it
# ("removed"); photos made before the gallery existed may be "replaced".
STATUSES = ("receiving", "uploaded", "processing", "ready", "failed", "replaced", "removed")
# The photos of one nomination that count against PHOTOS_MAX: the gallery and one in the making.
LIVE_PHOTO_STATUSES = ("uploaded", "processing", "ready")
# "Up to six photos with one cover" (issue #17): the 7th is refused (409 photo_limit).
PHOTOS_MAX = 6


class MediaAsset(db.Model):
    __tablename__ = "media_assets"
    # At most one cover per nomination (media.gallery keeps exactly one while it has photos).
    __table_args__ = (
        Index(
            "uq_media_assets_cover",
            "nomination_id",
            unique=True,
            sqlite_where=text("is_cover"),
            postgresql_where=text("is_cover"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(12), index=True)
    # Where the files live in the storage backend; generated, never the client's file name.
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    original_name: Mapped[str | None] = mapped_column(String(200))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    failure_code: Mapped[str | None] = mapped_column(String(40))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    duration: Mapped[float | None] = mapped_column()
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    renditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Public while the nominee is approved: the current video, every photo of the gallery.
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    # The gallery's cover: the photo every card, ranking, poster and dossier shows
    # (media.gallery.cover_first is the one definition).
    is_cover: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    nomination: Mapped[Nomination] = relationship()
