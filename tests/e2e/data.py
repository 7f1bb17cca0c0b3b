"""Data for the end-to-end tests, made through the real workflow and the real media pipeline."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import expect
from rq import SimpleWorker

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.types import utcnow
from nominations import services as nomination_services
from nominations.models import Nomination
from tests.factories import PASSWORD, Org
from tests.media.clips import make_clip

NAMES = [
    "李晓梅",
    "王建国",
    "张秀英",
    "刘志强",
    "陈静",
    "杨帆",
    "赵丽华",
    "黄伟",
    "周婷",
    "吴海燕",
    "徐明",
    "孙红霞",
    "马超",
    "朱玲",
]


def run_worker(app: Flask, queue: str = "default") -> None:
    """Run the queue's jobs with a real RQ worker in burst mode, as the rest of the suite does."""
    with app.app_context():
        SimpleWorker([redis_store.queue(queue)], connection=redis_store.client).work(burst=True)


def run_media_worker(app: Flask) -> None:
    run_worker(app, "media")


def staff_login(page: Any, base: str, area: str, username: str, next_path: str) -> None:
    """Log in through the area's login form, as staff do, and land on ``next_path``."""
    page.goto(f"{base}{next_path}")
    expect(page).to_have_url(re.compile(f"/{area}/login"))
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    # (A page may add its own query, e.g. the review queue selects its first item.)
    expect(page).to_have_url(re.compile(re.escape(f"{base}{next_path}") + r"(\?.*)?$"))


def upload_video(app: Flask, org: Org, nomination_id: int, clip: Path, user: str) -> None:
    client = app.test_client()
    body = clip.read_bytes()
    tus = {"Tus-Resumable": "1.0.0"}
    created = client.post(
        f"/api/v1/nominations/{nomination_id}/video",
        headers={
            **org.headers(user),
            **tus,
            "Upload-Length": str(len(body)),
            "Upload-Metadata": "filename " + base64.b64encode(b"profile.mp4").decode(),
        },
    )
    assert created.status_code == 201, created.json
    sent = client.patch(
        created.headers["Location"],
        data=body,
        headers={
            **org.headers(user),
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent.status_code == 204, sent.get_data(as_text=True)
    run_media_worker(app)


def voting_campaign_with_video(
    app: Flask,
    org: Org,
    tmp: Path,
    *,
    nominees: int = 14,
    votes_per_day: int = 3,
    ip_soft_limit: int = 0,
) -> list[str]:
    """A campaign open for voting, its first nominee with a real transcoded video profile."""
    now = utcnow()
    org.campaign(
        "v1",
        max_per_unit=50,
        title=f"{now.year}年度青山县“十大最美医生”“十大最美护士”评选",
        organizer="青山县卫生健康局",
        description="寻找身边的好医生、好护士，讲述他们守护群众健康的故事。",
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now - timedelta(hours=1)).isoformat(),
        voting_end=(now + timedelta(days=3, hours=5)).isoformat(),
        rules={
            "votes_per_day": votes_per_day,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": ip_soft_limit,
            "velocity_factor": 0,
        },
    )
    units = ("unit-h1", "unit-h2", "unit-h3")
    ids = [
        org.nomination(
            "v1",
            unit_user=units[i % 3],
            status="draft" if i == 0 else "approved",
            name=NAMES[i % len(NAMES)],
            category="doctor" if i % 4 else "nurse",
        )
        for i in range(nominees)
    ]
    clip = make_clip(tmp / "profile.mp4", width=640, height=360, seconds=2)
    upload_video(app, org, ids[0], clip, units[0])
    with app.app_context():
        first = db.session.get(Nomination, ids[0])
        nomination_services.submit(org.account(units[0]), first)
        nomination_services.review(org.account("admin"), first, "approve", None)
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        numbers = [db.session.get(Nomination, i).number for i in ids]
        db.session.remove()
    return numbers
