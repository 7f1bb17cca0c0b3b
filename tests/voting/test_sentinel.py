"""The vote path behind Redis Sentinel (VOTE_REDIS_URL=redis-sentinel://…/zmvote): what the
strict mode (WAIT for a replica) buys, and what a failover loses without it — and how
reconciliation reports that loss.

The replica replicates through a proxy the test can pause: votes written while it is paused are
acknowledged by the master but never reach the replica, exactly as with asynchronous
replication when the master dies before its replica has caught up. The master is then killed
with SIGKILL and the sentinel promotes the replica: a real failover with a real lost write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from tests.factories import Org
from tests.voting.cluster import SentinelSetup, redis_sentinel, wait_for  # noqa: F401
from voting import services
from voting.models import Vote


def _vote(client: FlaskClient, org: Org, voter: int, number: str, **headers: str) -> Any:
    return client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": number},
        headers={**org.voter(voter), **headers},
    )


def _drain(runner: Any) -> str:
    return str(runner.invoke(args=["votes", "drain", "--campaign", "v1"]).output)


def test_strict_mode_acknowledges_only_what_the_replica_has(
    make_app: Callable[..., Flask],
    org: Org,
    redis_sentinel: SentinelSetup,  # noqa: F811 - the fixture imported above
) -> None:
    numbers = org.voting_campaign(nominees=2)
    # Generous: the replica's acknowledgement passes through this process's proxy threads,
    # which a loaded machine can hold up.
    app = make_app(
        VOTE_REDIS_URL=redis_sentinel.url, VOTE_WAIT_REPLICAS=1, VOTE_WAIT_TIMEOUT_MS=1500
    )
    client = app.test_client()
    assert redis_sentinel.replica is not None
    replica = redis_sentinel.replica.client
    with app.app_context():
        assert redis_store.vote_mode() == "sentinel"
        ledger = services.CampaignKeys.of("v1").ledger

    first = _vote(client, org, 1, numbers[0])
    assert first.status_code == 201
    assert replica.xlen(ledger) == 1  # acknowledged means on the replica too: no polling

    # The replica stops receiving: the vote is recorded on the master but not acknowledged.
    redis_sentinel.proxy.pause()
    held = _vote(client, org, 2, numbers[0], **{"Idempotency-Key": "tap-9"})
    assert held.status_code == 503
    assert held.json["error"]["code"] == "service_unavailable"
    assert held.json["error"]["details"] == {"replicas_confirmed": 0, "replicas_required": 1}
    assert held.headers["Retry-After"] == "1"
    assert redis_sentinel.master.client.xlen(ledger) == 2 and replica.xlen(ledger) == 1

    # Once the replica catches up, the voter's retry (same key) gets the first answer.
    redis_sentinel.proxy.resume()
    retry = _vote(client, org, 2, numbers[0], **{"Idempotency-Key": "tap-9"})
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json["nominee_votes"] == 2
    assert replica.xlen(ledger) == 2


def test_failover_loses_the_unreplicated_tail_and_reconcile_reports_it(
    make_app: Callable[..., Flask],
    org: Org,
    redis_sentinel: SentinelSetup,  # noqa: F811
) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_nominee_per_day": 1})
    app = make_app(VOTE_REDIS_URL=redis_sentinel.url)  # the default: no WAIT
    client = app.test_client()
    acknowledged: dict[str, int] = {}  # vote id -> voter

    def vote(voter: int, number: str) -> Any:
        response = _vote(client, org, voter, number)
        if response.status_code == 201:
            acknowledged[response.json["vote_id"]] = voter
        return response

    for voter in range(6):
        assert vote(voter, numbers[voter % 2]).status_code == 201
    wait_for(redis_sentinel.replica_caught_up, "the replica to catch up")
    runner = app.test_cli_runner()
    assert _drain(runner) == "drained 6 entries\n"

    # The replication link stalls; four more votes are acknowledged by the master alone. Then
    # the master dies and the sentinel promotes the replica, which never had them.
    redis_sentinel.proxy.pause()
    tail = [vote(voter, numbers[0]) for voter in range(10, 14)]
    assert [r.status_code for r in tail] == [201] * 4
    lost = {r.json["vote_id"] for r in tail}
    assert sorted(int(v.split("-")[1]) for v in lost) == [7, 8, 9, 10]
    assert redis_sentinel.master is not None
    redis_sentinel.master.kill()
    redis_sentinel.proxy.cut()
    redis_sentinel.fail_over()

    # Voting goes on against the new master (a vote during the switch may get 503).
    deadline = time.monotonic() + 15
    while vote(20, numbers[1]).status_code != 201:
        assert time.monotonic() < deadline, "no vote accepted after the failover"
        time.sleep(0.2)
    # A voter whose vote was lost lost its quota with it: it can vote for that nominee again.
    again = vote(10, numbers[0])
    assert again.status_code == 201
    numbered = sorted(int(v.split("-")[1]) for v in acknowledged if v not in lost)
    # The numbers voters hold were not handed out again: the sequence went on past 10 and the
    # rewind margin (other processes may have acknowledged more than this one saw).
    margin = app.config["VOTE_SEQ_REWIND_MARGIN"]
    assert numbered == [1, 2, 3, 4, 5, 6, 10 + margin + 1, 10 + margin + 2]

    assert _drain(runner) == "drained 2 entries\n"
    with app.app_context():
        stored = set(db.session.scalars(select(Vote.id)))
        # The loss itself: acknowledged to the voter, in the database nowhere.
        assert set(acknowledged) - stored == lost
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        # The chain is whole over what was stored: verify cannot see votes that never arrived.
        assert services.verify_chain(campaign)["ok"] is True
        db.session.remove()

    # Reconciliation finds no counter to repair (counters and ledger were lost together) and
    # reports the four numbers that are nowhere.
    result = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert result.exit_code == 3, result.output
    assert "0 counter(s) repaired" in result.output
    assert "LOST: 4 numbered vote(s)" in result.output and "(sequence 7-10)" in result.output
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        report = services.reconcile(campaign)
        assert report["missing"] == {"count": 4, "ranges": [[7, 10]]}
        counts = services.vote_counts(campaign, [(n, "doctor") for n in numbers])
        assert sum(c["votes"] for c in counts.values()) == len(stored) == 8
        db.session.remove()
