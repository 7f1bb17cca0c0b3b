"""The stamped recommendation form (盖章推荐表) at the review desk, in Chromium: a county whose
level requires one is refused 推荐上报 until it uploads its form in the desk's 盖章推荐表 box, then
passes; the city above sees the county's form with a download link and no upload of its own yet."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from flask import Flask
from PIL import Image
from playwright.sync_api import expect

from core.types import utcnow
from tests.e2e.conftest import LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org


def _pdf() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (120, 170), "white").save(out, "PDF")
    return out.getvalue()


def test_a_county_uploads_its_stamped_form_at_the_desk_before_passing_up(
    app: Flask, org: Org, live: LiveServer, desktop: Any, shoot: Any
) -> None:
    org.campaign()
    now = utcnow()
    body = {
        "levels": [
            {
                "unit_level": "county",
                "deadline": (now + timedelta(days=5)).isoformat(),
                "quotas": {"doctor": 1, "nurse": 1},
                "stamped_form": True,
            },
            {
                "unit_level": "city",
                "deadline": (now + timedelta(days=8)).isoformat(),
                "quotas": {"doctor": 1, "nurse": 1},
            },
        ]
    }
    answer = app.test_client().put(
        "/api/v1/campaigns/c1/levels", json=body, headers=org.headers("admin")
    )
    assert answer.status_code == 200, answer.json
    nid = org.nomination(status="submitted", name="赵春梅")

    page = desktop
    staff_login(page, live.url, "console", "rev-k1", f"/console/c/c1/review?id={nid}")
    box = page.locator("[data-testid=level-forms]")
    expect(box).to_be_visible()
    expect(box.locator("[data-testid=level-form-needed]")).to_contain_text("县（旗）级")
    county = box.locator("[data-testid=level-form-county]")
    expect(county).to_have_attribute("data-uploaded", "false")

    # Passing without the form: the server's refusal is shown, nothing moves.
    page.locator("#decision-recommend").click()
    expect(page.locator("#decision-error")).to_contain_text("加盖公章的推荐表")

    county.locator("[data-testid=level-form-input]").set_input_files(
        {"name": "县级推荐表.pdf", "mimeType": "application/pdf", "buffer": _pdf()}
    )
    expect(county).to_have_attribute("data-uploaded", "true")
    expect(county.locator("[data-testid=level-form-current]")).to_contain_text("PDF 1 页 · 2 KB")
    expect(box.locator("[data-testid=level-form-needed]")).to_have_count(0)
    expect(page.locator("#decision-error")).to_be_hidden()
    shoot(page, "level-forms-county-desk")

    page.locator("#decision-comment").fill("县级审核同意上报")
    page.locator("#decision-recommend").click()
    expect(page.locator("#detail-levels")).to_contain_text("县级审核同意上报")
    # Passed up: the box is drawn again and the county can no longer replace its form.
    expect(county.locator("[data-testid=level-form-input]")).to_have_count(0)

    city = desktop.context.browser.new_context(viewport={"width": 1366, "height": 900})
    city.route("https://**/*", lambda route: route.abort())
    above = city.new_page()
    staff_login(above, live.url, "console", "rev-c", f"/console/c/c1/review?id={nid}")
    seen = above.locator("[data-testid=level-form-county]")
    expect(seen).to_have_attribute("data-uploaded", "true")
    link = seen.locator("[data-testid=level-form-download]")
    expect(link).to_have_attribute("href", f"/api/v1/nominations/{nid}/level-forms/county")
    with above.expect_download() as download:
        link.click()
    assert download.value.suggested_filename.endswith(".pdf")
    city.close()
