"""The awards reads batch: a result, a judge's queue, the judging progress and the console's
judging overview take as many SQL statements for a large campaign as for a small one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from awards import services
from campaigns import services as campaign_services
from campaigns.models import Account
from core.extensions import db
from tests.awards.test_results import CRITERIA, _sheet
from tests.factories import PASSWORD, Org, counted
from tests.pages.browser import staff_login
from voting import services as voting_services


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def _campaign(
    app: Flask, client: FlaskClient, org: Org, slug: str, nominees: int, judges: int
) -> tuple[list[str], list[str]]:
    """A campaign in judging with ``nominees`` doctors (units H1, H2, H3 in turn), a few valid
    votes each, and ``judges`` judges (every second one of unit H1, so some nominees are theirs)
    who all scored every nominee they may score; the first judge declared a conflict and left a
    draft, and the organiser scored each nominee. The nominees' numbers and the judges' names."""
    numbers = org.voting_campaign(slug, nominees=nominees, award_count=2)
    voter = 0
    for position, number in enumerate(numbers):
        for _ in range(position % 4 + 1):
            voter += 1
            _ok(
                client.post(
                    f"/api/v1/campaigns/{slug}/votes",
                    json={"nominee": number},
                    headers=org.voter(voter + 1000 * nominees),
                ),
                201,
            )
    names = [f"{slug}-judge{i}" for i in range(judges)]
    with app.app_context():
        voting_services.drain_campaign(slug)
        for i, name in enumerate(names):
            unit = "H1" if i % 2 else None
            org.accounts[name] = campaign_services.create_account(name, PASSWORD, "judge", unit).id
        db.session.commit()
        units = {
            name: db.session.scalar(select(Account.unit_id).where(Account.username == name))
            for name in names
        }
        db.session.remove()
    admin = org.headers("admin")
    _ok(client.post(f"/api/v1/campaigns/{slug}/phase", json={"phase": "judging"}, headers=admin))
    _ok(
        client.put(
            f"/api/v1/admin/campaigns/{slug}/criteria", json={"items": CRITERIA}, headers=admin
        )
    )
    for name in names:
        _ok(
            client.post(
                f"/api/v1/admin/campaigns/{slug}/judges",
                json={"username": name, "categories": ["doctor"]},
                headers=admin,
            )
        )
    first = names[0]
    _ok(
        client.post(
            f"/api/v1/judging/{slug}/conflicts",
            json={"nominee": numbers[-1], "reason": "亲属"},
            headers=org.headers(first),
        ),
        201,
    )
    for name in names:
        queue = _ok(client.get(f"/api/v1/judging/{slug}/sheets", headers=org.headers(name)))
        scored = [item["number"] for item in queue["items"]]
        assert scored, units[name]
        for position, number in enumerate(scored):
            draft = name == first and position == 0
            _ok(
                client.put(
                    f"/api/v1/judging/{slug}/sheets/{number}",
                    json={"scores": _sheet(60 + position % 30), "submit": not draft},
                    headers=org.headers(name),
                )
            )
    for position, number in enumerate(numbers):
        _ok(
            client.put(
                f"/api/v1/admin/campaigns/{slug}/organizer-scores/{number}",
                json={"points": 50 + position, "reason": None},
                headers=admin,
            )
        )
    return numbers, names


@pytest.fixture
def campaigns(app: Flask, client: FlaskClient, org: Org) -> dict[str, tuple[list[str], list[str]]]:
    return {
        "small": _campaign(app, client, org, "small", nominees=2, judges=1),
        "large": _campaign(app, client, org, "large", nominees=9, judges=4),
    }


def _statements(app: Flask, call: Callable[[], Any]) -> int:
    with app.app_context():
        with counted() as seen:
            call()
        db.session.rollback()
        db.session.remove()
    return len(seen)


def _counts(app: Flask, org: Org, slug: str, judge: str) -> dict[str, int]:
    def campaign() -> Any:
        return campaign_services.get_campaign(slug)

    def account(username: str) -> Account:
        return org.account(username)

    # Each call loads the campaign (and the judge) first: the same few statements for both.
    return {
        "compute": _statements(
            app, lambda: services.compute(campaign(), account("admin"), "query count")
        ),
        "judge_queue": _statements(app, lambda: services.judge_queue(account(judge), campaign())),
        "progress": _statements(app, lambda: services.progress(campaign())),
    }


def _version_counts(app: Flask, client: FlaskClient, org: Org, slug: str) -> dict[str, int]:
    """Statements to read a draft's sensitivity and to adjust it (the draft is rescored)."""
    made = _ok(
        client.post(
            f"/api/v1/admin/campaigns/{slug}/results", json={}, headers=org.headers("admin")
        ),
        201,
    )
    version, nominee = made["version"], made["entries"][0]["number"]

    def sensitivity() -> Any:
        campaign = campaign_services.get_campaign(slug)
        return services.sensitivity(campaign, services.get_version(campaign, version))

    def adjust() -> Any:
        campaign = campaign_services.get_campaign(slug)
        draft = services.get_version(campaign, version)
        return services.adjust(campaign, draft, nominee, "exclude", "查实有违规")

    return {"sensitivity": _statements(app, sensitivity), "adjust": _statements(app, adjust)}


def test_reads_do_not_grow_with_judges_or_nominees(
    app: Flask, client: FlaskClient, org: Org, campaigns: dict[str, tuple[list[str], list[str]]]
) -> None:
    small = _counts(app, org, "small", campaigns["small"][1][0])
    large = _counts(app, org, "large", campaigns["large"][1][0])
    small.update(_version_counts(app, client, org, "small"))
    large.update(_version_counts(app, client, org, "large"))
    assert small == large, (small, large)
    # A small constant, not a count per nominee or judge.
    assert all(count <= 20 for count in large.values()), large


def _overview_counts(app: Flask, client: FlaskClient, slug: str) -> dict[str, int]:
    """Statements of the judging overview (service and console page) and the organiser's list."""

    def overview() -> Any:
        return services.judging_overview(campaign_services.get_campaign(slug))

    def organizer() -> Any:
        return services.organizer_scores(campaign_services.get_campaign(slug))

    def page() -> Any:
        response = client.get(f"/console/c/{slug}/judging")
        assert response.status_code == 200, response.get_data(as_text=True)[:500]

    return {
        "judging_overview": _statements(app, overview),
        "organizer_scores": _statements(app, organizer),
        "judging_page": _statements(app, page),
    }


def test_the_judging_overview_does_not_grow_with_judges_or_nominees(
    app: Flask, client: FlaskClient, campaigns: dict[str, tuple[list[str], list[str]]]
) -> None:
    staff_login(client, "admin", area="console")
    small = _overview_counts(app, client, "small")
    large = _overview_counts(app, client, "large")
    assert small == large, (small, large)
    assert all(count <= 20 for count in large.values()), large
