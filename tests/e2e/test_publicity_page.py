"""The 公示 page on a phone (390×844, WeChat's user agent): the winners with photo, video link and
deeds, the chain head as the API has it, an objection with an attachment, the same person
refused past the limit, and the committee's answer published."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import services as nomination_services
from nominations.models import Nomination
from tests.awards.test_results import CRITERIA, _score
from tests.e2e.conftest import LiveServer
from tests.e2e.data import NAMES, upload_video
from tests.e2e.test_poster import _portrait
from tests.factories import Org
from tests.media.clips import make_clip
from voting import services as voting_services

TIERS = [{"code": "top", "name": "十佳", "count": 1}, {"code": "good", "name": "优秀", "count": 1}]
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    return response.json


def _published_with_media(app: Flask, org: Org, tmp: Path) -> list[str]:
    """v1 in publicity: three doctors, the first with a photo and a transcoded video; votes 5, 2
    and 1; tiers 十佳 1 and 优秀 1 (the first two win)."""
    now = utcnow()
    org.campaign(
        "v1",
        max_per_unit=50,
        award_count=2,
        title=f"{now.year}年度青山县“十大最美医生”评选",
        organizer="青山县卫生健康局",
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now - timedelta(hours=1)).isoformat(),
        voting_end=(now + timedelta(days=1)).isoformat(),
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1, "ip_soft_limit": 0},
    )
    units = ("unit-h1", "unit-h2", "unit-h3")
    ids = [
        org.nomination(
            "v1",
            unit_user=units[i],
            status="draft" if i == 0 else "approved",
            name=NAMES[i],
            deeds=f"{NAMES[i]}扎根基层二十年，守护群众健康。",
        )
        for i in range(3)
    ]
    client = app.test_client()
    photo = client.post(
        f"/api/v1/nominations/{ids[0]}/photo",
        data=_portrait(),
        headers={**org.headers("unit-h1"), "Content-Type": "image/jpeg"},
    )
    assert photo.status_code == 201, photo.get_json()
    upload_video(
        app, org, ids[0], make_clip(tmp / "p.mp4", width=640, height=360, seconds=2), "unit-h1"
    )
    with app.app_context():
        first = db.session.get(Nomination, ids[0])
        nomination_services.submit(org.account("unit-h1"), first)
        nomination_services.review(org.account("admin"), first, "approve", None)
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        numbers = [db.session.get(Nomination, i).number for i in ids]
        db.session.remove()
    voter = 0
    for number, count in zip(numbers, (5, 2, 1), strict=True):
        for _ in range(count):
            voter += 1
            _ok(
                client.post(
                    "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
                ),
                201,
            )
    with app.app_context():
        voting_services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    base = "/api/v1/admin/campaigns/v1"
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.put(f"{base}/criteria", json={"items": CRITERIA}, headers=admin))
    _ok(
        client.post(
            f"{base}/judges", json={"username": "judge", "categories": ["doctor"]}, headers=admin
        )
    )
    _ok(
        client.patch("/api/v1/campaigns/v1/categories/doctor", json={"tiers": TIERS}, headers=admin)
    )
    for number, total in zip(numbers, (90, 80, 70), strict=True):
        _ok(_score(client, org, "judge", number, total))
    _ok(client.post(f"{base}/results", json={}, headers=admin), 201)
    _ok(client.post(f"{base}/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    return numbers


def test_publicity_page_winners_an_objection_the_limit_and_the_answer(
    app: Flask,
    org: Org,
    make_app: Callable[..., Flask],
    phone: Any,
    shoot: Any,
    tmp_path: Path,
) -> None:
    first, second, third = _published_with_media(app, org, tmp_path)
    head = app.test_client().get("/api/v1/campaigns/v1/winners").json["ledger_head"]
    with LiveServer(make_app(OBJECTION_PER_PERSON=1)) as live:
        page = phone
        page.goto(f"{live.url}/c/v1/publicity")
        expect(page.locator(".pub-kicker")).to_have_text("评选结果公示")
        winner = page.locator(f"[data-testid=winner-{first}]")
        expect(winner).to_contain_text(NAMES[0])
        expect(winner).to_contain_text("十佳")
        expect(winner.locator(".pub-votes")).to_have_text("5")
        # (Rendered is not loaded: wait for the photo to arrive rather than read it once.)
        page.wait_for_function(
            f"() => document.querySelector('[data-testid=winner-{first}] img').naturalWidth > 0"
        )
        video = winner.locator(f"[data-testid=video-{first}]")
        expect(video).to_be_visible()
        assert re.search(r"\.mp4(\?|$)", video.get_attribute("href") or "")
        expect(page.locator(f"[data-testid=winner-{second}]")).to_contain_text("优秀")
        expect(page.locator(f"[data-testid=winner-{third}]")).to_have_count(0)
        winner.locator("summary").click()
        expect(winner.locator(".deeds-text")).to_contain_text("扎根基层二十年")
        expect(page.locator("#ledger-head")).to_have_text(head)
        expect(page.locator("[data-testid=weights]")).to_contain_text("大众投票")
        # Nothing wider than the phone.
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
        shoot(page, "h5-publicity-phone")

        # An objection about the winner, with a picture as proof.
        proof = tmp_path / "proof.png"
        proof.write_bytes(PNG)
        winner.get_by_text("对此提出异议").click()
        expect(page.locator("#objection-nominee")).to_have_value(first)
        page.fill("#objection-name", "王先生")
        page.fill("#objection-phone", "138 0000 0000")
        page.fill("#objection-text", "该获奖人所述事迹与实际情况不符，请核实。")
        page.set_input_files("#objection-file", str(proof))
        page.click("#objection-submit")
        filed = page.locator("[data-testid=objection-filed]")
        expect(filed).to_contain_text("异议已收到")
        number = int(re.search(r"#(\d+)", filed.inner_text()).group(1))  # type: ignore[union-attr]
        shoot(page, "h5-objection-filed-phone")

        # The script refuses a file that is neither an image nor a PDF before sending it.
        page.goto(f"{live.url}/c/v1/publicity/objection")
        notes = tmp_path / "notes.txt"
        notes.write_text("不是图片")
        page.set_input_files("#objection-file", str(notes))
        expect(page.locator("#objection-error")).to_contain_text("附件只能是")

        # The same person again: refused by the per-person limit, the message on the form.
        page.set_input_files("#objection-file", [])
        page.fill("#objection-name", "王先生")
        page.fill("#objection-phone", "13800000000")
        page.fill("#objection-text", "再次提出同样的异议，请核实。")
        page.click("#objection-submit")
        expect(page.locator("#objection-error")).to_contain_text("已达上限")
        expect(page.locator("[data-testid=objection-filed]")).to_have_count(0)
        shoot(page, "h5-objection-limited-phone")

        # The committee answers; the page publishes the answer, never the contact.
        _ok(
            app.test_client().post(
                f"/api/v1/admin/campaigns/v1/objections/{number}",
                json={"decision": "dismissed", "answer": "经核实，事迹材料属实，异议不成立。"},
                headers=org.headers("admin"),
            )
        )
        page.goto(f"{live.url}/c/v1/publicity#answers")
        answer = page.locator(f"[data-testid=answer-{number}]")
        expect(answer).to_contain_text("经核实，事迹材料属实")
        expect(answer).to_contain_text("已驳回")
        expect(page.locator("body")).not_to_contain_text("13800000000")
        expect(page.locator("#answers")).not_to_contain_text("王先生")
