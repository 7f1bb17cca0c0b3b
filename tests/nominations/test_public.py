"""What the public sees of nominees: approved only, searchable, nothing private."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.factories import Org


def test_public_list_search_filter_and_paging(client: FlaskClient, org: Org) -> None:
    org.campaign(max_per_unit=5)
    org.nomination(status="approved", name="张丽华")
    org.nomination(status="approved", name="王建国", category="nurse")
    org.nomination(status="approved", name="张小明")
    org.nomination(status="submitted", name="张未审")
    org.nomination(status="draft", name="张草稿")

    everything = client.get("/api/v1/campaigns/c1/nominees").json
    assert [n["number"] for n in everything["items"]] == ["D001", "D002", "N001"]
    assert everything["total"] == 3

    by_name = client.get("/api/v1/campaigns/c1/nominees", query_string={"q": "张"}).json
    assert {n["name"] for n in by_name["items"]} == {"张丽华", "张小明"}
    by_number = client.get("/api/v1/campaigns/c1/nominees", query_string={"q": "n001"}).json
    assert [n["name"] for n in by_number["items"]] == ["王建国"]
    wildcard = client.get("/api/v1/campaigns/c1/nominees", query_string={"q": "%"}).json
    assert wildcard["total"] == 0

    nurses = client.get("/api/v1/campaigns/c1/nominees", query_string={"category": "nurse"}).json
    assert [n["number"] for n in nurses["items"]] == ["N001"]
    unknown = client.get("/api/v1/campaigns/c1/nominees", query_string={"category": "x"})
    assert unknown.status_code == 404

    page2 = client.get(
        "/api/v1/campaigns/c1/nominees", query_string={"per_page": 2, "page": 2}
    ).json
    assert [n["number"] for n in page2["items"]] == ["N001"] and page2["total"] == 3
    too_many = client.get("/api/v1/campaigns/c1/nominees", query_string={"per_page": 1000})
    assert too_many.status_code == 422


def test_public_detail_never_leaks_private_fields(client: FlaskClient, org: Org) -> None:
    org.campaign()
    org.nomination(status="approved")
    detail = client.get("/api/v1/campaigns/c1/nominees/d001")
    assert detail.status_code == 200
    body = detail.json
    assert body["number"] == "D001" and body["unit"] == "单位H1"
    assert body["deeds"].startswith("扎根基层")
    for private in ("id", "status", "reviews", "unit_code", "created_by", "recommended"):
        assert private not in body
    text = detail.get_data(as_text=True)
    assert "unit-h1" not in text


def test_unapproved_and_unknown_nominees_are_404(client: FlaskClient, org: Org) -> None:
    org.campaign()
    org.nomination(status="submitted")
    response = client.get("/api/v1/campaigns/c1/nominees/D001")
    assert response.status_code == 404 and response.json["error"]["code"] == "nominee_not_found"
    assert client.get("/api/v1/campaigns/nope/nominees").status_code == 404
