"""The committee blocks and unblocks a voter, with a reason (issue #14 item 7): the API, who may,
what is refused, the audit trail, the vote script's blocked set, blocks from a fraud flag, and
the refusal at vote time."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.audit import AuditLog
from core.auth import read_token
from core.extensions import db, redis_store
from tests.factories import FakeFinding, Org
from voting import blocks, fraud, services
from voting import jobs as voting_jobs
from voting.blocks import blocked_voter_ids
from voting.keys import CampaignKeys
from voting.models import VoterBlock

BASE = "/api/v1/admin/campaigns/v1"


def _voter(app: Flask, client: FlaskClient, name: str) -> tuple[int, dict[str, str]]:
    """A real voter made by the device provider: its id and its token's headers."""
    made = client.post("/api/v1/voters/device", json={"device_id": f"device-{name}-0001"})
    assert made.status_code == 201, made.json
    token = made.json["voter_token"]
    with app.app_context():
        voter_id = int(read_token("voter", token)["sub"])
    return voter_id, {"Authorization": f"Bearer {token}"}


def _vote(client: FlaskClient, headers: dict[str, str], number: str, slug: str = "v1") -> Any:
    return client.post(f"/api/v1/campaigns/{slug}/votes", json={"nominee": number}, headers=headers)


def _drain(app: Flask, slug: str = "v1") -> None:
    with app.app_context():
        services.drain_campaign(slug)
        db.session.remove()


def _voted(app: Flask, client: FlaskClient, numbers: list[str], *names: str) -> list[int]:
    """Voters who each cast one stored vote in v1."""
    ids = []
    for name in names:
        voter_id, headers = _voter(app, client, name)
        assert _vote(client, headers, numbers[0]).status_code == 201
        ids.append(voter_id)
    _drain(app)
    return ids


def _in_blocked_set(app: Flask, voter_id: int, slug: str = "v1") -> bool:
    with app.app_context():
        return bool(redis_store.votes.sismember(CampaignKeys.of(slug).blocked, voter_id))


def _audit(app: Flask, action: str) -> list[AuditLog]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))
        db.session.expunge_all()
        db.session.remove()
    return rows


def test_block_list_and_lift(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    voter, other = _voted(app, client, numbers, "alpha", "beta")
    admin = org.headers("admin")
    made = client.post(
        f"{BASE}/blocks", json={"voter_id": voter, "reason": "  同一设备批量注册  "}, headers=admin
    )
    assert made.status_code == 201, made.json
    block = made.json
    assert block["voter_id"] == voter and block["reason"] == "同一设备批量注册"
    assert block["source"] == "browser" and block["flag_id"] is None
    assert block["blocked_by"] == "admin" and block["active"] is True
    assert block["warning"] is None
    assert _in_blocked_set(app, voter) and not _in_blocked_set(app, other)

    listed = client.get(f"{BASE}/blocks", headers=admin).json
    assert listed["total"] == 1 and [b["voter_id"] for b in listed["items"]] == [voter]
    audits = _audit(app, "voter.block")
    assert [(a.object_id, a.actor_name, a.reason) for a in audits] == [
        (str(voter), "admin", "同一设备批量注册")
    ]
    assert audits[0].campaign_id is not None

    lifted = client.post(
        f"{BASE}/blocks/{voter}/lift", json={"reason": "本人来电核实"}, headers=admin
    )
    assert lifted.status_code == 200, lifted.json
    assert lifted.json["active"] is False and lifted.json["lifted_by"] == "admin"
    assert lifted.json["lift_reason"] == "本人来电核实"
    assert not _in_blocked_set(app, voter)
    assert client.get(f"{BASE}/blocks", headers=admin).json["total"] == 0
    history = client.get(f"{BASE}/blocks?status=lifted", headers=admin).json
    assert [b["voter_id"] for b in history["items"]] == [voter]
    assert client.get(f"{BASE}/blocks?status=all", headers=admin).json["total"] == 1
    assert [a.reason for a in _audit(app, "voter.unblock")] == ["本人来电核实"]

    # Blocked again after a lift: a new row, the old one stays on record.
    again = client.post(
        f"{BASE}/blocks", json={"voter_id": voter, "reason": "再次发现"}, headers=admin
    )
    assert again.status_code == 201 and again.json["id"] != block["id"]
    assert client.get(f"{BASE}/blocks?status=all", headers=admin).json["total"] == 2
    assert _in_blocked_set(app, voter)


def test_reasons_are_required(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "gamma")
    admin = org.headers("admin")
    url = f"{BASE}/blocks"
    missing = client.post(url, json={"voter_id": voter}, headers=admin)
    assert missing.status_code == 422 and "reason" in missing.json["error"]["details"]["fields"]
    for reason, code in (
        ("", "reason_required"),
        ("   ", "reason_required"),
        ("刷", "reason_length"),
    ):
        refused = client.post(url, json={"voter_id": voter, "reason": reason}, headers=admin)
        assert refused.status_code == 422, reason
        assert refused.json["error"]["code"] == code
    long = client.post(url, json={"voter_id": voter, "reason": "长" * 501}, headers=admin)
    assert long.status_code == 422 and long.json["error"]["code"] == "reason_length"
    assert (
        client.post(url, json={"voter_id": voter, "reason": "长" * 500}, headers=admin).status_code
        == 201
    )
    lift = f"{BASE}/blocks/{voter}/lift"
    assert client.post(lift, json={}, headers=admin).status_code == 422
    blank = client.post(lift, json={"reason": " "}, headers=admin)
    assert blank.status_code == 422 and blank.json["error"]["code"] == "reason_required"
    assert _in_blocked_set(app, voter)  # nothing was lifted
    bad_id = client.post(url, json={"voter_id": "1", "reason": "理由充分"}, headers=admin)
    assert bad_id.status_code == 422
    huge = client.post(url, json={"voter_id": 2**40, "reason": "理由充分"}, headers=admin)
    assert huge.status_code == 422


def test_only_the_committee_blocks(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "delta")
    body = {"voter_id": voter, "reason": "批量刷票"}
    for username in ("unit-h1", "rev-k1", "judge"):
        headers = org.headers(username)
        for method, url, payload in (
            ("post", f"{BASE}/blocks", body),
            ("get", f"{BASE}/blocks", None),
            ("post", f"{BASE}/blocks/{voter}/lift", {"reason": "核实无误"}),
            ("post", f"{BASE}/fraud/flags/1/block-voters", {"reason": "批量刷票"}),
        ):
            answer = getattr(client, method)(url, json=payload, headers=headers)
            assert answer.status_code == 403, (username, url, answer.json)
    assert client.post(f"{BASE}/blocks", json=body).status_code == 401
    _, voter_headers = _voter(app, client, "epsilon")
    assert client.post(f"{BASE}/blocks", json=body, headers=voter_headers).status_code == 401
    assert not _in_blocked_set(app, voter)
    nowhere = client.post(
        "/api/v1/admin/campaigns/nope/blocks", json=body, headers=org.headers("admin")
    )
    assert nowhere.status_code == 404 and nowhere.json["error"]["code"] == "campaign_not_found"


def test_unknown_voters_and_voters_of_another_campaign(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign()
    other_numbers = org.voting_campaign(slug="v2")
    admin = org.headers("admin")
    unknown = client.post(
        f"{BASE}/blocks", json={"voter_id": 987654, "reason": "不存在的投票人"}, headers=admin
    )
    assert unknown.status_code == 404 and unknown.json["error"]["code"] == "voter_not_found"
    elsewhere, headers = _voter(app, client, "zeta")
    assert _vote(client, headers, other_numbers[0], slug="v2").status_code == 201
    _drain(app, "v2")
    refused = client.post(
        f"{BASE}/blocks",
        json={"voter_id": elsewhere, "reason": "只在别的活动投过票"},
        headers=admin,
    )
    assert refused.status_code == 404 and refused.json["error"]["code"] == "voter_not_in_campaign"
    # Blocked in v2 is not blocked in v1.
    blocked = client.post(
        "/api/v1/admin/campaigns/v2/blocks",
        json={"voter_id": elsewhere, "reason": "在 v2 刷票"},
        headers=admin,
    )
    assert blocked.status_code == 201
    assert _in_blocked_set(app, elsewhere, "v2") and not _in_blocked_set(app, elsewhere, "v1")
    assert client.get(f"{BASE}/blocks", headers=admin).json["total"] == 0
    lift_here = client.post(
        f"{BASE}/blocks/{elsewhere}/lift", json={"reason": "误操作"}, headers=admin
    )
    assert lift_here.status_code == 404 and lift_here.json["error"]["code"] == "not_blocked"
    assert numbers  # v1 exists and is open


def test_double_block_and_lifting_what_is_not_blocked(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "eta")
    admin = org.headers("admin")
    body = {"voter_id": voter, "reason": "同一网段"}
    assert client.post(f"{BASE}/blocks", json=body, headers=admin).status_code == 201
    twice = client.post(f"{BASE}/blocks", json=body, headers=admin)
    assert twice.status_code == 409 and twice.json["error"]["code"] == "already_blocked"
    assert twice.json["error"]["details"]["blocked_by"] == "admin"
    with app.app_context():
        assert len(db.session.scalars(select(VoterBlock)).all()) == 1
        db.session.remove()
    lift = f"{BASE}/blocks/{voter}/lift"
    assert client.post(lift, json={"reason": "核实无误"}, headers=admin).status_code == 200
    again = client.post(lift, json={"reason": "核实无误"}, headers=admin)
    assert again.status_code == 404 and again.json["error"]["code"] == "not_blocked"
    assert len(_audit(app, "voter.unblock")) == 1


def test_racing_blocks_of_one_voter_store_one(app: Flask, client: FlaskClient, org: Org) -> None:
    """Four committee members block the same voter at the same moment: one block, three 409."""
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "kappa")
    admin = org.headers("admin")
    barrier = threading.Barrier(4)
    statuses: list[int] = []

    def block() -> None:
        own = app.test_client()
        barrier.wait()
        answer = own.post(
            f"{BASE}/blocks", json={"voter_id": voter, "reason": "同时屏蔽"}, headers=admin
        )
        statuses.append(answer.status_code)

    threads = [threading.Thread(target=block) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [201, 409, 409, 409]
    with app.app_context():
        assert len(db.session.scalars(select(VoterBlock)).all()) == 1
        db.session.remove()


def _flag(app: Flask, vote_ids: list[str], nominee: str) -> int:
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        scan = fraud.start_scan(campaign, "test")
        fraud._file_flag(
            campaign, scan, FakeFinding("address_concentration", nominee, tuple(vote_ids))
        )
        db.session.commit()
        flag_id = fraud.list_flags(campaign)[0].id
        db.session.remove()
    return flag_id


def test_block_every_voter_a_flag_names(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign()
    brushed, innocent = [], []
    vote_ids = []
    for name in ("f1", "f2", "f3"):
        voter_id, headers = _voter(app, client, name)
        vote_ids.append(_vote(client, headers, numbers[0]).json["vote_id"])
        brushed.append(voter_id)
    voter_id, headers = _voter(app, client, "f4")
    assert _vote(client, headers, numbers[0]).status_code == 201
    innocent.append(voter_id)
    _drain(app)
    flag_id = _flag(app, vote_ids, numbers[0])
    admin = org.headers("admin")
    # One of them blocked already, from the vote browser.
    assert (
        client.post(
            f"{BASE}/blocks", json={"voter_id": brushed[0], "reason": "先行屏蔽"}, headers=admin
        ).status_code
        == 201
    )
    url = f"{BASE}/fraud/flags/{flag_id}/block-voters"
    assert client.post(url, json={"reason": ""}, headers=admin).status_code == 422
    done = client.post(url, json={"reason": "线索确认：同一网段脚本"}, headers=admin)
    assert done.status_code == 200, done.json
    assert done.json["blocked"] == sorted(brushed[1:])
    assert done.json["already_blocked"] == [brushed[0]]
    assert {b["source"] for b in done.json["items"]} == {"flag"}
    assert {b["flag_id"] for b in done.json["items"]} == {flag_id}
    assert all(_in_blocked_set(app, v) for v in brushed)
    assert not _in_blocked_set(app, innocent[0])
    listed = client.get(f"{BASE}/blocks", headers=admin).json
    assert sorted(b["voter_id"] for b in listed["items"]) == sorted(brushed)
    assert len(_audit(app, "voter.block")) == 3
    twice = client.post(url, json={"reason": "再来一次"}, headers=admin)
    assert twice.status_code == 409 and twice.json["error"]["code"] == "already_blocked"
    missing = client.post(
        f"{BASE}/fraud/flags/999999/block-voters", json={"reason": "不存在"}, headers=admin
    )
    assert missing.status_code == 404 and missing.json["error"]["code"] == "flag_not_found"
    # One voter from the flag through the blocks endpoint: only a voter the flag names.
    not_named = client.post(
        f"{BASE}/blocks",
        json={"voter_id": innocent[0], "reason": "线索中没有", "flag_id": flag_id},
        headers=admin,
    )
    assert not_named.status_code == 404 and not_named.json["error"]["code"] == "voter_not_in_flag"
    client.post(f"{BASE}/blocks/{brushed[1]}/lift", json={"reason": "复核放行"}, headers=admin)
    one = client.post(
        f"{BASE}/blocks",
        json={"voter_id": brushed[1], "reason": "复核后仍屏蔽", "flag_id": flag_id},
        headers=admin,
    )
    assert (
        one.status_code == 201 and one.json["source"] == "flag" and one.json["flag_id"] == flag_id
    )


def test_a_block_is_stored_while_the_vote_redis_is_down(
    app: Flask, client: FlaskClient, org: Org, make_app: Callable[..., Flask]
) -> None:
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "theta")
    broken = make_app(VOTE_REDIS_URL="redis://127.0.0.1:1/0").test_client()
    admin = org.headers("admin")
    made = broken.post(
        f"{BASE}/blocks", json={"voter_id": voter, "reason": "批量刷票"}, headers=admin
    )
    assert made.status_code == 201, made.json
    assert made.json["warning"]["code"] == "vote_service_unavailable"
    assert "投票服务" in made.json["warning"]["message"]
    assert not _in_blocked_set(app, voter)  # the vote Redis was never told …
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert blocked_voter_ids(campaign.id) == [voter]  # … but the state write will be
        db.session.remove()
    lifted = broken.post(f"{BASE}/blocks/{voter}/lift", json={"reason": "核实无误"}, headers=admin)
    assert (
        lifted.status_code == 200 and lifted.json["warning"]["code"] == "vote_service_unavailable"
    )


def test_blocked_voter_is_refused_at_vote_time(app: Flask, client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(rules={"votes_per_day": 5, "votes_per_nominee_per_day": 5})
    voter_id, headers = _voter(app, client, "iota")
    assert _vote(client, headers, numbers[0]).status_code == 201
    _drain(app)
    admin = org.headers("admin")
    assert (
        client.post(
            f"{BASE}/blocks", json={"voter_id": voter_id, "reason": "批量刷票"}, headers=admin
        ).status_code
        == 201
    )
    refused = _vote(client, headers, numbers[1])
    assert refused.status_code == 403, refused.json
    assert refused.json["error"]["code"] == "voter_blocked"
    client.post(f"{BASE}/blocks/{voter_id}/lift", json={"reason": "核实无误"}, headers=admin)
    assert _vote(client, headers, numbers[1]).status_code == 201


def test_the_watch_job_puts_a_missed_block_into_the_vote_scripts_set(
    app: Flask, client: FlaskClient, org: Org, make_app: Callable[..., Flask]
) -> None:
    """A block stored while the vote Redis was down (or overwritten by a state write that read
    the blocks just before it committed) reaches the set within the watch job's second."""
    numbers = org.voting_campaign()
    (voter,) = _voted(app, client, numbers, "kappa")
    broken = make_app(VOTE_REDIS_URL="redis://127.0.0.1:1/0").test_client()
    made = broken.post(
        f"{BASE}/blocks",
        json={"voter_id": voter, "reason": "批量刷票"},
        headers=org.headers("admin"),
    )
    assert made.status_code == 201 and not _in_blocked_set(app, voter)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        key = CampaignKeys.of("v1").blocked
        redis_store.votes.sadd(key, "999999")  # a stale member, lifted long ago
        voting_jobs.watch_sequences()
        assert _in_blocked_set(app, voter)
        assert not redis_store.votes.sismember(key, "999999")
        assert blocks.sync_blocked_set(campaign) == 0  # nothing left to correct
        db.session.remove()
