"""Media jobs: transcode uploaded videos; put back the ones a dead worker left behind."""

from __future__ import annotations

import time

from core.jobs import app_job, periodic
from core.metrics import SharedCounter, SharedHistogram
from media import services

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


@app_job
def process_video(asset_id: int) -> str:
    TRANSCODES.inc(outcome="started")
    started = time.perf_counter()
    try:
        status = services.process_video(asset_id)
    except Exception:
        TRANSCODES.inc(outcome="failed")
        TRANSCODE_SECONDS.observe(time.perf_counter() - started, outcome="failed")
        raise
    outcome = _OUTCOMES.get(status, "skipped")
    TRANSCODES.inc(outcome=outcome)
    if outcome != "skipped":
        TRANSCODE_SECONDS.observe(time.perf_counter() - started, outcome=outcome)
    return status


@periodic(seconds=60, queue="media")
@app_job
def requeue_stuck_media() -> list[int]:
    return services.requeue_stuck()
