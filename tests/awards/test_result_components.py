"""Result components beside votes and the jury (issue #19 item 5): the patients' satisfaction,
同行互评 and 领导点评, their arithmetic, panels and conflicts, weights, sensitivity and exports."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from appraisal.models import Programme, Rating
from awards import export_winners, export_workbook, scoring
from awards import services as award_services
from awards.models import ScoreSheet
from campaigns import services as campaign_services
from campaigns.models import Campaign, Unit
from core.extensions import db
from core.types import utcnow
from nominations.models import Nomination
from tests.factories import PASSWORD, Org, campaign_body
from tests.pages.browser import staff_login
from voting import services as voting_services

D = Decimal
CRITERIA = [{"code": "all", "name": "综合表现", "max_points": 100}]
WEIGHTS = {
    "public": 20,
    "jury": 30,
    "satisfaction": 20,
    "peer": 15,
    "leader": 15,
    "satisfaction_min_answers": 3,
}


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json


def _error(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json["error"]["code"]


def _candidate(number: str, seq: int, **fields: Any) -> scoring.Candidate:
    base: dict[str, Any] = {"valid_votes": 0, "sheet_totals": ()}
    return scoring.Candidate(nomination_id=seq, number=number, number_seq=seq, **(base | fields))


# --- the arithmetic -----------------------------------------------------------------------------


def test_each_component_counts_with_its_weight() -> None:
    weights = {"public": 10, "jury": 20, "organizer": 10, "satisfaction": 20, "peer": 20}
    weights |= {"leader": 20, "satisfaction_min_answers": 4}
    a = _candidate(
        "D001",
        1,
        valid_votes=10,
        sheet_totals=(D(80),),
        organizer=D(50),
        peer_totals=(D(60), D(70)),
        leader_totals=(D(90),),
        satisfaction_answers=4,
        satisfaction_positive=3,
    )
    b = _candidate("D002", 2, valid_votes=5, sheet_totals=(D(40),), satisfaction_answers=8)
    scored = {s.candidate.number: s for s in scoring.score_category(
        [a, b], weights=weights, criteria_max=100, award_count=1
    )}  # fmt: skip
    first = scored["D001"]
    assert (first.public, first.jury, first.organizer) == (D("100.00"), D("80.00"), D("50.00"))
    assert (first.peer, first.leader, first.satisfaction) == (D("65.00"), D("90.00"), D("75.00"))
    # (100×10 + 80×20 + 50×10 + 75×20 + 65×20 + 90×20) ÷ 100 = 77.00
    assert first.combined == D("77.00") and first.rank == 1 and first.winner
    second = scored["D002"]
    # 8 answers, none satisfied: 0 %, counted (the minimum is met). 50×10 + 40×20 = 1300 → 13.00
    assert second.satisfaction == D("0.00") and second.combined == D("13.00")
    assert (second.peer, second.leader) == (D("0.00"), D("0.00"))


def test_below_the_minimum_of_answers_the_other_weights_are_rescaled() -> None:
    weights = {"public": 40, "jury": 40, "satisfaction": 20, "satisfaction_min_answers": 30}
    few = _candidate(
        "D001", 1, valid_votes=10, sheet_totals=(D(70),), satisfaction_answers=29,
        satisfaction_positive=29,
    )  # fmt: skip
    enough = _candidate(
        "D002", 2, valid_votes=10, sheet_totals=(D(70),), satisfaction_answers=30,
        satisfaction_positive=27,
    )  # fmt: skip
    scored = {s.candidate.number: s for s in scoring.score_category(
        [few, enough], weights=weights, criteria_max=100, award_count=1
    )}  # fmt: skip
    # 样本不足: (100×40 + 70×40) ÷ 80 = 85.00 — neither 0 nor a 100 % from 29 answers.
    assert scored["D001"].satisfaction is None and scored["D001"].combined == D("85.00")
    # 27 of 30: 90.00; (100×40 + 70×40 + 90×20) ÷ 100 = 86.00
    assert scored["D002"].satisfaction == D("90.00") and scored["D002"].combined == D("86.00")
    # Without a minimum in the weights the default (30) applies; no answer at all is 样本不足.
    assert scoring.min_answers({"satisfaction": 20}) == scoring.DEFAULT_MIN_ANSWERS == 30
    assert scoring.satisfaction_score(0, 0, 1) is None
    # Satisfaction alone and 样本不足: nothing else to rescale, 0.
    only = {"public": 0, "jury": 0, "satisfaction": 100}
    assert scoring.combine({"satisfaction": None, "public": D(100)}, only) == D("0.00")
    assert "样本不足" in scoring.METHOD and "Walk-in answers" in scoring.METHOD


def test_campaigns_without_the_new_weights_score_exactly_as_before() -> None:
    weights = {"public": 30, "jury": 50, "organizer": 20}
    rows = [
        _candidate("D001", 1, valid_votes=7, sheet_totals=(D("77.5"), D(81)), organizer=D(60)),
        _candidate("D002", 2, valid_votes=3, sheet_totals=(D(90),), satisfaction_answers=99),
        _candidate("D003", 3, valid_votes=0, peer_totals=(D(100),), leader_totals=(D(100),)),
    ]
    for s in scoring.score_category(rows, weights=weights, criteria_max=100, award_count=1):
        c = s.candidate
        public = (D(c.valid_votes) * 100 / 7).quantize(D("0.01"), ROUND_HALF_UP)
        jury = (
            (sum(c.sheet_totals, D(0)) / len(c.sheet_totals)).quantize(D("0.01"), ROUND_HALF_UP)
            if c.sheet_totals
            else D(0)
        )
        old = ((public * 30 + jury * 50 + c.organizer * 20) / 100).quantize(
            D("0.01"), ROUND_HALF_UP
        )
        assert s.combined == old, c.number
    # The sensitivity report is today's: four jury scenarios, no other component.
    report = scoring.sensitivity(
        rows, weights={"public": 30, "jury": 70}, criteria_max=100, award_count=1
    )
    assert [(s["component"], s["weights"]["public"]) for s in report] == [
        ("jury", 20),
        ("jury", 25),
        ("jury", 35),
        ("jury", 40),
    ]


def test_sensitivity_moves_weight_between_the_public_and_each_weighted_component() -> None:
    weights = {"public": 5, "jury": 55, "satisfaction": 20, "peer": 20}
    rows = [
        _candidate("D001", 1, valid_votes=10, sheet_totals=(D(50),), peer_totals=(D(40),)),
        _candidate("D002", 2, valid_votes=1, sheet_totals=(D(50),), peer_totals=(D(90),)),
    ]
    report = scoring.sensitivity(rows, weights=weights, criteria_max=100, award_count=1)
    by = {(s["component"], s["weights"]["public"]): s for s in report}
    # public 5 cannot give 10: -10 is skipped for every component.
    assert sorted(by) == sorted(
        (c, p) for c in ("jury", "satisfaction", "peer") for p in (0, 10, 15)
    )
    assert by[("peer", 15)]["weights"]["peer"] == 10
    assert by[("satisfaction", 0)]["weights"]["satisfaction"] == 25
    # Both 样本不足 (no answers): the satisfaction weight is rescaled away. D002 wins on peers;
    # moving 10 points from the peers to the public turns it: D001's 100 votes.
    assert by[("peer", 15)]["changed"] and by[("peer", 15)]["new_winners"] == ["D001"]


# --- through the API ----------------------------------------------------------------------------


def _account(
    app: Flask, org: Org, username: str, unit: str | None, name: str | None = None
) -> None:
    with app.app_context():
        made = campaign_services.create_account(username, PASSWORD, "judge", unit, name)
        org.accounts[username] = made.id
        db.session.commit()
        db.session.remove()


def _ratings(app: Flask, slug: str, answers: dict[str, list[tuple[str, str]]]) -> None:
    """Answers (kind, choice) naming each nominee, as the appraisal domain stores them."""
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        bureau = db.session.scalar(select(Unit).where(Unit.code == "P"))
        programme = Programme(
            code=f"p-{slug}", title="群众评议", bureau_unit_id=bureau.id, campaign_id=campaign.id
        )
        db.session.add(programme)
        db.session.flush()
        for number, rows in answers.items():
            nominee = db.session.scalar(
                select(Nomination).where(
                    Nomination.campaign_id == campaign.id, Nomination.number == number
                )
            )
            for kind, choice in rows:
                db.session.add(
                    Rating(
                        programme_id=programme.id,
                        unit_id=nominee.unit_id,
                        kind=kind,
                        choice=choice,
                        staff_name=nominee.name,
                        nomination_id=nominee.id,
                        created_at=utcnow(),
                    )
                )
        db.session.commit()
        db.session.remove()


def _sheet(client: FlaskClient, org: Org, who: str, number: str, total: float) -> Any:
    return client.put(
        f"/api/v1/judging/v1/sheets/{number}",
        json={"scores": {"all": total}, "submit": True},
        headers=org.headers(who),
    )


def _components_campaign(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """D001 (H1, 候选人0), D002 (H2), D003 (H3) with 2, 1, 0 votes; judges on three panels:
    `judge` (jury, no unit), `jury-h1` (jury, H1), `peer-h1` (peer, H1), `leader-h1` (leader,
    H1) and `self-h1` (peer, H1, named 候选人0: the nominee D001 himself)."""
    numbers = org.voting_campaign(nominees=3, award_count=1, weights=WEIGHTS)
    for voter, number in enumerate((numbers[0], numbers[0], numbers[1]), start=1):
        _ok(
            client.post(
                "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
            ),
            201,
        )
    with app.app_context():
        voting_services.drain_campaign("v1")
    for username, name in (
        ("jury-h1", None),
        ("peer-h1", "同事甲"),
        ("leader-h1", "院长"),
        ("self-h1", "候选人0"),
    ):
        _account(app, org, username, "H1", name)
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.put("/api/v1/admin/campaigns/v1/criteria", json={"items": CRITERIA}, headers=admin))
    for username, panel in (
        ("judge", None),
        ("jury-h1", "jury"),
        ("peer-h1", "peer"),
        ("leader-h1", "leader"),
        ("self-h1", "peer"),
    ):
        body: dict[str, Any] = {"username": username, "categories": ["doctor"]}
        if panel:
            body["panel"] = panel
        made = _ok(client.post("/api/v1/admin/campaigns/v1/judges", json=body, headers=admin))
        assert made["panel"] == (panel or "jury")
    return numbers


def test_panels_satisfaction_and_the_combined_result(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3 = _components_campaign(app, client, org)
    admin = org.headers("admin")

    # Queues: the jury and the leaders never see their own unit's nominee; the peers do, but
    # nobody sees themselves.
    def queue(who: str) -> list[tuple[str, str]]:
        items = _ok(client.get("/api/v1/judging/v1/sheets", headers=org.headers(who)))["items"]
        return [(i["number"], i["panel"]) for i in items]

    assert queue("judge") == [(d1, "jury"), (d2, "jury"), (d3, "jury")]
    assert queue("jury-h1") == [(d2, "jury"), (d3, "jury")]
    assert queue("peer-h1") == [(d1, "peer"), (d2, "peer"), (d3, "peer")]
    assert queue("leader-h1") == [(d2, "leader"), (d3, "leader")]
    assert queue("self-h1") == [(d2, "peer"), (d3, "peer")]

    for who, number, total in (
        ("judge", d1, 80),
        ("judge", d2, 60),
        ("judge", d3, 70),
        ("peer-h1", d1, 90),
        ("peer-h1", d2, 50),
        ("leader-h1", d2, 70),
        ("leader-h1", d3, 40),
    ):
        assert _ok(_sheet(client, org, who, number, total))["panel"] == queue(who)[0][1]
    for who in ("jury-h1", "leader-h1", "self-h1"):
        assert _error(_sheet(client, org, who, d1, 100), 403) == "conflict_of_interest"
    # A declared conflict still binds a peer: the sheet is withdrawn.
    _ok(
        client.post(
            "/api/v1/judging/v1/conflicts",
            json={"nominee": d3, "reason": "近亲属"},
            headers=org.headers("self-h1"),
        ),
        201,
    )
    assert _error(_sheet(client, org, "self-h1", d3, 100), 403) == "conflict_of_interest"
    # A jury sheet from the nominee's own unit that reached the table anyway never counts.
    with app.app_context():
        nominee = db.session.scalar(select(Nomination).where(Nomination.number == d1))
        db.session.add(
            ScoreSheet(
                campaign_id=nominee.campaign_id,
                judge_id=org.accounts["jury-h1"],
                nomination_id=nominee.id,
                panel="jury",
                scores={"all": 1},
                total=1,
                status="submitted",
            )
        )
        db.session.commit()
        db.session.remove()
    satisfied = [("invited", "satisfied")] * 3 + [("invited", "dissatisfied")]
    _ratings(
        app,
        "v1",
        {
            # 3 of 4 invited: 75.00; five walk-ins do not count.
            d1: satisfied + [("walk_in", "dissatisfied")] * 5,
            d2: [("invited", "satisfied")] * 2 + [("walk_in", "satisfied")] * 9,  # 2 < 3
            d3: [("invited", "satisfied"), ("invited", "basic"), ("invited", "dissatisfied")],
        },
    )

    version = _ok(client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin), 201)
    rows = {e["number"]: e for e in version["entries"]}

    def figures(n: str) -> tuple[Any, ...]:
        e = rows[n]
        return (
            e["public_score"],
            e["jury_score"],
            e["jury_count"],
            e["peer_score"],
            e["peer_count"],
            e["leader_score"],
            e["leader_count"],
            e["satisfaction_score"],
            e["satisfaction_answers"],
            e["satisfaction_positive"],
            e["combined"],
            e["rank"],
        )

    # D001: (100×20 + 80×30 + 75×20 + 90×15 + 0×15) ÷ 100 = 72.50
    assert figures(d1) == (100.0, 80.0, 1, 90.0, 1, 0.0, 0, 75.0, 4, 3, 72.5, 1)
    # D002, 样本不足: (50×20 + 60×30 + 50×15 + 70×15) ÷ 80 = 57.50
    assert figures(d2) == (50.0, 60.0, 1, 50.0, 1, 70.0, 1, None, 2, 2, 57.5, 2)
    # D003: (0 + 70×30 + 66.67×20 + 0 + 40×15) ÷ 100 = 40.33
    assert figures(d3) == (0.0, 70.0, 1, 0.0, 0, 40.0, 1, 66.67, 3, 2, 40.33, 3)
    assert version["weights"]["satisfaction_min_answers"] == 3
    assert "同行互评" in version["method"] and "样本不足" in version["method"]

    # The sensitivity report has the jury's scenarios, then each other weighted component's.
    sens = _ok(client.get("/api/v1/admin/campaigns/v1/results/1/sensitivity", headers=admin))
    doctor = next(c for c in sens["items"] if c["category"] == "doctor")["scenarios"]
    assert [s["component"] for s in doctor] == ["jury"] * 4 + ["satisfaction"] * 4 + [
        "peer"
    ] * 4 + ["leader"] * 4
    # The console's rank shifts, from the version's own figures, agree on every scenario.
    with app.app_context():
        campaign = campaign_services.get_campaign("v1")
        shifts = award_services.rank_shifts(campaign, award_services.get_version(campaign, 1))
        db.session.remove()
    assert shifts["weights"] == WEIGHTS | {"organizer": 0}
    category = next(c for c in shifts["categories"] if c["code"] == "doctor")
    current = [s for s in category["scenarios"] if s["current"]]
    assert len(current) == 1 and current[0]["component"] == "jury"
    rows_by = {r["number"]: r for r in category["rows"]}
    index = category["scenarios"].index(current[0])
    assert rows_by[d2]["combined"][index] == 57.5 and rows_by[d3]["combined"][index] == 40.33
    mine = [s for s in category["scenarios"] if not s["current"]]
    assert [(s["component"], s["weights"], s["changed"]) for s in mine] == [
        (s["component"], s["weights"], s["changed"]) for s in doctor
    ]


def test_exports_show_every_weighted_component(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    d1, d2, _ = _components_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(_sheet(client, org, "judge", d1, 80))
    _ok(_sheet(client, org, "peer-h1", d1, 90))
    _ratings(app, "v1", {d1: [("invited", "satisfied")] * 3})
    _ok(client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin), 201)
    _ok(client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin))
    with app.app_context():
        campaign_id = campaign_services.get_campaign("v1").id
        workbook = load_workbook(export_workbook.build_workbook(campaign_id, tmp_path / "w.xlsx"))
        page = export_winners.build_winners_html(campaign_id, tmp_path / "w.html")
        db.session.remove()
    results = [tuple(c.value for c in row) for row in workbook["评选结果"].iter_rows()]
    headers = results[1]
    for name in ("群众满意度", "评议份数", "同行互评得分", "互评人数", "领导点评得分", "点评人数"):
        assert name in headers, name
    entries = {row[2]: dict(zip(headers, row, strict=False)) for row in results[2:5]}
    assert entries[d1]["群众满意度"] == 100 and entries[d1]["评议份数"] == 3
    assert entries[d1]["同行互评得分"] == 90 and entries[d1]["互评人数"] == 1
    assert entries[d2]["群众满意度"] == "样本不足" and entries[d2]["评议份数"] == 0
    facts = {row[0]: row[1] for row in results if row and row[0] == "权重"}
    assert facts["权重"] == (
        "公众投票 20%，评委评分 30%，主办方评分 0%，群众满意度 20%（不少于 3 份评议），"
        "同行互评 15%，领导点评 15%"
    )
    jury = [tuple(c.value for c in row) for row in workbook["评委评分"].iter_rows()]
    assert jury[0][-1] == "评分组"
    assert sorted(row[-1] for row in jury[1:]) == ["专家评审", "同行互评"]
    html = page.read_text(encoding="utf-8")
    assert (
        "计分构成：公众投票 20%，专家评审 30%，群众满意度 20%，同行互评 15%，领导点评 15%" in html
    )
    assert "评议不足 3 份" in html


def test_the_console_shows_panels_and_components(app: Flask, client: FlaskClient, org: Org) -> None:
    d1, _, _ = _components_campaign(app, client, org)
    _ok(_sheet(client, org, "peer-h1", d1, 90))
    staff_login(client, "admin", area="console")
    judging = client.get("/console/c/v1/judging").get_data(as_text=True)
    assert 'data-testid="assign-panel"' in judging and "同行互评" in judging
    assert 'data-testid="judge-panel"' in judging
    _ok(
        client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=org.headers("admin")),
        201,
    )
    results = client.get("/console/c/v1/results").get_data(as_text=True)
    assert "群众满意度 20%" in results and "样本不足" in results
    judge = app.test_client()
    staff_login(judge, "peer-h1", area="console")
    sheets = judge.get("/console/c/v1/sheets").get_data(as_text=True)
    assert 'data-testid="sheets-panel"' in sheets and "同行互评" in sheets


# --- refusals -----------------------------------------------------------------------------------


def test_wrong_roles_and_panels_are_refused(app: Flask, client: FlaskClient, org: Org) -> None:
    d1, _, _ = _components_campaign(app, client, org)
    admin = org.headers("admin")
    # A unit clerk cannot save a sheet, nor assign a panel; a unit account is no panel member.
    refused = client.put(
        f"/api/v1/judging/v1/sheets/{d1}",
        json={"scores": {"all": 90}, "submit": True},
        headers=org.headers("unit-h1"),
    )
    assert _error(refused, 403) == "forbidden"
    body = {"username": "peer-h1", "categories": ["doctor"], "panel": "peer"}
    assert (
        _error(
            client.post(
                "/api/v1/admin/campaigns/v1/judges", json=body, headers=org.headers("judge")
            ),
            403,
        )
        == "forbidden"
    )
    clerk = body | {"username": "unit-h1"}
    assert (
        _error(client.post("/api/v1/admin/campaigns/v1/judges", json=clerk, headers=admin), 404)
        == "judge_not_found"
    )
    unknown = body | {"panel": "patients"}
    response = client.post("/api/v1/admin/campaigns/v1/judges", json=unknown, headers=admin)
    assert _error(response, 422) == "validation_error"
    assert "panel" in response.json["error"]["details"]["fields"]
    # Once a peer has scored, its sheets stay peer sheets: its panel is fixed.
    _ok(_sheet(client, org, "peer-h1", d1, 90))
    moved = client.post(
        "/api/v1/admin/campaigns/v1/judges", json=body | {"panel": "jury"}, headers=admin
    )
    assert _error(moved, 409) == "panel_locked"
    _ok(client.post("/api/v1/admin/campaigns/v1/judges", json=body, headers=admin))  # same panel


@pytest.mark.parametrize(
    ("weights", "field"),
    [
        ({"public": 30, "jury": 50, "satisfaction": 30}, "_schema"),  # 110
        ({"public": 30, "jury": 30, "peer": 20}, "_schema"),  # 80
        ({"public": 30, "jury": 50, "leader": 120}, "leader"),
        ({"public": 30, "jury": 70, "satisfaction": -5}, "satisfaction"),
        ({"public": 30, "jury": 70, "satisfaction_min_answers": 0}, "satisfaction_min_answers"),
        ({"public": 30, "jury": 50, "patients": 20}, "patients"),
    ],
)
def test_weights_are_validated(
    client: FlaskClient, org: Org, weights: dict[str, int], field: str
) -> None:
    response = client.post(
        "/api/v1/campaigns", json=campaign_body("w1", weights=weights), headers=org.headers("admin")
    )
    assert _error(response, 422) == "validation_error"
    assert field in response.json["error"]["details"]["fields"]["weights"]


def test_weights_with_components_are_accepted_and_kept(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    made = _ok(
        client.post("/api/v1/campaigns", json=campaign_body("w1", weights=WEIGHTS), headers=admin),
        201,
    )
    assert made["weights"] == WEIGHTS | {"organizer": 0}
    # An old-style body keeps its old shape: no new key appears.
    plain = _ok(client.post("/api/v1/campaigns", json=campaign_body("w2"), headers=admin), 201)
    assert plain["weights"] == {"public": 30, "jury": 70, "organizer": 0}
