"""Clean-up of uploads that will never be used: abandoned, failed, or left without a record.

What is removed and what stays (docs/media.md):

- an upload still ``receiving`` MEDIA_ABANDONED_AFTER after its last byte arrived is abandoned:
  its partial file is deleted, the asset becomes ``failed`` (``upload_abandoned``);
- a ``failed`` asset keeps its files MEDIA_FAILED_KEEP after it failed (so the office can look
  at what a clerk sent), then they are deleted;
- a storage folder without any asset row (a photo whose request died mid-way) is deleted once it
  is older than MEDIA_ABANDONED_AFTER.

The rows stay, with their status and failure code: they are the uploads' history, and the
audit log points at them. ``received`` goes to 0: the server holds none of its bytes any more.
An asset that is current for its nomination, or ready, replaced or removed, is never touched.

Services flush and never commit; `media.jobs.sweep_abandoned_media` commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import select

from core.errors import Conflict
from core.extensions import db
from core.types import utcnow
from media.models import MediaAsset
from media.services import upload_lock
from media.storage import storage

log = logging.getLogger("zuimei.media")

ABANDONED_REASON = "上传未完成且已超过保留期限，文件已删除；如仍需要，请重新上传"
_BATCH = 200


@dataclass
class SweepReport:
    abandoned: int = 0
    failed_purged: int = 0
    orphans: int = 0


def sweep(report: SweepReport | None = None) -> SweepReport:
    """One pass of every rule above; idempotent, and safe beside uploads in progress."""
    report = report or SweepReport()
    now = utcnow()
    config = current_app.config
    abandoned_cutoff = now - timedelta(seconds=int(config["MEDIA_ABANDONED_AFTER"]))
    failed_cutoff = now - timedelta(seconds=int(config["MEDIA_FAILED_KEEP"]))
    store = storage()

    receiving = db.session.scalars(
        select(MediaAsset.id)
        .where(MediaAsset.status == "receiving", MediaAsset.updated_at < abandoned_cutoff)
        .limit(_BATCH)
    ).all()
    for asset_id in receiving:
        try:
            # The lock a PATCH holds while bytes stream in: never delete under a live upload.
            with upload_lock(asset_id):
                asset = db.session.get(MediaAsset, asset_id, populate_existing=True)
                if asset is None or asset.status != "receiving":
                    continue
                if asset.updated_at >= abandoned_cutoff:
                    continue
                store.delete(asset.storage_key)
                asset.status = "failed"
                asset.failure_code = "upload_abandoned"
                asset.failure_reason = ABANDONED_REASON
                asset.received = 0
                db.session.flush()
                report.abandoned += 1
        except Conflict:
            log.info("upload %s is busy; left for the next sweep", asset_id)

    failed = db.session.scalars(
        select(MediaAsset)
        .where(
            MediaAsset.status == "failed",
            MediaAsset.is_current.is_(False),
            MediaAsset.received > 0,
            MediaAsset.updated_at < failed_cutoff,
        )
        .limit(_BATCH)
    ).all()
    for asset in failed:
        store.delete(asset.storage_key)
        asset.received = 0
        report.failed_purged += 1
    db.session.flush()

    # Folder times come from the file system's clock, not the app's (core.clock).
    report.orphans += _sweep_orphans(time.time() - int(config["MEDIA_ABANDONED_AFTER"]))
    return report


def _sweep_orphans(older_than: float) -> int:
    """Storage folders no asset row names, last written before ``older_than`` (epoch)."""
    store = storage()
    removed = 0
    candidates = list(store.asset_folders(older_than=older_than))
    for start in range(0, len(candidates), _BATCH):
        batch = candidates[start : start + _BATCH]
        known = set(
            db.session.scalars(
                select(MediaAsset.storage_key).where(MediaAsset.storage_key.in_(batch))
            ).all()
        )
        for key in batch:
            if key not in known:
                store.delete(key)
                removed += 1
    return removed
