"""The campaign under test, made through the app's own services, and its voters, made through the
public API (``POST /api/v1/voters/device``)."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from datetime import timedelta
from typing import Any

from flask import Flask

SLUG = "chaos"
NOMINEES = 30
# Every voter may vote once for each nominee per day, for all of them: each voter carries
# NOMINEES votes. Counts are shown; the velocity hold is set out of reach (one client sends
# thousands of votes a minute, spread evenly: a real pace check would hold them).
RULES = {
    "votes_per_day": NOMINEES,
    "votes_per_nominee_per_day": 1,
    "ip_soft_limit": 0,
    "velocity_floor": 1_000_000,
}


def harness_app(env: dict[str, str]) -> Flask:
    """The app, in this process, pointed at the private services (for set-up and checks).

    Passwords made here use cheap argon2 parameters: nobody logs in during the run."""
    os.environ.update(env)
    from core import create_app

    return create_app({"ARGON2_PARAMS": {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}})


def make_campaign(
    app: Flask,
    *,
    slug: str = SLUG,
    nominees: int = NOMINEES,
    rules: dict[str, Any] | None = None,
) -> list[str]:
    """A province, a hospital, its clerk and an admin; the campaign with one category and
    ``nominees`` doctors taken through create → submit → approve; then the voting phase."""
    from campaigns import categories as campaign_categories
    from campaigns import services as campaign_services
    from campaigns.schemas import CampaignCreateSchema
    from core.extensions import db
    from core.types import utcnow
    from nominations import services as nomination_services
    from nominations.schemas import NominationCreateSchema

    with app.app_context():
        campaign_services.create_unit("CHAOS-P", "混沌测试省卫健委", "province")
        campaign_services.create_unit("CHAOS-H", "混沌测试人民医院", "institution", "CHAOS-P")
        admin = campaign_services.create_account("chaos-admin", "chaos-admin-pw", "admin")
        clerk = campaign_services.create_account("chaos-clerk", "chaos-clerk-pw", "unit", "CHAOS-H")
        now = utcnow()
        campaign = campaign_services.create_campaign(
            CampaignCreateSchema().load(
                {
                    "slug": slug,
                    "title": "混沌测试评选",
                    "organizer": "评选活动办公室",
                    "nomination_start": (now - timedelta(days=1)).isoformat(),
                    "nomination_end": (now + timedelta(days=1)).isoformat(),
                    "voting_start": (now - timedelta(minutes=5)).isoformat(),
                    "voting_end": (now + timedelta(days=2)).isoformat(),
                    "rules": dict(RULES if rules is None else rules),
                    "weights": {"public": 30, "jury": 70},
                }
            )
        )
        campaign_categories.add_category(
            campaign,
            {
                "code": "doctor",
                "name": "最美医生",
                "prefix": "D",
                "award_count": 10,
                "max_per_unit": nominees,
            },
        )
        campaign_services.change_phase(campaign, "nominating", None)
        numbers = []
        for index in range(nominees):
            body = {
                "category": "doctor",
                "name": f"候选人{index + 1:02d}",
                "gender": "female" if index % 2 else "male",
                "title": "主治医师",
                "department": "急诊科",
                "summary": "扎根基层二十年",
                "deeds": "事迹" * 200,
                "unit_opinion": "同意推荐",
            }
            nomination = nomination_services.create(
                clerk, campaign, NominationCreateSchema().load(body)
            )
            nomination_services.submit(clerk, nomination)
            nomination_services.review(admin, nomination, "approve", None)
            numbers.append(nomination.number)
        campaign_services.change_phase(campaign, "voting", None)
        db.session.commit()
        db.session.remove()
    return numbers


def _device_voter(base_url: str, index: int) -> str:
    request = urllib.request.Request(  # noqa: S310 - our own loopback URL
        f"{base_url}/api/v1/voters/device",
        data=json.dumps({"device_id": f"chaos-device-{index:07d}"}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: dict[str, Any] = json.loads(response.read())
    return str(body["voter_token"])


class VoterPool:
    """Voter tokens from the demo device identity (``POST /api/v1/voters/device``, one device
    id per voter), made ahead of the load: ``fill`` makes the first ones, then a thread keeps
    ``ahead`` voters more than the load has reached. While a fault makes the endpoint fail, the
    thread retries; the load only waits if it catches up (counted as ``starved_s``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.tokens: list[str] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wanted = 0
        self._cond = threading.Condition()

    def fill(self, count: int, threads: int = 4) -> None:
        made: dict[int, str] = {}
        failures: list[str] = []
        start = len(self.tokens)
        cursor = iter(range(start, start + count))
        lock = threading.Lock()

        def work() -> None:
            while not failures:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                try:
                    token = _device_voter(self.base_url, index)
                except Exception as exc:
                    failures.append(f"device voter {index}: {exc}")
                    return
                with lock:
                    made[index] = token

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        if failures:
            raise RuntimeError(failures[0])
        with self._cond:
            self.tokens.extend(made[i] for i in sorted(made))
            self._cond.notify_all()

    def keep_ahead(self, ahead: int) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                with self._cond:
                    short = self._wanted + ahead - len(self.tokens)
                if short <= 0:
                    self._stop.wait(0.2)
                    continue
                index = len(self.tokens)
                try:
                    token = _device_voter(self.base_url, index)
                except Exception:
                    self.errors += 1
                    self._stop.wait(0.5)  # a fault is going on; try again shortly
                    continue
                with self._cond:
                    self.tokens.append(token)
                    self._cond.notify_all()

        self._thread = threading.Thread(target=loop, name="voter-pool", daemon=True)
        self._thread.start()

    def get(self, index: int, stop: threading.Event) -> str | None:
        """Voter ``index``'s token, waiting for the pool to make it; None once stopped."""
        with self._cond:
            self._wanted = max(self._wanted, index + 1)
            while index >= len(self.tokens):
                if stop.is_set() or self._stop.is_set():
                    return None
                self._cond.wait(0.2)
            return self.tokens[index]

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=15)
