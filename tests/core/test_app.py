"""The API shell: one error shape, probes, OpenAPI, request ids."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import Org


def test_healthz_answers_without_touching_services(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_unreachable(make_app: Callable[..., Flask]) -> None:
    broken = make_app(REDIS_URL="redis://127.0.0.1:1/0")
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["checks"]["redis"] == "unavailable"
    assert response.json["checks"]["database"] == "ok"


def test_unknown_path_is_404_in_the_error_shape(client: FlaskClient) -> None:
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"
    assert response.json["error"]["message"]
    assert response.headers["X-Request-ID"] == response.json["error"]["request_id"]


def test_wrong_method_is_405_with_allow(client: FlaskClient) -> None:
    response = client.delete("/api/v1/auth/login")
    assert response.status_code == 405
    assert response.json["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]


def test_malformed_json_is_400_malformed_json(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json["error"]["code"] == "malformed_json"


def test_wrong_content_type_is_415(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/login", data="username=a&password=b", content_type="text/plain"
    )
    assert response.status_code == 415
    assert response.json["error"]["code"] == "unsupported_media_type"


def test_validation_error_lists_fields(client: FlaskClient) -> None:
    response = client.post("/api/v1/auth/login", json={"username": "x"})
    assert response.status_code == 422
    assert response.json["error"]["code"] == "validation_error"
    assert "password" in response.json["error"]["details"]["fields"]


def test_oversized_body_is_413(client: FlaskClient) -> None:
    response = client.post(
        "/api/v1/auth/login",
        data='{"username": "' + "x" * (3 * 1024 * 1024) + '"}',
        content_type="application/json",
    )
    assert response.status_code == 413
    assert response.json["error"]["code"] == "payload_too_large"


def test_unexpected_exception_is_500_without_traceback(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    fresh = make_app(TESTING=False)

    @fresh.get("/boom-for-test")
    def boom() -> None:
        raise RuntimeError("secret internals")

    response = fresh.test_client().get("/boom-for-test", headers={"X-Request-ID": "req-12345678"})
    assert response.status_code == 500
    body = response.json["error"]
    assert body["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)
    assert body["request_id"] == "req-12345678"
    assert any("req-12345678" in record.getMessage() for record in caplog.records)


def test_openapi_lists_every_api_route_with_schemas(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/"):
            continue
        path = re.sub(r"<(?:\w+(?:\([^)]*\))?:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    login = spec["paths"]["/api/v1/auth/login"]["post"]
    assert "requestBody" in login
    assert "200" in login["responses"]
    assert "ErrorEnvelope" in str(spec["components"]["schemas"].keys())


def test_docs_page_and_its_assets_are_served_locally(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert "/api/docs/assets/swagger-ui-bundle.js" in page.get_data(as_text=True)
    asset = client.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


def test_nul_characters_and_absurd_nesting_are_refused_up_front(
    client: FlaskClient, org: Org
) -> None:
    """PostgreSQL text cannot hold a NUL character (the driver raised: 500) and json raised
    RecursionError on absurdly nested bodies (500): both are refused before any view runs, on
    SQLite alike."""
    org.campaign("n1")
    admin = org.headers("admin")
    assert client.get("/api/v1/campaigns/n1\x00").status_code == 404
    query = client.get("/api/v1/campaigns/n1/nominees", query_string={"q": "李\x00"})
    assert query.status_code == 422
    assert query.json["error"]["details"]["fields"] == {"q": ["不能包含空字符"]}
    body = client.patch("/api/v1/campaigns/n1", json={"title": "标题\x00"}, headers=admin)
    assert body.status_code == 422 and set(body.json["error"]["details"]["fields"]) == {"title"}
    fine = client.patch("/api/v1/campaigns/n1", json={"title": "标题"}, headers=admin)
    assert fine.status_code == 200
    deep = client.post(
        "/api/v1/units",
        data="[" * 100_000 + "]" * 100_000,
        content_type="application/json",
        headers=admin,
    )
    assert deep.status_code == 400 and deep.json["error"]["code"] == "malformed_json"


def test_ids_outside_the_database_range_are_404_for_every_method(
    client: FlaskClient, org: Org
) -> None:
    """Found by tests/fuzz: PATCH /nominations/0 answered 405 (werkzeug had seen the GET rule of
    the path before the id converter refused the value)."""
    admin = org.headers("admin")
    for path in (
        "/api/v1/nominations/0",
        "/api/v1/nominations/2147483648",
        "/api/v1/nominations/07",
    ):
        assert client.get(path, headers=admin).status_code == 404, path
        assert client.patch(path, json={"name": "x"}, headers=admin).status_code == 404, path
