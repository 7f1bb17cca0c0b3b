"""Phone voters (the sms provider) through the API and the H5 page, with Tencent Cloud's SMS
API faked on loopback (the SDK signs each request; the fake checks it)."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url

from core import clock, device
from core.auth import read_token
from core.extensions import db, redis_store, sqlite_write_intent
from tests.factories import Org
from tests.pages.browser import csrf_from
from tests.voting.sms_fake import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    SIGN_NAME,
    TEMPLATE_ID,
    FakeTencentSms,
)
from voting import identity, phone
from voting.models import Voter, VoterPhone

PHONE = "13812341234"
OTHER = "13998765432"
CODES = "/api/v1/voters/sms/codes"
VERIFY = "/api/v1/voters/sms"


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    with FakeTencentSms() as server:
        yield server


@pytest.fixture
def build(
    app: Flask, make_app: Callable[..., Flask], fake: FakeTencentSms
) -> Callable[..., FlaskClient]:
    """A client of an app whose SMS goes to the fake; limits per phone are lifted unless a test
    sets them (hour windows where a test counts, so no minute boundary splits its requests)."""

    def make(**overrides: Any) -> FlaskClient:
        settings = {
            "SMS_PROVIDER": "tencent",
            "TENCENTCLOUD_SECRET_ID": SECRET_ID,
            "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
            "SMS_APP_ID": APP_ID,
            "SMS_SIGN_NAME": SIGN_NAME,
            "SMS_TEMPLATE_ID": TEMPLATE_ID,
            "SMS_ENDPOINT": fake.endpoint,
            "SMS_TIMEOUT": 1,
            "SMS_PHONE_LIMIT": "1000/hour",
            "SMS_IP_LIMIT": "1000/hour",
            "SMS_DEVICE_LIMIT": "1000/hour",
            "SMS_VERIFY_IP_LIMIT": "1000/hour",
            **overrides,
        }
        return make_app(**settings).test_client()

    return make


@pytest.fixture
def api(build: Callable[..., FlaskClient]) -> FlaskClient:
    return build()


def _claims(client: FlaskClient, token: str) -> dict[str, Any]:
    with client.application.app_context():
        return read_token("voter", token)


def _code(client: FlaskClient, fake: FakeTencentSms, number: str = PHONE, **kw: Any) -> str:
    response = client.post(CODES, json={"phone": number}, **kw)
    assert response.status_code == 202, response.json
    return fake.last_code(number)


def _verify(client: FlaskClient, number: str, code: str, **kw: Any) -> Any:
    return client.post(VERIFY, json={"phone": number, "code": code}, **kw)


def _voters(client: FlaskClient) -> list[Voter]:
    with client.application.app_context():
        rows = list(db.session.scalars(select(Voter).order_by(Voter.id)))
        db.session.expunge_all()
        return rows


def _code_stored(client: FlaskClient, number: str = PHONE) -> bool:
    with client.application.app_context():
        key = redis_store.key("sms", "code", phone.phone_hash(number))
        return bool(redis_store.client.exists(key))


def _wechat_voter(client: FlaskClient, openid: str) -> tuple[int, dict[str, str]]:
    with client.application.app_context():
        voter = identity.voter_for("wechat", openid)
        db.session.commit()
        token = identity.voter_token(voter)
        return voter.id, {"Authorization": f"Bearer {token.token}"}


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def _phone_rows(client: FlaskClient) -> dict[str, int]:
    """The claims in the database: phone hash → voter id."""
    with client.application.app_context():
        rows = db.session.execute(select(VoterPhone.phone_hash, VoterPhone.voter_id)).all()
        return {hashed: voter_id for hashed, voter_id in rows}


def _hash(client: FlaskClient, number: str) -> str:
    with client.application.app_context():
        return phone.phone_hash(number)


# --- the flow -----------------------------------------------------------------------------------


def test_code_then_answer_makes_a_phone_voter_whose_token_says_verified_and_votes(
    api: FlaskClient, fake: FakeTencentSms, org: Org
) -> None:
    numbers = org.voting_campaign()
    sent = api.post(CODES, json={"phone": "+86 138 1234 1234", "campaign": "v1"})
    assert sent.status_code == 202, sent.json
    assert sent.json == {"phone": "138****1234", "expires_in": 300, "resend_after": 60}
    assert fake.verified == 1 and len(fake.sent) == 1
    code = fake.last_code(PHONE)
    assert re.fullmatch(r"\d{6}", code)

    made = _verify(api, PHONE, code)
    assert made.status_code == 201, made.json
    assert made.json["phone_verified"] is True and made.json["upgraded"] is False
    claims = _claims(api, made.json["voter_token"])
    assert claims["p"] == "sms" and claims["pv"] == 1
    with api.application.app_context():
        assert phone.phone_verified(claims)
        expected_subject = identity.subject_hash("sms", PHONE)
    [voter] = _voters(api)
    assert (voter.id, voter.provider, voter.subject) == (claims["sub"], "sms", expected_subject)
    assert PHONE not in voter.subject
    assert _phone_rows(api) == {expected_subject: voter.id}  # its claim, made with it

    vote = api.post(
        "/api/v1/campaigns/v1/votes",
        json={"nominee": numbers[0]},
        headers={"Authorization": f"Bearer {made.json['voter_token']}"},
    )
    assert vote.status_code == 201, vote.json


def test_the_same_phone_is_the_same_voter_next_time(api: FlaskClient, fake: FakeTencentSms) -> None:
    first = _verify(api, PHONE, _code(api, fake))
    again = _verify(api, PHONE, _code(api, fake))
    other = _verify(api, OTHER, _code(api, fake, OTHER))
    ids = [_claims(api, r.json["voter_token"])["sub"] for r in (first, again, other)]
    assert ids[0] == ids[1] != ids[2]
    assert len(_voters(api)) == 2


def test_a_code_works_once(api: FlaskClient, fake: FakeTencentSms) -> None:
    code = _code(api, fake)
    assert _verify(api, PHONE, code).status_code == 201
    spent = _verify(api, PHONE, code)
    assert (spent.status_code, spent.json["error"]["code"]) == (410, "sms_code_expired")


def test_a_new_code_replaces_the_one_before(api: FlaskClient, fake: FakeTencentSms) -> None:
    first = _code(api, fake)
    second = _code(api, fake)
    if first == second:  # one chance in a million
        pytest.skip("the two random codes happened to be equal")
    assert _verify(api, PHONE, first).status_code == 400
    assert _verify(api, PHONE, second).status_code == 201


def test_five_wrong_answers_burn_the_code(api: FlaskClient, fake: FakeTencentSms) -> None:
    code = _code(api, fake)
    left = []
    for _ in range(5):
        wrong = _verify(api, PHONE, _wrong(code))
        assert (wrong.status_code, wrong.json["error"]["code"]) == (400, "sms_code_invalid")
        left.append(wrong.json["error"]["details"]["tries_left"])
    assert left == [4, 3, 2, 1, 0]
    burned = _verify(api, PHONE, code)
    assert (burned.status_code, burned.json["error"]["code"]) == (410, "sms_code_expired")
    assert _voters(api) == []


def test_a_code_expires_after_five_minutes_of_the_apps_clock(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    code = _code(api, fake)
    start = clock.offset_seconds()
    try:
        clock.set_offset(start + 290)
        assert _verify(api, PHONE, _wrong(code)).status_code == 400  # still live at 4:50
        clock.set_offset(start + 301)
        expired = _verify(api, PHONE, code)
    finally:
        clock.set_offset(start)
    assert (expired.status_code, expired.json["error"]["code"]) == (410, "sms_code_expired")
    assert not _code_stored(api)
    assert _voters(api) == []


def test_a_code_that_was_never_sent_is_expired(api: FlaskClient) -> None:
    response = _verify(api, PHONE, "123456")
    assert (response.status_code, response.json["error"]["code"]) == (410, "sms_code_expired")


# --- validation and the provider switch --------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["12812341234", "1381234123", "138123412345", "+1 2025550123", "abc", "", 13812341234]
)
def test_only_mainland_mobile_numbers_are_accepted(
    api: FlaskClient, fake: FakeTencentSms, number: Any
) -> None:
    response = api.post(CODES, json={"phone": number})
    assert response.status_code == 422
    assert "phone" in response.json["error"]["details"]["fields"]
    assert fake.calls == 0


def test_a_code_must_be_six_digits(api: FlaskClient) -> None:
    for code in ("12345", "1234567", "abcdef", ""):
        response = _verify(api, PHONE, code)
        assert response.status_code == 422 and "code" in response.json["error"]["details"]["fields"]


def test_everything_is_404_while_sms_is_off(client: FlaskClient, org: Org) -> None:
    org.voting_campaign()
    for path, body in ((CODES, {"phone": PHONE}), (VERIFY, {"phone": PHONE, "code": "123456"})):
        response = client.post(path, json=body)
        assert (response.status_code, response.json["error"]["code"]) == (404, "provider_disabled")
    page = client.get("/c/v1/phone")
    assert page.status_code == 404 and "手机号验证" in page.get_data(as_text=True)


def test_the_routes_are_in_the_openapi_document(api: FlaskClient) -> None:
    paths = api.get("/api/openapi.json").json["paths"]
    assert "post" in paths[CODES] and "post" in paths[VERIFY]


# --- limits -------------------------------------------------------------------------------------


def test_the_default_limits_are_one_a_minute_and_ten_a_day_per_phone(app: Flask) -> None:
    assert app.config["SMS_PHONE_LIMIT"] == "1/minute;10/day"
    assert app.config["SMS_CODE_TTL"] == 300 and app.config["SMS_CODE_MAX_TRIES"] == 5


def test_codes_are_limited_per_phone(
    build: Callable[..., FlaskClient], fake: FakeTencentSms
) -> None:
    client = build(SMS_PHONE_LIMIT="1/hour")
    _code(client, fake)
    again = client.post(CODES, json={"phone": PHONE})
    assert (again.status_code, again.json["error"]["code"]) == (429, "rate_limited")
    assert int(again.headers["Retry-After"]) > 0
    assert len(fake.sent) == 1
    _code(client, fake, OTHER)  # another phone is not held back


def test_codes_are_limited_per_address(
    build: Callable[..., FlaskClient], fake: FakeTencentSms
) -> None:
    client = build(SMS_IP_LIMIT="2/hour")
    _code(client, fake, PHONE)
    _code(client, fake, OTHER)
    third = client.post(CODES, json={"phone": "13700000000"})
    assert (third.status_code, third.json["error"]["code"]) == (429, "rate_limited")
    assert "Retry-After" in third.headers and len(fake.sent) == 2
    elsewhere = client.post(
        CODES, json={"phone": "13700000000"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}
    )
    assert elsewhere.status_code == 202


def test_codes_are_limited_per_device_cookie(
    build: Callable[..., FlaskClient], fake: FakeTencentSms
) -> None:
    client = build(SMS_DEVICE_LIMIT="1/hour")
    with client.application.app_context():
        _, cookie = device.issue()
    client.set_cookie(device.DEVICE_COOKIE, cookie)
    _code(client, fake, PHONE)
    second = client.post(CODES, json={"phone": OTHER})
    assert (second.status_code, second.json["error"]["code"]) == (429, "rate_limited")
    client.delete_cookie(device.DEVICE_COOKIE)
    _code(client, fake, OTHER)  # no device cookie: only the address and phone limits apply


def test_answers_are_limited_per_address(
    build: Callable[..., FlaskClient], fake: FakeTencentSms
) -> None:
    client = build(SMS_VERIFY_IP_LIMIT="3/hour")
    code = _code(client, fake)
    for _ in range(3):
        assert _verify(client, PHONE, _wrong(code)).status_code == 400
    limited = _verify(client, PHONE, code)
    assert (limited.status_code, limited.json["error"]["code"]) == (429, "rate_limited")


# --- the provider fails: nothing stored changes ------------------------------------------------


@pytest.mark.parametrize(
    ("how", "provider_code", "status", "code"),
    [
        ("500", "", 503, "sms_unavailable"),
        ("hang", "", 503, "sms_unavailable"),
        ("garbage", "", 503, "sms_unavailable"),
        ("error", "InternalError.OtherError", 503, "sms_unavailable"),
        ("error", "FailedOperation.InsufficientBalanceInSmsPackage", 502, "sms_provider_refused"),
        ("error", "FailedOperation.TemplateIncorrectOrUnapproved", 502, "sms_provider_refused"),
        ("status", "LimitExceeded.PhoneNumberDailyLimit", 429, "sms_frequency_limit"),
        ("status", "InvalidParameterValue.IncorrectPhoneNumber", 422, "sms_bad_number"),
    ],
)
def test_a_provider_failure_stores_nothing_and_keeps_the_earlier_code(
    api: FlaskClient,
    fake: FakeTencentSms,
    how: Any,
    provider_code: str,
    status: int,
    code: str,
) -> None:
    fake.fail_next(how, provider_code)
    failed = api.post(CODES, json={"phone": PHONE})
    assert (failed.status_code, failed.json["error"]["code"]) == (status, code)
    assert not _code_stored(api) and fake.sent == []

    earlier = _code(api, fake)
    fake.fail_next(how, provider_code)
    assert api.post(CODES, json={"phone": PHONE}).status_code == status
    assert len(fake.sent) == 1
    assert _verify(api, PHONE, earlier).status_code == 201  # the code sent before still works


def test_logs_carry_the_phone_masked_never_whole(
    api: FlaskClient, fake: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    code = _code(api, fake)
    _verify(api, PHONE, _wrong(code))
    _verify(api, PHONE, code)
    fake.fail_next("error", "FailedOperation.InsufficientBalanceInSmsPackage")
    api.post(CODES, json={"phone": PHONE})
    assert "138****1234" in caplog.text
    assert PHONE not in caplog.text and code not in caplog.text


def test_redis_and_the_database_never_hold_the_number(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    token = _verify(api, PHONE, _code(api, fake)).json["voter_token"]
    _code(api, fake)  # a live code too
    _, wechat = _wechat_voter(api, "openid-pii")
    _verify(api, OTHER, _code(api, fake, OTHER), headers=wechat)  # an upgrade's claim
    with api.application.app_context():
        client = redis_store.client
        for key in client.scan_iter(match=redis_store.key("*")):
            kind = client.type(key).decode()
            if kind == "string":
                stored = client.get(key) or b""
            elif kind == "hash":
                stored = b" ".join(k + b"=" + v for k, v in client.hgetall(key).items())
            else:
                stored = b""
            for number in (PHONE, OTHER):
                assert number.encode() not in key + stored
        assert not list(client.scan_iter(match=redis_store.key("sms", "owner", "*")))
        for voter in db.session.scalars(select(Voter)):
            assert PHONE not in voter.subject and OTHER not in voter.subject
    rows = _phone_rows(api)
    assert len(rows) == 2
    for number in (PHONE, OTHER):
        assert number not in " ".join(rows)
    assert PHONE not in str(_claims(api, token))


# --- one phone, one voter; WeChat voters upgraded ---------------------------------------------


def test_a_wechat_voter_who_verifies_a_phone_keeps_its_identity_with_pv(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    voter_id, wechat = _wechat_voter(api, "openid-1")
    before = _claims(api, wechat["Authorization"].split()[1])
    assert not phone.phone_verified(before)

    upgraded = _verify(api, PHONE, _code(api, fake), headers=wechat)
    assert upgraded.status_code == 201, upgraded.json
    assert upgraded.json["upgraded"] is True
    claims = _claims(api, upgraded.json["voter_token"])
    assert (claims["sub"], claims["p"], claims["c"], claims["pv"]) == (
        voter_id,
        "wechat",
        before["c"],
        1,
    )
    assert [v.provider for v in _voters(api)] == ["wechat"]  # no second voter was made
    assert _phone_rows(api) == {_hash(api, PHONE): voter_id}

    # The phone now stands for that WeChat voter: a phone login (a browser outside WeChat)
    # is the same voter, and the same voter may verify it again.
    outside = _verify(api, PHONE, _code(api, fake))
    assert _claims(api, outside.json["voter_token"])["sub"] == voter_id
    assert _verify(api, PHONE, _code(api, fake), headers=wechat).status_code == 201
    assert len(_voters(api)) == 1
    assert _phone_rows(api) == {_hash(api, PHONE): voter_id}


def test_a_phone_verifies_one_voter_only(api: FlaskClient, fake: FakeTencentSms) -> None:
    first_id, first = _wechat_voter(api, "openid-1")
    _, second = _wechat_voter(api, "openid-2")
    assert _verify(api, PHONE, _code(api, fake), headers=first).status_code == 201
    taken = _verify(api, PHONE, _code(api, fake), headers=second)
    assert (taken.status_code, taken.json["error"]["code"]) == (409, "phone_in_use")

    # A phone that made its own sms voter cannot then verify a WeChat voter either.
    assert _verify(api, OTHER, _code(api, fake, OTHER)).status_code == 201
    refused = _verify(api, OTHER, _code(api, fake, OTHER), headers=second)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "phone_in_use")
    assert sorted(v.provider for v in _voters(api)) == ["sms", "wechat", "wechat"]
    [sms_voter] = [v.id for v in _voters(api) if v.provider == "sms"]
    assert _phone_rows(api) == {_hash(api, PHONE): first_id, _hash(api, OTHER): sms_voter}


def test_a_blocked_voter_cannot_verify(api: FlaskClient, fake: FakeTencentSms) -> None:
    voter_id, wechat = _wechat_voter(api, "openid-blocked")
    with api.application.app_context():
        db.session.get(Voter, voter_id).blocked = True
        db.session.commit()
    refused = _verify(api, PHONE, _code(api, fake), headers=wechat)
    assert (refused.status_code, refused.json["error"]["code"]) == (403, "invalid_voter")


def test_a_voter_keeps_the_first_phone_it_verified(api: FlaskClient, fake: FakeTencentSms) -> None:
    voter_id, wechat = _wechat_voter(api, "openid-1")
    assert _verify(api, PHONE, _code(api, fake), headers=wechat).status_code == 201
    second = _verify(api, OTHER, _code(api, fake, OTHER), headers=wechat)
    assert (second.status_code, second.json["error"]["code"]) == (409, "voter_has_other_phone")
    assert "原手机号" in second.json["error"]["message"]
    assert _phone_rows(api) == {_hash(api, PHONE): voter_id}  # not replaced

    # The refused phone stays free: its own login makes its own voter; the first phone still
    # verifies its voter again.
    other = _verify(api, OTHER, _code(api, fake, OTHER))
    assert other.status_code == 201
    other_id = _claims(api, other.json["voter_token"])["sub"]
    assert other_id != voter_id
    assert _verify(api, PHONE, _code(api, fake), headers=wechat).status_code == 201
    assert _phone_rows(api) == {_hash(api, PHONE): voter_id, _hash(api, OTHER): other_id}


def _forget_redis(client: FlaskClient) -> int:
    """What Redis losing its data looks like to the app: every key under the app's prefix is
    gone (this run's own namespace; other processes' keys on a shared server are left alone)."""
    with client.application.app_context():
        store = redis_store.client
        keys = list(store.scan_iter(match=redis_store.key("*"), count=1000))
        if keys:
            store.delete(*keys)
        return len(keys)


def test_a_claim_survives_redis_losing_its_data(api: FlaskClient, fake: FakeTencentSms) -> None:
    first_id, first = _wechat_voter(api, "openid-1")
    _, second = _wechat_voter(api, "openid-2")
    assert _verify(api, PHONE, _code(api, fake), headers=first).status_code == 201
    made = _verify(api, OTHER, _code(api, fake, OTHER))
    sms_id = _claims(api, made.json["voter_token"])["sub"]

    assert _forget_redis(api) > 0

    taken = _verify(api, PHONE, _code(api, fake), headers=second)
    assert (taken.status_code, taken.json["error"]["code"]) == (409, "phone_in_use")
    refused = _verify(api, OTHER, _code(api, fake, OTHER), headers=second)
    assert (refused.status_code, refused.json["error"]["code"]) == (409, "phone_in_use")
    outside = _verify(api, PHONE, _code(api, fake))
    assert _claims(api, outside.json["voter_token"])["sub"] == first_id
    assert _phone_rows(api) == {_hash(api, PHONE): first_id, _hash(api, OTHER): sms_id}


def _waiting_on_locks(engine: Any) -> int:
    """PostgreSQL: the statements of this database waiting for a lock (asked in a transaction
    of its own: pg_stat_activity is a snapshot for the length of one)."""
    with engine.connect() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE NOT l.granted AND a.datname = current_database()"
            ).scalar()
        )


def _until(condition: Callable[[], bool], what: str, seconds: float = 8.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _race(
    client: FlaskClient, fake: FakeTencentSms, attempts: list[tuple[str, dict[str, str]]]
) -> list[Any]:
    """Verify each (phone, headers) in its own thread so that all reach the database at once.

    Another connection holds the writes first (PostgreSQL: a lock on voter_phones that lets
    reads through; SQLite: the one write transaction). Each attempt gets its code, spends it
    (Redis) and then waits on that lock; the next one starts once it waits. When all wait the
    lock goes, and the database alone decides who gets the phone."""
    app = client.application
    with app.app_context():
        engine = db.engine
    postgres = engine.dialect.name == "postgresql"
    responses: list[Any] = [None] * len(attempts)
    errors: list[BaseException] = []

    def run(index: int, number: str, code: str, headers: dict[str, str]) -> None:
        try:
            responses[index] = _verify(app.test_client(), number, code, headers=headers)
        except BaseException as exc:  # reported by the test thread
            errors.append(exc)

    threads: list[threading.Thread] = []
    intent = sqlite_write_intent.set(True)  # SQLite: BEGIN IMMEDIATE, the write lock itself
    holder = engine.connect()
    try:
        holder.begin()
        if postgres:
            holder.exec_driver_sql("LOCK TABLE voter_phones IN SHARE ROW EXCLUSIVE MODE")
        for index, (number, headers) in enumerate(attempts):
            code = _code(client, fake, number)
            thread = threading.Thread(target=run, args=(index, number, code, headers))
            thread.start()
            threads.append(thread)
            _until(lambda number=number: not _code_stored(client, number), "the code spent")
            if postgres:
                _until(lambda n=index + 1: _waiting_on_locks(engine) >= n, "a lock wait")
            else:
                time.sleep(0.3)  # SQLite's busy handler: nothing to observe from outside
            assert responses[index] is None and not errors, "the attempt did not wait"
    finally:
        sqlite_write_intent.reset(intent)
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    return responses


def test_two_wechat_voters_racing_for_one_phone_one_wins(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    first_id, first = _wechat_voter(api, "openid-1")
    second_id, second = _wechat_voter(api, "openid-2")
    results = _race(api, fake, [(PHONE, first), (PHONE, second)])
    outcomes = sorted(
        (r.status_code, r.json.get("upgraded") or r.json["error"]["code"]) for r in results
    )
    assert outcomes == [(201, True), (409, "phone_in_use")]
    [won] = [r for r in results if r.status_code == 201]
    winner = _claims(api, won.json["voter_token"])["sub"]
    assert winner in (first_id, second_id)
    assert _phone_rows(api) == {_hash(api, PHONE): winner}
    assert len(_voters(api)) == 2  # no sms voter was made on the side


def test_two_first_logins_of_one_phone_at_once_are_one_voter(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    results = _race(api, fake, [(PHONE, {}), (PHONE, {})])
    assert [r.status_code for r in results] == [201, 201], [r.json for r in results]
    ids = {_claims(api, r.json["voter_token"])["sub"] for r in results}
    [voter] = _voters(api)
    assert ids == {voter.id}
    assert _phone_rows(api) == {_hash(api, PHONE): voter.id}


def test_one_voter_verifying_two_phones_at_once_keeps_one(
    api: FlaskClient, fake: FakeTencentSms
) -> None:
    voter_id, wechat = _wechat_voter(api, "openid-1")
    results = _race(api, fake, [(PHONE, wechat), (OTHER, wechat)])
    outcomes = sorted(
        (r.status_code, r.json.get("upgraded") or r.json["error"]["code"]) for r in results
    )
    assert outcomes == [(201, True), (409, "voter_has_other_phone")]
    [won] = [
        number for number, r in zip((PHONE, OTHER), results, strict=True) if r.status_code == 201
    ]
    assert _phone_rows(api) == {_hash(api, won): voter_id}


@pytest.fixture
def scratch_database(app: Flask, tmp_path: Path) -> Iterator[str]:
    """An empty database of the run's kind (a PostgreSQL database beside the run's, or a SQLite
    file), for a migration to run on from the start."""
    url = make_url(str(app.config["SQLALCHEMY_DATABASE_URI"]))
    if url.get_backend_name() != "postgresql":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    name = f"{url.database}_phones"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_migration_gives_every_sms_voter_its_row(
    make_app: Callable[..., Flask], scratch_database: str
) -> None:
    from flask_migrate import downgrade, upgrade

    migrations = str(Path(__file__).resolve().parents[2] / "migrations")
    scratch = make_app(SQLALCHEMY_DATABASE_URI=scratch_database)
    with scratch.app_context():
        upgrade(directory=migrations, revision="e4a0b2c3d5f6")
        made = clock.utcnow().replace(microsecond=0)
        sms_voter = Voter(provider="sms", subject=phone.phone_hash(PHONE), created_at=made)
        others = [
            Voter(provider="wechat", subject="openid-before"),
            Voter(provider="device", subject=identity.subject_hash("device", "d-1")),
        ]
        db.session.add_all([sms_voter, *others])
        db.session.commit()
        sms_id = sms_voter.id
        db.session.remove()

        upgrade(directory=migrations, revision="f5b1c3d4e6a7")
        rows = db.session.execute(select(VoterPhone)).scalars().all()
        assert [(r.phone_hash, r.voter_id, r.verified_at) for r in rows] == [
            (phone.phone_hash(PHONE), sms_id, made)
        ]
        db.session.remove()

        downgrade(directory=migrations, revision="e4a0b2c3d5f6")
        with db.engine.connect() as conn:
            assert "voter_phones" not in inspect(conn).get_table_names()
        db.session.remove()


def test_the_campaign_rule_reads_the_token_alone(app: Flask) -> None:
    assert phone.REFUSAL == ("phone_required", 403, "本活动需验证手机号后投票")
    assert phone.phone_verified({"sub": 1, "p": "wechat", "pv": 1})
    assert not phone.phone_verified({"sub": 1, "p": "wechat"})
    assert not phone.phone_verified({"sub": 1, "p": "sms", "pv": "1"})


# --- the H5 page --------------------------------------------------------------------------------


def _voter_count(client: FlaskClient) -> int:
    with client.application.app_context():
        return db.session.scalar(select(func.count()).select_from(Voter)) or 0


def _cookie(client: FlaskClient, name: str) -> str | None:
    found = client.get_cookie(name)
    return found.value if found else None


def test_the_page_flow_sets_the_voter_cookie_and_returns_to_the_campaign(
    api: FlaskClient, fake: FakeTencentSms, org: Org
) -> None:
    org.voting_campaign()
    page = api.get("/c/v1/phone?next=/c/v1/n/D001&reason=required")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "手机号仅用于身份验证，不会公开或用于其他用途" in html
    assert "本活动需验证手机号后投票" in html and page.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    csrf = csrf_from(html)

    no_consent = api.post("/c/v1/phone/code", data={"phone": PHONE, "csrf_token": csrf})
    assert no_consent.status_code == 422 and fake.calls == 0

    code_page = api.post(
        "/c/v1/phone/code",
        data={"phone": PHONE, "consent": "1", "csrf_token": csrf, "next": "/c/v1/n/D001"},
    )
    assert code_page.status_code == 200
    body = code_page.get_data(as_text=True)
    assert "138****1234" in body and 'data-wait="60"' in body and 'id="resend"' in body

    wrong = api.post(
        "/c/v1/phone/verify",
        data={"phone": PHONE, "code": _wrong(fake.last_code(PHONE)), "csrf_token": csrf},
    )
    assert wrong.status_code == 400 and "验证码不正确" in wrong.get_data(as_text=True)

    done = api.post(
        "/c/v1/phone/verify",
        data={
            "phone": PHONE,
            "code": fake.last_code(PHONE),
            "csrf_token": csrf,
            "next": "/c/v1/n/D001",
        },
    )
    assert done.status_code == 303 and done.headers["Location"] == "/c/v1/n/D001"
    assert "HttpOnly" in done.headers["Set-Cookie"]
    claims = _claims(api, _cookie(api, "zm_voter") or "")
    assert claims["p"] == "sms" and claims["pv"] == 1

    # Verified already: the page sends the voter straight back.
    again = api.get("/c/v1/phone?next=/c/v1")
    assert again.status_code == 303 and again.headers["Location"] == "/c/v1"
    script = api.get("/assets/h5_phone.js")
    assert script.status_code == 200 and "data-wait" in script.get_data(as_text=True)
    script.close()


def test_the_page_needs_its_csrf_token(api: FlaskClient, fake: FakeTencentSms, org: Org) -> None:
    org.voting_campaign()
    api.get("/c/v1/phone")
    refused = api.post("/c/v1/phone/code", data={"phone": PHONE, "consent": "1"})
    assert refused.status_code == 403 and fake.calls == 0


def test_the_page_upgrades_the_wechat_voter_in_the_cookie(
    api: FlaskClient, fake: FakeTencentSms, org: Org
) -> None:
    org.voting_campaign()
    voter_id, wechat = _wechat_voter(api, "openid-page")
    api.set_cookie("zm_voter", wechat["Authorization"].split()[1])
    csrf = csrf_from(api.get("/c/v1/phone").get_data(as_text=True))
    answer = api.post(
        "/c/v1/phone/code",
        json={"phone": PHONE, "consent": True},
        headers={"X-CSRF-Token": csrf},
    )
    assert answer.status_code == 202 and answer.json["phone"] == "138****1234"
    done = api.post(
        "/c/v1/phone/verify",
        json={"phone": PHONE, "code": fake.last_code(PHONE), "next": "/c/v1"},
        headers={"X-CSRF-Token": csrf},
    )
    assert done.status_code == 200 and done.json == {
        "identity": "ready",
        "phone_verified": True,
        "next": "/c/v1",
    }
    claims = _claims(api, _cookie(api, "zm_voter") or "")
    assert (claims["sub"], claims["p"], claims["pv"]) == (voter_id, "wechat", 1)
    assert _voter_count(api) == 1


def test_inside_wechat_the_page_first_gets_the_wechat_identity(
    build: Callable[..., FlaskClient], org: Org
) -> None:
    org.voting_campaign()
    client = build(WECHAT_APP_ID="wx-phone", WECHAT_APP_SECRET="secret")
    response = client.get(
        "/c/v1/phone?next=/c/v1",
        headers={"User-Agent": "Mozilla/5.0 MicroMessenger/8.0.50"},
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/api/v1/wechat/oauth/start?campaign=v1&next=")
    assert "%2Fc%2Fv1%2Fphone" in location
