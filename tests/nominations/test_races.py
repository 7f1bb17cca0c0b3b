"""Concurrent approvals and submits: numbers stay unique and gapless, quotas hold."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask

from tests.factories import Org


def _race(app: Flask, calls: list[Callable[[Any], Any]]) -> list[Any]:
    """Run each call in its own thread with its own test client, released at the same moment."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[Any], Any]) -> None:
        client = app.test_client()
        barrier.wait()
        results[index] = call(client)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_approvals_get_unique_gapless_numbers(app: Flask, org: Org) -> None:
    org.campaign(max_per_unit=20)
    ids = [
        org.nomination(unit_user=user, status="submitted")
        for user in ("unit-h1", "unit-h2", "unit-h3")
        for _ in range(4)
    ]
    admin = org.headers("admin")

    def approve(nid: int) -> Callable[[Any], Any]:
        return lambda client: client.post(
            f"/api/v1/nominations/{nid}/review", json={"decision": "approve"}, headers=admin
        )

    responses = _race(app, [approve(nid) for nid in ids])
    assert [r.status_code for r in responses] == [200] * len(ids)
    numbers = sorted(r.json["number"] for r in responses)
    assert numbers == [f"D{i:03d}" for i in range(1, len(ids) + 1)]


def test_the_same_nomination_approved_twice_at_once_wins_once(app: Flask, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    admin = org.headers("admin")
    responses = _race(
        app,
        [
            lambda client: client.post(
                f"/api/v1/nominations/{nid}/review", json={"decision": "approve"}, headers=admin
            )
            for _ in range(5)
        ],
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409, 409]
    # The losers gave nothing away: the next approval in the category is D002.
    other = org.nomination(unit_user="unit-h2", status="submitted")
    nxt = app.test_client().post(
        f"/api/v1/nominations/{other}/review", json={"decision": "approve"}, headers=admin
    )
    assert nxt.json["number"] == "D002"


def test_racing_submits_cannot_exceed_the_unit_quota(app: Flask, org: Org) -> None:
    org.campaign(max_per_unit=1)
    drafts = [org.nomination() for _ in range(4)]
    clerk = org.headers("unit-h1")

    def submit(nid: int) -> Callable[[Any], Any]:
        return lambda client: client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk)

    responses = _race(app, [submit(nid) for nid in drafts])
    codes = sorted(r.status_code for r in responses)
    assert codes == [200, 409, 409, 409]
    assert sorted(org.status_of(nid) for nid in drafts) == ["draft", "draft", "draft", "submitted"]
