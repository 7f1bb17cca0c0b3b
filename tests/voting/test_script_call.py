"""The vote script's call on a kept connection (voting/script_call.py): it survives what the
pool's connections survived — the server closing the connection, the script cache flushed — and
a vote still counts once."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.extensions import redis_store
from tests.factories import Org
from voting import script_call
from voting.keys import CampaignKeys

VOTES = "/api/v1/campaigns/v1/votes"


def _kept_id() -> int:
    conn = script_call._kept.conn
    conn.send_command("CLIENT", "ID")
    return int(conn.read_response())


def test_a_closed_connection_and_a_flushed_script_are_taken_in_stride(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"votes_per_day": 5})
    first = client.post(VOTES, json={"nominee": numbers[0]}, headers=org.voter(1))
    assert first.status_code == 201
    with app.app_context():
        assert script_call.supported(redis_store.votes)
        kept = _kept_id()
        # The server drops the kept connection (a restart, an idle timeout): found before the
        # next command is sent, and the vote goes out on a new one.
        assert redis_store.votes.client_kill_filter(_id=kept) == 1
    second = client.post(VOTES, json={"nominee": numbers[1]}, headers=org.voter(1))
    assert second.status_code == 201 and second.json["remaining_today"] == 3
    with app.app_context():
        assert _kept_id() != kept
        redis_store.votes.script_flush()  # NOSCRIPT: loaded again, sent again
    third = client.post(VOTES, json={"nominee": numbers[2]}, headers=org.voter(1))
    assert third.status_code == 201 and third.json["remaining_today"] == 2
    with app.app_context():
        ledger = redis_store.votes.xrange(CampaignKeys.of("v1").ledger)
    assert [fields[b"seq"] for _, fields in ledger] == [b"1", b"2", b"3"]


def test_only_a_plain_server_keeps_a_connection(app: Flask) -> None:
    with app.app_context():
        assert script_call.supported(redis_store.votes)
    assert not script_call.supported(object())


def test_a_page_view_is_counted_without_waiting_for_an_answer(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(nominees=2)
    monkeypatch.setitem(app.config, "PAGE_VIEWS_UNANSWERED", True)
    for _ in range(3):
        assert client.get(f"/api/v1/campaigns/v1/nominees/{numbers[0]}").status_code == 200
    with app.app_context():
        views = CampaignKeys.of("v1").views
        deadline = time.monotonic() + 5
        counted = 0
        while counted < 3 and time.monotonic() < deadline:
            counted = sum(int(v) for v in redis_store.votes.hvals(views))
            time.sleep(0.01)
        assert counted == 3
        assert 0 < redis_store.votes.ttl(views) <= 45 * 86400
        # No reply ever comes back on the reply-less connection.
        kept = script_call._quiet.conn
        assert kept._sock is not None and not kept.can_read()
        assert redis_store.votes.client_kill_filter(_id=script_call._quiet.client_id) == 1
    # The server dropped it: the next view notices on sending (or loses that one count) and
    # a later one is counted again on a new connection.
    for _ in range(3):
        assert client.get(f"/api/v1/campaigns/v1/nominees/{numbers[0]}").status_code == 200
    with app.app_context():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            counted = sum(int(v) for v in redis_store.votes.hvals(views))
            if counted >= 4:
                break
            time.sleep(0.01)
        assert 4 <= counted <= 6
