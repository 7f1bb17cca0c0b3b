"""The settings page edits every part of the final score: the six weights (public, jury,
organiser, satisfaction, 同行互评, 领导点评) and the minimum number of answers before
satisfaction counts; a sum other than 100 is shown as it is typed and refused by the server."""

from __future__ import annotations

from typing import Any

from flask import Flask
from playwright.sync_api import expect

from tests.e2e.conftest import LiveServer
from tests.e2e.data import staff_login
from tests.factories import Org


def test_settings_save_all_the_weights(
    app: Flask, org: Org, live: LiveServer, desktop: Any
) -> None:
    org.campaign()
    page = desktop
    staff_login(page, live.url, "console", "admin", "/console/c/c1/settings")
    form = page.locator("#campaign-form")
    for name, value in (
        ("public", "30"),
        ("jury", "40"),
        ("organizer", "0"),
        ("satisfaction", "20"),
        ("peer", "5"),
        ("leader", "10"),
    ):
        form.locator(f"input[name='weights.{name}']").fill(value)
    # 105: the sum is flagged at once, and the server refuses it.
    expect(page.locator("#weights-sum")).to_have_text("各项之和须为 100，当前为 105。")
    page.click("#campaign-save")
    expect(page.locator("#campaign-error")).to_be_visible()
    form.locator("input[name='weights.leader']").fill("5")
    form.locator("input[name='weights.satisfaction_min_answers']").fill("50")
    expect(page.locator("#weights-sum")).to_have_text("各项之和须为 100，当前为 100。")
    page.click("#campaign-save")
    expect(page.locator("#campaign-saved")).to_be_visible()
    weights = (
        app.test_client().get("/api/v1/campaigns/c1", headers=org.headers("admin")).json["weights"]
    )
    assert weights == {
        "public": 30,
        "jury": 40,
        "organizer": 0,
        "satisfaction": 20,
        "peer": 5,
        "leader": 5,
        "satisfaction_min_answers": 50,
    }
    # Reloaded, the page shows what was saved.
    page.reload()
    expect(form.locator("input[name='weights.peer']")).to_have_value("5")
    expect(form.locator("input[name='weights.satisfaction_min_answers']")).to_have_value("50")
