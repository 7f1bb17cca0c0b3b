"""Staff sessions on the pages: login form, cookie flags, CSRF on cookie-authenticated writes,
role checks, open redirects, and the security headers every page carries."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import PASSWORD, Org
from tests.pages.browser import page_csrf, staff_login


def test_login_sets_a_strict_httponly_cookie_and_lands_by_role(
    client: FlaskClient, org: Org
) -> None:
    token = page_csrf(client, "/portal/login")
    response = client.post(
        "/portal/login", data={"username": "unit-h1", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/portal"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("zm_staff="))
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert client.get("/portal").status_code == 200


def test_cookies_are_secure_in_production_settings(make_app, org: Org) -> None:  # type: ignore[no-untyped-def]
    app = make_app(COOKIE_SECURE=True)
    client = app.test_client()
    token = page_csrf(client, "/console/login")
    response = client.post(
        "/console/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}
    )
    assert all("Secure" in c for c in response.headers.getlist("Set-Cookie"))


def test_wrong_password_shows_a_chinese_error_and_sets_nothing(
    client: FlaskClient, org: Org
) -> None:
    token = page_csrf(client, "/portal/login")
    response = client.post(
        "/portal/login", data={"username": "unit-h1", "password": "nope", "csrf_token": token}
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.get_data(as_text=True)
    assert client.get_cookie("zm_staff") is None


def test_login_without_csrf_is_refused(client: FlaskClient, org: Org) -> None:
    client.get("/portal/login")
    response = client.post("/portal/login", data={"username": "unit-h1", "password": PASSWORD})
    assert response.status_code == 403
    assert "页面已过期" in response.get_data(as_text=True)
    assert client.get_cookie("zm_staff") is None


def test_cookie_auth_reads_freely_but_writes_need_the_csrf_header(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    token = staff_login(client, "unit-h1")
    assert client.get("/api/v1/auth/me").status_code == 200
    body = {
        "category": "doctor",
        "name": "王医生",
        "gender": "male",
        "title": "主治医师",
        "department": "内科",
        "summary": "简介",
        "deeds": "事迹" * 20,
        "unit_opinion": "同意",
    }
    refused = client.post("/api/v1/campaigns/c1/nominations", json=body)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "csrf_failed"
    forged = client.post(
        "/api/v1/campaigns/c1/nominations", json=body, headers={"X-CSRF-Token": "0" * 64}
    )
    assert forged.status_code == 403
    made = client.post(
        "/api/v1/campaigns/c1/nominations", json=body, headers={"X-CSRF-Token": token}
    )
    assert made.status_code == 201, made.json


def test_bearer_clients_need_no_csrf(client: FlaskClient, org: Org) -> None:
    org.campaign()
    response = client.post(
        "/api/v1/campaigns/c1/phase",
        json={"phase": "reviewing"},
        headers=org.headers("admin"),
    )
    assert response.status_code == 200


def test_pages_redirect_to_login_and_refuse_other_roles(client: FlaskClient, org: Org) -> None:
    response = client.get("/console")
    assert response.status_code == 302
    assert response.headers["Location"] == "/console/login?next=/console"
    staff_login(client, "unit-h1")
    denied = client.get("/console")
    assert denied.status_code == 403
    assert "不对您的账号开放" in denied.get_data(as_text=True)


def test_next_never_leaves_the_site(client: FlaskClient, org: Org) -> None:
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example", "/a b"):
        token = page_csrf(client, "/portal/login")
        response = client.post(
            "/portal/login",
            data={"username": "unit-h1", "password": PASSWORD, "csrf_token": token, "next": evil},
        )
        assert response.headers["Location"] == "/portal", evil


def test_logout_needs_csrf_and_clears_the_cookie(client: FlaskClient, org: Org) -> None:
    token = staff_login(client, "admin", area="console")
    assert client.post("/logout").status_code == 403
    assert client.get_cookie("zm_staff") is not None
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert client.get_cookie("zm_staff") is None
    assert client.get("/api/v1/auth/me").status_code == 401


def test_pages_carry_a_strict_content_security_policy(client: FlaskClient, org: Org) -> None:
    response = client.get("/portal/login")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_versioned_assets_are_cached_for_a_year(client: FlaskClient) -> None:
    html = client.get("/portal/login").get_data(as_text=True)
    start = html.index("/assets/zm.js?v=")
    url = html[start : html.index('"', start)]
    response = client.get(url)
    assert response.status_code == 200
    assert "max-age=31536000" in response.headers["Cache-Control"]
    response.close()
    stale = client.get("/assets/zm.js?v=0000000000")
    assert stale.status_code == 200 and "max-age=300" in stale.headers["Cache-Control"]
    stale.close()
    assert client.get("/assets/../core/config.py").status_code == 404
