"""The public pages read through the services in batches: the console's campaign list (for each
role), the review queue and the unit portal's list take as many SQL statements with three
campaigns full of nominations as with one campaign of a few."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org, counted
from tests.nominations.test_counts import mixed_campaign
from tests.pages.browser import staff_login


def _statements(app: Flask, client: FlaskClient, path: str) -> int:
    with app.app_context():
        with counted() as seen:
            response = client.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return len(seen)


def _page_counts(app: Flask, client: FlaskClient, slug: str) -> dict[str, int]:
    """Statements per page and viewer; ``slug`` is the campaign whose queue is read."""
    counts: dict[str, int] = {}
    for username in ("admin", "rev-k1", "judge"):
        staff_login(client, username, area="console")
        counts[f"console index ({username})"] = _statements(app, client, "/console")
        if username != "judge":
            for view in ("todo", "all"):
                path = f"/console/c/{slug}/review?status={view}"
                counts[f"review {view} ({username})"] = _statements(app, client, path)
    staff_login(client, "unit-h1")
    counts["portal index (unit-h1)"] = _statements(app, client, "/portal")
    staff_login(client, "admin")
    counts["portal index (admin)"] = _statements(app, client, "/portal?unit=H1")
    return counts


def test_the_lists_read_as_many_statements_for_many_campaigns_as_for_one(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    mixed_campaign(app, org, "small", ("unit-h1",), "nominating")
    small = _page_counts(app, client, "small")
    mixed_campaign(app, org, "large", ("unit-h1", "unit-h2", "unit-h3"), "nominating")
    mixed_campaign(app, org, "later", ("unit-h1", "unit-h2", "unit-h3"), "reviewing")
    org.campaign("draft", phase="draft")
    large = _page_counts(app, client, "large")
    assert small == large, (small, large)
    # A small constant, not a count per campaign or nomination.
    assert all(count <= 12 for count in large.values()), large
