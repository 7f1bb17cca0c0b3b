"""The vote's lane beneath Flask (voting/vote_lane.py) answers exactly as the Flask view does:
the same requests sent to an app with the lane and to one without give the same statuses,
bodies and headers; what the lane does not take reaches the view untouched; a dead Redis is a
503 either way; metrics and the access line are kept."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core import logs
from tests.factories import Org
from voting import vote_lane

VOTES = "/api/v1/campaigns/v1/votes"
# What differs between two answers by nature: the vote's own numbers and times, request ids.
VARYING = {"vote_id", "seq", "cast_at", "request_id", "nominee_votes", "receipt"}
# Headers every answer carries (the lane writes them itself, core.http writes them for the view).
COMMON_HEADERS = {"Content-Type", "X-Request-ID", "X-Content-Type-Options", "Cache-Control"}


def _shape(response: Any) -> tuple[int, Any, dict[str, str]]:
    body = response.json

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: ("…" if k in VARYING else strip(v)) for k, v in node.items()}
        return node

    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in ("Content-Length", "X-Request-ID")
    }
    return response.status_code, strip(body), headers


@pytest.fixture
def both(make_app: Callable[..., Flask]) -> tuple[FlaskClient, FlaskClient]:
    """(with the lane, without it), on the same database and Redis."""
    return make_app().test_client(), make_app(VOTE_LANE=False).test_client()


def _taken_by_lane(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every vote the lane answers itself."""
    taken: list[str] = []
    real = vote_lane.VoteLane._vote

    def spy(self: vote_lane.VoteLane, environ: dict[str, Any], *args: Any) -> Any:
        taken.append(environ["PATH_INFO"])
        return real(self, environ, *args)

    monkeypatch.setattr(vote_lane.VoteLane, "_vote", spy)
    return taken


def test_the_lane_and_the_view_answer_alike(
    both: tuple[FlaskClient, FlaskClient], org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign(rules={"votes_per_day": 2, "votes_per_nominee_per_day": 1})
    lane, view = both
    taken = _taken_by_lane(lane.application, monkeypatch)

    def pair(voter: int, body: Any, **headers: str) -> tuple[Any, Any]:
        """The same request from two equivalent voters, one through each app."""
        sent = []
        for client, who in ((lane, voter), (view, voter + 1000)):
            sent.append(
                client.post(VOTES, json=body, headers={**org.voter(who), **headers})
                if body is not None
                else client.post(VOTES, headers={**org.voter(who), **headers})
            )
        return sent[0], sent[1]

    cases = [
        ((1, {"nominee": numbers[0]}), {}),  # accepted
        ((1, {"nominee": numbers[0]}), {}),  # nominee_daily_limit
        ((1, {"nominee": numbers[1]}), {"Idempotency-Key": "k-1"}),  # accepted, with a key
        ((1, {"nominee": numbers[1]}), {"Idempotency-Key": "k-1"}),  # replayed
        ((1, {"nominee": numbers[2]}), {}),  # daily_quota_exhausted
        ((2, {"nominee": "Z999"}), {}),  # nominee_not_found
        ((2, {"nominee": numbers[0].lower()}), {}),  # accepted (numbers are upper-cased)
    ]
    outcomes = []
    for (voter, body), headers in cases:
        with_lane, without = pair(voter, body, **headers)
        assert _shape(with_lane) == _shape(without), body
        assert set(with_lane.headers.keys()) >= COMMON_HEADERS
        outcomes.append(with_lane.status_code)
    assert outcomes == [201, 429, 201, 201, 429, 404, 201]
    assert len(taken) == len(cases)  # every one of them went through the lane

    # A request id the client sent comes back, from either.
    for voter, client in ((9, lane), (10, view)):
        headers = {**org.voter(voter), "X-Request-ID": "abc-12345"}
        answer = client.post(VOTES, json={"nominee": numbers[2]}, headers=headers)
        assert answer.status_code == 201, answer.json
        assert answer.headers["X-Request-ID"] == "abc-12345"


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b'{"nominee": "D001", "voter_id": 5}', {}, 422, "validation_error"),
        (b'{"nominee": ""}', {}, 422, "validation_error"),
        (b"[1, 2]", {}, 422, "validation_error"),
        (b'{"nominee": "D0', {}, 400, "malformed_json"),
        (b'{"nominee": "D\\u0000"}', {}, 422, "validation_error"),
        (b'{"nominee": "D001"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"nominee": "D001"}', {"Authorization": "Bearer forged"}, 401, "invalid_voter"),
    ],
)
def test_what_the_lane_leaves_reaches_the_view(
    both: tuple[FlaskClient, FlaskClient],
    org: Org,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    org.voting_campaign()
    lane, view = both
    taken = _taken_by_lane(lane.application, monkeypatch)
    answers = []
    for client in (lane, view):
        sent = {"Content-Type": "application/json", **org.voter(3), **headers}
        answer = client.post(VOTES, data=body, headers=sent)
        assert answer.status_code == status, answer.get_data(as_text=True)
        assert answer.json["error"]["code"] == code
        answers.append(_shape(answer))
    assert answers[0] == answers[1]
    assert taken == []


def test_the_page_cookie_vote_takes_the_lane_with_its_csrf_token(
    both: tuple[FlaskClient, FlaskClient], org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers = org.voting_campaign()
    lane, view = both
    taken = _taken_by_lane(lane.application, monkeypatch)
    answers = []
    for device_id, client in (("phone-0001", lane), ("phone-0002", view)):
        token = client.get("/c/v1/me").json["csrf_token"]
        made = client.post(
            "/c/v1/voter", json={"device_id": device_id}, headers={"X-CSRF-Token": token}
        )
        assert made.status_code == 200
        # Without the page's token, or with a forged one: the view refuses (the lane leaves it).
        for headers in ({}, {"X-CSRF-Token": "x" * 64}):
            refused = client.post(VOTES, json={"nominee": numbers[0]}, headers=headers)
            assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
        voted = client.post(VOTES, json={"nominee": numbers[0]}, headers={"X-CSRF-Token": token})
        assert voted.status_code == 201
        answers.append(_shape(voted))
    assert answers[0] == answers[1]
    assert taken == [VOTES]  # the one vote with its token, through the lane


def test_a_dead_redis_is_503_in_the_lane(make_app: Callable[..., Flask], org: Org) -> None:
    numbers = org.voting_campaign()
    for lane in (True, False):
        broken = make_app(REDIS_URL="redis://127.0.0.1:1/0", VOTE_LANE=lane).test_client()
        answer = broken.post(VOTES, json={"nominee": numbers[0]}, headers=org.voter(1))
        assert answer.status_code == 503, lane
        assert answer.json["error"]["code"] == "service_unavailable"
        assert answer.headers["Cache-Control"] == "no-store"


def test_the_lane_keeps_the_access_line(
    make_app: Callable[..., Flask], org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    numbers = org.voting_campaign()
    client = make_app(ACCESS_LOG=True).test_client()
    caplog.set_level(logging.INFO, logger=logs.ACCESS_LOGGER)
    assert client.post(VOTES, json={"nominee": numbers[0]}, headers=org.voter(1)).status_code == 201
    again = client.post(VOTES, json={"nominee": numbers[0]}, headers=org.voter(1))
    assert again.status_code == 429
    lines = [r for r in caplog.records if r.name == logs.ACCESS_LOGGER]
    assert [(r.status, r.endpoint) for r in lines] == [(201, "voting.vote"), (429, "voting.vote")]
    assert lines[1].error_code == "nominee_daily_limit"
    assert all(r.path == VOTES and r.duration_ms is not None for r in lines)
