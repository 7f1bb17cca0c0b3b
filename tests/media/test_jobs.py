"""The media jobs: where they commit, and putting back the videos a dead worker left behind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask

from core.extensions import db, redis_store
from core.types import utcnow
from media import jobs, services
from media.models import MediaAsset
from media.rejections import rejection
from nominations.models import Nomination
from tests.factories import Org


def _uploaded_video(org: Org, nomination_id: int, **fields: object) -> int:
    """A video asset whose bytes have all arrived (the bytes themselves are not needed here)."""
    asset = services.start_video_upload(
        org.account("unit-h1"), db.session.get(Nomination, nomination_id), 1000, "clip.mp4"
    )
    asset.received, asset.status = 1000, "uploaded"
    for name, value in fields.items():
        setattr(asset, name, value)
    db.session.commit()
    return asset.id


def test_no_transaction_is_open_while_a_video_transcodes(
    ctx: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite a job's transaction holds the write lock: none may span the minutes ffmpeg
    runs, and the attempt is saved before ffmpeg starts."""
    org.campaign()
    asset_id = _uploaded_video(org, org.nomination())
    seen: list[tuple[bool, int]] = []

    def transcoding(video: services.UploadedVideo) -> None:
        with db.engine.connect() as other:  # what another process sees meanwhile
            attempts = other.execute(
                MediaAsset.__table__.select().where(MediaAsset.id == asset_id)
            ).one()
        seen.append((db.session().in_transaction(), attempts.attempts))
        raise rejection("not_a_video")

    monkeypatch.setattr(services, "make_renditions", transcoding)
    assert jobs.process_video(asset_id) == "failed"
    assert seen == [(False, 1)]
    db.session.expire_all()
    asset = db.session.get(MediaAsset, asset_id)
    assert asset is not None
    assert (asset.status, asset.failure_code) == ("failed", "not_a_video")
    assert jobs.process_video(asset_id) == "failed"  # settled: a retry does nothing
    assert len(seen) == 1


def test_stuck_videos_are_queued_again_and_given_up_after_three_attempts(
    ctx: Flask, org: Org
) -> None:
    org.campaign()
    nomination_id = org.nomination()
    long_ago = utcnow() - timedelta(seconds=ctx.config["MEDIA_TRANSCODE_TIMEOUT"] + 600)
    dead_worker = _uploaded_video(org, nomination_id, status="processing", attempts=1)
    never_queued = _uploaded_video(org, nomination_id)
    hopeless = _uploaded_video(org, nomination_id, status="processing", attempts=3)
    recent = _uploaded_video(org, nomination_id, status="processing", attempts=1)
    db.session.execute(
        MediaAsset.__table__.update()
        .where(MediaAsset.id.in_([dead_worker, never_queued, hopeless]))
        .values(updated_at=long_ago)
    )
    db.session.commit()

    assert sorted(jobs.requeue_stuck_media()) == sorted([dead_worker, never_queued])
    db.session.remove()
    statuses = {
        asset.id: (asset.status, asset.failure_code) for asset in db.session.query(MediaAsset).all()
    }
    assert statuses == {
        dead_worker: ("uploaded", None),
        never_queued: ("uploaded", None),
        hopeless: ("failed", "transcode_gave_up"),
        recent: ("processing", None),
    }
    queued = redis_store.queue("media").jobs
    assert sorted(job.args[0] for job in queued) == sorted([dead_worker, never_queued])
    assert {job.func_name for job in queued} == {"media.jobs.process_video"}
