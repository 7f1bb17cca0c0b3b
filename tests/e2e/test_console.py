"""The committee console in a desktop browser: a committee member runs a fraud scan, reads a
flag's evidence, confirms it, and sees the nominee's count drop on the console and the H5 page."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from playwright.sync_api import expect

from core import device
from tests.e2e.conftest import LiveServer
from tests.e2e.data import run_worker, staff_login
from tests.factories import Org
from voting import services as voting_services


def test_committee_confirms_a_fraud_flag_and_the_count_drops(
    app: Flask, org: Org, live: LiveServer, desktop: Any, shoot: Any
) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    # One phone (its browser holds the device cookie the page's beacon set) behind eight WeChat
    # identities, all for the same nominee; three organic votes, each from its own phone.
    client = app.test_client()
    assert client.post("/c/v1/beacon").status_code == 204
    cookie = client.get_cookie(device.DEVICE_COOKIE)
    assert cookie is not None
    with app.test_request_context():
        phone_id = device.read(cookie.value)
    assert phone_id
    for voter in range(100, 108):
        answer = client.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[0]},
            headers=org.voter(voter),
            environ_base={"REMOTE_ADDR": f"10.1.{voter}.7"},
        )
        assert answer.status_code == 201, answer.json
    for voter, number in ((200, numbers[0]), (201, numbers[0]), (202, numbers[1])):
        phone = app.test_client()
        assert phone.post("/c/v1/beacon").status_code == 204
        answer = phone.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": number},
            headers=org.voter(voter),
            environ_base={"REMOTE_ADDR": f"172.20.{voter}.9"},
        )
        assert answer.status_code == 201
    with app.app_context():
        voting_services.drain_campaign("v1")

    page = desktop
    staff_login(page, live.url, "console", "admin", "/console/c/v1/fraud")
    page.click("#scan-start")
    # The scan is queued by the page's request; only then can the worker pick it up.
    expect(page.locator("#scan-status")).to_have_attribute(
        "data-status", re.compile("queued|running")
    )
    run_worker(app)
    expect(page.locator("#scan-status")).to_have_attribute("data-status", "done", timeout=20_000)
    page.reload()
    flag = page.locator("[data-testid^=flag-]").first
    expect(flag).to_be_visible()
    flag.click()
    expect(page.locator("#flag-devices")).to_contain_text(phone_id)
    valid = page.locator(f"[data-testid=nominee-valid-{numbers[0]}]")
    expect(valid).to_contain_text("10")
    shoot(page, "console-fraud-desktop")
    page.fill("#flag-reason", "同一部手机切换八个微信号集中投票")
    page.click("#flag-confirm")
    expect(page.locator("#flag-state")).to_have_attribute("data-status", "confirmed")
    expect(valid).to_contain_text("2")
    # The public sees the lower count at once.
    page.goto(f"{live.url}/c/v1/n/{numbers[0]}")
    expect(page.locator("#nominee-votes")).to_have_text("2")
