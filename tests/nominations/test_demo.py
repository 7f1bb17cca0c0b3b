"""The demo: four campaigns walked through the real services — votes through the vote path and
the ledger (an intact chain), a brushing attack the scan flags, photos and a transcoded video, a
published result with an answered objection, a campaign where a clerk nominates at once, one
recommended level by level with nominations at every stage — and a second seed that changes
nothing."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import func, select

from awards import results
from awards.models import Objection, ScoreSheet
from campaigns.models import Account, Campaign
from core.cli import demo_domains
from core.extensions import db
from core.types import utcnow
from media.models import MediaAsset
from nominations import demo, demo_data, demo_levels, demo_people, demo_votes
from nominations.demo_campaigns import Report
from nominations.models import Nomination
from tests.pages.browser import csrf_from
from voting import fraud
from voting import services as voting_services
from voting.models import FraudFlag, Vote

PASSWORD = "demo-password-1"


def _campaign(slug: str) -> Campaign:
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    assert campaign is not None, slug
    return campaign


def _footprint() -> dict[str, Any]:
    counts: dict[str, Any] = {
        model.__name__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Campaign, Account, Nomination, Vote, MediaAsset, FraudFlag, Objection)
    }
    counts["views"] = sum(fraud.page_views(_campaign(demo.campaign_spec()["slug"])).values())
    return counts


def _page(app: Flask, username: str, area: str, path: str) -> str:
    """A page as the login sees it, logged in through the area's form like a browser."""
    client = app.test_client()
    token = csrf_from(client.get(f"/{area}/login").get_data(as_text=True))
    response = client.post(
        f"/{area}/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    return page.get_data(as_text=True)


def _login(app: Flask, username: str) -> dict[str, str]:
    response = app.test_client().post(
        "/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}


def test_the_demo_shows_the_whole_product(ctx: Flask) -> None:
    report = Report()
    logins = demo.seed(
        PASSWORD, demo_domains(), people=90, publicity_people=30, videos=1, report=report
    )
    assert {login["username"] for login in logins} >= {"admin", "unit-bs", "judge-wang"}
    slugs = list(report.campaigns)
    voting_slug, nurses_slug, village_slug, levels_slug = slugs
    assert report.campaigns == {
        voting_slug: "voting",
        nurses_slug: "publicity",
        village_slug: "nominating",
        levels_slug: "reviewing",
    }
    assert {login["username"] for login in logins} >= {"qs-bureau", "jn-city"}
    now = utcnow()

    # 1. Public voting: open now, with days of past votes in an intact chain.
    campaign = _campaign(voting_slug)
    assert campaign.phase == "voting" and campaign.is_voting_open()
    assert campaign.voting_start <= now - timedelta(days=3)
    tally = report.votes[voting_slug]
    stored = db.session.scalar(select(func.count(Vote.id)).where(Vote.campaign_id == campaign.id))
    assert stored == tally.votes > 300
    first = db.session.scalar(select(func.min(Vote.at)).where(Vote.campaign_id == campaign.id))
    last = db.session.scalar(select(func.max(Vote.at)).where(Vote.campaign_id == campaign.id))
    assert first is not None and last is not None
    assert first.replace(tzinfo=None) < (now - timedelta(days=2)).replace(tzinfo=None)
    assert last.replace(tzinfo=None) <= now.replace(tzinfo=None)
    assert voting_services.verify_chain(campaign)["ok"] is True
    # Page views through the beacon's counter, so 访问量 and view/vote ratios exist.
    assert sum(fraud.page_views(campaign).values()) >= tally.votes
    # The attack is a flag (medium or high), not a mere 观察, and the only nominee flagged.
    flags = db.session.scalars(
        select(FraudFlag).where(
            FraudFlag.campaign_id == campaign.id, FraudFlag.severity.in_(("medium", "high"))
        )
    ).all()
    assert any(f.rule == "device_reuse" and f.nominee_number == report.attack for f in flags)
    assert {f.nominee_number for f in flags} == {report.attack}
    # Every nominee has its photo; the video was transcoded through media's job.
    nominees = db.session.scalars(
        select(Nomination).where(
            Nomination.campaign_id == campaign.id, Nomination.status == "approved"
        )
    ).all()
    assert len(nominees) == 30
    ready = db.session.execute(
        select(MediaAsset.kind, func.count(MediaAsset.id))
        .join(Nomination, Nomination.id == MediaAsset.nomination_id)
        .where(
            Nomination.campaign_id == campaign.id,
            MediaAsset.status == "ready",
            MediaAsset.is_current.is_(True),
        )
        .group_by(MediaAsset.kind)
    ).all()
    assert dict(ready) == {"photo": 30, "video": 1}
    client = ctx.test_client()
    assert client.get(f"/c/{voting_slug}").status_code == 200
    listing = client.get(f"/api/v1/campaigns/{voting_slug}/nominees?per_page=50").json
    assert listing["total"] == 30

    # 2. In 公示: judges' sheets, a published result tied to the chain, an answered objection.
    nurses = _campaign(nurses_slug)
    assert nurses.phase == "publicity"
    assert voting_services.verify_chain(nurses)["ok"] is True
    sheets = db.session.scalars(select(ScoreSheet).where(ScoreSheet.campaign_id == nurses.id))
    statuses = [sheet.status for sheet in sheets]
    assert statuses == ["submitted"] * (len(demo_people.JUDGES) * len(demo_people.NURSES))
    version = results.published(nurses)
    assert version is not None and version.publicity_ends_at is not None
    assert version.publicity_ends_at.replace(tzinfo=None) > now.replace(tzinfo=None)
    assert version.ledger_votes == report.votes[nurses_slug].votes > 0
    assert len(results.winners_of(nurses, version)) == demo_people.NURSE_CATEGORY["award_count"]
    objection = db.session.scalar(select(Objection).where(Objection.campaign_id == nurses.id))
    assert objection is not None and objection.status == "dismissed" and objection.answer

    # 3. Open for nominations: the demo clerk nominates at once.
    village = _campaign(village_slug)
    assert village.phase == "nominating"
    made = client.post(
        f"/api/v1/campaigns/{village_slug}/nominations",
        json=demo_people.VILLAGE_EXAMPLE,
        headers=_login(ctx, "unit-bs"),
    )
    assert made.status_code == 201, made.json
    waiting = client.get(
        f"/api/v1/campaigns/{village_slug}/nominations", headers=_login(ctx, "qs-bureau")
    )
    assert waiting.status_code == 200 and waiting.json["total"] >= 2

    # 4. Level by level: each nomination where its stage says, the desks' counts and trails.
    _check_levels_campaign(ctx, levels_slug)

    # A second seed changes nothing.
    before = _footprint()
    again = Report()
    assert demo.seed(PASSWORD, demo_domains(), people=90, report=again) == []
    assert again.campaigns == {} and _footprint() == before


# Where each stage of demo_levels stands: (status, at_level, the bureau holding it).
WAITS = {
    "county": ("submitted", "county", "QS"),
    "returned": ("submitted", "county", "QS"),
    "city": ("submitted", "city", "JN-CITY"),
    "committee": ("submitted", "committee", None),
    "rejected": ("rejected", "county", "QS"),  # where it was rejected
}


def _check_levels_campaign(app: Flask, slug: str) -> None:
    """The chain, where each nomination waits, the returned and rejected ones' trails, and each
    desk's count through the API as the real reviewer accounts."""
    client = app.test_client()
    admin, county, city = (_login(app, name) for name in ("admin", "qs-bureau", "jn-city"))
    campaign = _campaign(slug)
    assert campaign.phase == "reviewing"

    chain = client.get(f"/api/v1/campaigns/{slug}/levels", headers=admin)
    assert chain.status_code == 200, chain.json
    assert [(lv["unit_level"], lv["quotas"], lv["locked"]) for lv in chain.json["levels"]] == [
        (name, quotas, False) for name, quotas in demo_levels.QUOTAS.items()
    ]

    listing = client.get(f"/api/v1/campaigns/{slug}/nominations?per_page=50", headers=admin)
    assert listing.status_code == 200 and listing.json["total"] == len(demo_levels.NOMINEES)
    ids = {item["name"]: item["id"] for item in listing.json["items"]}
    stages = {spec["name"]: spec["stage"] for spec in demo_levels.NOMINEES}
    assert set(stages.values()) == set(demo_levels.STAGES)
    details = {}
    for name, stage in stages.items():
        got = client.get(f"/api/v1/nominations/{ids[name]}", headers=admin).json
        details[name] = got
        assert (got["status"], got["at_level"], got["at_unit_code"]) == WAITS[stage], name
        trail = [(step["unit_level"], step["decision"]) for step in got["levels"]]
        expected = {
            "county": [],
            "city": [("county", "pass")],
            "committee": [("county", "pass"), ("city", "pass")],
            "returned": [("county", "pass"), ("city", "return")],
            "rejected": [("county", "reject")],
        }[stage]
        assert trail == expected, name
        assert got["recommended"] is (stage == "committee"), name

    # The returned one: back at the county, its county place freed, the city's reason kept.
    returned = next(details[n] for n, stage in stages.items() if stage == "returned")
    passed, back = returned["levels"]
    assert passed["holds_place"] is False and passed["actor_role"] == "reviewer"
    assert back["returned_to"] == "county" and back["comment"] == demo_levels.RETURN_REASON
    assert back["unit"] == "江南市卫生健康委员会" and back["actor"] == "江南市卫生健康委员会审核员"
    assert [r["action"] for r in returned["reviews"]] == ["submit", "pass_up", "level_return"]
    # The rejected one: rejected at the county with the county's reason.
    rejected = next(details[n] for n, stage in stages.items() if stage == "rejected")
    (refusal,) = rejected["levels"]
    assert refusal["unit"] == "青山县卫生健康局" and refusal["comment"] == demo_levels.REJECT_REASON
    assert [r["action"] for r in rejected["reviews"]] == ["submit", "level_reject"]

    # Each desk's count, as its reviewer: what waits at the county (the returned one included),
    # at the city, at the committee; places used are those still held.
    def waiting_at(stage_names: tuple[str, ...]) -> int:
        return sum(1 for stage in stages.values() if stage in stage_names)

    mine = client.get(f"/api/v1/campaigns/{slug}/levels", headers=county).json["mine"]
    assert (mine["unit_code"], mine["waiting"]) == ("QS", waiting_at(("county", "returned")))
    held = {
        code: sum(
            1
            for spec in demo_levels.NOMINEES
            if spec["category"] == code and spec["stage"] in ("city", "committee")
        )
        for code in demo_levels.QUOTAS["county"]
    }
    assert {p["category"]: p["used"] for p in mine["places"]} == held
    mine = client.get(f"/api/v1/campaigns/{slug}/levels", headers=city).json["mine"]
    assert (mine["unit_code"], mine["waiting"]) == ("JN-CITY", waiting_at(("city",)))
    for headers, stage_names in (
        (county, ("county", "returned")),
        (city, ("city",)),
        (admin, ("committee",)),
    ):
        desk = client.get(f"/api/v1/campaigns/{slug}/nominations?awaiting=true", headers=headers)
        assert desk.status_code == 200 and desk.json["total"] == waiting_at(stage_names)

    # Each desk decides only what waits at it.
    at_county = next(ids[n] for n, stage in stages.items() if stage == "county")
    at_city = next(ids[n] for n, stage in stages.items() if stage == "city")
    for headers, nomination_id in ((city, at_county), (county, at_city)):
        refused = client.post(
            f"/api/v1/nominations/{nomination_id}/level-decision",
            json={"decision": "pass"},
            headers=headers,
        )
        assert refused.status_code == 409 and refused.json["error"]["code"] == "not_at_your_level"
    early = client.post(
        f"/api/v1/nominations/{at_county}/review",
        json={"decision": "approve"},
        headers=admin,
    )
    assert early.status_code == 409 and early.json["error"]["code"] == "recommendation_required"

    # The pages the docs name: each bureau's 待我处理 in the console lists what waits at its
    # desk; the clerk whose nomination the city returned reads the city's reason in the portal.
    for username, stage_names in (("qs-bureau", ("county", "returned")), ("jn-city", ("city",))):
        html = _page(app, username, "console", f"/console/c/{slug}/review")
        shown = {name for name in stages if name in html}
        assert shown == {name for name, stage in stages.items() if stage in stage_names}
    returned_spec = next(spec for spec in demo_levels.NOMINEES if spec["stage"] == "returned")
    unit_code = returned_spec["unit_code"]
    clerk = next(a["username"] for a in demo_data.ACCOUNTS if a["unit_code"] == unit_code)
    html = _page(app, clerk, "portal", f"/portal/nominations/{ids[returned_spec['name']]}")
    assert demo_levels.RETURN_REASON in html and "江南市卫生健康委员会" in html


def test_a_demo_seeded_before_the_levels_campaign_gets_it_and_keeps_the_rest(
    ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install seeded by the three-campaign demo: the next seed adds the level-by-level
    campaign and its city login only; the other campaigns and every login stay as they were."""
    with monkeypatch.context() as older:
        older.setattr(demo_levels, "ACCOUNTS", [])
        older.setattr(demo_levels, "seed_campaign", lambda *args: None)
        first = demo.seed(PASSWORD)
    assert "jn-city" not in {login["username"] for login in first}
    hashes = dict(db.session.execute(select(Account.username, Account.password_hash)).all())
    nominations = dict(
        db.session.execute(select(Nomination.id, Nomination.status).order_by(Nomination.id)).all()
    )
    report = Report()
    again = demo.seed(PASSWORD, report=report)
    year = utcnow().astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    added = demo_levels.campaign(year)["slug"]
    assert report.campaigns == {added: "reviewing"}
    assert [login["username"] for login in again] == ["jn-city"]
    now_hashes = dict(db.session.execute(select(Account.username, Account.password_hash)).all())
    assert {name: now_hashes[name] for name in hashes} == hashes
    kept = db.session.execute(
        select(Nomination.id, Nomination.status).where(Nomination.id.in_(list(nominations)))
    ).all()
    assert dict(kept) == nominations
    assert db.session.scalar(
        select(func.count(Nomination.id)).where(Nomination.campaign_id == _campaign(added).id)
    ) == len(demo_levels.NOMINEES)
    assert demo.seed(PASSWORD) == []


def test_the_command_seeds_once_and_says_which_login_shows_what(app: Flask) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed", "--password", PASSWORD, "--voters", "40"])
    assert first.exit_code == 0, first.output
    assert "which login shows what" in first.output and "judge-wang" in first.output
    assert "brushing attack" in first.output
    second = runner.invoke(args=["demo", "seed"])
    assert second.exit_code == 0 and "nothing changed" in second.output


@pytest.mark.parametrize("hour", [0.5, 1.5, 9.0, 20.0, 23.5])
def test_the_demo_traffic_does_not_depend_on_the_hour_it_is_seeded(hour: float) -> None:
    """The voting demo's past votes are three days of visits whatever the hour of seeding: at
    01:30 local, today is not a voting day yet (it once swallowed a quarter of people's visits,
    and the demo test failed at night)."""
    zone = ZoneInfo(demo_data.TIMEZONE)
    midnight = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    now = midnight + timedelta(hours=hour)
    start = now.replace(hour=0) - timedelta(days=3)
    numbers = [f"D{i:03d}" for i in range(1, 31)]
    visits = demo_votes.organic(
        random.Random(7), numbers, start, now - timedelta(minutes=2), zone, 300, per_day=4
    )
    votes = [v for v in visits if v.vote]
    assert all(start <= v.at < now for v in visits)
    # 300 people, 1–3 days each (≈ 1.67), 1–4 nominees a day (≈ 2.5), 85 % of visits vote
    assert 0.8 * 300 * 1.67 * 2.5 * 0.85 < len(votes) < 1.2 * 300 * 1.67 * 2.5 * 0.85
