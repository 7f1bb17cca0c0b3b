"""Who may touch which nomination: wrong roles, other units, other sub-trees, mass assignment."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import Org, nomination_body


def test_unit_cannot_see_or_touch_another_units_nomination(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(unit_user="unit-h1", status="submitted")
    other = org.headers("unit-h2")
    for method, url, body in (
        ("get", f"/api/v1/nominations/{nid}", None),
        ("patch", f"/api/v1/nominations/{nid}", {"name": "篡改"}),
        ("post", f"/api/v1/nominations/{nid}/submit", None),
        ("post", f"/api/v1/nominations/{nid}/withdraw", {}),
    ):
        response = getattr(client, method)(url, json=body, headers=other)
        assert response.status_code == 404, (method, url)
        assert response.json["error"]["code"] == "nomination_not_found"
    # The same 404 as for an id that does not exist: existence does not leak.
    foreign = client.get(f"/api/v1/nominations/{nid}", headers=other).json["error"]
    missing = client.get("/api/v1/nominations/999999", headers=other).json["error"]
    foreign.pop("request_id")
    missing.pop("request_id")
    assert foreign == missing
    assert org.status_of(nid) == "submitted"
    listed = client.get("/api/v1/campaigns/c1/nominations", headers=other).json
    assert listed["total"] == 0


def test_unit_cannot_nominate_for_another_unit(client: FlaskClient, org: Org) -> None:
    org.campaign()
    response = client.post(
        "/api/v1/campaigns/c1/nominations",
        json=nomination_body(unit_code="H2"),
        headers=org.headers("unit-h1"),
    )
    assert response.status_code == 403 and response.json["error"]["code"] == "foreign_unit"


def test_reviewer_outside_the_subtree_gets_404(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(unit_user="unit-h1", status="submitted")  # H1 is under K1
    response = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("rev-k2"),
    )
    assert response.status_code == 404
    assert org.status_of(nid) == "submitted"
    # The city reviewer above K1 sees it.
    assert client.get(f"/api/v1/nominations/{nid}", headers=org.headers("rev-c")).status_code == 200
    k2 = client.get("/api/v1/campaigns/c1/nominations", headers=org.headers("rev-k2")).json
    assert k2["total"] == 0
    k1 = client.get("/api/v1/campaigns/c1/nominations", headers=org.headers("rev-k1")).json
    assert k1["total"] == 1


def test_reviewers_do_not_see_drafts(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="draft")
    assert (
        client.get(f"/api/v1/nominations/{nid}", headers=org.headers("rev-k1")).status_code == 404
    )


def test_reviewer_cannot_edit_and_unit_cannot_review(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    review = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("unit-h1"),
    )
    assert review.status_code == 403
    returned = org.nomination(status="returned")
    edit = client.patch(
        f"/api/v1/nominations/{returned}", json={"name": "x"}, headers=org.headers("rev-k1")
    )
    assert edit.status_code == 403


def test_judge_and_public_are_kept_out_of_staff_endpoints(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    judge = org.headers("judge")
    for method, url, body in (
        ("get", "/api/v1/campaigns/c1/nominations", None),
        ("get", f"/api/v1/nominations/{nid}", None),
        ("post", f"/api/v1/nominations/{nid}/review", {"decision": "approve"}),
        ("post", "/api/v1/campaigns/c1/nominations", nomination_body()),
        ("get", "/api/v1/accounts", None),
    ):
        as_judge = getattr(client, method)(url, json=body, headers=judge)
        assert as_judge.status_code == 403, url
        anonymous = getattr(client, method)(url, json=body)
        assert anonymous.status_code == 401, url
        assert anonymous.json["error"]["code"] == "unauthorized"


def test_mass_assignment_of_status_or_number_is_refused(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="draft")
    clerk = org.headers("unit-h1")
    for field, value in (("status", "approved"), ("number", "D999"), ("unit_id", 3), ("id", 7)):
        response = client.patch(f"/api/v1/nominations/{nid}", json={field: value}, headers=clerk)
        assert response.status_code == 422, field
        assert field in response.json["error"]["details"]["fields"]
    body = client.get(f"/api/v1/nominations/{nid}", headers=clerk).json
    assert body["status"] == "draft" and body["number"] is None


def test_returned_nomination_cannot_change_category(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="returned")
    response = client.patch(
        f"/api/v1/nominations/{nid}", json={"category": "nurse"}, headers=org.headers("unit-h1")
    )
    assert response.status_code == 409 and response.json["error"]["code"] == "category_locked"
