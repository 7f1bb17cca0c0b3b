"""Bad text and numbers are refused with the error envelope on every route, never a 500; and
production does not start with /metrics open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from core import clock, create_app
from core.config import ConfigError
from tests.factories import Org, campaign_body, nomination_body

HUGE = "1" * 5000  # past Python's 4,300-digit limit for int()


def _post(client: FlaskClient, url: str, raw: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(url, data=raw, content_type="application/json", headers=headers or {})


def _routes(org: Org) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """(url, a valid body, headers) for login, nomination create and vote."""
    numbers = org.voting_campaign()
    org.campaign("n1")
    return [
        ("/api/v1/auth/login", {"username": "unit-h1", "password": "x" * 12}, {}),
        ("/api/v1/campaigns/n1/nominations", nomination_body(), org.headers("unit-h1")),
        ("/api/v1/campaigns/v1/votes", {"nominee": numbers[0]}, org.voter(1)),
    ]


def test_a_lone_surrogate_is_422_on_every_route(client: FlaskClient, org: Org) -> None:
    for url, body, headers in _routes(org):
        field = next(iter(body))
        bad = json.dumps({**body, field: "名\ud800字"})  # travels escaped, as \\ud800
        assert "\\ud800" in bad
        answer = _post(client, url, bad, headers)
        assert answer.status_code == 422, (url, answer.get_data(as_text=True))
        error = answer.json["error"]
        assert error["code"] == "validation_error" and set(error["details"]["fields"]) == {field}
        assert "字符" in error["message"]


def test_a_lone_surrogate_in_a_nested_value_or_a_key_is_422(client: FlaskClient, org: Org) -> None:
    org.campaign("n1")
    admin = org.headers("admin")
    nested = client.patch(
        "/api/v1/campaigns/n1",
        data='{"rules": {"fraud": {"a\\udfff": {"k": 1}}}}',
        content_type="application/json",
        headers=admin,
    )
    assert nested.status_code == 422 and set(nested.json["error"]["details"]["fields"]) == {"rules"}
    key = client.patch(
        "/api/v1/campaigns/n1",
        data='{"\\ud83d": 1}',
        content_type="application/json",
        headers=admin,
    )
    assert key.status_code == 422 and key.json["error"]["details"]["fields"] == {
        "\ufffd": ["包含无效的字符（单独的代理项）"]
    }
    # A proper pair (an emoji) is text: accepted.
    fine = client.patch(
        "/api/v1/campaigns/n1",
        data='{"title": "最美\\ud83d\\ude00"}',
        content_type="application/json",
        headers=admin,
    )
    assert fine.status_code == 200 and fine.json["title"] == "最美😀"


def test_a_huge_integer_is_400_malformed_json_on_every_route(client: FlaskClient, org: Org) -> None:
    for url, body, headers in _routes(org):
        field = next(iter(body))
        raw = json.dumps(body).replace(json.dumps(body[field]), HUGE, 1)
        answer = _post(client, url, raw, headers)
        assert answer.status_code == 400, (url, answer.get_data(as_text=True))
        error = answer.json["error"]
        assert error["code"] == "malformed_json" and error["message"] == "请求体不是合法的 JSON"
        assert "4300" in error["details"]["reason"]
    # A long number that is not an integer literal is still a number: the schema judges it.
    floaty = _post(client, "/api/v1/auth/login", '{"username": 1e999, "password": "x"}')
    assert floaty.status_code == 422


@pytest.mark.parametrize(
    "raw",
    [b"{bad", b'{"username": "a"', b'{"username": "\xff\xfe"}', b"[" * 50_000 + b"]" * 50_000],
)
def test_malformed_bodies_are_400_malformed_json(client: FlaskClient, raw: bytes) -> None:
    answer = client.post("/api/v1/auth/login", data=raw, content_type="application/json")
    assert answer.status_code == 400
    assert answer.json["error"]["code"] == "malformed_json"
    assert answer.json["error"]["details"]["reason"]


def test_the_limits_leave_ordinary_bodies_alone(client: FlaskClient, org: Org) -> None:
    org.campaign("n1")
    created = client.post(
        "/api/v1/campaigns/n1/nominations",
        json=nomination_body(name="张三\U0001f600", years_of_service=25),
        headers=org.headers("unit-h1"),
    )
    assert created.status_code == 201, created.json


# --- production refuses an open /metrics ---------------------------------------------------------


@pytest.fixture
def production_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moved = clock.offset_seconds()
    clock.set_offset(0)  # production refuses a moved clock
    monkeypatch.setenv("ZUIMEI_ENV", "production")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@127.0.0.1/db")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    yield
    clock.set_offset(moved)


def test_production_refuses_to_start_without_a_metrics_token(
    production_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ZUIMEI_METRICS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="ZUIMEI_METRICS_TOKEN"):
        create_app({"INSTANCE_PATH": str(tmp_path)})
    monkeypatch.setenv("ZUIMEI_METRICS_TOKEN", "")
    with pytest.raises(ConfigError, match="ZUIMEI_METRICS_TOKEN"):
        create_app({"INSTANCE_PATH": str(tmp_path)})


def test_production_with_a_metrics_token_guards_metrics(
    production_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ZUIMEI_METRICS_TOKEN", "0123456789")  # digits: kept as text
    app = create_app({"INSTANCE_PATH": str(tmp_path)})
    assert app.config["METRICS_TOKEN"] == "0123456789"


def test_item_errors_of_a_list_come_back_keyed_as_text(client: FlaskClient, org: Org) -> None:
    """Found by tests/fuzz: a list whose items fail (keyed by index, an int) beside other
    errors made the error envelope unencodable (a 500)."""
    body = campaign_body("00", timezone="Asia/Shanghai", publicity_days=7)
    regions = ["0", 0, "00", False, "0" * 40, None, "0" * 39, [None, None]] * 15 + ["0", 0]
    body["rules"] = {**body.get("rules", {}), "regions": regions, "hide_counts_from": "2000-01-01"}
    answer = client.post("/api/v1/campaigns", json=body, headers=org.headers("admin"))
    assert answer.status_code == 422, answer.get_data(as_text=True)
    regions = answer.json["error"]["details"]["fields"]["rules"]["regions"]
    assert all(isinstance(key, str) for key in regions)
