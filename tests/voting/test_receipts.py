"""我的投票 and vote receipts: a voter's own votes in plain words, the publication computed once
in 公示, receipts that check against it, and the checker that needs only docs/receipts.md."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from nominations import public_view
from tests.factories import Org
from voting import receipt_check, receipts, services
from voting.models import ReceiptNode, ReceiptPublication, Vote

ROOT = Path(__file__).resolve().parents[2]


def _vote(client: FlaskClient, org: Org, voter: int, number: str) -> str:
    answer = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
    )
    assert answer.status_code == 201, answer.json
    return str(answer.json["vote_id"])


def _drain(app: Flask) -> None:
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()


def _set_phase(app: Flask, phase: str) -> None:
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert campaign is not None
        campaign.phase = phase
        db.session.commit()
        public_view.invalidate("v1")
        db.session.remove()


def _set_status(app: Flask, vote_id: str, status: str, reason: str | None) -> None:
    with app.app_context():
        vote = db.session.get(Vote, vote_id)
        assert vote is not None
        vote.status, vote.status_reason = status, reason
        db.session.commit()
        db.session.remove()


def _mine(client: FlaskClient, org: Org, voter: int) -> dict[str, Any]:
    answer = client.get("/api/v1/campaigns/v1/votes/mine", headers=org.voter(voter))
    assert answer.status_code == 200, answer.json
    return answer.json  # type: ignore[no-any-return]


# --- the algorithm ------------------------------------------------------------------------------


def test_leaf_and_nodes_follow_the_documented_bytes() -> None:
    secret = "ab" * 32
    expected = hashlib.sha256(f"zuimei-receipt-leaf-v1|c1|c9-17-x1|D001|{secret}".encode())
    assert receipt_check.leaf_hash("c1", "c9-17-x1", "D001", secret) == expected.hexdigest()
    left, right = "11" * 32, "22" * 32
    node = hashlib.sha256(b"\x01" + bytes.fromhex(left) + bytes.fromhex(right)).hexdigest()
    assert receipt_check.node_hash(left, right) == node
    # three leaves: the third is carried up unchanged, then hashed with the first pair's node
    a, b, c = (f"{i:02x}" * 32 for i in (1, 2, 3))
    assert receipt_check.merkle_root([a, b, c]) == receipt_check.node_hash(
        receipt_check.node_hash(a, b), c
    )
    assert receipt_check.merkle_root([a]) == a
    with pytest.raises(ValueError):
        receipt_check.merkle_root([])
    root = receipt_check.campaign_root("c1", 7, "ff" * 32, [("D002", 1, b), ("D001", 2, a)])
    text = f"zuimei-receipt-root-v1|c1|7|{'ff' * 32}\nD001|2|{a}\nD002|1|{b}\n"
    assert root == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17])
def test_every_path_folds_to_the_root_and_a_wrong_one_does_not(size: int) -> None:
    leaves = sorted(hashlib.sha256(str(i).encode()).hexdigest() for i in range(size))
    root = receipt_check.merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        path = receipt_check.merkle_path(leaves, index)
        assert receipt_check.fold_path(leaf, path) == root
        assert receipt_check.fold_path("00" * 32, path) != root
        if path:
            flipped = [dict(path[0], side="left" if path[0]["side"] == "right" else "right")]
            assert receipt_check.fold_path(leaf, flipped + path[1:]) != root
    with pytest.raises(ValueError):
        receipt_check.fold_path(leaves[0], [{"side": "up", "hash": leaves[0]}])


# --- my votes -----------------------------------------------------------------------------------


def test_my_votes_show_each_state_in_plain_chinese(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=4)
    client = app.test_client()
    ids = [_vote(client, org, 1, number) for number in numbers]
    other = _vote(client, org, 2, numbers[0])

    before = _mine(client, org, 1)
    assert [item["state"] for item in before["items"]] == ["recording"] * 4
    assert {item["state_label"] for item in before["items"]} == {"正在计入"}
    assert {item["vote_id"] for item in before["items"]} == set(ids)
    assert not before["publicity"] and not before["receipts_ready"]

    _drain(app)
    _set_status(app, ids[1], "pending", "velocity")
    _set_status(app, ids[2], "invalid", "flag:7")
    _set_status(app, ids[3], "invalid", "void:admin")
    mine = _mine(client, org, 1)
    by_id = {item["vote_id"]: item for item in mine["items"]}
    assert set(by_id) == set(ids) and other not in by_id  # only the caller's own
    assert by_id[ids[0]]["state_label"] == "已计入" and by_id[ids[0]]["reason"] == ""
    assert by_id[ids[1]]["state_label"] == "待审核" and "得票过快" in by_id[ids[1]]["reason"]
    assert by_id[ids[2]]["state_label"] == "已核减" and "#7" in by_id[ids[2]]["reason"]
    assert by_id[ids[3]]["state_label"] == "已核减" and "admin" not in by_id[ids[3]]["reason"]
    assert by_id[ids[0]]["nominee_name"].startswith("候选人")
    assert mine["time_zone"] == "Asia/Shanghai"
    assert by_id[ids[0]]["at"].endswith("+08:00")
    assert not any(item["receipt"] for item in mine["items"])
    assert [i["vote_id"] for i in _mine(client, org, 2)["items"]] == [other]


def test_my_votes_refuses_without_a_voter_and_for_unknown_campaigns(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    org.voting_campaign(nominees=1)
    client = app.test_client()
    assert client.get("/api/v1/campaigns/v1/votes/mine").status_code == 401
    staff = client.get("/api/v1/campaigns/v1/votes/mine", headers=org.headers("admin"))
    assert staff.status_code == 401
    forged = client.get(
        "/api/v1/campaigns/v1/votes/mine", headers={"Authorization": "Bearer forged.token"}
    )
    assert forged.status_code == 401
    missing = client.get("/api/v1/campaigns/nope/votes/mine", headers=org.voter(1))
    assert missing.status_code == 404
    monkeypatch.setitem(app.config, "RECEIPT_VOTER_LIMIT", "2/minute")
    codes = [
        client.get("/api/v1/campaigns/v1/votes/mine", headers=org.voter(5)).status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    assert client.get("/api/v1/campaigns/v1/votes/mine", headers=org.voter(6)).status_code == 200


# --- the publication and receipts ---------------------------------------------------------------


def _campaign_with_votes(app: Flask, org: Org) -> tuple[list[str], dict[int, list[str]]]:
    numbers = org.voting_campaign(nominees=3)
    client = app.test_client()
    cast: dict[int, list[str]] = {}
    for voter in range(1, 8):
        chosen = numbers[: 1 + voter % 3]
        cast[voter] = [_vote(client, org, voter, number) for number in chosen]
    return numbers, cast


def test_receipts_are_published_once_in_publicity_and_check(
    app: Flask, org: Org, tmp_path: Path
) -> None:
    numbers, cast = _campaign_with_votes(app, org)
    client = app.test_client()
    first = cast[1][0]
    refused = client.get(f"/api/v1/campaigns/v1/votes/mine/{first}/receipt", headers=org.voter(1))
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "receipts_not_published"
    assert client.get("/api/v1/campaigns/v1/receipts").json["error"]["code"] == (
        "receipts_not_published"
    )

    _set_phase(app, "publicity")
    waiting = client.get("/api/v1/campaigns/v1/receipts")
    assert waiting.status_code == 409 and waiting.json["error"]["code"] == "receipts_not_ready"
    _drain(app)
    invalidated = cast[2][1]
    _set_status(app, invalidated, "invalid", "flag:3")

    roots = client.get("/api/v1/campaigns/v1/receipts")
    assert roots.status_code == 200, roots.json
    with app.app_context():
        valid = dict(
            db.session.execute(
                select(Vote.nominee_number, func.count(Vote.id))
                .where(Vote.status == "valid")
                .group_by(Vote.nominee_number)
            ).all()
        )
        head = services.ledger_health(db.session.scalar(select(Campaign))).get("chain_head")
        stored = db.session.scalar(select(func.count()).select_from(ReceiptNode))
        db.session.remove()
    assert {n["number"]: n["count"] for n in roots.json["nominees"]} == valid
    assert roots.json["chain_head"] == head and roots.json["leaf_count"] == sum(valid.values())

    leaves = client.get("/api/v1/campaigns/v1/receipts/leaves")
    assert leaves.status_code == 200 and "public" in leaves.headers["Cache-Control"]
    document = json.loads(leaves.get_data())
    assert receipt_check.check_publication(document) == []
    assert document["root"] == roots.json["root"]
    body = leaves.get_data(as_text=True)
    assert not any(vote_id in body for ids in cast.values() for vote_id in ids)

    # computed once: a second ask reads the stored trees, the same root and rows
    again = client.get("/api/v1/campaigns/v1/receipts")
    assert again.json["root"] == roots.json["root"]
    assert again.json["published_at"] == roots.json["published_at"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReceiptNode)) == stored

    mine = _mine(client, org, 1)
    assert mine["receipts_ready"] and mine["publicity"]
    assert all(item["receipt"] for item in mine["items"])
    flagged = {i["vote_id"]: i for i in _mine(client, org, 2)["items"]}[invalidated]
    assert not flagged["receipt"]

    answer = client.get(f"/api/v1/campaigns/v1/votes/mine/{first}/receipt", headers=org.voter(1))
    assert answer.status_code == 200, answer.json
    receipt = answer.json
    assert receipt_check.check_receipt(receipt, document) == []
    assert receipt["secret"] == receipt_check_secret(app, first)

    # another voter's vote, an invalidated vote, an unknown id: 404, the same answer
    for voter, vote_id in ((2, first), (2, invalidated), (1, "x" * 300)):
        other = client.get(
            f"/api/v1/campaigns/v1/votes/mine/{vote_id}/receipt", headers=org.voter(voter)
        )
        assert other.status_code == 404 and other.json["error"]["code"] == "receipt_not_found"

    # a receipt changed in any part no longer checks
    for field, value in (("nominee", numbers[2]), ("secret", "00" * 32), ("vote_id", "v-1-x")):
        assert receipt_check.check_receipt(dict(receipt, **{field: value}), document)
    tampered = json.loads(json.dumps(document))
    tampered["nominees"][0]["leaves"].pop()
    assert receipt_check.check_publication(tampered)

    # the CLI checker: exit 0, and 1 on a tampered publication
    receipt_file, published_file = tmp_path / "receipt.json", tmp_path / "published.json"
    receipt_file.write_text(json.dumps(receipt), encoding="utf-8")
    published_file.write_bytes(leaves.get_data())
    runner = app.test_cli_runner()
    ok = runner.invoke(
        args=[
            "votes",
            "receipts",
            "verify",
            "--receipt",
            str(receipt_file),
            "--published",
            str(published_file),
        ]
    )
    assert ok.exit_code == 0, ok.output
    assert "receipt ok" in ok.output
    (tmp_path / "bad.json").write_text(json.dumps(tampered), encoding="utf-8")
    bad = runner.invoke(
        args=["votes", "receipts", "verify", "--published", str(tmp_path / "bad.json")]
    )
    assert bad.exit_code == 1
    # the standalone module, in a fresh interpreter
    standalone = subprocess.run(
        [
            sys.executable,
            "-m",
            "voting.receipt_check",
            "--receipt",
            str(receipt_file),
            "--published",
            str(published_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert standalone.returncode == 0, standalone.stderr
    exported = tmp_path / "export.json"
    out = runner.invoke(
        args=["votes", "receipts", "export", "--campaign", "v1", "--out", str(exported)]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(exported.read_text(encoding="utf-8")) == document


def receipt_check_secret(app: Flask, vote_id: str) -> str:
    with app.test_request_context():
        return receipts.vote_secret("v1", vote_id)


def test_a_build_in_progress_is_not_run_twice_and_a_stale_one_is_taken_over(
    app: Flask, org: Org
) -> None:
    _campaign_with_votes(app, org)
    _drain(app)
    _set_phase(app, "publicity")
    with app.app_context():
        campaign = db.session.scalar(select(Campaign))
        assert campaign is not None
        db.session.add(ReceiptPublication(campaign_id=campaign.id, status="building", nominees=[]))
        db.session.commit()
        campaign_id = campaign.id
        db.session.remove()
    client = app.test_client()
    busy = client.get("/api/v1/campaigns/v1/receipts")
    assert busy.status_code == 409 and busy.json["error"]["code"] == "receipts_building"
    with app.app_context():
        claim = db.session.get(ReceiptPublication, campaign_id)
        assert claim is not None
        claim.started_at = utcnow() - receipts.BUILD_STALE - timedelta(minutes=1)
        db.session.commit()
        db.session.remove()
    taken = client.get("/api/v1/campaigns/v1/receipts")
    assert taken.status_code == 200, taken.json
    assert (
        receipt_check.check_publication(
            json.loads(client.get("/api/v1/campaigns/v1/receipts/leaves").get_data())
        )
        == []
    )


def test_a_failed_build_leaves_nothing_behind(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    _campaign_with_votes(app, org)
    _drain(app)
    _set_phase(app, "publicity")

    def broken(*_: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(receipts, "_build", broken)
    client = app.test_client()
    try:
        failed = client.get("/api/v1/campaigns/v1/receipts").status_code
    except RuntimeError:
        failed = 500
    assert failed == 500
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ReceiptPublication)) == 0
        db.session.remove()
    monkeypatch.undo()
    assert client.get("/api/v1/campaigns/v1/receipts").status_code == 200


def test_a_campaign_without_counted_votes_publishes_an_empty_list(app: Flask, org: Org) -> None:
    org.voting_campaign(nominees=2)
    _set_phase(app, "closed")
    client = app.test_client()
    document = json.loads(client.get("/api/v1/campaigns/v1/receipts/leaves").get_data())
    assert document["nominees"] == [] and document["chain_index"] == 0
    assert receipt_check.check_publication(document) == []


def test_racing_first_requests_build_the_publication_once(app: Flask, org: Org) -> None:
    _campaign_with_votes(app, org)
    _drain(app)
    _set_phase(app, "publicity")
    answers: list[tuple[int, str | None]] = []
    lock = threading.Lock()

    def ask() -> None:
        answer = app.test_client().get("/api/v1/campaigns/v1/receipts")
        code = (answer.json.get("error") or {}).get("code") if answer.status_code != 200 else None
        with lock:
            answers.append((answer.status_code, code))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == 4
    assert set(answers) <= {(200, None), (409, "receipts_building")}, answers
    final = app.test_client().get("/api/v1/campaigns/v1/receipts")
    assert final.status_code == 200
    with app.app_context():
        leaves = db.session.scalar(
            select(func.count()).select_from(ReceiptNode).where(ReceiptNode.level == 0)
        )
        db.session.remove()
    assert leaves == final.json["leaf_count"] > 0


def test_public_reads_are_limited_per_address_and_refused_for_drafts(
    app: Flask, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    org.voting_campaign(nominees=1)
    _set_phase(app, "publicity")
    org.campaign("draft1", phase="draft")
    client = app.test_client()
    assert client.get("/api/v1/campaigns/draft1/receipts").status_code == 404
    assert client.get("/api/v1/campaigns/nope/receipts/leaves").status_code == 404
    # the two refusals above were counted too: two more answers, then 429
    monkeypatch.setitem(app.config, "RECEIPT_PUBLIC_IP_LIMIT", "4/minute")
    codes = [client.get("/api/v1/campaigns/v1/receipts").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    limited = client.get("/api/v1/campaigns/v1/receipts/leaves")
    assert limited.status_code == 429 and limited.headers["Retry-After"]


def test_the_worker_builds_the_publication_once_publicity_begins(app: Flask, org: Org) -> None:
    """The periodic job builds it (no visitor waits for it): not before 公示, not while votes
    wait to be drained, once after, and then it has nothing to do."""
    from voting import jobs

    _numbers, cast = _campaign_with_votes(app, org)
    counted = sum(len(ids) for ids in cast.values())
    with app.app_context():
        assert jobs.publish_receipts() == {}  # still voting
    _set_phase(app, "publicity")
    with app.app_context():
        assert jobs.publish_receipts() == {}  # the votes are not drained yet
        assert db.session.scalars(select(ReceiptPublication)).all() == []
    _drain(app)
    with app.app_context():
        assert jobs.publish_receipts() == {"v1": counted}
        assert jobs.publish_receipts() == {}
    roots = app.test_client().get("/api/v1/campaigns/v1/receipts")
    assert roots.status_code == 200 and roots.json["leaf_count"] == counted
