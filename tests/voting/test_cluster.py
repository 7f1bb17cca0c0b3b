"""The vote path on a real 3-master Redis Cluster (VOTE_REDIS_URL=redis-cluster://…).

The control Redis (RQ queues, locks, rate limits) stays the suite's own REDIS_URL; every key of
a campaign lives on the cluster, on the one node that owns the campaign's hash slot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.config import ConfigError
from core.extensions import db, is_cluster, parse_vote_redis_url, redis_store
from core.types import utcnow
from tests.factories import Org
from tests.voting.cluster import Cluster, redis_cluster  # noqa: F401 - the session fixture
from voting import cast, fraud, jobs, services
from voting.models import Vote

CANDIDATE_SLUGS = [f"county-{n}-2026" for n in range(1, 25)]


@pytest.fixture
def cluster_app(
    make_app: Callable[..., Flask],
    redis_cluster: Cluster,  # noqa: F811 - the fixture imported above
) -> Iterator[Flask]:
    yield make_app(VOTE_REDIS_URL=redis_cluster.url, VOTE_ACK_MARK_INTERVAL=0)
    redis_cluster.flush()


def _vote(client: FlaskClient, org: Org, voter: int, number: str, slug: str = "v1", **headers):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/campaigns/{slug}/votes",
        json={"nominee": number},
        headers={**org.voter(voter), **headers},
    )


def _drain(runner: Any) -> str:
    return str(runner.invoke(args=["votes", "drain", "--campaign", "v1"]).output)


def _campaign(slug: str = "v1") -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == slug))


def test_every_key_of_a_campaign_shares_one_slot_and_campaigns_spread_over_masters(
    cluster_app: Flask,
    org: Org,
    redis_cluster: Cluster,  # noqa: F811
) -> None:
    with cluster_app.app_context():
        votes = redis_store.votes
        assert is_cluster(votes) and redis_store.vote_mode() == "cluster"
        assert redis_store.client is not votes  # RQ and the rest stay on REDIS_URL
        owner: dict[str, int] = {}
        for slug in CANDIDATE_SLUGS:
            keys = services.CampaignKeys.of(slug)
            every_key = [
                keys.meta,
                keys.nominees,
                keys.frozen,
                keys.quota(utcnow().date().isoformat(), 7),
                keys.idem(7, "tap-1"),
                keys.counts,
                keys.pending,
                keys.ledger,
                keys.seq,
                keys.ip_minute("10.0.0.1", 1),
                keys.pace,
                keys.voter_minute(7, 1),
                keys.views,
                keys.rank("doctor"),
                keys.rank("nurse"),
            ]
            slots = {votes.keyslot(key) for key in every_key}
            assert len(slots) == 1, (slug, slots)
            # The server agrees with the client's CRC16.
            slot = slots.pop()
            assert votes.cluster_keyslot(keys.ledger) == slot
            owner[slug] = votes.get_node_from_key(keys.meta).port
        assert set(owner.values()) == set(redis_cluster.ports)
    # Three campaigns on three different masters, each voted in: each master holds exactly the
    # keys of its own campaign.
    chosen: dict[int, str] = {}
    for slug in CANDIDATE_SLUGS:
        chosen.setdefault(owner[slug], slug)
    client = cluster_app.test_client()
    for port, slug in chosen.items():
        numbers = org.voting_campaign(slug=slug, nominees=1)
        assert _vote(client, org, port, numbers[0], slug).status_code == 201
    with cluster_app.app_context():
        for server in redis_cluster.servers:
            slug = chosen[server.port]
            keys = services.CampaignKeys.of(slug)
            assert server.client.xlen(keys.ledger) == 1
            prefix = redis_store.key("")
            stored = {key.decode() for key in server.client.scan_iter(match=f"{prefix}*")}
            assert stored and all(key.startswith(keys.base) for key in stored), stored
        drained = jobs.drain_all()
        assert drained == {slug: 1 for slug in chosen.values()}
        db.session.remove()


def test_vote_path_on_the_cluster(
    cluster_app: Flask,
    org: Org,
    redis_cluster: Cluster,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    numbers = org.voting_campaign(
        nominees=3,
        rules={
            "votes_per_day": 2,
            "votes_per_nominee_per_day": 1,
            "velocity_factor": 3,
            "velocity_floor": 4,
            "freeze_minutes": 10,
        },
    )
    for server in redis_cluster.servers:  # the script must be loaded again, on the right node
        server.client.script_flush()
    moment = utcnow().replace(second=5, microsecond=0)
    monkeypatch.setattr(cast, "clock", lambda: moment)
    client = cluster_app.test_client()
    admin = org.headers("admin")

    first = _vote(client, org, 1, numbers[1], **{"Idempotency-Key": "tap-1"})
    assert first.status_code == 201 and first.json["nominee_votes"] == 1
    replay = _vote(client, org, 1, numbers[1], **{"Idempotency-Key": "tap-1"})
    assert replay.json == first.json and replay.headers["Idempotent-Replayed"] == "true"
    same = _vote(client, org, 1, numbers[1])
    assert same.status_code == 429 and same.json["error"]["code"] == "nominee_daily_limit"
    assert _vote(client, org, 1, numbers[2]).status_code == 201
    spent = _vote(client, org, 1, numbers[0])
    assert spent.status_code == 429 and spent.json["error"]["code"] == "daily_quota_exhausted"
    me = client.get("/api/v1/campaigns/v1/votes/me", headers=org.voter(1)).json
    assert me["remaining_today"] == 0 and me["voted_today"] == {numbers[1]: 1, numbers[2]: 1}

    # The nominee's pace: the fifth vote in a minute is held and freezes the nominee.
    answers = [_vote(client, org, voter, numbers[0]) for voter in range(10, 16)]
    assert [a.status_code for a in answers] == [201] * 5 + [403]
    assert [a.json["status"] for a in answers[:5]] == ["valid"] * 4 + ["pending"]
    assert answers[5].json["error"]["code"] == "nominee_frozen"

    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [(i["number"], i["votes"], i["rank"]) for i in ranking] == [
        (numbers[0], 4, 1),
        (numbers[1], 1, 2),
        (numbers[2], 1, 2),
    ]
    cards = client.get("/api/v1/campaigns/v1/nominees?sort=votes").json["items"]
    assert (cards[0]["number"], cards[0]["votes"]) == (numbers[0], 4)
    health = client.get("/api/v1/admin/campaigns/v1/health", headers=admin).json
    assert health["stream_length"] == 8  # 7 votes and the freeze record

    # The drain, by a real RQ worker on the control Redis, reading the cluster's stream.
    with cluster_app.app_context():
        queue = redis_store.queue("votes")
        job = queue.enqueue(jobs.drain_all)
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        job.refresh()
        assert job.get_status() == "finished" and job.return_value() == {"v1": 8}
        assert db.session.scalar(select(func.count(Vote.id))) == 7
        assert services.verify_chain(_campaign())["ok"] is True
        db.session.remove()

    # The committee's side moves counters and rankings in one MULTI on the campaign's node.
    released = client.post(
        "/api/v1/admin/campaigns/v1/votes/pending",
        headers=admin,
        json={"decision": "release", "reason": "核实为正常转发", "nominee": numbers[0]},
    )
    assert released.status_code == 200 and released.json["vote_count"] == 1
    lift = client.post(
        f"/api/v1/admin/campaigns/v1/freezes/{numbers[0]}/lift",
        json={"reason": "已核实"},
        headers=admin,
    )
    assert lift.status_code == 204
    # Eleven minutes on, the burst has left the nominee's ten-minute pace window.
    monkeypatch.setattr(cast, "clock", lambda: moment + timedelta(minutes=11))
    assert _vote(client, org, 20, numbers[0]).json["nominee_votes"] == 6
    tally = client.get("/api/v1/admin/campaigns/v1/tally", headers=admin).json
    assert tally["totals"] == {"valid": 7, "pending": 0, "invalid": 0}
    assert tally["undrained"] == 1 and tally["differences"] == [numbers[0]]
    with cluster_app.app_context():
        assert fraud.snapshot_tallies(_campaign()) == 3
        db.session.commit()
        report = services.reconcile(_campaign())
        assert report["repairs"] == [] and report["missing"] == {"count": 0, "ranges": []}
        db.session.remove()
    runner = cluster_app.test_cli_runner()
    assert _drain(runner) == "drained 1 entries\n"
    verified = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert verified.exit_code == 0 and "chain ok: 8 votes" in verified.output


def test_reconcile_rebuilds_a_wiped_cluster_and_reports_what_was_lost(
    cluster_app: Flask,
    org: Org,
    redis_cluster: Cluster,  # noqa: F811
) -> None:
    numbers = org.voting_campaign(nominees=2, rules={"votes_per_nominee_per_day": 1})
    client = cluster_app.test_client()
    for voter in range(4):
        assert _vote(client, org, voter, numbers[0]).status_code == 201
    for voter in range(2):
        assert _vote(client, org, voter, numbers[1]).status_code == 201
    runner = cluster_app.test_cli_runner()
    assert _drain(runner).startswith("drained")

    # Every vote was drained: losing the whole cluster loses nothing but the cache. The rewind
    # itself is still reported (exit 5) until someone acknowledges it after review.
    margin = cluster_app.config["VOTE_SEQ_REWIND_MARGIN"]
    redis_cluster.flush()
    assert client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"][0]["votes"] == 0
    result = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert result.exit_code == 5, result.output
    assert "2 counter(s) repaired" in result.output and "LOST" not in result.output
    assert "REWOUND" in result.output
    ranking = client.get("/api/v1/campaigns/v1/ranking?category=doctor").json["items"]
    assert [(i["number"], i["votes"]) for i in ranking] == [(numbers[0], 4), (numbers[1], 2)]
    with cluster_app.app_context():
        first_rewind = services.ledger_health(_campaign())["rewinds"]["latest"]
        assert (first_rewind["known_seq"], first_rewind["lifted_to"]) == (6, 6 + margin)
        db.session.remove()
    ack = ["--ack", str(first_rewind["id"]), "--note", "all drained"]
    acked = runner.invoke(args=["votes", "rewinds", "--campaign", "v1", *ack])
    assert acked.exit_code == 0, acked.output

    # Three more votes, acknowledged but not yet drained, and the cluster loses everything
    # again: the counters are rebuilt from what the ledger can prove, and the three numbered
    # votes that are nowhere any more are reported, by number (not the margin's skipped ones).
    acknowledged = [_vote(client, org, voter, numbers[1]).json for voter in range(10, 13)]
    top = 6 + margin + 3
    assert [int(a["vote_id"].split("-")[1]) for a in acknowledged] == [top - 2, top - 1, top]
    redis_cluster.flush()
    result = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert result.exit_code == 3, result.output
    assert "LOST: 3 numbered vote(s)" in result.output
    assert f"(sequence {top - 2}-{top})" in result.output
    with cluster_app.app_context():
        report = services.reconcile(_campaign())
        assert report["missing"] == {"count": 3, "ranges": [[top - 2, top]]}
        assert report["acknowledged_mark"] == top and report["repairs"] == []
        db.session.remove()
    # The numbers are never handed out again: the next vote goes on past them and the margin,
    # and the gap stays visible.
    after = _vote(client, org, 30, numbers[0]).json
    assert after["vote_id"].split("-")[1] == str(top + margin + 1)
    assert _drain(runner).startswith("drained")
    verified = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert verified.exit_code == 5 and "chain ok: 7 votes" in verified.output
    assert runner.invoke(args=["votes", "reconcile", "--campaign", "v1"]).exit_code == 3


def test_strict_mode_refuses_a_vote_no_replica_confirmed(
    make_app: Callable[..., Flask],
    org: Org,
    redis_cluster: Cluster,  # noqa: F811
) -> None:
    numbers = org.voting_campaign()
    app = make_app(VOTE_REDIS_URL=redis_cluster.url, VOTE_WAIT_REPLICAS=1, VOTE_WAIT_TIMEOUT_MS=50)
    for server in redis_cluster.servers:
        server.client.script_flush()
    try:
        response = _vote(app.test_client(), org, 1, numbers[0])
        # This cluster has no replicas: the vote is recorded on its primary but never
        # confirmed, so it is not acknowledged.
        assert response.status_code == 503
        assert response.json["error"]["details"] == {
            "replicas_confirmed": 0,
            "replicas_required": 1,
        }
        with app.app_context():
            keys = services.CampaignKeys.of("v1")
            assert redis_store.votes.xlen(keys.ledger) == 1
    finally:
        redis_cluster.flush()


def test_vote_redis_url_forms_and_refusals(make_app: Callable[..., Flask]) -> None:
    cluster = parse_vote_redis_url("rediss-cluster://zm:p%40ss@10.0.0.1:7000,[::1]:7001")
    assert (cluster.kind, cluster.nodes, cluster.ssl) == (
        "cluster",
        (("10.0.0.1", 7000), ("::1", 7001)),
        True,
    )
    assert (cluster.username, cluster.password) == ("zm", "p@ss")
    sentinel = parse_vote_redis_url(
        "redis-sentinel://s1:26379,s2:26379/zmvote/2?sentinel_password=x"
    )
    assert (sentinel.kind, sentinel.service, sentinel.db, sentinel.sentinel_password) == (
        "sentinel",
        "zmvote",
        2,
        "x",
    )
    assert parse_vote_redis_url("redis://10.0.0.5:6379/1").kind == "single"
    for bad in (
        "redis-cluster://",
        "redis-cluster://h:1/3",
        "redis-sentinel://h:1",
        "redis-sentinel://h:one/zmvote",
        "memcached://h:1",
    ):
        with pytest.raises(ConfigError):
            make_app(VOTE_REDIS_URL=bad)
    # A WAIT as long as the socket timeout would look like a dead Redis: refused at start-up.
    with pytest.raises(ConfigError, match="below REDIS_SOCKET_TIMEOUT"):
        make_app(
            VOTE_REDIS_URL="redis://127.0.0.1:1/0", VOTE_WAIT_REPLICAS=1, VOTE_WAIT_TIMEOUT_MS=2000
        )


def test_an_unreachable_vote_redis_fails_closed(make_app: Callable[..., Flask], org: Org) -> None:
    numbers = org.voting_campaign()
    for url in ("redis-cluster://127.0.0.1:1", "redis-sentinel://127.0.0.1:1/zmvote"):
        response = _vote(make_app(VOTE_REDIS_URL=url).test_client(), org, 1, numbers[0])
        assert response.status_code == 503, url
        assert response.json["error"]["code"] == "service_unavailable"
