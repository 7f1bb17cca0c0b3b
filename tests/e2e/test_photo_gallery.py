"""The photo gallery in a browser: the clerk uploads several photos at once in the portal (up to
six), chooses the cover, deletes one; the public nominee page shows them in a strip that
scrolls sideways without making the page wider than the phone."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from core.extensions import db
from nominations import services as nomination_services
from nominations.models import Nomination
from tests.e2e.conftest import DESKTOP, PHONE, LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org

COLOURS = [
    (200, 40, 40),
    (40, 160, 60),
    (40, 60, 200),
    (200, 160, 40),
    (120, 40, 160),
    (40, 160, 160),
]


def _files(tmp_path: Path, count: int, start: int = 0) -> list[str]:
    paths = []
    for index in range(start, start + count):
        path = tmp_path / f"photo-{index}.jpg"
        out = io.BytesIO()
        Image.new("RGB", (300, 400), COLOURS[index % len(COLOURS)]).save(out, format="JPEG")
        path.write_bytes(out.getvalue())
        paths.append(str(path))
    return paths


def _ids(page: Any) -> list[int]:
    return [
        int(i)
        for i in page.locator("#photo-gallery li").evaluate_all(
            "items => items.map(li => li.getAttribute('data-id'))"
        )
    ]


def test_clerk_builds_a_gallery_and_the_public_swipes_through_it(
    app: Flask, org: Org, live: LiveServer, playwright_browser: Any, shoot: Any, tmp_path: Path
) -> None:
    org.campaign("c1")
    nid = org.nomination("c1", name="周建华")
    clerk = playwright_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    clerk.route("https://**/*", lambda route: route.abort())
    clerk.set_default_timeout(20_000)
    page = clerk.new_page()
    staff_login(page, live.url, "portal", "unit-h1", f"/portal/nominations/{nid}")

    # Three at once: listed in upload order, the first the cover.
    page.set_input_files("#photo-input", _files(tmp_path, 3))
    expect(page.locator("#photo-status")).to_have_text("已上传 3 张照片")
    expect(page.locator("#photo-gallery li")).to_have_count(3)
    expect(page.locator("#photo-count")).to_have_text("3 / 6 张")
    first, second, third = _ids(page)
    expect(page.locator("#photo-gallery li").first).to_have_class(re.compile("is-cover"))
    expect(page.locator("#photo-current")).to_have_attribute("src", re.compile(f"/media/{first}/"))

    # The third becomes the cover: it moves to the front, the large picture follows.
    page.locator(f"[data-testid=photo-item-{third}] [data-action=cover]").click()
    expect(page.locator("#photo-status")).to_have_text("已设为封面")
    assert _ids(page) == [third, first, second]
    expect(page.locator("#photo-current")).to_have_attribute("src", re.compile(f"/media/{third}/"))
    shoot(page, "portal-gallery-desktop")

    # Deleting the cover (confirmed) makes the next one the cover.
    page.locator(f"[data-testid=photo-item-{third}] [data-action=delete]").click()
    expect(page.locator("#dialog")).to_contain_text("删除后下一张照片将成为封面")
    page.click("#dialog-ok")
    expect(page.locator("#photo-status")).to_have_text("照片已删除")
    assert _ids(page) == [first, second]
    expect(page.locator(f"[data-testid=photo-item-{first}]")).to_have_class(re.compile("is-cover"))

    # Five more chosen with room for four: four go up, the picker closes at six.
    page.set_input_files("#photo-input", _files(tmp_path, 5, start=3))
    expect(page.locator("#photo-status")).to_contain_text("另 1 张未上传")
    expect(page.locator("#photo-gallery li")).to_have_count(6)
    expect(page.locator("#photo-input")).to_be_disabled()
    # After a reload the page says the same.
    page.reload()
    expect(page.locator("#photo-gallery li")).to_have_count(6)
    expect(page.locator("#photo-input")).to_be_disabled()
    clerk.close()

    with app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination_services.submit(org.account("unit-h1"), nomination)
        nomination_services.review(org.account("admin"), nomination, "approve", None)
        db.session.commit()
        number = nomination.number
        db.session.remove()

    voter = playwright_browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    voter.route("https://**/*", lambda route: route.abort())
    voter.set_default_timeout(20_000)
    page = voter.new_page()
    page.goto(f"{live.url}/c/c1/n/{number}")
    expect(page.locator(".profile .photo.large")).to_have_attribute(
        "src", re.compile(f"/media/{first}/")
    )
    strip = page.locator(".gallery-strip")
    expect(strip.locator("img")).to_have_count(6)
    strip.scroll_into_view_if_needed()
    expect(strip.locator("img").first).to_have_js_property("complete", True)
    sizes = strip.evaluate(
        "s => ({scroll: s.scrollWidth, client: s.clientWidth,"
        " page: document.documentElement.scrollWidth, view: window.innerWidth})"
    )
    assert sizes["scroll"] > sizes["client"], sizes  # the strip scrolls sideways
    assert sizes["page"] <= sizes["view"], sizes  # the page does not
    # Lazy images; the last one, off to the side, loads once scrolled to.
    last = strip.locator("img").last
    assert last.get_attribute("loading") == "lazy"
    last.scroll_into_view_if_needed()
    expect(last).to_have_js_property("complete", True)
    assert last.evaluate("img => img.naturalWidth") > 0
    shoot(page, "h5-gallery-phone")
    voter.close()
