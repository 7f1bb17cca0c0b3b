"""The first-party device cookie (core.device): issued by the page's beacon, signed, HttpOnly;
the vote's device signal and the per-browser count of the per-address soft limit."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from core import device
from core.extensions import db
from tests.factories import Org
from voting import services
from voting.models import Vote


def _cookie(client: FlaskClient) -> str | None:
    cookie = client.get_cookie(device.DEVICE_COOKIE)
    return cookie.value if cookie else None


def _vote(client: FlaskClient, org: Org, voter: int, number: str, **kwargs: object) -> int:
    answer = client.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": number},
        headers=org.voter(voter),
        **kwargs,  # type: ignore[arg-type]
    )
    return answer.status_code


def test_the_beacon_issues_one_signed_httponly_device_cookie(app: Flask, org: Org) -> None:
    org.voting_campaign()
    client = app.test_client()
    first = client.post("/c/v1/beacon")
    assert first.status_code == 204
    header = first.headers["Set-Cookie"]
    assert header.startswith(f"{device.DEVICE_COOKIE}=")
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Max-Age=" in header
    value = _cookie(client)
    with app.test_request_context():
        assert device.read(value) is not None
    # A browser that holds a good one keeps it: the next page's beacon sets nothing.
    again = client.post("/c/v1/beacon")
    assert again.status_code == 204 and "Set-Cookie" not in again.headers
    assert _cookie(client) == value


def test_a_forged_or_altered_cookie_is_no_device(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign()
    with app.test_request_context():
        device_id, value = device.issue()
        assert device.read(value) == device_id
        payload, _, signature = value.rpartition(".")
        forged = f"someone-else.{payload.split('.')[1]}.{signature}"
        for bad in (forged, value[:-1] + ("A" if value[-1] != "A" else "B"), "x", "a.b.c", ""):
            assert device.read(bad) is None
    client = app.test_client()
    client.set_cookie(device.DEVICE_COOKIE, forged)
    assert _vote(client, org, 1, numbers[0]) == 201
    # The beacon replaces what does not verify.
    assert "Set-Cookie" in client.post("/c/v1/beacon").headers
    with app.app_context():
        services.drain_campaign("v1")
        assert db.session.scalar(select(Vote.device)) is None
        db.session.remove()


def test_the_vote_carries_the_cookie_device_never_the_client_header(app: Flask, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    phone = app.test_client()
    phone.post("/c/v1/beacon")
    with app.test_request_context():
        mine = device.read(_cookie(phone))
    # Someone else claims the same phone through the header: it frames nobody.
    framer = app.test_client()
    framer.post("/c/v1/beacon")
    assert _vote(phone, org, 1, numbers[0]) == 201
    assert _vote(framer, org, 2, numbers[0], environ_base={"REMOTE_ADDR": "10.9.8.7"}) == 201
    # A browser without the cookie: no device.
    assert (
        _vote(app.test_client(), org, 3, numbers[1], environ_base={"REMOTE_ADDR": "10.9.8.8"})
        == 201
    )
    header_only = app.test_client().post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[1]},
        headers={**org.voter(4), "X-Device-Fingerprint": mine or ""},
    )
    assert header_only.status_code == 201
    with app.app_context():
        services.drain_campaign("v1")
        by_voter = dict(db.session.execute(select(Vote.voter_id, Vote.device)).all())
        db.session.remove()
    assert by_voter[1] == mine
    assert by_voter[2] not in (None, mine)
    assert by_voter[3] is None and by_voter[4] is None


def test_the_soft_limit_counts_each_browser_apart_and_cookieless_ones_together(
    app: Flask, org: Org
) -> None:
    numbers = org.voting_campaign(nominees=3, rules={"ip_soft_limit": 2, "votes_per_day": 3})
    # A hospital's Wi-Fi: five phones behind one address, each with its cookie, two votes each.
    for k in range(5):
        phone = app.test_client()
        phone.post("/c/v1/beacon")
        codes = [_vote(phone, org, 100 + k, numbers[i]) for i in range(2)]
        assert codes == [201, 201], k
    # One browser past the limit is asked for the challenge, however many identities it holds.
    farm = app.test_client()
    farm.post("/c/v1/beacon")
    codes = [_vote(farm, org, 200 + k, numbers[0]) for k in range(3)]
    assert codes == [201, 201, 428]
    # Browsers without a cookie share one count per address.
    codes = [_vote(app.test_client(), org, 300 + k, numbers[1]) for k in range(3)]
    assert codes == [201, 201, 428]
    # Another address's cookieless browsers are not slowed by the first one's.
    other = _vote(app.test_client(), org, 400, numbers[2], environ_base={"REMOTE_ADDR": "10.1.1.1"})
    assert other == 201


def test_new_devices_per_address_are_budgeted(make_app: Callable[..., Flask], org: Org) -> None:
    org.voting_campaign()
    strict = make_app(DEVICE_COOKIE_ADDRESS_LIMIT="2/minute")
    issued = []
    for _ in range(3):
        client = strict.test_client()
        assert client.post("/c/v1/beacon").status_code == 204
        issued.append(_cookie(client) is not None)
    assert issued == [True, True, False]
    # Another address still gets one.
    elsewhere = strict.test_client()
    elsewhere.post("/c/v1/beacon", environ_base={"REMOTE_ADDR": "10.3.3.3"})
    assert _cookie(elsewhere) is not None


def test_the_beacon_still_refuses_a_bad_number(app: Flask, org: Org) -> None:
    org.voting_campaign()
    client = app.test_client()
    bad = client.post("/c/v1/beacon", json={"number": 7})
    assert bad.status_code == 422
    assert client.post("/c/v1/beacon", json={"number": "Z999"}).status_code == 404
