"""Media assets: an uploaded photo or video of a nomination, its status and its renditions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime, utcnow
from nominations.models import Nomination

KINDS = ("photo", "video")
# receiving → uploaded → processing → ready | failed; a ready asset becomes "replaced" when a
# newer one of the same nomination and kind is ready.
STATUSES = ("receiving", "uploaded", "processing", "ready", "failed", "replaced")


class MediaAsset(db.Model):
    __tablename__ = "media_assets"

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
    is_current: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    nomination: Mapped[Nomination] = relationship()
