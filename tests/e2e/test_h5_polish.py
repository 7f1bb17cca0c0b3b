"""The polished H5 page on a phone (Chromium at 390×844): the banner the committee uploads from the
console, the stats bar, the two-column photo grid, the vote buttons' 已投 / 明日再来, the
ranking's podium and gaps, the title's wrapping between words and a toast as wide as its
sentence."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import services as nomination_services
from nominations.models import Nomination
from tests.e2e.conftest import PHONE, LiveServer
from tests.e2e.data import NAMES, staff_login
from tests.factories import Org
from voting import services as voting_services

SEGMENT = "最美医务工作者”评选"


def _portrait(seed: int) -> bytes:
    image = Image.new("RGB", (600, 800), (236 - seed * 9, 226, 214))
    draw = ImageDraw.Draw(image)
    draw.ellipse([200, 150, 400, 380], fill=(120, 90, 70))
    draw.rounded_rectangle([120, 400, 480, 800], 80, fill=(240, 244, 248))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=85)
    return out.getvalue()


def _banner(path: Path) -> Path:
    image = Image.new("RGB", (1500, 800), (200, 16, 46))
    draw = ImageDraw.Draw(image)
    for x in range(0, 1500, 120):
        draw.rectangle([x, 600, x + 60, 800], fill=(244, 180, 0))
    image.save(path, format="PNG")
    return path


def _campaign(app: Flask, org: Org, nominees: int = 6) -> list[str]:
    """A campaign in voting whose title has a long quoted segment, nominees with photos."""
    now = utcnow()
    org.campaign(
        "v1",
        max_per_unit=50,
        title=f"{now.year}年度青山县“最美医生”“最美护士”“最美医务工作者”评选",
        organizer="青山县卫生健康局",
        description="寻找身边的好医生、好护士。",
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now - timedelta(hours=1)).isoformat(),
        voting_end=(now + timedelta(days=3, hours=5)).isoformat(),
        rules={
            "votes_per_day": 2,
            "votes_per_nominee_per_day": 1,
            "ip_soft_limit": 0,
            "velocity_factor": 0,
        },
    )
    client = app.test_client()
    ids = []
    for i in range(nominees):
        unit = ("unit-h1", "unit-h2", "unit-h3")[i % 3]
        nid = org.nomination("v1", unit_user=unit, name=NAMES[i])
        if i < 4:
            sent = client.post(
                f"/api/v1/nominations/{nid}/photo",
                data=_portrait(i),
                headers={**org.headers(unit), "Content-Type": "image/jpeg"},
            )
            assert sent.status_code == 201, sent.get_json()
        ids.append((nid, unit))
    with app.app_context():
        for nid, unit in ids:
            nomination = db.session.get(Nomination, nid)
            nomination_services.submit(org.account(unit), nomination)
            nomination_services.review(org.account("admin"), nomination, "approve", None)
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        numbers = [db.session.get(Nomination, nid).number for nid, _ in ids]
        db.session.remove()
    return numbers


def _phone(playwright_browser: Any) -> Any:
    """A phone browser outside WeChat: it votes with the demo device identity."""
    context = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    return context


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box  # type: ignore[no-any-return]


# Each character's line (its box's top) in the title, by character (over its text nodes: the
# title comes with <wbr> between its words).
TITLE_LINES = """() => {
  const h1 = document.getElementById('campaign-title');
  const walker = document.createTreeWalker(h1, NodeFilter.SHOW_TEXT);
  const tops = [];
  let text = '', node;
  while ((node = walker.nextNode())) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i); range.setEnd(node, i + 1);
      const rects = range.getClientRects();
      tops.push(rects.length ? Math.round(rects[0].top) : null);
    }
    text += node.data;
  }
  return {text: text, tops: tops};
}"""


def test_the_polished_home_ranking_and_vote_buttons_on_a_phone(
    app: Flask,
    org: Org,
    live: LiveServer,
    desktop: Any,
    playwright_browser: Any,
    shoot: Any,
    tmp_path: Path,
) -> None:
    numbers = _campaign(app, org)
    # Votes cast before: third place for nominees 0 and 1 once the phone has voted for them.
    client = app.test_client()
    # (Voter ids far from the phone's own, which the database numbers from 1.)
    for number, voters in ((numbers[2], range(9001, 9004)), (numbers[3], range(9011, 9013))):
        for voter in voters:
            cast = client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
            )
            assert cast.status_code == 201
    with app.app_context():  # the drain stores them (and counts their voters)
        assert voting_services.drain_campaign("v1") == 5

    # The committee uploads the banner in the console's settings.
    staff_login(desktop, live.url, "console", "admin", "/console/c/v1/settings")
    expect(desktop.locator("#banner-none")).to_be_visible()
    desktop.set_input_files("#banner-file", str(_banner(tmp_path / "banner.png")))
    desktop.click("#banner-upload")
    expect(desktop.locator("#banner-notice")).to_contain_text("横幅图片已更新")
    expect(desktop.locator("#banner-preview")).to_be_visible()
    # (Visible is not loaded: wait for the image before reading its size.)
    desktop.wait_for_function("() => document.getElementById('banner-preview').naturalWidth > 0")
    assert desktop.evaluate("document.getElementById('banner-preview').naturalWidth") == 1500
    desktop.locator("#banner-panel").scroll_into_view_if_needed()
    shoot(desktop, "console-banner-desktop")

    context = _phone(playwright_browser)
    page = context.new_page()
    # (The page's beacon counts the view: wait for it, so the reload below shows it.)
    with page.expect_response(lambda r: r.url.endswith("/c/v1/beacon")):
        page.goto(f"{live.url}/c/v1")
    # The banner, loaded, across the screen.
    banner = page.locator("[data-testid=banner-image]")
    expect(banner).to_be_visible()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=banner-image]').naturalWidth > 0"
    )
    assert abs(_box(page, "[data-testid=banner-image]")["width"] - PHONE["width"]) < 2

    # The title wraps between words: 「最美医务工作者”评选」 stays on one line.
    lines = page.evaluate(TITLE_LINES)
    start = lines["text"].index(SEGMENT)
    segment_tops = set(lines["tops"][start : start + len(SEGMENT)])
    assert len(set(lines["tops"])) >= 2, "the title wraps at this width"
    assert len(segment_tops) == 1, (lines["text"], lines["tops"])

    # The stats bar: the 5 voters (drained) and their 5 votes so far, and this page view.
    expect(page.locator("#stat-voters")).to_have_text("5")
    expect(page.locator("#stat-votes")).to_have_text("5")
    expect(page.locator("#h5")).to_have_attribute("data-identity", "device")
    page.reload()
    expect(page.locator("#stat-views")).not_to_have_text("0")
    views = int(page.locator("#stat-views").inner_text())
    assert views >= 1

    # Two columns of photo cards.
    first, second, third = (_box(page, f"[data-testid=card-{n}]") for n in numbers[:3])
    assert abs(first["y"] - second["y"]) < 1 and second["x"] > first["x"] + first["width"] - 1
    assert third["y"] > first["y"] + first["height"] - 1 and abs(third["x"] - first["x"]) < 1
    assert first["width"] < PHONE["width"] / 2
    photo = page.locator(f"[data-testid=card-{numbers[0]}] img.photo")
    expect(photo).to_be_visible()
    shoot(page, "h5-polish-home-phone")

    # Vote: the button says 已投; the day's second vote spends the day: the rest say 明日再来.
    vote = page.locator(f"[data-testid=vote-{numbers[0]}]")
    expect(vote).to_have_text("投票")
    vote.click()
    expect(page.locator("#zm-toast")).to_contain_text("投票成功")
    expect(vote).to_have_text("已投")
    expect(page.locator(f"[data-testid=vote-{numbers[1]}]")).to_have_text("投票")
    page.wait_for_timeout(700)  # the button's pause after an answer
    page.click(f"[data-testid=vote-{numbers[1]}]")
    expect(page.locator(f"[data-testid=vote-{numbers[1]}]")).to_have_text("已投")
    for number in numbers[2:]:
        expect(page.locator(f"[data-testid=vote-{number}]")).to_have_text("明日再来")
    # The state is the voter's, from /me: it survives a reload (the body says 投票 for all).
    page.reload()
    expect(vote).to_have_text("已投")
    expect(page.locator(f"[data-testid=vote-{numbers[4]}]")).to_have_text("明日再来")
    expect(page.locator("#stat-votes")).to_have_text("7")
    # A tap on 明日再来 still asks the server; its refusal is a toast as wide as its sentence.
    page.click(f"[data-testid=vote-{numbers[4]}]")
    toast = page.locator("#zm-toast")
    expect(toast).to_contain_text("今天的票已经投完了，明天再来吧")
    box = _box(page, "#zm-toast")
    assert box["width"] > PHONE["width"] * 0.55, box  # not squeezed into half the screen
    assert box["height"] < 50, box  # one line
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shoot(page, "h5-polish-spent-phone")

    # The ranking: photos, the podium (2nd, 1st, 3rd from the left) and the gaps.
    page.click("[data-testid=nav-ranking]")
    expect(page.locator("[data-testid=podium]")).to_be_visible()
    p1, p2, p3 = (_box(page, f"[data-testid=podium-{i}]") for i in (1, 2, 3))
    assert p2["x"] < p1["x"] < p3["x"]
    assert p1["height"] > p2["height"] and p1["height"] > p3["height"]
    expect(page.locator("[data-testid=podium-1]")).to_contain_text(NAMES[2])
    expect(page.locator("[data-testid=podium-1] img.podium-photo")).to_be_visible()
    expect(page.locator(f"[data-testid=gap-{numbers[3]}]")).to_have_text("距上一名差 1 票")
    expect(page.locator(f"[data-testid=rank-{numbers[0]}]")).to_contain_text("距上一名差 1 票")
    expect(page.locator(f"[data-testid=rank-{numbers[2]}]")).not_to_contain_text("距上一名")
    expect(page.locator(f"[data-testid=rank-{numbers[2]}] img.rank-photo")).to_be_visible()
    expect(page.locator(f"[data-testid=rank-{numbers[5]}] .rank-photo.placeholder")).to_be_visible()
    # The navigation: 我的投票 always, 公示 not before the winners are published.
    expect(page.locator("[data-testid=nav-my-votes]")).to_have_attribute("href", "/c/v1/my-votes")
    expect(page.locator("[data-testid=nav-publicity]")).to_have_count(0)
    nav = _box(page, "nav.tabbar")
    assert nav["y"] + nav["height"] <= PHONE["height"] + 1
    shoot(page, "h5-polish-ranking-phone")
    context.close()
