"""Media jobs: transcode uploaded videos; put back the ones a dead worker left behind; delete
the files of abandoned and failed uploads.

Job functions take ids, run in the app context, are idempotent and retried, and commit here;
the steps they run are in `media.services`, which only flush.
"""

from __future__ import annotations

import time

from flask import current_app
from rq import Retry

from core.extensions import db
from core.jobs import app_job, enqueue, periodic
from core.metrics import SharedCounter, SharedHistogram
from media import cleanup, services
from media.rejections import MediaRejected

TRANSCODES = SharedCounter(
    "zuimei_transcodes_total",
    "Video transcode jobs: started; then succeeded (renditions made), rejected (the video was"
    " refused: unreadable, too long, nomination already decided), failed (the job raised; RQ"
    " retries it) or skipped (nothing to do: already done, replaced or gone).",
    ["outcome"],
)
TRANSCODE_SECONDS = SharedHistogram(
    "zuimei_transcode_duration_seconds",
    "Time to probe and transcode one video, by outcome (succeeded, rejected, failed).",
    ["outcome"],
    buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
_OUTCOMES = {"ready": "succeeded", "failed": "rejected"}


def enqueue_processing(asset_id: int) -> None:
    """Queue the transcoding of an uploaded video; call it after the commit that saved it."""
    enqueue(
        "media",
        process_video,
        asset_id,
        job_timeout=current_app.config["MEDIA_TRANSCODE_TIMEOUT"] + 120,
        retry=Retry(max=2, interval=[10, 60]),
    )


# A lost database connection fails the run and RQ's Retry above runs it again: the transcode
# counts its attempts (put_back_stuck_videos gives up after three) and takes minutes.
@app_job(rerun_on_lost_connection=False)
def process_video(asset_id: int) -> str:
    TRANSCODES.inc(outcome="started")
    started = time.perf_counter()
    try:
        status = _transcode(asset_id)
    except Exception:
        TRANSCODES.inc(outcome="failed")
        TRANSCODE_SECONDS.observe(time.perf_counter() - started, outcome="failed")
        raise
    outcome = _OUTCOMES.get(status, "skipped")
    TRANSCODES.inc(outcome=outcome)
    if outcome != "skipped":
        TRANSCODE_SECONDS.observe(time.perf_counter() - started, outcome=outcome)
    return status


def _transcode(asset_id: int) -> str:
    """Probe and transcode one uploaded video. Idempotent: a retry starts again from the
    original, and a failure leaves the previous video in place."""
    asset = services.get_asset(asset_id)
    if asset is None:
        return "missing"
    if not services.needs_processing(asset):
        return asset.status
    video = services.start_processing(asset)
    # Committed before ffmpeg runs: the attempt counts even if this worker dies mid-transcode,
    # and no transaction (on SQLite, the write lock) stays open for the minutes it takes.
    db.session.commit()
    try:
        probe, result = services.make_renditions(video)
    except MediaRejected as exc:
        services.reject_video(asset, exc)
        db.session.commit()
        return "failed"
    status = services.finish_video(asset, probe, result)
    db.session.commit()
    return status


@periodic(seconds=60, queue="media")
@app_job
def requeue_stuck_media() -> list[int]:
    requeued = services.put_back_stuck_videos()
    db.session.commit()  # queued after the commit: the job reads the asset in its own session
    for asset_id in requeued:
        enqueue_processing(asset_id)
    return requeued


@periodic(seconds=3600, queue="media")
@app_job
def sweep_abandoned_media() -> dict[str, int]:
    """Delete the files of abandoned and long-failed uploads and of record-less folders
    (media.cleanup); the rows stay with their status. Idempotent."""
    report = cleanup.sweep()
    db.session.commit()
    return {
        "abandoned": report.abandoned,
        "failed_purged": report.failed_purged,
        "orphans": report.orphans,
    }
