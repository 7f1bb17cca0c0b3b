"""The console's accounts page and the change-password page: who sees them, what they show, and
that the page script's API calls (cookie plus CSRF header) take access back."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org
from tests.pages.browser import csrf_from, staff_login


def test_admins_see_every_account_with_its_state(client: FlaskClient, org: Org) -> None:
    assert client.get("/console/accounts").headers["Location"].startswith("/console/login")
    staff_login(client, "admin", area="console")
    page = client.get("/console/accounts")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-username="unit-h1"' in html and "启用" in html
    assert "console_accounts.js" in html
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"]
    assert "<script>" not in html and "style=" not in html


def test_other_roles_are_refused(client: FlaskClient, org: Org) -> None:
    staff_login(client, "rev-k1", area="console")
    assert client.get("/console/accounts").status_code == 403


def test_the_page_scripts_calls_deactivate_and_the_page_shows_it(
    client: FlaskClient, make_app: Callable[..., Flask], org: Org
) -> None:
    staff_login(client, "admin", area="console")
    victim = make_app().test_client()
    staff_login(victim, "unit-h2")
    assert victim.get("/portal").status_code == 200
    csrf = csrf_from(client.get("/console/accounts").get_data(as_text=True))
    response = client.post(
        "/api/v1/accounts/unit-h2/deactivate",
        json={"reason": "离岗"},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 200
    html = client.get("/console/accounts").get_data(as_text=True)
    row = html[html.index('data-username="unit-h2"') :]
    assert "已停用" in row[: row.index("</tr>")]
    assert victim.get("/portal").status_code == 302  # back to the login page


def test_change_password_page_opens_for_every_role(client: FlaskClient, org: Org) -> None:
    for username, area in (("unit-h1", "portal"), ("judge", "console")):
        staff_login(client, username, area=area)
        page = client.get("/account/password")
        assert page.status_code == 200, username
        assert "修改密码" in page.get_data(as_text=True)
        client.post("/logout", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
