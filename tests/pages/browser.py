"""Helpers for page tests with Flask's test client: a CSRF token as a page hands it out, and a
staff login through the login form (the cookie path, not a bearer header)."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from tests.factories import PASSWORD

_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


def csrf_from(html: str) -> str:
    match = _META.search(html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


def page_csrf(client: FlaskClient, path: str = "/portal/login") -> str:
    """Open a page as a browser would and read the CSRF token it embeds."""
    response = client.get(path)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 302:
        response = client.get(response.headers["Location"])
    return csrf_from(response.get_data(as_text=True))


def staff_login(client: FlaskClient, username: str, area: str = "portal") -> str:
    """Log in through the form; returns a fresh CSRF token for the logged-in session."""
    token = page_csrf(client, f"/{area}/login")
    response = client.post(
        f"/{area}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert client.get_cookie("zm_staff") is not None
    return page_csrf(client, f"/{area}/login")
