"""The committee's decisions on votes: flags confirmed, dismissed and undone; held votes released
or voided; freezes lifted; the vote browser and its CSV; tallies; the decision chain."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from tests.factories import FakeFinding, Org
from voting import cast, detectors, fraud, labels, services
from voting.detectors.model import TIERS
from voting.models import VOTE_STATUSES, CommitteeDecision, FraudScan, Vote


def _campaign() -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))


def _vote(client: FlaskClient, org: Org, voter: int, number: str, ip: str = "10.0.0.1") -> Any:
    return client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": number},
        headers=org.voter(voter),
        environ_base={"REMOTE_ADDR": ip},
    )


def _flag_votes(app: Flask, ids: list[str], nominee: str) -> int:
    with app.app_context():
        campaign = _campaign()
        scan = fraud.start_scan(campaign, "test")
        fraud._file_flag(campaign, scan, FakeFinding("address_concentration", nominee, tuple(ids)))
        db.session.commit()
        flag_id = fraud.list_flags(campaign)[0].id
        db.session.remove()
    return flag_id


def _votes_of(client: FlaskClient, number: str) -> int:
    return client.get(f"/api/v1/campaigns/v1/nominees/{number}").json["votes"]


def test_confirm_and_undo_a_flag(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    brushed = [_vote(client, org, v, numbers[0], ip="10.9.9.9").json["vote_id"] for v in range(4)]
    for v in range(10, 13):
        _vote(client, org, v, numbers[0], ip=f"172.16.{v}.1")
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    flag_id = _flag_votes(app, brushed, numbers[0])
    admin = org.headers("admin")
    url = f"/api/v1/admin/campaigns/v1/fraud/flags/{flag_id}"
    detail = client.get(url, headers=admin).json
    assert detail["vote_count"] == 4 and detail["status"] == "open" and "evidence" in detail
    assert client.post(f"{url}/confirm", json={"reason": ""}, headers=admin).status_code == 422
    assert (
        client.post(
            f"{url}/confirm", json={"reason": "x"}, headers=org.headers("rev-k1")
        ).status_code
        == 403
    )
    assert _votes_of(client, numbers[0]) == 7
    confirmed = client.post(f"{url}/confirm", json={"reason": "同一网段脚本刷票"}, headers=admin)
    assert confirmed.status_code == 200 and confirmed.json["status"] == "confirmed"
    assert confirmed.json["decided_by"] == "admin"
    assert _votes_of(client, numbers[0]) == 3  # the public count drops at once
    assert client.post(f"{url}/confirm", json={"reason": "again"}, headers=admin).status_code == 409
    invalid = client.get("/api/v1/admin/campaigns/v1/votes?status=invalid", headers=admin).json
    assert sorted(v["id"] for v in invalid["items"]) == sorted(brushed)
    assert all(v["status_reason"] == f"flag:{flag_id}" for v in invalid["items"])
    with app.app_context():
        assert services.reconcile(_campaign())["repairs"] == []
        db.session.remove()

    undone = client.post(f"{url}/undo", json={"reason": "复核后认定为正常投票"}, headers=admin)
    assert undone.json["status"] == "open"
    assert _votes_of(client, numbers[0]) == 7
    dismissed = client.post(f"{url}/dismiss", json={"reason": "医院统一出口 IP"}, headers=admin)
    assert dismissed.json["status"] == "dismissed"
    chain = client.get("/api/v1/admin/campaigns/v1/decisions", headers=admin).json
    assert [d["action"] for d in chain] == ["confirm", "undo", "dismiss"]
    assert [d["vote_count"] for d in chain] == [4, 4, 0]
    with app.app_context():
        assert fraud.verify_decisions(_campaign())["ok"] is True
        db.session.execute(
            update(CommitteeDecision)
            .where(CommitteeDecision.chain_index == 2)
            .values(reason="悄悄改掉的理由")
        )
        db.session.commit()
        assert fraud.verify_decisions(_campaign())["ok"] is False
        db.session.remove()


def test_a_watch_note_is_listed_apart_and_cannot_be_confirmed(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    """A 观察 (watch) note is stored with its votes but left out of the default list and the
    counts, listed with ``severity=watch``, and confirming it answers 409 watch_not_actionable
    (nothing is invalidated); dismissing it closes it."""
    numbers = org.voting_campaign(nominees=2)
    ids = [_vote(client, org, v, numbers[0], ip=f"10.8.{v}.1").json["vote_id"] for v in range(3)]
    with app.app_context():
        services.drain_campaign("v1")
        campaign = _campaign()
        scan = fraud.start_scan(campaign, "test")
        note = FakeFinding("new_identity_surge", numbers[0], tuple(ids), 0.55, "watch")
        flag = FakeFinding("address_concentration", numbers[0], tuple(ids[:2]), 0.9, "high")
        assert fraud._file_flag(campaign, scan, note) and fraud._file_flag(campaign, scan, flag)
        db.session.commit()
        assert fraud.flag_counts(campaign) == {"open": 1}
        assert fraud.flag_counts(campaign, watch=True) == {"open": 1}
        db.session.remove()
    admin = org.headers("admin")
    base = "/api/v1/admin/campaigns/v1/fraud/flags"
    listed = client.get(base, headers=admin).json["items"]
    assert [f["severity"] for f in listed] == ["high"]
    watch = client.get(f"{base}?severity=watch", headers=admin).json["items"]
    assert [(f["severity"], f["vote_count"]) for f in watch] == [("watch", 3)]
    bad = client.get(f"{base}?severity=bogus", headers=admin)
    assert bad.status_code == 422
    url = f"{base}/{watch[0]['id']}"
    refused = client.post(f"{url}/confirm", json={"reason": "想作废"}, headers=admin)
    assert refused.status_code == 409 and refused.json["error"]["code"] == "watch_not_actionable"
    assert _votes_of(client, numbers[0]) == 3
    assert client.get(url, headers=admin).json["status"] == "open"
    closed = client.post(f"{url}/dismiss", json={"reason": "转发带来的新用户"}, headers=admin)
    assert closed.status_code == 200 and closed.json["status"] == "dismissed"
    by_rule = client.get(f"/api/v1/admin/campaigns/v1/votes?flag={watch[0]['id']}", headers=admin)
    assert sorted(v["id"] for v in by_rule.json["items"]) == sorted(ids)


def test_release_and_void_held_votes(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(
        rules={"velocity_factor": 2, "velocity_floor": 2, "freeze_minutes": 0}
    )
    moment = utcnow().replace(second=5, microsecond=0)
    monkeypatch.setattr(cast, "clock", lambda: moment)
    answers = [_vote(client, org, v, numbers[0]).json for v in range(5)]
    assert [a["status"] for a in answers] == ["valid", "valid", "pending", "pending", "pending"]
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    pending = client.get("/api/v1/admin/campaigns/v1/votes?status=pending", headers=admin).json
    held = [v["id"] for v in pending["items"]]
    released = client.post(
        "/api/v1/admin/campaigns/v1/votes/pending",
        headers=admin,
        json={"decision": "release", "reason": "核实为同科室同事", "vote_ids": held[:2]},
    )
    assert released.status_code == 200 and released.json["vote_count"] == 2
    assert _votes_of(client, numbers[0]) == 4
    voided = client.post(
        "/api/v1/admin/campaigns/v1/votes/pending",
        headers=admin,
        json={"decision": "void", "reason": "无法核实", "nominee": numbers[0]},
    )
    assert voided.json["vote_count"] == 1 and voided.json["to_status"] == "invalid"
    nothing = client.post(
        "/api/v1/admin/campaigns/v1/votes/pending",
        headers=admin,
        json={"decision": "void", "reason": "x", "nominee": numbers[0]},
    )
    assert nothing.status_code == 409
    tally = client.get("/api/v1/admin/campaigns/v1/tally", headers=admin).json
    assert tally["totals"] == {"valid": 4, "pending": 0, "invalid": 1}
    assert tally["differences"] == [] and tally["undrained"] == 0


def test_lift_a_freeze(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(
        rules={"velocity_factor": 2, "velocity_floor": 1, "freeze_minutes": 30}
    )
    moment = utcnow().replace(second=5, microsecond=0)
    monkeypatch.setattr(cast, "clock", lambda: moment)
    _vote(client, org, 1, numbers[0])
    _vote(client, org, 2, numbers[0])
    assert _vote(client, org, 3, numbers[0]).json["error"]["code"] == "nominee_frozen"
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    url = f"/api/v1/admin/campaigns/v1/freezes/{numbers[0]}/lift"
    assert client.post(url, json={"reason": "已核实，系正常转发"}, headers=admin).status_code == 204
    assert _vote(client, org, 4, numbers[0]).status_code == 201
    freezes = client.get("/api/v1/admin/campaigns/v1/freezes", headers=admin).json["items"]
    assert freezes[0]["lifted_by"] == "admin" and freezes[0]["lift_reason"] == "已核实，系正常转发"
    again = client.post(
        f"/api/v1/admin/campaigns/v1/freezes/{numbers[1]}/lift", json={"reason": "x"}, headers=admin
    )
    assert again.status_code == 404 and again.json["error"]["code"] == "not_frozen"


def test_vote_browser_filters_and_csv(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    _vote(client, org, 1, numbers[0], ip="10.2.3.4")
    _vote(client, org, 2, numbers[0], ip="10.2.3.5")
    _vote(client, org, 2, numbers[1], ip="192.168.1.1")
    client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[1]},
        headers={**org.voter(3), "User-Agent": "=cmd|' /C calc'!A0"},
    )
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    base = "/api/v1/admin/campaigns/v1/votes"
    assert client.get(f"{base}?prefix=10.2.3.", headers=admin).json["total"] == 2
    assert client.get(f"{base}?voter=2", headers=admin).json["total"] == 2
    assert client.get(f"{base}?nominee={numbers[1]}", headers=admin).json["total"] == 2
    assert client.get(f"{base}?prefix=10.2.3.;drop", headers=admin).status_code == 422
    assert client.get(base, headers=org.headers("unit-h1")).status_code == 403
    csv_response = client.get("/api/v1/admin/campaigns/v1/votes.csv?prefix=10.2.3.", headers=admin)
    text = csv_response.get_data(as_text=True)
    assert text.startswith("\ufeffid,nominee_number") and text.count("\n") == 3
    full = client.get("/api/v1/admin/campaigns/v1/votes.csv", headers=admin).get_data(as_text=True)
    assert "'=cmd" in full


def test_tally_snapshots_and_trend(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    _vote(client, org, 1, numbers[0])
    with app.app_context():
        assert fraud.snapshot_tallies(_campaign()) == 1
        assert fraud.snapshot_tallies(_campaign()) == 0  # once per minute
        db.session.commit()
        db.session.remove()
    trend = client.get(
        f"/api/v1/admin/campaigns/v1/trend?nominee={numbers[0]}", headers=org.headers("admin")
    ).json["items"]
    assert [(t["nominee"], t["valid"], t["pending"]) for t in trend] == [(numbers[0], 1, 0)]
    admin = org.headers("admin")
    later = client.get(
        "/api/v1/admin/campaigns/v1/trend",
        query_string={"since": "2999-01-01T00:00:00+08:00"},
        headers=admin,
    )
    assert later.status_code == 200 and later.json["items"] == []
    earlier = client.get(
        "/api/v1/admin/campaigns/v1/trend",
        query_string={"since": "2000-01-01T00:00:00+00:00"},
        headers=admin,
    )
    assert len(earlier.json["items"]) == 1
    naive = client.get("/api/v1/admin/campaigns/v1/trend?since=2000-01-01T00:00:00", headers=admin)
    assert naive.status_code == 422


def test_scan_job_files_flags(app: Flask, client: FlaskClient, org: Org) -> None:
    pytest.importorskip("voting.detectors")
    from rq import SimpleWorker

    from core.extensions import redis_store

    numbers = org.voting_campaign(nominees=2, rules={"votes_per_day": 5})
    for v in range(3):
        _vote(client, org, v, numbers[v % 2])
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    started = client.post("/api/v1/admin/campaigns/v1/fraud/scans", headers=admin)
    assert started.status_code == 202 and started.json["status"] == "queued"
    with app.app_context():
        queue = redis_store.queue("default")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        scan = db.session.get(FraudScan, started.json["id"])
        assert scan.status == "done" and scan.votes_scanned == 3
        db.session.remove()
    shown = client.get(
        f"/api/v1/admin/campaigns/v1/fraud/scans/{started.json['id']}", headers=admin
    ).json
    assert shown["status"] == "done"
    flags = client.get("/api/v1/admin/campaigns/v1/fraud/flags", headers=admin).json["items"]
    assert flags == []  # three organic votes: nothing to see
    with app.app_context():
        assert db.session.scalar(select(Vote.status).limit(1)) == "valid"
        db.session.remove()


def test_detector_thresholds_are_campaign_rules(client: FlaskClient, org: Org) -> None:
    slug = org.campaign()
    admin = org.headers("admin")
    base = {"votes_per_day": 5, "votes_per_nominee_per_day": 1}
    ok = client.patch(
        f"/api/v1/campaigns/{slug}",
        headers=admin,
        json={"rules": {**base, "fraud": {"lockstep_group": {"min_group": 6}}}},
    )
    assert ok.status_code == 200
    for bad in ({"no_such_rule": {}}, {"lockstep_group": {"bonus_votes": 1}}):
        refused = client.patch(
            f"/api/v1/campaigns/{slug}", headers=admin, json={"rules": {**base, "fraud": bad}}
        )
        assert refused.status_code == 422


def test_vote_browser_refuses_filters_the_database_cannot_take(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    """Found by tests/fuzz: these were 500s (a date overflowing UTC, an id or page overflowing
    the database's integers); now 422, the same on the list, the CSV and the workbook."""
    numbers = org.voting_campaign(nominees=1)
    _vote(client, org, 1, numbers[0])
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    admin = org.headers("admin")
    for path in ("votes", "votes.csv", "votes.xlsx"):
        for query in (
            {"end": "0001-01-01T00:00:00+00:01"},
            {"start": "9999-12-31T23:59:59-00:01"},
            {"flag": "9223372036854775808"},
            {"voter": "2147483648"},
        ):
            answer = client.get(
                f"/api/v1/admin/campaigns/v1/{path}", query_string=query, headers=admin
            )
            assert answer.status_code == 422, (path, query, answer.status_code)
            assert set(answer.json["error"]["details"]["fields"]) == set(query)
    base = "/api/v1/admin/campaigns/v1/votes"
    assert client.get(f"{base}?page=56810027433507808", headers=admin).status_code == 422
    assert client.get(f"{base}?page=100000", headers=admin).json["items"] == []
    window = {"start": "2000-01-01T00:00:00+08:00", "end": "2999-01-01T00:00:00+08:00"}
    assert client.get(base, query_string=window, headers=admin).json["total"] == 1


def test_every_code_voting_stores_has_one_label() -> None:
    """voting.labels names every rule, severity, vote status, flag status and decision."""
    assert set(labels.RULE_LABELS) == set(detectors.RULES)
    assert set(labels.SEVERITY_LABELS) == set(TIERS)
    assert set(labels.VOTE_STATUS_LABELS) == set(VOTE_STATUSES)
    assert set(labels.FLAG_STATUS_LABELS) == {"open", "confirmed", "dismissed"}
    actions = {"confirm", "dismiss", "undo", "release", "void", "lift_freeze"}
    assert set(labels.DECISION_LABELS) == actions
    assert services.describe_vote_reason("flag:7") == "刷票线索 #7"
    assert services.describe_vote_reason("void:admin") == "已作废（admin）"
    assert services.describe_vote_reason("velocity:x") == "velocity:x"
