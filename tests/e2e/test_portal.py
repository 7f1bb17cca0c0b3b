"""A clinic clerk creates a nomination in the unit portal, uploads a photo and a video profile
(resumable upload, real transcoding), submits; the office approves it in the console and the
nominee appears on the H5 page."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from core.types import utcnow
from tests.e2e.conftest import DESKTOP, PHONE, WECHAT_UA, LiveServer
from tests.e2e.data import run_media_worker, staff_login
from tests.factories import Org
from tests.media.clips import make_clip

DEEDS = (
    "扎根乡村卫生院十八年，走遍全乡二十三个行政村，为两千余名慢病患者建立健康档案。\n"
    "疫情期间连续四十天驻守发热门诊，带领团队完成核酸采样五万余人次。"
)


def test_clerk_nominates_office_approves_public_sees(
    app: Flask,
    org: Org,
    live: LiveServer,
    playwright_browser: Any,
    shoot: Any,
    tmp_path: Path,
) -> None:
    org.campaign("c1", title=f"{utcnow().year}年度测试县“十大最美乡村医生”评选")
    clerk = playwright_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    clerk.route("https://**/*", lambda route: route.abort())
    clerk.set_default_timeout(20_000)
    page = clerk.new_page()
    staff_login(page, live.url, "portal", "unit-h1", "/portal")
    page.click("#new-c1")
    expect(page).to_have_url(f"{live.url}/portal/c/c1/new")

    page.select_option("#category", "doctor")
    page.fill("#name", "周建华")
    page.select_option("#gender", "male")
    page.fill("#title", "主治医师")
    page.fill("#position", "卫生院副院长")
    page.fill("#department", "全科")
    page.fill("#years_of_service", "18")
    page.fill("#summary", "十八年守护乡亲健康的乡村全科医生")
    # Empty deeds: the page refuses to save, in Chinese, before asking the server.
    page.click("#save")
    expect(page.locator("#deeds-error")).not_to_be_empty()
    page.fill("#deeds", DEEDS)
    expect(page.locator("#deeds-counter")).to_contain_text(f"{len(DEEDS)} / 3000")
    page.fill("#unit_opinion", "同意推荐。")
    shoot(page, "portal-form-desktop")
    page.click("#save")
    expect(page).to_have_url(re.compile(r"/portal/nominations/\d+$"))
    nomination_id = int(page.url.rsplit("/", 1)[1])

    photo = tmp_path / "photo.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (600, 800), (180, 60, 60)).save(buffer, format="JPEG")
    photo.write_bytes(buffer.getvalue())
    page.set_input_files("#photo-input", str(photo))
    expect(page.locator("#photo-current")).to_be_visible()

    clip = make_clip(tmp_path / "clip.mp4", width=640, height=360, seconds=2)
    page.set_input_files("#video-input", str(clip))
    if page.locator("#video-upload").is_visible():
        page.click("#video-upload")
    expect(page.locator("#video-progress")).to_have_attribute("value", re.compile(r"^100"))
    # The server has the whole file and queued the transcode (only then can the worker take it).
    expect(page.locator("#video-status")).to_contain_text("排队等待转码", timeout=30_000)
    run_media_worker(app)
    expect(page.locator("#video-status")).to_contain_text("视频已就绪", timeout=30_000)

    page.click("#submit")
    page.click("#dialog-ok")
    expect(page.locator("#status-badge")).to_contain_text("已提交")
    page.goto(f"{live.url}/portal")
    row = page.locator(f"[data-testid=nomination-{nomination_id}]")
    expect(row).to_have_attribute("data-status", "submitted")
    shoot(page, "portal-list-desktop")
    clerk.close()

    office = playwright_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    office.route("https://**/*", lambda route: route.abort())
    office.set_default_timeout(20_000)
    page = office.new_page()
    staff_login(page, live.url, "console", "admin", "/console/c/c1/review")
    page.click(f"[data-testid=review-{nomination_id}]")
    expect(page.locator("#detail-name")).to_have_text("周建华")
    expect(page.locator("#detail-deeds")).to_contain_text("发热门诊")
    shoot(page, "console-review-desktop")
    page.click("#decision-approve")
    expect(page.locator(f"[data-testid=review-{nomination_id}]")).to_have_attribute(
        "data-status", "approved"
    )
    office.close()

    voter = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, user_agent=WECHAT_UA, locale="zh-CN"
    )
    voter.route("https://**/*", lambda route: route.abort())
    page = voter.new_page()
    page.goto(f"{live.url}/c/c1")
    card = page.locator("[data-testid^=card-]").filter(has_text="周建华")
    expect(card).to_be_visible()
    card.locator("a.card-link").click()
    expect(page.locator("#nominee-name")).to_have_text("周建华")
    expect(page.locator("#profile-video source").first).to_have_attribute(
        "src", re.compile(r"\.mp4$")
    )
    expect(page.locator(".profile .photo.large")).to_have_attribute("src", re.compile("photo"))
    voter.close()


def test_video_upload_survives_a_dropped_connection(
    app: Flask,
    org: Org,
    live: LiveServer,
    playwright_browser: Any,
    tmp_path: Path,
) -> None:
    """A chunk lost mid-upload (the connection reset under it) is sent again from the offset the
    server reports; the whole file arrives once and transcodes."""
    from tests.media.clips import ffmpeg

    org.campaign("c1")
    nomination_id = org.nomination("c1", unit_user="unit-h1")
    clip = tmp_path / "big.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=4",
        "-c:v", "libx264", "-b:v", "6M", "-pix_fmt", "yuv420p", str(clip),
    )  # fmt: skip
    assert clip.stat().st_size > 2 * 1024 * 1024, "needs several 1 MiB chunks"

    context = playwright_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(30_000)
    dropped: list[str] = []

    def flaky(route: Any) -> None:
        request = route.request
        offset = request.headers.get("upload-offset")
        if request.method == "PATCH" and offset not in (None, "0") and not dropped:
            dropped.append(offset)
            route.abort("connectionreset")
            return
        route.continue_()

    context.route("**/api/v1/uploads/**", flaky)
    page = context.new_page()
    staff_login(page, live.url, "portal", "unit-h1", f"/portal/nominations/{nomination_id}")
    page.set_input_files("#video-input", str(clip))
    if page.locator("#video-upload").is_visible():
        page.click("#video-upload")
    expect(page.locator("#video-progress")).to_have_attribute("value", re.compile(r"^100"))
    # The server has the whole file and queued the transcode (only then can the worker take it).
    expect(page.locator("#video-status")).to_contain_text("排队等待转码", timeout=30_000)
    assert dropped, "the flaky route never dropped a chunk"
    run_media_worker(app)
    expect(page.locator("#video-status")).to_contain_text("视频已就绪")
    context.close()

    from core.extensions import db
    from media.models import MediaAsset

    with app.app_context():
        assets = db.session.query(MediaAsset).filter_by(nomination_id=nomination_id).all()
        assert len(assets) == 1, "one upload, resumed — not a second one"
        assert assets[0].received == clip.stat().st_size and assets[0].status == "ready"
        db.session.remove()
