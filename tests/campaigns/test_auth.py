"""Staff login, tokens and the throttle on failed logins."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from campaigns.models import Account
from campaigns.services import LOGIN_IP_DEFAULTS
from core.extensions import db, redis_store
from tests.factories import PASSWORD, Org


def _login(client: FlaskClient, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def test_login_returns_a_working_expiring_token(client: FlaskClient, org: Org) -> None:
    response = _login(client, "unit-h1", PASSWORD)
    assert response.status_code == 200
    body = response.json
    assert body["role"] == "unit"
    assert body["unit_code"] == "H1"
    assert body["expires_at"].endswith("+00:00")
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json["username"] == "unit-h1"


def test_passwords_are_stored_as_argon2(ctx: Flask, org: Org) -> None:
    account = db.session.get(Account, org.accounts["admin"])
    assert account.password_hash.startswith("$argon2id$")
    assert PASSWORD not in account.password_hash


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient, org: Org) -> None:
    wrong = _login(client, "admin", "not-the-password")
    unknown = _login(client, "nobody", "not-the-password", ip="10.0.0.2")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json["error"]["code"] == unknown.json["error"]["code"] == "invalid_credentials"


def _ip_limit(app: Flask, name: str) -> int:
    return int(app.config.get(name, LOGIN_IP_DEFAULTS[name]))


def test_failed_logins_are_slowed_then_locked(app: Flask, client: FlaskClient, org: Org) -> None:
    slow_after = app.config["LOGIN_SLOW_AFTER"]
    for _ in range(slow_after):
        assert _login(client, "admin", "bad-password").status_code == 401
    slowed = _login(client, "admin", "bad-password")
    assert slowed.status_code == 429
    assert slowed.json["error"]["code"] == "login_throttled"
    assert slowed.json["error"]["details"]["scope"] == "account"
    assert int(slowed.headers["Retry-After"]) >= 1
    # Even the right password waits while slowed: the guard runs before the check.
    assert _login(client, "admin", PASSWORD).json["error"]["code"] == "login_throttled"

    # Drive the pair's count to the lock threshold by waiting out each delay on the Redis clock.
    with app.app_context():
        key = redis_store.key("login", "fail", "pair", "10.0.0.1", "admin")
        redis_store.client.hset(key, "n", app.config["LOGIN_LOCK_AFTER"] - 1)
        redis_store.client.hset(key, "last", time.time() - 3600)
    assert _login(client, "admin", "bad-password").status_code == 401
    locked = _login(client, "admin", PASSWORD)
    assert locked.status_code == 429
    assert locked.json["error"]["code"] == "login_locked"
    assert 0 < int(locked.headers["Retry-After"]) <= app.config["LOGIN_LOCK_SECONDS"]
    # The lock is on this name from this address only: the same name elsewhere logs in.
    assert _login(client, "admin", PASSWORD, ip="10.9.9.9").status_code == 200
    assert _login(client, "unit-h1", PASSWORD, ip="10.9.9.8").status_code == 200


def test_one_ip_spraying_many_names_is_throttled(app: Flask, client: FlaskClient, org: Org) -> None:
    for i in range(_ip_limit(app, "LOGIN_IP_SLOW_AFTER")):
        assert _login(client, f"guess{i}", "x", ip="10.7.7.7").status_code == 401
    response = _login(client, "unit-h2", PASSWORD, ip="10.7.7.7")
    assert response.status_code == 429
    assert response.json["error"]["details"]["scope"] == "address"
    assert _login(client, "unit-h2", PASSWORD, ip="10.7.7.8").status_code == 200


def test_a_successful_login_gives_its_slot_back(app: Flask, client: FlaskClient, org: Org) -> None:
    for _ in range(_ip_limit(app, "LOGIN_IP_SLOW_AFTER") + 3):
        assert _login(client, "unit-h1", PASSWORD, ip="10.6.6.6").status_code == 200


def test_tampered_token_is_refused(client: FlaskClient, org: Org) -> None:
    token = org.headers("admin")["Authorization"]
    tampered = token[:-3] + ("aaa" if not token.endswith("aaa") else "bbb")
    response = client.get("/api/v1/auth/me", headers={"Authorization": tampered})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "invalid_token"


def test_token_signed_with_another_key_is_refused(client: FlaskClient, org: Org) -> None:
    forged = URLSafeTimedSerializer("guessed-key", salt="zuimei.staff.v1").dumps(
        {"sub": org.accounts["admin"], "role": "admin", "v": 1, "ttl": 3600}
    )
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_expired_token_is_refused(app: Flask, client: FlaskClient, org: Org) -> None:
    with app.app_context():
        from core.auth import issue_token

        token = issue_token(
            "staff", {"sub": org.accounts["admin"], "role": "admin", "v": 1}, ttl=1
        ).token
    time.sleep(2.1)
    response = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json["error"]["code"] == "token_expired"


def test_deactivated_account_token_stops_working(app: Flask, client: FlaskClient, org: Org) -> None:
    headers = org.headers("unit-h1")
    with app.app_context():
        account = db.session.get(Account, org.accounts["unit-h1"])
        account.is_active = False
        db.session.commit()
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_login_when_redis_is_down_fails_closed(make_app: Callable[..., Flask], org: Org) -> None:
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = broken.test_client().post(
        "/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}
    )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "service_unavailable"
