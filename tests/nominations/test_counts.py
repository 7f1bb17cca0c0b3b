"""count_by_status: what list_for shows each staff account, counted per status for many campaigns
in one statement."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from awards import services as award_services
from campaigns import services as campaign_services
from campaigns.models import Campaign
from core.errors import Forbidden
from core.extensions import db
from nominations import services
from nominations.models import STATUSES, Nomination
from tests.factories import Org, counted

# Every status a nomination can be in (a recommended submission counts apart).
MIX = ("draft", "submitted", "recommended", "returned", "approved", "rejected", "withdrawn")
# The bureau that recommends each unit's nominations (tests.factories.Org's tree).
BUREAU = {"unit-h1": "rev-k1", "unit-h2": "rev-k1", "unit-h3": "rev-k2"}
STAFF = ("admin", "rev-k1", "rev-k2", "rev-c", "unit-h1", "unit-h3")


def mixed_campaign(app: Flask, org: Org, slug: str, clerks: tuple[str, ...], phase: str) -> None:
    """A campaign with one nomination in each status of MIX per clerk, moved to ``phase``, with
    the judge assigned to both its categories."""
    org.campaign(slug, max_per_unit=50)
    made: list[tuple[int, str, str]] = []
    for clerk in clerks:
        for status in MIX:
            start = status if status in ("draft", "returned", "approved") else "submitted"
            nomination_id = org.nomination(slug, unit_user=clerk, status=start, name=f"{status}人")
            made.append((nomination_id, clerk, status))
    with app.app_context():
        for nomination_id, clerk, status in made:
            nomination = db.session.get(Nomination, nomination_id)
            assert nomination is not None
            if status == "recommended":
                reviewer = org.account(BUREAU[clerk])
                services.review(reviewer, nomination, "approve", None)
            elif status == "rejected":
                services.review(org.account("admin"), nomination, "reject", "不符合")
            elif status == "withdrawn":
                services.withdraw(org.account(clerk), nomination, None)
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        assert campaign is not None
        if phase != campaign.phase:
            campaign_services.change_phase(campaign, phase, None)
        award_services.assign_judge(campaign, "judge", ["doctor", "nurse"])
        db.session.commit()
        db.session.remove()


@pytest.fixture
def campaigns(app: Flask, org: Org) -> list[str]:
    mixed_campaign(app, org, "one", ("unit-h1",), "nominating")
    mixed_campaign(app, org, "two", ("unit-h1", "unit-h2", "unit-h3"), "reviewing")
    org.campaign("empty")
    return ["one", "two", "empty"]


def _listed(org: Org, username: str, campaign: Campaign, **filters: Any) -> int:
    return services.list_for(org.account(username), campaign, per_page=0, **filters)[1]


def test_the_counts_are_what_list_for_shows_each_account(
    app: Flask, org: Org, campaigns: list[str]
) -> None:
    with app.app_context():
        loaded = [campaign_services.get_campaign(slug) for slug in campaigns]
        for username in STAFF:
            counts = services.count_by_status(org.account(username), loaded)
            assert list(counts) == [campaign.id for campaign in loaded]
            for campaign in loaded:
                mine = counts[campaign.id]
                expected = {
                    status: _listed(org, username, campaign, status=status)
                    for status in STATUSES
                    if status not in ("draft", "submitted")
                }
                expected["submitted"] = _listed(
                    org, username, campaign, status="submitted", recommended=False
                )
                expected["recommended"] = _listed(
                    org, username, campaign, status="submitted", recommended=True
                )
                # Drafts as the unfiltered list shows them: the unit's own, nobody else's.
                expected["draft"] = (
                    _listed(org, username, campaign, status="draft")
                    if org.account(username).role == "unit"
                    else 0
                )
                assert mine == expected, (username, campaign.slug)
                assert sum(mine.values()) == _listed(org, username, campaign)


def test_each_account_counts_only_what_it_may_see(
    app: Flask, org: Org, campaigns: list[str]
) -> None:
    with app.app_context():
        two = campaign_services.get_campaign("two")
        by_user = {
            username: services.count_by_status(org.account(username), [two])[two.id]
            for username in STAFF
        }
    # Three units, one nomination of each status: the committee sees all but the drafts.
    assert by_user["admin"] == {status: 3 for status in MIX} | {"draft": 0}
    assert by_user["rev-c"] == by_user["admin"]
    # K1 holds H1 and H2, K2 holds H3; a reviewer never sees a draft.
    assert by_user["rev-k1"] == {status: 2 for status in MIX} | {"draft": 0}
    assert by_user["rev-k2"] == {status: 1 for status in MIX} | {"draft": 0}
    # A clerk counts its own unit's, drafts included.
    assert by_user["unit-h3"] == {status: 1 for status in MIX}


def test_one_statement_counts_every_campaign(app: Flask, org: Org, campaigns: list[str]) -> None:
    with app.app_context():
        loaded = [campaign_services.get_campaign(slug) for slug in campaigns]
        for username in STAFF:
            account = org.account(username)
            assert account.unit is None or account.unit.path  # loaded before counting
            with counted() as seen:
                services.count_by_status(account, loaded)
            assert len(seen) == 1, (username, seen)
            with counted() as seen:
                assert services.count_by_status(account, []) == {}
            assert seen == []


def test_a_judge_may_not_count(app: Flask, org: Org, campaigns: list[str]) -> None:
    with app.app_context():
        loaded = [campaign_services.get_campaign(slug) for slug in campaigns]
        with pytest.raises(Forbidden):
            services.count_by_status(org.account("judge"), loaded)
