"""Judging to closing through the HTTP API, with scores checked against hand computation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from awards import scoring
from awards.models import ResultVersion
from campaigns import services as campaign_services
from core.extensions import db
from core.types import utcnow
from tests.factories import PASSWORD, Org
from voting import rewinds
from voting import services as voting_services
from voting.ledger import resolve_quarantined
from voting.models import LedgerHead, LedgerRewind, QuarantinedVote

CRITERIA = [
    {"code": "ethics", "name": "医德医风", "max_points": 30},
    {"code": "skill", "name": "专业技术", "max_points": 30},
    {"code": "deeds", "name": "先进事迹", "max_points": 30},
    {"code": "social", "name": "社会评价", "max_points": 10},
]


def _sheet(total: int) -> dict[str, float]:
    """Scores adding up to ``total`` out of 100."""
    social = min(10, total)
    rest = total - social
    return {"ethics": rest / 3, "skill": rest / 3, "deeds": rest / 3, "social": social}


def _judging_campaign(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """Doctors D001–D004 (D001 and D004 from H1) with 6, 3, 0 and 3 valid votes; two
    judges: `judge` (no unit) and `judge-h1` (works at H1)."""
    numbers = org.voting_campaign(nominees=4, award_count=2, rules={"votes_per_nominee_per_day": 1})
    votes = {numbers[0]: 6, numbers[1]: 3, numbers[2]: 0, numbers[3]: 3}
    voter = 0
    for number, count in votes.items():
        for _ in range(count):
            voter += 1
            assert (
                client.post(
                    "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
                ).status_code
                == 201
            )
    with app.app_context():
        voting_services.drain_campaign("v1")
        made = campaign_services.create_account("judge-h1", PASSWORD, "judge", "H1")
        org.accounts["judge-h1"] = made.id
        db.session.commit()
    admin = org.headers("admin")
    assert (
        client.post(
            "/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin
        ).status_code
        == 200
    )
    assert (
        client.put(
            "/api/v1/admin/campaigns/v1/criteria", json={"items": CRITERIA}, headers=admin
        ).status_code
        == 200
    )
    for judge in ("judge", "judge-h1"):
        assert (
            client.post(
                "/api/v1/admin/campaigns/v1/judges",
                json={"username": judge, "categories": ["doctor"]},
                headers=admin,
            ).status_code
            == 200
        )
    return numbers


def _score(client: FlaskClient, org: Org, judge: str, number: str, total: int, submit: bool = True):  # type: ignore[no-untyped-def]
    return client.put(
        f"/api/v1/judging/v1/sheets/{number}",
        json={"scores": _sheet(total), "submit": submit},
        headers=org.headers(judge),
    )


def test_judging_results_publicity_objections_close(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, d2, d3, d4 = _judging_campaign(app, client, org)
    admin = org.headers("admin")

    # The judge's queue has no vote counts; the H1 judge never sees H1's nominees.
    queue = client.get("/api/v1/judging/v1/sheets", headers=org.headers("judge")).json
    assert [i["number"] for i in queue["items"]] == [d1, d2, d3, d4]
    assert "votes" not in str(queue["items"][0].keys())
    own = client.get("/api/v1/judging/v1/sheets", headers=org.headers("judge-h1")).json
    assert [i["number"] for i in own["items"]] == [d2, d3]
    refused = _score(client, org, "judge-h1", d1, 99)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "conflict_of_interest"

    for number, total in ((d1, 80), (d2, 90), (d3, 70), (d4, 60)):
        assert _score(client, org, "judge", number, total).status_code == 200
    assert _score(client, org, "judge-h1", d2, 70).status_code == 200
    draft = _score(client, org, "judge-h1", d3, 90, submit=False)
    assert draft.json["status"] == "draft"
    progress = client.get("/api/v1/admin/campaigns/v1/judging", headers=admin).json["items"]
    assert {p["judge"]: (p["to_score"], p["submitted"], p["drafts"]) for p in progress} == {
        "judge": (4, 4, 0),
        "judge-h1": (2, 1, 1),
    }
    assert _score(client, org, "judge-h1", d3, 90).json["status"] == "submitted"  # revised

    # Public: 100, 50, 0, 50. Jury: 80, (90+70)/2=80, (70+90)/2=80, 60.
    # Combined (30/70): 86.00, 71.00, 56.00, 57.00 → ranks D001, D002, D004, D003.
    version = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin).json
    rows = {e["number"]: e for e in version["entries"]}
    assert {
        n: (rows[n]["public_score"], rows[n]["jury_score"], rows[n]["combined"], rows[n]["rank"])
        for n in rows
    } == {
        d1: (100.0, 80.0, 86.0, 1),
        d2: (50.0, 80.0, 71.0, 2),
        d3: (0.0, 80.0, 56.0, 4),
        d4: (50.0, 60.0, 57.0, 3),
    }
    assert rows[d2]["jury_count"] == 2 and rows[d1]["jury_count"] == 1
    assert [n for n in rows if rows[n]["winner"]] == [d1, d2]
    assert "category leader" in version["method"]
    with app.app_context():
        head = db.session.get(LedgerHead, db.session.scalar(select(ResultVersion.campaign_id)))
        assert version["ledger_head"] == head.head_hash and version["ledger_votes"] == 12

    # Recomputing gives the same numbers.
    again = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin).json

    def strip(v: dict) -> list:  # type: ignore[type-arg]
        return [{k: e[k] for k in ("number", "combined", "rank", "winner")} for e in v["entries"]]

    assert strip(again) == strip(version) and again["version"] == 2

    sens = client.get("/api/v1/admin/campaigns/v1/results/1/sensitivity", headers=admin).json
    doctor = sens["items"][0]
    assert doctor["category"] == "doctor" and len(doctor["scenarios"]) == 4
    assert all(s["changed"] is False for s in doctor["scenarios"])  # D001/D002 hold on

    # Exclude D001 (reason required), promote D003: winners become D003 (promoted) and D002.
    no_reason = client.post(
        "/api/v1/admin/campaigns/v1/results/1/adjustments",
        json={"nominee": d1, "action": "exclude", "reason": ""},
        headers=admin,
    )
    assert no_reason.status_code == 422
    client.post(
        "/api/v1/admin/campaigns/v1/results/1/adjustments",
        json={"nominee": d1, "action": "exclude", "reason": "事迹材料不实"},
        headers=admin,
    )
    adjusted = client.post(
        "/api/v1/admin/campaigns/v1/results/1/adjustments",
        json={"nominee": d3, "action": "promote", "reason": "评委会一致推荐"},
        headers=admin,
    ).json
    assert sorted(e["number"] for e in adjusted["entries"] if e["winner"]) == [d2, d3]
    excluded = next(e for e in adjusted["entries"] if e["number"] == d1)
    assert excluded["adjustment"] == "exclude" and excluded["adjustment_reason"] == "事迹材料不实"

    # Publicity needs a final version; finalising then moving publishes it.
    early = client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin)
    assert early.status_code == 409 and early.json["error"]["code"] == "no_final_result"
    assert (
        client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin).json["status"]
        == "final"
    )
    locked = client.post(
        "/api/v1/admin/campaigns/v1/results/1/adjustments",
        json={"nominee": d1, "action": "clear", "reason": "x"},
        headers=admin,
    )
    assert locked.status_code == 409
    assert (
        client.post(
            "/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin
        ).status_code
        == 200
    )

    # Scores are locked once judging closed.
    late = _score(client, org, "judge", d1, 10)
    assert late.status_code == 409 and late.json["error"]["code"] == "judging_closed"

    winners = client.get("/api/v1/campaigns/v1/winners").json
    assert [w["number"] for w in winners["winners"]] == [d2, d3]
    assert winners["ledger_head"] == version["ledger_head"]

    # Objections: contact required; a dismissed one is published with its answer.
    assert (
        client.post(
            "/api/v1/campaigns/v1/objections", json={"text": "对公示结果有异议"}
        ).status_code
        == 422
    )
    filed = client.post(
        "/api/v1/campaigns/v1/objections",
        json={
            "nominee": d3,
            "contact_name": "王先生",
            "contact_phone": "13800000000",
            "text": "该候选人事迹中的数据与实际不符",
        },
    ).json
    closing = client.post("/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=admin)
    assert closing.status_code == 409 and closing.json["error"]["code"] == "publicity_running"
    answered = client.post(
        f"/api/v1/admin/campaigns/v1/objections/{filed['id']}",
        json={"decision": "dismissed", "answer": "经核实，数据属实"},
        headers=admin,
    ).json
    assert answered["objection"]["status"] == "dismissed" and answered["reopened_version"] is None
    public = client.get("/api/v1/campaigns/v1/objections").json["items"]
    assert public[0]["answer"] == "经核实，数据属实" and "contact_phone" not in public[0]

    upheld_id = client.post(
        "/api/v1/campaigns/v1/objections",
        json={
            "contact_name": "李女士",
            "contact_phone": "13900000000",
            "text": "投票期间存在刷票行为",
        },
    ).json["id"]
    upheld = client.post(
        f"/api/v1/admin/campaigns/v1/objections/{upheld_id}",
        json={"decision": "upheld", "answer": "重新核算结果"},
        headers=admin,
    ).json
    assert upheld["reopened_version"] == 3

    # The reopened result must be published before the campaign can close.
    blocked = client.post("/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=admin)
    assert blocked.status_code == 409
    assert blocked.json["error"]["code"] in ("publicity_running", "unpublished_result")
    assert (
        client.post("/api/v1/admin/campaigns/v1/results/3/finalize", headers=admin).status_code
        == 200
    )
    republished = client.post("/api/v1/admin/campaigns/v1/results/3/publish", headers=admin)
    assert republished.json["status"] == "published"
    assert client.get("/api/v1/campaigns/v1/winners").json["version"] == 3

    # The window ends; the campaign closes with the published list.
    with app.app_context():
        db.session.execute(update(ResultVersion).values(publicity_ends_at=utcnow() - timedelta(1)))
        db.session.commit()
    after = client.post(
        "/api/v1/campaigns/v1/objections",
        json={"contact_name": "张", "contact_phone": "13700000000", "text": "公示期后的异议"},
    )
    assert after.status_code == 409 and after.json["error"]["code"] == "publicity_closed"
    assert (
        client.post(
            "/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=admin
        ).status_code
        == 200
    )

    audit = client.get("/api/v1/admin/campaigns/v1/audit?per_page=100", headers=admin).json
    actions = [a["action"] for a in audit["items"]]
    for expected in (
        "results.exclude",
        "results.promote",
        "results.finalize",
        "results.publish",
        "objection.dismissed",
        "objection.upheld",
        "score.save",
        "campaign.phase",
    ):
        assert expected in actions, expected


def test_judge_outside_their_categories_and_bad_scores(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    d1, *_ = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    client.post(
        "/api/v1/admin/campaigns/v1/judges",
        json={"username": "judge", "categories": []},
        headers=admin,
    )
    outside = _score(client, org, "judge", d1, 50)
    assert outside.status_code == 403 and outside.json["error"]["code"] == "not_assigned"
    client.post(
        "/api/v1/admin/campaigns/v1/judges",
        json={"username": "judge", "categories": ["doctor"]},
        headers=admin,
    )
    too_high = client.put(
        f"/api/v1/judging/v1/sheets/{d1}",
        json={"scores": {"ethics": 31, "skill": 1, "deeds": 1, "social": 1}, "submit": True},
        headers=org.headers("judge"),
    )
    assert too_high.status_code == 422 and "ethics" in too_high.json["error"]["details"]["fields"]
    incomplete = client.put(
        f"/api/v1/judging/v1/sheets/{d1}",
        json={"scores": {"ethics": 20}, "submit": True},
        headers=org.headers("judge"),
    )
    assert (
        incomplete.status_code == 422 and "skill" in incomplete.json["error"]["details"]["fields"]
    )
    assert (
        client.get("/api/v1/judging/v1/sheets", headers=org.headers("unit-h1")).status_code == 403
    )
    assert (
        client.put(
            "/api/v1/admin/campaigns/v1/criteria",
            json={"items": CRITERIA},
            headers=org.headers("judge"),
        ).status_code
        == 403
    )
    # A conflict declared after scoring takes the sheet out of the average.
    assert _score(client, org, "judge", d1, 80).status_code == 200
    declared = client.post(
        "/api/v1/judging/v1/conflicts",
        json={"nominee": d1, "reason": "候选人是我的亲属"},
        headers=org.headers("judge"),
    )
    assert declared.status_code == 201
    version = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin).json
    assert next(e for e in version["entries"] if e["number"] == d1)["jury_count"] == 0
    assert client.put(
        "/api/v1/admin/campaigns/v1/criteria", json={"items": CRITERIA}, headers=admin
    ).json["items"]  # no submitted sheet remains for D001 only


def test_ties_follow_the_documented_rule() -> None:
    same = (Decimal(80),)
    candidates = [
        scoring.Candidate(1, "D003", 3, 10, same),
        scoring.Candidate(2, "D001", 1, 10, same),
        scoring.Candidate(3, "D002", 2, 12, (Decimal(60),)),
        scoring.Candidate(4, "D004", 4, 12, (Decimal(60),)),
    ]
    # D002 and D004: public 100, jury 60 → 30 + 42 = 72; D001/D003: public 83.33, jury 80 →
    # 25.00 + 56 = 81.00. D001 beats D003 on the number; D002 beats D004 on the number too.
    ranked = scoring.score_category(
        candidates, weights={"public": 30, "jury": 70}, criteria_max=100, award_count=2
    )
    assert [(s.candidate.number, str(s.combined), s.rank, s.winner) for s in ranked] == [
        ("D001", "81.00", 1, True),
        ("D003", "81.00", 2, True),
        ("D002", "72.00", 3, False),
        ("D004", "72.00", 4, False),
    ]
    # Equal combined but a higher jury score wins the tie.
    tie = scoring.score_category(
        [
            scoring.Candidate(1, "D001", 1, 0, (Decimal(50),), organizer=Decimal(0)),
            scoring.Candidate(2, "D002", 2, 0, (Decimal(60),)),
        ],
        weights={"public": 0, "jury": 50, "organizer": 50},
        criteria_max=100,
        award_count=1,
    )
    assert tie[0].candidate.number == "D002"


def test_review_findings_on_judging_are_fixed(app: Flask, client: FlaskClient, org: Org) -> None:
    d1, d2, *_ = _judging_campaign(app, client, org)
    admin = org.headers("admin")
    # An admin declares a conflict on a judge's behalf (was a 500).
    declared = client.post(
        "/api/v1/judging/v1/conflicts",
        json={"nominee": d2, "reason": "亲属关系", "judge": "judge"},
        headers=admin,
    )
    assert declared.status_code == 201
    unknown = client.post(
        "/api/v1/judging/v1/conflicts",
        json={"nominee": d2, "reason": "x", "judge": "nobody"},
        headers=admin,
    )
    assert unknown.status_code == 404
    # A submitted sheet cannot be revised into a partial one.
    assert _score(client, org, "judge", d1, 80).status_code == 200
    partial = client.put(
        f"/api/v1/judging/v1/sheets/{d1}",
        json={"scores": {"ethics": 10}, "submit": False},
        headers=org.headers("judge"),
    )
    assert partial.status_code == 422
    bad_number = client.put(
        f"/api/v1/judging/v1/sheets/{d1}",
        json={"scores": {"ethics": "NaN"}},
        headers=org.headers("judge"),
    )
    assert bad_number.status_code == 422
    # Closing straight from judging skips publicity: refused.
    closing = client.post("/api/v1/campaigns/v1/phase", json={"phase": "closed"}, headers=admin)
    assert closing.status_code == 409 and closing.json["error"]["code"] == "not_published"
    # Conflicts can only be declared while judging.
    client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin)
    client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin)
    client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin)
    late = client.post(
        "/api/v1/judging/v1/conflicts",
        json={"nominee": d1, "reason": "x"},
        headers=org.headers("judge"),
    )
    assert late.status_code == 409 and late.json["error"]["code"] == "judging_closed"


def test_results_wait_for_the_ledger_to_drain(app: Flask, client: FlaskClient, org: Org) -> None:
    _judging_campaign(app, client, org)
    with app.app_context():
        keys = voting_services.CampaignKeys.of("v1")
        from core.extensions import redis_store

        redis_store.client.xadd(keys.ledger, {"kind": "vote", "id": "x"})
        db.session.remove()
    response = client.post(
        "/api/v1/admin/campaigns/v1/results", json={}, headers=org.headers("admin")
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "ledger_not_drained"


def test_results_wait_for_quarantine_and_rewinds_to_be_reviewed(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    """A quarantined entry may be a real vote, a rewind may have lost some: results wait until
    someone has looked at each, then compute."""
    _judging_campaign(app, client, org)
    admin = org.headers("admin")
    with app.app_context():
        campaign = campaign_services.get_campaign("v1")
        db.session.add(
            QuarantinedVote(
                campaign_id=campaign.id,
                stream_id="1-0",
                kind="vote",
                fields={"ip": "x" * 100},
                reason="value too long",
            )
        )
        db.session.add(
            LedgerRewind(
                campaign_id=campaign.id,
                event_key="test-rewind",
                detected_by="watch",
                reason="restarted",
                redis_seq=0,
                known_seq=3,
                lifted_to=3 + app.config["VOTE_SEQ_REWIND_MARGIN"],
                possibly_lost=3,
            )
        )
        db.session.commit()
        rewind_id = db.session.scalar(select(LedgerRewind.id))
    held = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin)
    assert held.status_code == 409, held.json
    assert held.json["error"]["code"] == "ledger_quarantine_unresolved"
    assert "隔离" in held.json["error"]["message"]
    with app.app_context():
        campaign = campaign_services.get_campaign("v1")
        resolve_quarantined(campaign, "1-0", actor="admin", resolution="作废：测试")
        db.session.commit()
    held = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin)
    assert held.status_code == 409, held.json
    assert held.json["error"]["code"] == "ledger_rewind_unacknowledged"
    with app.app_context():
        campaign = campaign_services.get_campaign("v1")
        rewinds.acknowledge(campaign, rewind_id, actor="admin", note="核查完毕")
        db.session.commit()
    computed = client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin)
    assert computed.status_code == 201, computed.json


def test_openapi_declares_the_refusals_with_the_error_envelope(client: FlaskClient) -> None:
    """Found by tests/fuzz: the awards operations answered undocumented 404s and 409s."""
    paths = client.get("/api/openapi.json").json["paths"]
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    admin = "/api/v1/admin/campaigns/{slug}"
    declared = {
        (f"{admin}/criteria", "put"): {404, 409},
        (f"{admin}/judges", "post"): {404},
        (f"{admin}/judging", "get"): {404},
        ("/api/v1/judging/{slug}/conflicts", "post"): {404, 409},
        ("/api/v1/judging/{slug}/sheets", "get"): {404},
        ("/api/v1/judging/{slug}/sheets/{number}", "put"): {403, 404, 409},
        (f"{admin}/organizer-scores/{{number}}", "put"): {404, 409},
        (f"{admin}/results", "post"): {404, 409},
        (f"{admin}/results/{{number}}", "get"): {404},
        (f"{admin}/results/{{number}}/sensitivity", "get"): {404},
        (f"{admin}/results/{{number}}/adjustments", "post"): {404, 409},
        (f"{admin}/results/{{number}}/finalize", "post"): {404, 409},
        (f"{admin}/results/{{number}}/publish", "post"): {404, 409},
        ("/api/v1/campaigns/{slug}/winners", "get"): {404},
        ("/api/v1/campaigns/{slug}/objections", "post"): {404, 409, 413, 429},
        ("/api/v1/campaigns/{slug}/objections", "get"): {404},
        (f"{admin}/objections", "get"): {404},
        (f"{admin}/objections/{{objection_id}}", "post"): {404, 409},
        (f"{admin}/audit", "get"): {404},
        (f"{admin}/exports", "post"): {404},
        (f"{admin}/exports/{{job_id}}", "get"): {404},
        (f"{admin}/exports/{{job_id}}/download", "get"): {404, 409},
    }
    for (path, method), statuses in declared.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            body = responses[str(status)]["content"]["application/json"]["schema"]
            assert body == envelope, (method, path, status)
