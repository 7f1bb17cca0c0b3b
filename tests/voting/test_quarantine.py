"""Nothing a vote stores is unbounded, and an entry the database cannot store never stalls the
drain: it is quarantined, the rest of its batch is stored, and health, verify and reconcile say
so (docs/voting.md, "Quarantine")."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.http import UNKNOWN_ADDRESS, canonical_ip
from tests.factories import Org
from voting import ledger, services
from voting.models import QuarantinedVote, Vote

POISON_FORWARDED_FOR = "1.2.3.4, " + "x" * 100


def _vote(
    client: FlaskClient,
    org: Org,
    voter: int,
    number: str,
    headers: dict[str, str] | None = None,
    **kwargs: object,
) -> None:
    answer = client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": number},
        headers={**org.voter(voter), **(headers or {})},
        **kwargs,
    )
    assert answer.status_code == 201, answer.json


def _drain(app: Flask) -> int:
    with app.app_context():
        drained = services.drain_campaign("v1")
        db.session.remove()
    return drained


def _campaign() -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))


def _stored_ips() -> dict[int, str]:
    return dict(db.session.execute(select(Vote.voter_id, Vote.ip)).all())


def _ledger_is_empty() -> bool:
    keys = services.CampaignKeys.of("v1")
    pending = redis_store.votes.xpending(keys.ledger, ledger.DRAIN_GROUP)["pending"]
    return redis_store.votes.xlen(keys.ledger) == 0 and pending == 0


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("::ffff:198.51.100.8", "198.51.100.8"),  # a dual-stack socket's IPv4 client
        ("fe80::1%" + "x" * 100, "fe80::1"),  # a zone of any length says nothing of the client
        ("x" * 100, None),
        ("1.2.3.4\x00", None),
        ("", None),
        (None, None),
    ],
)
def test_an_address_is_parsed_never_copied(given: str | None, expected: str | None) -> None:
    assert canonical_ip(given) == expected


def test_poison_forwarded_for_is_stored_with_the_peer_address(
    make_app: Callable[..., Flask], org: Org
) -> None:
    numbers = org.voting_campaign()
    proxied = make_app(TRUSTED_PROXIES=1)
    client = proxied.test_client()
    for voter in range(5):
        forwarded = POISON_FORWARDED_FOR if voter == 2 else f"198.51.100.{voter}"
        _vote(
            client,
            org,
            voter,
            numbers[voter % 3],
            headers={"X-Forwarded-For": forwarded},
            environ_base={"REMOTE_ADDR": "10.9.8.7"},
        )
    assert _drain(proxied) == 5
    with proxied.app_context():
        assert _stored_ips() == {
            0: "198.51.100.0",
            1: "198.51.100.1",
            2: "10.9.8.7",  # the socket peer, as the server saw it before ProxyFix
            3: "198.51.100.3",
            4: "198.51.100.4",
        }
        assert _ledger_is_empty()
        assert db.session.scalar(select(func.count(QuarantinedVote.id))) == 0
        assert services.verify_chain(_campaign())["ok"] is True
        db.session.remove()


def test_text_is_cut_to_its_columns_at_the_door(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    _vote(
        client,
        org,
        1,
        numbers[0],
        headers={
            "User-Agent": "Mozilla/5.0\x00 " + "u" * 1000,
            # Not read at all: the device is the server's signed cookie (core.device).
            "X-Device-Fingerprint": "d" * 1000,
        },
        # A socket address that is not an IP (a unix-socket listener) is a label, not text.
        environ_base={"REMOTE_ADDR": "unix:/run/zuimei.sock"},
    )
    assert _drain(app) == 1
    with app.app_context():
        vote = db.session.scalar(select(Vote))
        assert vote.ip == UNKNOWN_ADDRESS
        assert vote.user_agent == ("Mozilla/5.0 " + "u" * 1000)[:300]
        assert vote.device is None
        assert db.session.scalar(select(func.count(QuarantinedVote.id))) == 0
        db.session.remove()


def _replace_entry(app: Flask, position: int, field: str, value: str) -> str:
    """Put the ledger's ``position``-th vote back at the end with one field poisoned (as an
    entry written before the door was closed, or by hand); its nominee's number."""
    with app.app_context():
        keys = services.CampaignKeys.of("v1")
        entry_id, fields = redis_store.votes.xrange(keys.ledger)[position]
        redis_store.votes.xdel(keys.ledger, entry_id)
        redis_store.votes.xadd(keys.ledger, {**fields, field.encode(): value.encode()})
        return fields[b"n"].decode()


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("ip", POISON_FORWARDED_FOR, "ip: 109 characters, the column holds 64"),
        ("ua", "Mozilla/5.0\x00", "user_agent: holds a NUL character"),
        ("seq", "three", "unreadable number or time"),
    ],
)
def test_an_unstorable_entry_is_quarantined_and_its_batch_stored(
    app: Flask, org: Org, field: str, value: str, reason: str
) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(5):
        _vote(client, org, voter, numbers[voter % 3])
    nominee = _replace_entry(app, 2, field, value)
    assert _drain(app) == 5  # every entry handled: four stored, one set aside
    with app.app_context():
        assert db.session.scalar(select(func.count(Vote.id))) == 4
        assert 2 not in _stored_ips()
        assert _ledger_is_empty()
        quarantined = db.session.scalar(select(QuarantinedVote))
        assert quarantined.reason.startswith(reason)
        assert quarantined.fields[field] == value  # the raw entry, as it was
        assert quarantined.resolved_at is None
        db.session.remove()
    health = client.get("/api/v1/admin/campaigns/v1/health", headers=org.headers("admin")).json
    assert health["quarantined"] == 1 and health["drained_votes"] == 4
    assert health["stream_length"] == 0
    with app.app_context():
        campaign = _campaign()
        verified = services.verify_chain(campaign)
        assert verified["ok"] is True and verified["checked"] == 4
        assert verified["quarantined"] == 1
        report = services.reconcile(campaign)
        assert report["quarantined"]["count"] == 1
        assert report["quarantined"]["entries"][0]["reason"] == quarantined.reason
        # The quarantined vote is outside the record, so it leaves the public count.
        assert {(r["nominee"], r["was"], r["now"]) for r in report["repairs"]} == {(nominee, 1, 0)}
        if field == "seq":
            # Its number cannot be read: that number is reported missing, beside the quarantine.
            assert report["quarantined"]["entries"][0]["seq"] is None
            assert report["missing"] == {"count": 1, "ranges": [[3, 3]]}
        else:
            assert report["quarantined"]["entries"][0]["seq"] == 3
            assert report["missing"] == {"count": 0, "ranges": []}
        db.session.remove()
    # The drain is not stalled: the next vote is stored behind the quarantined one.
    _vote(client, org, 9, numbers[0])
    assert _drain(app) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count(Vote.id))) == 5
        assert services.verify_chain(_campaign())["checked"] == 5
        db.session.remove()


@pytest.fixture
def refused_address(app: Flask) -> Iterator[str]:
    """A database that refuses votes from one address (a trigger), as it might refuse a row
    for a reason no check before the insert foresaw."""
    address = "203.0.113.66"
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        with db.engine.begin() as conn:
            if postgres:
                conn.exec_driver_sql(
                    "CREATE FUNCTION refuse_vote() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.ip = '{address}' THEN RAISE EXCEPTION 'refused by test trigger' "
                    "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
                conn.exec_driver_sql(
                    "CREATE TRIGGER refuse_vote BEFORE INSERT ON votes "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_vote()"
                )
            else:
                conn.exec_driver_sql(
                    f"CREATE TRIGGER refuse_vote BEFORE INSERT ON votes WHEN NEW.ip = '{address}' "
                    "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                )
    yield address
    with app.app_context(), db.engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER refuse_vote" + (" ON votes" if postgres else ""))
        if postgres:
            conn.exec_driver_sql("DROP FUNCTION refuse_vote()")


def test_a_row_the_database_refuses_is_quarantined_and_the_rest_stored(
    app: Flask, org: Org, refused_address: str
) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(5):
        address = refused_address if voter == 2 else f"10.1.2.{voter}"
        _vote(client, org, voter, numbers[voter % 3], environ_base={"REMOTE_ADDR": address})
    assert _drain(app) == 5
    with app.app_context():
        # The batch insert failed, so the rows went one by one, each in its own savepoint.
        assert sorted(_stored_ips()) == [0, 1, 3, 4]
        quarantined = db.session.scalar(select(QuarantinedVote))
        assert "refused by test trigger" in quarantined.reason
        assert quarantined.seq == 3 and quarantined.fields["ip"] == refused_address
        assert _ledger_is_empty()
        chain = db.session.scalars(select(Vote.chain_index).order_by(Vote.chain_index)).all()
        assert chain == [1, 2, 3, 4]  # linked without a hole where the refused row was
        assert services.verify_chain(_campaign())["ok"] is True
        db.session.remove()


def test_a_resolved_entry_stays_accounted_for(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    client = app.test_client()
    for voter in range(3):
        _vote(client, org, voter, numbers[voter])
    _replace_entry(app, 1, "ip", POISON_FORWARDED_FOR)
    assert _drain(app) == 3
    with app.app_context():
        campaign = _campaign()
        entry = db.session.scalar(select(QuarantinedVote))
        ledger.resolve_quarantined(
            campaign, entry.stream_id, actor="admin", resolution="核实为测试数据，作废"
        )
        db.session.commit()
        assert ledger.ledger_health(campaign)["quarantined"] == 0
        report = services.reconcile(campaign)
        assert report["quarantined"]["count"] == 0 and report["quarantined"]["resolved"] == 1
        assert report["missing"]["count"] == 0  # its number is still accounted for
        db.session.remove()


@pytest.mark.parametrize("nominee", ["\ud800", "D0\x0101"])
def test_a_nominee_number_that_cannot_be_text_is_refused_not_a_500(
    client: FlaskClient, org: Org, nominee: str
) -> None:
    org.voting_campaign()
    answer = client.post(
        "/api/v1/campaigns/v1/votes",
        data=json.dumps({"nominee": nominee}),  # escaped: the lone surrogate travels as \ud800
        content_type="application/json",
        headers=org.voter(1),
    )
    assert answer.status_code == 422 and answer.json["error"]["code"] == "validation_error"
