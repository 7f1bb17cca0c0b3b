"""Staff access that can be taken back: logout revokes, passwords change and reset, accounts are
deactivated, and failed logins slow a guesser without locking the real user out."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Account
from campaigns.services import LOGIN_IP_DEFAULTS
from core.audit import AuditLog
from core.extensions import db, redis_store
from tests.factories import PASSWORD, Org
from tests.pages.browser import page_csrf, staff_login

NEW_PASSWORD = "a-new-long-passphrase"


def _login(client: FlaskClient, username: str, password: str = PASSWORD, ip: str = "10.0.0.1"):
    return client.post(
        "/api/v1/auth/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _token(client: FlaskClient, username: str, ip: str = "10.0.0.1") -> str:
    response = _login(client, username, ip=ip)
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def _code(response: Any) -> str:
    return str(response.json["error"]["code"])


def _audit(app: Flask, action: str) -> list[AuditLog]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditLog).where(AuditLog.action == action)))
        db.session.expunge_all()
    return rows


# --- logout ------------------------------------------------------------------------------------


def test_api_logout_revokes_that_token_only(client: FlaskClient, org: Org) -> None:
    first = _token(client, "unit-h1")
    second = _token(client, "unit-h1")
    assert client.post("/api/v1/auth/logout", headers=_bearer(first)).status_code == 204
    refused = client.get("/api/v1/auth/me", headers=_bearer(first))
    assert refused.status_code == 401 and _code(refused) == "token_revoked"
    assert client.get("/api/v1/auth/me", headers=_bearer(second)).status_code == 200
    # Logging out again, or with nothing valid, is still a plain 204.
    assert client.post("/api/v1/auth/logout", headers=_bearer(first)).status_code == 204
    assert client.post("/api/v1/auth/logout", headers=_bearer("garbage")).status_code == 204
    assert client.post("/api/v1/auth/logout").status_code == 204


def test_revocation_is_kept_as_long_as_the_token_lives(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    token = _token(client, "admin")
    client.post("/api/v1/auth/logout", headers=_bearer(token))
    with app.app_context():
        keys = list(redis_store.client.scan_iter(match=redis_store.key("auth", "revoked", "*")))
        assert len(keys) == 1
        ttl = redis_store.client.ttl(keys[0])
    assert app.config["STAFF_TOKEN_TTL"] - 10 < ttl <= app.config["STAFF_TOKEN_TTL"] + 2


def test_page_logout_revokes_the_cookie_token(client: FlaskClient, org: Org) -> None:
    csrf = staff_login(client, "admin", area="console")
    cookie = client.get_cookie("zm_staff")
    assert cookie is not None
    stolen = cookie.value
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    # The old cookie value, replayed as a cookie or as a bearer token, no longer works.
    client.set_cookie("zm_staff", stolen)
    assert client.get("/console").status_code == 302
    refused = client.get("/api/v1/auth/me", headers=_bearer(stolen))
    assert refused.status_code == 401 and _code(refused) == "token_revoked"


def test_api_logout_with_the_cookie_needs_csrf_and_clears_it(client: FlaskClient, org: Org) -> None:
    csrf = staff_login(client, "unit-h1")
    stolen = client.get_cookie("zm_staff").value  # type: ignore[union-attr]
    refused = client.post("/api/v1/auth/logout")
    assert refused.status_code == 403 and _code(refused) == "csrf_failed"
    assert client.get("/api/v1/auth/me").status_code == 200
    response = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert client.get_cookie("zm_staff") is None
    assert client.get("/api/v1/auth/me", headers=_bearer(stolen)).status_code == 401


def test_without_redis_staff_still_work_and_deactivation_still_revokes(
    make_app: Callable[..., Flask], org: Org
) -> None:
    """The console must work through a Redis outage; the database's token_version still
    takes access back (deactivation, password changes) while Redis is gone."""
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    clerk = org.headers("unit-h1")
    assert broken.test_client().get("/api/v1/auth/me", headers=clerk).status_code == 200
    with broken.app_context():
        account = db.session.scalar(select(Account).where(Account.username == "unit-h1"))
        account.token_version += 1  # what deactivation and a password reset do
        db.session.commit()
    response = broken.test_client().get("/api/v1/auth/me", headers=clerk)
    assert response.status_code == 401 and _code(response) == "invalid_token"


# --- one's own password ------------------------------------------------------------------------


def test_password_change_refuses_a_wrong_current_password(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    token = _token(client, "unit-h1")
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "not-the-password", "new_password": NEW_PASSWORD},
        headers=_bearer(token),
    )
    assert response.status_code == 403 and _code(response) == "wrong_password"
    assert client.get("/api/v1/auth/me", headers=_bearer(token)).status_code == 200
    assert _audit(app, "account.password_change") == []


def test_password_change_enforces_the_policy(client: FlaskClient, org: Org) -> None:
    headers = _bearer(_token(client, "unit-h1"))
    for new, code in (
        ("short", "validation_error"),
        ("unit-h1", "validation_error"),
        (PASSWORD, "weak_password"),
    ):
        response = client.post(
            "/api/v1/auth/password",
            json={"current_password": PASSWORD, "new_password": new},
            headers=headers,
        )
        assert response.status_code == 422 and _code(response) == code, (new, response.json)


def test_password_equal_to_the_username_is_refused(app: Flask, client: FlaskClient) -> None:
    admin_token = _admin_token(app)
    made = client.post(
        "/api/v1/accounts",
        json={"username": "clerk-long-name", "password": "password-1", "role": "judge"},
        headers=admin_token,
    )
    assert made.status_code == 201
    headers = _bearer(_token_for(client, "clerk-long-name", "password-1"))
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": "password-1", "new_password": "Clerk-Long-Name"},
        headers=headers,
    )
    assert response.status_code == 422 and _code(response) == "weak_password"
    assert response.json["error"]["message"] == "密码不能与用户名相同"


def _admin_token(app: Flask) -> dict[str, str]:
    """A second admin, logged in."""
    with app.app_context():
        campaign_services.create_account("root-admin", PASSWORD, "admin")
        db.session.commit()
        db.session.remove()
    return _bearer(_token_for(app.test_client(), "root-admin", PASSWORD))


def _token_for(client: FlaskClient, username: str, password: str) -> str:
    response = _login(client, username, password, ip="10.0.0.100")
    assert response.status_code == 200, response.json
    return str(response.json["access_token"])


def test_password_change_revokes_other_sessions_and_keeps_this_one(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    this = _token(client, "unit-h1")
    other = _token(client, "unit-h1", ip="10.0.0.2")
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_bearer(this),
    )
    assert response.status_code == 200, response.json
    fresh = response.json["access_token"]
    assert response.json["username"] == "unit-h1" and response.json["role"] == "unit"
    for old in (this, other):
        refused = client.get("/api/v1/auth/me", headers=_bearer(old))
        assert refused.status_code == 401 and _code(refused) == "invalid_token"
    assert client.get("/api/v1/auth/me", headers=_bearer(fresh)).status_code == 200
    assert _login(client, "unit-h1", PASSWORD, ip="10.0.0.3").status_code == 401
    assert _login(client, "unit-h1", NEW_PASSWORD, ip="10.0.0.4").status_code == 200
    (row,) = _audit(app, "account.password_change")
    assert row.actor_name == "unit-h1" and row.object_id == str(org.accounts["unit-h1"])


def test_password_change_through_the_cookie_renews_the_cookie(
    client: FlaskClient, org: Org
) -> None:
    csrf = staff_login(client, "unit-h1")
    old = client.get_cookie("zm_staff").value  # type: ignore[union-attr]
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert client.post("/api/v1/auth/password", json=body).status_code == 403  # no CSRF token
    response = client.post("/api/v1/auth/password", json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    renewed = client.get_cookie("zm_staff")
    assert renewed is not None and renewed.value != old
    assert client.get("/api/v1/auth/me").status_code == 200
    assert client.get("/api/v1/auth/me", headers=_bearer(old)).status_code == 401


def test_wrong_current_passwords_are_throttled_like_logins(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    headers = _bearer(_token(client, "unit-h1"))
    body = {"current_password": "guess-guess", "new_password": NEW_PASSWORD}
    codes = [
        client.post("/api/v1/auth/password", json=body, headers=headers).status_code
        for _ in range(app.config["LOGIN_SLOW_AFTER"] + 1)
    ]
    assert codes == [403] * app.config["LOGIN_SLOW_AFTER"] + [429]


def test_password_change_needs_a_login(client: FlaskClient, org: Org) -> None:
    response = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 401


# --- admins: reset, deactivate, reactivate -----------------------------------------------------


def test_admin_resets_a_password_and_ends_that_accounts_sessions(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    victim = _token(client, "unit-h2")
    response = client.post(
        "/api/v1/accounts/unit-h2/password",
        json={"new_password": NEW_PASSWORD, "reason": "本人遗忘密码，电话核实"},
        headers=org.headers("admin"),
    )
    assert response.status_code == 200, response.json
    assert response.json["username"] == "unit-h2" and "password" not in response.json
    assert client.get("/api/v1/auth/me", headers=_bearer(victim)).status_code == 401
    assert _login(client, "unit-h2", PASSWORD).status_code == 401
    assert _login(client, "unit-h2", NEW_PASSWORD, ip="10.0.0.9").status_code == 200
    (row,) = _audit(app, "account.password_reset")
    assert (row.actor_name, row.actor_role) == ("admin", "admin")
    assert row.object_id == str(org.accounts["unit-h2"])
    assert row.reason == "本人遗忘密码，电话核实"
    assert NEW_PASSWORD not in str(row.after)


def test_reset_refusals(client: FlaskClient, org: Org) -> None:
    body = {"new_password": NEW_PASSWORD}
    for role in ("unit-h1", "rev-k1", "judge"):
        denied = client.post(
            "/api/v1/accounts/unit-h2/password", json=body, headers=org.headers(role)
        )
        assert denied.status_code == 403 and _code(denied) == "forbidden"
    admin = org.headers("admin")
    missing = client.post("/api/v1/accounts/nobody/password", json=body, headers=admin)
    assert missing.status_code == 404 and _code(missing) == "account_not_found"
    own = client.post("/api/v1/accounts/admin/password", json=body, headers=admin)
    assert own.status_code == 409 and _code(own) == "use_password_change"
    weak = client.post(
        "/api/v1/accounts/unit-h2/password", json={"new_password": "unit-h2"}, headers=admin
    )
    assert weak.status_code == 422
    malformed = client.post(
        "/api/v1/accounts/unit-h2/password",
        data="{not json",
        content_type="application/json",
        headers=admin,
    )
    assert malformed.status_code == 400 and _code(malformed) == "malformed_json"
    anonymous = client.post("/api/v1/accounts/unit-h2/password", json=body)
    assert anonymous.status_code == 401


def test_admin_deactivates_and_reactivates_an_account(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    admin = org.headers("admin")
    victim = _token(client, "judge")
    response = client.post(
        "/api/v1/accounts/judge/deactivate", json={"reason": "评委已调离"}, headers=admin
    )
    assert response.status_code == 200 and response.json["is_active"] is False
    assert client.get("/api/v1/auth/me", headers=_bearer(victim)).status_code == 401
    refused = _login(client, "judge")
    assert refused.status_code == 403 and _code(refused) == "account_inactive"
    wrong = _login(client, "judge", "not-the-password", ip="10.0.0.5")
    assert wrong.status_code == 401 and _code(wrong) == "invalid_credentials"
    listed = client.get("/api/v1/accounts", headers=admin).json["items"]
    assert {a["username"]: a["is_active"] for a in listed}["judge"] is False
    again = client.post("/api/v1/accounts/judge/deactivate", json={"reason": "x"}, headers=admin)
    assert again.status_code == 409 and _code(again) == "already_inactive"

    back = client.post("/api/v1/accounts/judge/activate", json={}, headers=admin)
    assert back.status_code == 200 and back.json["is_active"] is True
    assert client.get("/api/v1/auth/me", headers=_bearer(victim)).status_code == 401
    assert _login(client, "judge", ip="10.0.0.6").status_code == 200
    twice = client.post("/api/v1/accounts/judge/activate", json={}, headers=admin)
    assert twice.status_code == 409 and _code(twice) == "already_active"

    (off,) = _audit(app, "account.deactivate")
    (on,) = _audit(app, "account.activate")
    assert off.actor_name == on.actor_name == "admin"
    assert off.object_id == on.object_id == str(org.accounts["judge"])
    assert off.reason == "评委已调离"
    assert off.before["is_active"] is True and off.after["is_active"] is False


def test_deactivation_refusals(client: FlaskClient, org: Org) -> None:
    admin = org.headers("admin")
    own = client.post("/api/v1/accounts/admin/deactivate", json={"reason": "误操作"}, headers=admin)
    assert own.status_code == 409 and _code(own) == "cannot_deactivate_self"
    assert client.get("/api/v1/auth/me", headers=admin).status_code == 200
    for body in ({}, {"reason": ""}):
        invalid = client.post("/api/v1/accounts/judge/deactivate", json=body, headers=admin)
        assert invalid.status_code == 422, body
    blank = client.post("/api/v1/accounts/judge/deactivate", json={"reason": "  "}, headers=admin)
    assert blank.status_code == 422 and _code(blank) == "reason_required"
    missing = client.post("/api/v1/accounts/ghost/activate", json={}, headers=admin)
    assert missing.status_code == 404 and _code(missing) == "account_not_found"
    reviewer = client.post(
        "/api/v1/accounts/judge/deactivate", json={"reason": "x"}, headers=org.headers("rev-c")
    )
    assert reviewer.status_code == 403


def test_another_admin_can_be_deactivated_but_not_oneself(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    second = _admin_token(app)
    response = client.post(
        "/api/v1/accounts/admin/deactivate", json={"reason": "离职"}, headers=second
    )
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=org.headers("admin")).status_code == 401


# --- throttling --------------------------------------------------------------------------------


def _parallel_logins(app: Flask, attempts: list[tuple[str, str, str]]) -> list[tuple[int, str]]:
    barrier = threading.Barrier(len(attempts))
    results: list[Any] = [None] * len(attempts)

    def run(index: int, username: str, password: str, ip: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = _login(client, username, password, ip)
        results[index] = (response.status_code, response.json["error"]["code"])

    threads = [
        threading.Thread(target=run, args=(i, *attempt)) for i, attempt in enumerate(attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_forty_parallel_guesses_check_at_most_the_limit(app: Flask, org: Org) -> None:
    results = _parallel_logins(app, [("admin", f"guess-{i}", "10.3.3.3") for i in range(40)])
    checked = [r for r in results if r[0] == 401]
    assert len(checked) == app.config["LOGIN_SLOW_AFTER"]
    assert all(r[0] == 429 and r[1] == "login_throttled" for r in results if r[0] != 401)


def test_forty_parallel_names_from_one_address_check_at_most_its_limit(
    app: Flask, org: Org
) -> None:
    results = _parallel_logins(app, [(f"name-{i}", "guess", "10.4.4.4") for i in range(40)])
    checked = [r for r in results if r[0] == 401]
    limit = app.config.get("LOGIN_IP_SLOW_AFTER", LOGIN_IP_DEFAULTS["LOGIN_IP_SLOW_AFTER"])
    assert len(checked) == limit
    assert {r[1] for r in results if r[0] != 401} == {"login_throttled"}


def test_a_guesser_elsewhere_cannot_lock_the_real_user_out(
    make_app: Callable[..., Flask], org: Org
) -> None:
    # No slow-down, a quick lock: the guesser at A gets the account locked at A at once.
    app = make_app(LOGIN_SLOW_AFTER=100, LOGIN_LOCK_AFTER=3, LOGIN_IP_SLOW_AFTER=100)
    client = app.test_client()
    for _ in range(3):
        assert _login(client, "admin", "guess", ip="10.8.8.8").status_code == 401
    locked = _login(client, "admin", PASSWORD, ip="10.8.8.8")
    assert locked.status_code == 429 and _code(locked) == "login_locked"
    assert locked.json["error"]["details"]["scope"] == "account"
    assert int(locked.headers["Retry-After"]) > 0
    assert _login(client, "admin", PASSWORD, ip="10.1.2.3").status_code == 200
    # More guesses from A change nothing for B.
    for _ in range(5):
        assert _login(client, "admin", "guess", ip="10.8.8.8").status_code == 429
    assert _login(client, "admin", PASSWORD, ip="10.1.2.3").status_code == 200


def test_an_address_is_locked_after_its_own_limit(make_app: Callable[..., Flask], org: Org) -> None:
    app = make_app(LOGIN_IP_SLOW_AFTER=100, LOGIN_IP_LOCK_AFTER=4)
    client = app.test_client()
    for i in range(4):
        assert _login(client, f"spray-{i}", "guess", ip="10.5.5.5").status_code == 401
    locked = _login(client, "unit-h1", PASSWORD, ip="10.5.5.5")
    assert locked.status_code == 429 and _code(locked) == "login_locked"
    assert locked.json["error"]["details"]["scope"] == "address"
    assert _login(client, "unit-h1", PASSWORD, ip="10.5.5.6").status_code == 200


# --- the change-password page ------------------------------------------------------------------


def test_change_password_page_for_any_staff(client: FlaskClient, org: Org) -> None:
    assert client.get("/account/password").status_code == 302
    staff_login(client, "unit-h1")
    csrf = page_csrf(client, "/account/password")
    old = client.get_cookie("zm_staff").value  # type: ignore[union-attr]
    form = {"current_password": "wrong-one!", "new_password": NEW_PASSWORD}
    wrong = client.post(
        "/account/password", data={**form, "new_password_again": NEW_PASSWORD, "csrf_token": csrf}
    )
    assert wrong.status_code == 403 and "当前密码不正确" in wrong.get_data(as_text=True)
    mismatch = client.post(
        "/account/password",
        data={**form, "current_password": PASSWORD, "new_password_again": "x", "csrf_token": csrf},
    )
    assert mismatch.status_code == 422 and "不一致" in mismatch.get_data(as_text=True)
    no_csrf = client.post("/account/password", data={**form, "current_password": PASSWORD})
    assert no_csrf.status_code == 403
    done = client.post(
        "/account/password",
        data={
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "new_password_again": NEW_PASSWORD,
            "csrf_token": csrf,
        },
    )
    assert done.status_code == 200 and "密码已修改" in done.get_data(as_text=True)
    assert client.get("/portal").status_code == 200
    assert client.get("/api/v1/auth/me", headers=_bearer(old)).status_code == 401
