"""Award tiers (十佳, 优秀 …) per category: assigned by rank, moved by the committee with a reason,
carried into a reopened result, published, exported; a category without tiers is unchanged."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook

from awards import export_winners, scoring
from tests.awards.test_exports import _campaign_id, _exported, _rows
from tests.awards.test_reopen import _adjustments, _audit, _republish, _uphold
from tests.awards.test_results import _judging_campaign, _score
from tests.factories import Org
from tests.pages.browser import staff_login
from tests.pages.test_console_awards import _page_data

URL = "/api/v1/admin/campaigns/v1"
CATEGORY = "/api/v1/campaigns/v1/categories/doctor"
TIERS = [
    {"code": "top", "name": "十佳", "count": 1},
    {"code": "excellent", "name": "优秀", "count": 2},
]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def _tiered_campaign(app: Flask, client: FlaskClient, org: Org, tiers: Any = TIERS) -> list[str]:
    """Doctors D001–D004 scored by `judge` (80, 90, 70, 60): combined (30/70) D001 86, D002 78,
    D004 57, D003 49. The doctor category gets ``tiers`` (十佳 1, 优秀 2 by default) and
    version 1 is computed."""
    numbers = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    if tiers is not None:
        category = _ok(client.patch(CATEGORY, json={"tiers": tiers}, headers=admin))
        assert category["tiers"] == tiers
    for number, total in zip(numbers, (80, 90, 70, 60), strict=True):
        _ok(_score(client, org, "judge", number, total))
    _ok(client.post(f"{URL}/results", json={}, headers=admin), 201)
    return numbers


def _tiers(client: FlaskClient, org: Org, version: int = 1) -> dict[str, tuple[Any, ...]]:
    """Each nominee's (rank, winner, tier, tier name) in a version."""
    body = _ok(client.get(f"{URL}/results/{version}", headers=org.headers("admin")))
    return {
        e["number"]: (e["rank"], e["winner"], e["tier"], e["tier_name"]) for e in body["entries"]
    }


def _adjust(
    client: FlaskClient, org: Org, nominee: str, action: str, reason: str, **extra: Any
) -> Any:
    return client.post(
        f"{URL}/results/1/adjustments",
        json={"nominee": nominee, "action": action, "reason": reason, **extra},
        headers=org.headers("admin"),
    )


# --- the method ---------------------------------------------------------------------------------


def _candidate(number: int, votes: int, adjustment: str | None = None, tier: str | None = None):  # type: ignore[no-untyped-def]
    return scoring.Candidate(
        nomination_id=number,
        number=f"D{number:03d}",
        number_seq=number,
        valid_votes=votes,
        sheet_totals=(),
        adjustment=adjustment,
        tier=tier,
    )


def _score_tiers(candidates: list[scoring.Candidate], tiers: tuple[scoring.Tier, ...]) -> list:  # type: ignore[type-arg]
    scored = scoring.score_category(
        candidates,
        weights={"public": 100, "jury": 0},
        criteria_max=100,
        award_count=sum(t.count for t in tiers),
        tiers=tiers,
    )
    return [(s.candidate.number, s.tier) for s in scored]


def test_tiers_fill_by_rank_and_a_placement_displaces_the_lowest() -> None:
    tiers = (scoring.Tier("top", "十佳", 2), scoring.Tier("good", "优秀", 2))
    votes = [60, 50, 40, 30, 20]  # D001 leads … D005 last
    plain = [_candidate(i + 1, v) for i, v in enumerate(votes)]
    assert _score_tiers(plain, tiers) == [
        ("D001", "top"),
        ("D002", "top"),
        ("D003", "good"),
        ("D004", "good"),
        ("D005", None),
    ]
    # D004 moved up: it takes a place of 十佳 and D002, the lowest there, goes down.
    moved_up = list(plain)
    moved_up[3] = _candidate(4, 30, "tier", "top")
    assert _score_tiers(moved_up, tiers) == [
        ("D001", "top"),
        ("D002", "good"),
        ("D003", "good"),
        ("D004", "top"),
        ("D005", None),
    ]
    # D001 moved down: D003, the best of 优秀, comes up.
    moved_down = list(plain)
    moved_down[0] = _candidate(1, 60, "tier", "good")
    assert dict(_score_tiers(moved_down, tiers)) == {
        "D001": "good",
        "D002": "top",
        "D003": "top",
        "D004": "good",
        "D005": None,
    }
    # Exclusion and promotion: the winners change first, then the tiers follow the ranks.
    adjusted = list(plain)
    adjusted[0] = _candidate(1, 60, "exclude")
    adjusted[4] = _candidate(5, 20, "promote")
    assert dict(_score_tiers(adjusted, tiers)) == {
        "D001": None,
        "D002": "top",
        "D003": "top",
        "D004": "good",
        "D005": "good",
    }
    # A placement in a tier the category no longer has: still a winner, placed by rank.
    gone = list(plain)
    gone[4] = _candidate(5, 20, "tier", "bronze")
    assert dict(_score_tiers(gone, tiers))["D005"] == "good"
    # No tiers: nobody has one, and the winners are what they always were.
    untiered = scoring.score_category(
        plain, weights={"public": 100, "jury": 0}, criteria_max=100, award_count=2
    )
    assert [(s.winner, s.tier) for s in untiered][:3] == [(True, None), (True, None), (False, None)]
    assert all(s.combined == Decimal(s.public) for s in untiered)
    assert "Award tiers" in scoring.METHOD


# --- categories -------------------------------------------------------------------------------


def test_category_tiers_are_validated_with_field_details(client: FlaskClient, org: Org) -> None:
    org.campaign("c1", phase="draft")
    admin = org.headers("admin")
    url = "/api/v1/campaigns/c1/categories"

    def body(**fields: Any) -> dict[str, Any]:
        return {"code": "village", "name": "乡村医生", "prefix": "V", "max_per_unit": 1, **fields}

    def fields_of(response: Any) -> dict[str, Any]:
        error = _refused(response, 422, "validation_error")
        return error["details"]["fields"]

    tier = {"code": "t", "name": "十佳", "count": 1}
    too_many = [dict(tier, code=f"t{i}", name=f"等次{i}") for i in range(6)]
    assert "tiers" in fields_of(client.post(url, json=body(tiers=too_many), headers=admin))
    bad = [
        {"code": "top", "name": "十" * 21, "count": 0},
        {"code": "Bad Code", "name": "  ", "count": 1},
    ]
    details = fields_of(client.post(url, json=body(tiers=bad), headers=admin))
    assert set(details["tiers"]["0"]) == {"name", "count"}
    assert set(details["tiers"]["1"]) == {"code", "name"}
    twice = [tier, dict(tier, name="优秀")]
    assert "代码不能重复" in str(fields_of(client.post(url, json=body(tiers=twice), headers=admin)))
    same_name = [tier, dict(tier, code="u")]
    assert "名称不能重复" in str(
        fields_of(client.post(url, json=body(tiers=same_name), headers=admin))
    )
    mismatch = client.post(url, json=body(tiers=TIERS, award_count=5), headers=admin)
    assert "award_count" in fields_of(mismatch)
    assert "award_count" in fields_of(client.post(url, json=body(), headers=admin))
    huge = [dict(tier, count=150), dict(tier, code="u", name="优秀", count=60)]
    assert "tiers" in fields_of(client.post(url, json=body(tiers=huge), headers=admin))

    # Valid: the award count is derived (or given equal to the sum); names are trimmed.
    made = _ok(
        client.post(
            url,
            json=body(tiers=[dict(TIERS[0], name=" 十佳 "), TIERS[1]]),
            headers=admin,
        ),
        201,
    )
    assert made["award_count"] == 3 and made["tiers"] == TIERS
    other = body(code="rural", prefix="R", tiers=TIERS, award_count=3)
    assert _ok(client.post(url, json=other, headers=admin), 201)["award_count"] == 3
    public = _ok(client.get("/api/v1/admin/campaigns/c1", headers=admin))
    tiers = {c["code"]: c["tiers"] for c in public["categories"]}
    assert tiers == {"doctor": [], "nurse": [], "village": TIERS, "rural": TIERS}

    # The update: tiers replaced, cleared (the count stays), refused when inconsistent.
    village = f"{url}/village"
    changed = _ok(client.patch(village, json={"tiers": [dict(tier, count=4)]}, headers=admin))
    assert changed["award_count"] == 4 and changed["tiers"] == [dict(tier, count=4)]
    assert "award_count" in fields_of(client.patch(village, json={"award_count": 5}, headers=admin))
    cleared = _ok(client.patch(village, json={"tiers": None}, headers=admin))
    assert cleared["award_count"] == 4 and cleared["tiers"] == []
    assert _ok(client.patch(village, json={"award_count": 6}, headers=admin))["award_count"] == 6
    assert _ok(client.patch(village, json={"tiers": []}, headers=admin))["tiers"] == []
    assert "tiers" in fields_of(client.patch(village, json={"tiers": bad}, headers=admin))
    _refused(
        client.patch(f"{url}/nope", json={"tiers": TIERS}, headers=admin), 404, "category_not_found"
    )
    assert (
        client.patch(village, json={"tiers": TIERS}, headers=org.headers("unit-h1")).status_code
        == 403
    )
    updates = _audit(org.app, "category.update")
    assert len(updates) == 4 and updates[0].after == {
        "award_count": 4,
        "tiers": [dict(tier, count=4)],
    }
    assert updates[0].before == {"award_count": 3, "tiers": TIERS}


# --- results ----------------------------------------------------------------------------------


def test_tiers_assigned_by_rank_and_moved_with_a_reason(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3, d4 = _tiered_campaign(app, client, org)
    assert _tiers(client, org) == {
        d1: (1, True, "top", "十佳"),
        d2: (2, True, "excellent", "优秀"),
        d4: (3, True, "excellent", "优秀"),
        d3: (4, False, None, None),
    }

    # D004 moved into 十佳 with a reason: D001, the only one there, goes down to 优秀.
    moved = _ok(_adjust(client, org, d4, "tier", "评审委员会复议，事迹突出", tier="top"))
    rows = {e["number"]: e for e in moved["entries"]}
    assert (rows[d4]["tier_name"], rows[d4]["adjustment"]) == ("十佳", "tier")
    assert rows[d4]["adjustment_reason"] == "评审委员会复议，事迹突出"
    assert rows[d1]["tier_name"] == "优秀" and rows[d2]["tier_name"] == "优秀"
    [adjustment] = moved["adjustments"]
    assert (adjustment["action"], adjustment["tier"], adjustment["created_by"]) == (
        "tier",
        "top",
        "admin",
    )
    assert adjustment["made_in_version"] == 1 and adjustment["created_at"]
    [entry] = _audit(app, "results.tier")
    assert entry.reason == "评审委员会复议，事迹突出" and entry.actor_name == "admin"
    assert entry.after == {"nominee": d4, "action": "tier", "tier": "top", "tier_name": "十佳"}

    # 十佳 holds one place and the committee has filled it: a second move there is refused.
    error = _refused(_adjust(client, org, d2, "tier", "也想进十佳", tier="top"), 409, "tier_full")
    assert error["details"] == {"tier": "top", "count": 1, "placed": [d4]}
    assert "十佳" in error["message"]
    # Only a winner moves between tiers; the tier must exist; the move needs its tier.
    _refused(_adjust(client, org, d3, "tier", "未获奖", tier="excellent"), 409, "not_a_winner")
    unknown = _refused(_adjust(client, org, d1, "tier", "没有", tier="bronze"), 422, "unknown_tier")
    assert "tier" in unknown["details"]["fields"]
    missing = _refused(_adjust(client, org, d1, "tier", "未选等次"), 422, "validation_error")
    assert "tier" in missing["details"]["fields"]
    stray = _adjust(client, org, d1, "exclude", "多余的等次", tier="top")
    assert "tier" in _refused(stray, 422, "validation_error")["details"]["fields"]
    blank = _refused(_adjust(client, org, d1, "tier", "  ", tier="top"), 422, "reason_required")
    assert blank["message"]

    # Excluding D001: D003 comes in at the bottom; D004 stays where the committee put it.
    _ok(_adjust(client, org, d1, "exclude", "材料不实"))
    assert _tiers(client, org) == {
        d1: (1, False, None, None),
        d2: (2, True, "excellent", "优秀"),
        d4: (3, True, "top", "十佳"),
        d3: (4, True, "excellent", "优秀"),
    }
    # Clearing the move: the tiers follow the ranks again.
    _ok(_adjust(client, org, d4, "clear", "复议撤回"))
    assert _tiers(client, org) == {
        d1: (1, False, None, None),
        d2: (2, True, "top", "十佳"),
        d4: (3, True, "excellent", "优秀"),
        d3: (4, True, "excellent", "优秀"),
    }
    # A promoted winner placed in a tier stays a winner (the placement replaces the promotion).
    _ok(_adjust(client, org, d1, "clear", "复核属实"))
    _ok(_adjust(client, org, d3, "promote", "破格"))
    assert _tiers(client, org)[d3] == (4, True, "excellent", "优秀")
    assert _tiers(client, org)[d4] == (3, False, None, None)
    _ok(_adjust(client, org, d3, "tier", "破格进入十佳", tier="top"))
    assert _tiers(client, org) == {
        d1: (1, True, "excellent", "优秀"),
        d2: (2, True, "excellent", "优秀"),
        d4: (3, False, None, None),
        d3: (4, True, "top", "十佳"),
    }
    adjustments = _adjustments(app, 1)
    assert adjustments[d3]["action"] == "tier" and adjustments[d4]["status"] == "removed"

    # The console's results page knows the tiers; the sensitivity report still runs.
    staff_login(client, "admin", area="console")
    data = _page_data(client.get("/console/c/v1/results").get_data(as_text=True))
    assert data["tiers"] == {"doctor": TIERS, "nurse": []}
    assert data["labels"]["adjustments"]["tier"] == "调整等次"
    shifts = _ok(client.get("/console/c/v1/results/1/shifts"))
    assert {r["number"]: r["tier_name"] for r in shifts["categories"][0]["rows"]}[d3] == "十佳"
    assert _ok(client.get(f"{URL}/results/1/sensitivity", headers=org.headers("admin")))["items"]


def test_tier_moves_are_carried_into_a_reopened_result_and_published(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3, d4 = _tiered_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(_adjust(client, org, d4, "tier", "评审委员会复议", tier="top"))
    _ok(client.post(f"{URL}/results/1/finalize", headers=admin))
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))

    # The public list (the H5 page's source until it has its own 公示 page): tiers in order.
    published = _ok(client.get("/api/v1/campaigns/v1/winners"))
    assert [(w["number"], w["tier"], w["tier_name"]) for w in published["winners"]] == [
        (d4, "top", "十佳"),
        (d1, "excellent", "优秀"),
        (d2, "excellent", "优秀"),
    ]
    doctor = published["categories"][0]
    assert doctor["code"] == "doctor" and doctor["tiers"] == TIERS and doctor["award_count"] == 3
    assert published["categories"][1]["tiers"] == []

    # Tiers are fixed once the list is public.
    _refused(client.patch(CATEGORY, json={"tiers": TIERS[:1]}, headers=admin), 409, "awards_locked")

    # An objection against D002 is upheld: version 2 keeps the move, with its author and time.
    assert _uphold(client, org, d2) == 2
    first, carried = _adjustments(app, 1)[d4], _adjustments(app, 2)[d4]
    assert (carried["action"], carried["reason"], carried["status"]) == (
        "tier",
        "评审委员会复议",
        "applied",
    )
    assert carried["created_by"] == first["created_by"] == "admin"
    assert carried["created_at"] == first["created_at"]
    assert (carried["made_in_version"], carried["carried_from_version"]) == (1, 1)
    body = _ok(client.get(f"{URL}/results/2", headers=admin))
    assert [a["tier"] for a in body["adjustments"]] == ["top"]
    assert _tiers(client, org, 2)[d4] == (3, True, "top", "十佳")
    [carry] = _audit(app, "results.carry")
    assert carry.after["tier"] == "top" and carry.after["action"] == "tier"

    # The objection's consequence: D002 excluded; D003 comes in as 优秀, D004 still 十佳.
    _ok(
        client.post(
            f"{URL}/results/2/adjustments",
            json={"nominee": d2, "action": "exclude", "reason": "异议成立"},
            headers=admin,
        )
    )
    _republish(client, org, 2)
    again = _ok(client.get("/api/v1/campaigns/v1/winners"))
    assert [(w["number"], w["tier_name"]) for w in again["winners"]] == [
        (d4, "十佳"),
        (d1, "优秀"),
        (d3, "优秀"),
    ]

    # The console's publicity page lists each winner's tier.
    staff_login(client, "admin", area="console")
    page = client.get("/console/c/v1/publicity").get_data(as_text=True)
    assert page.count('data-testid="winner-tier"') == 3 and "<th>等次</th>" in page


def test_exports_name_each_tier(app: Flask, client: FlaskClient, org: Org, tmp_path: Path) -> None:
    d1, d2, d3, d4 = _tiered_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(client.post(f"{URL}/results/1/finalize", headers=admin))

    workbook = load_workbook(io.BytesIO(_exported(app, client, org, "v1", "workbook")))
    rows = _rows(workbook["评选结果"])
    assert rows[1][11:14] == ("获奖", "等次", "调整")
    tiers = {row[2]: row[12] for row in rows[2:6]}
    assert tiers == {d1: "十佳", d2: "优秀", d4: "优秀", d3: None}

    with app.app_context():
        path = export_winners.build_winners_html(_campaign_id(app, "v1"), tmp_path / "w.html")
    page = path.read_text(encoding="utf-8")
    assert '<h3 class="tier">十佳（1名）</h3>' in page
    assert '<h3 class="tier">优秀（2名）</h3>' in page
    assert page.index(d1) < page.index("优秀（2名）") < page.index(d2) < page.index(d4)
    assert d3 not in page
    html = _exported(app, client, org, "v1", "winners_html").decode("utf-8")
    assert "十佳（1名）" in html


def test_a_category_without_tiers_is_unchanged(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    d1, d2, d3, d4 = _tiered_campaign(app, client, org, tiers=None)
    admin = org.headers("admin")
    assert _tiers(client, org) == {
        d1: (1, True, None, None),
        d2: (2, True, None, None),
        d4: (3, False, None, None),
        d3: (4, False, None, None),
    }
    _refused(_adjust(client, org, d1, "tier", "无等次", tier="top"), 409, "tiers_not_set")
    _ok(client.post(f"{URL}/results/1/finalize", headers=admin))

    workbook = load_workbook(io.BytesIO(_exported(app, client, org, "v1", "workbook")))
    rows = _rows(workbook["评选结果"])
    assert "等次" not in rows[1] and rows[1][11:14] == ("获奖", "调整", "调整理由")
    with app.app_context():
        path = export_winners.build_winners_html(_campaign_id(app, "v1"), tmp_path / "w.html")
    page = path.read_text(encoding="utf-8")
    assert '<h3 class="tier">' not in page and "十大最美医生（2名）" in page

    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    published = _ok(client.get("/api/v1/campaigns/v1/winners"))
    assert [(w["number"], w["tier"], w["tier_name"]) for w in published["winners"]] == [
        (d1, None, None),
        (d2, None, None),
    ]
    assert [c["tiers"] for c in published["categories"]] == [[], []]
    assert _ok(client.get("/api/v1/campaigns/v1"))["categories"][0]["tiers"] == []
