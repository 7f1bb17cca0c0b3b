"""The share poster on a phone (390×844, WeChat's user agent): the poster opens as an image, its
QR code is read back from the screenshot, and the code leads to the nominee's page."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import zxingcpp
from flask import Flask
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import services as nomination_services
from nominations.models import Nomination
from tests.e2e.conftest import LiveServer
from tests.factories import Org

NOMINEE_PAGE = (
    Path(__file__).resolve().parents[2] / "pages" / "templates" / "pages" / "h5" / "nominee.html"
)


NATURAL_SIZE = "() => [document.images[0].naturalWidth, document.images[0].naturalHeight]"


def _portrait() -> bytes:
    """A made-up portrait: a warm background and a head-and-shoulders silhouette."""
    image = Image.new("RGB", (900, 1200), (236, 226, 214))
    draw = ImageDraw.Draw(image)
    draw.ellipse([300, 220, 600, 560], fill=(120, 90, 70))
    draw.rounded_rectangle([180, 600, 720, 1200], 120, fill=(240, 244, 248))
    draw.rectangle([420, 600, 480, 900], fill=(70, 110, 170))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def _nominee_with_photo(app: Flask, org: Org) -> str:
    now = utcnow()
    org.campaign(
        "v1",
        max_per_unit=50,
        title=f"{now.year}年度青山县“十大最美医生”“十大最美护士”评选",
        organizer="青山县卫生健康局",
        nomination_start=(now - timedelta(days=2)).isoformat(),
        nomination_end=(now + timedelta(days=1)).isoformat(),
        voting_start=(now - timedelta(hours=1)).isoformat(),
        voting_end=(now + timedelta(days=3)).isoformat(),
    )
    nid = org.nomination("v1", name="李晓梅")
    response = app.test_client().post(
        f"/api/v1/nominations/{nid}/photo",
        data=_portrait(),
        headers={**org.headers("unit-h1"), "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination_services.submit(org.account("unit-h1"), nomination)
        nomination_services.review(org.account("admin"), nomination, "approve", None)
        campaign = db.session.query(Campaign).filter_by(slug="v1").one()
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        number = nomination.number
        db.session.remove()
    assert number
    return number


def _decode(path: Path) -> list[str]:
    with Image.open(path) as shot:
        return [r.text for r in zxingcpp.read_barcodes(shot.convert("RGB"))]


def test_poster_opens_on_a_phone_and_its_qr_code_leads_to_the_nominee(
    app: Flask, org: Org, live: LiveServer, phone: Any, shoot: Any
) -> None:
    number = _nominee_with_photo(app, org)
    page = phone
    response = page.goto(f"{live.url}/c/v1/n/{number}/poster.png")
    assert response is not None and response.status == 200
    assert response.headers["content-type"] == "image/png"
    size = page.evaluate(
        "() => [document.images[0].naturalWidth, document.images[0].naturalHeight]"
    )
    assert size == [750, 1334]
    # The phone shows the whole poster, shrunk to the screen; the code is read off the screen.
    shot = shoot(page, "h5-poster-phone")
    assert _decode(shot) == [f"{live.url}/c/v1/n/{number}"]
    page.goto(_decode(shot)[0])
    expect(page.locator("#nominee-name")).to_have_text("李晓梅")


@pytest.mark.skipif(
    "_poster_button.html" not in NOMINEE_PAGE.read_text(encoding="utf-8"),
    reason="nominee.html does not include pages/h5/_poster_button.html yet",
)
def test_the_nominee_page_button_opens_the_poster(
    app: Flask, org: Org, live: LiveServer, phone: Any
) -> None:
    number = _nominee_with_photo(app, org)
    page = phone
    page.goto(f"{live.url}/c/v1/n/{number}")
    button = page.locator(f"[data-testid=poster-{number}]")
    expect(button).to_have_text("生成拉票海报")
    button.click()
    page.wait_for_url(f"**/c/v1/n/{number}/poster.png")
    size = page.evaluate(
        "() => [document.images[0].naturalWidth, document.images[0].naturalHeight]"
    )
    assert size == [750, 1334]
