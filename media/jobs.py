"""Media jobs: transcode uploaded videos; put back the ones a dead worker left behind."""

from __future__ import annotations

from core.jobs import app_job, periodic
from media import services


@app_job
def process_video(asset_id: int) -> str:
    return services.process_video(asset_id)


@periodic(seconds=60, queue="media")
@app_job
def requeue_stuck_media() -> list[int]:
    return services.requeue_stuck()
