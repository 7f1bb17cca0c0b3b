"""Fixtures of the appraisal tests: a programme of county K1 (units H1, H2) and helpers."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient
from openpyxl import Workbook

from core import clock
from tests.factories import Org

BASE = "/api/v1/appraisal"
ZONE = ZoneInfo("Asia/Shanghai")
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def today() -> date:
    return clock.utcnow().astimezone(ZONE).date()


def days_ago(n: int) -> str:
    return (today() - timedelta(days=n)).isoformat()


def csv_bytes(rows: list[list[Any]], encoding: str = "utf-8") -> bytes:
    lines = [",".join("" if v is None else str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode(encoding)


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def form_csrf(html: str) -> str:
    match = _CSRF_FIELD.search(html)
    assert match, "the page has no csrf_token field"
    return match.group(1)


@pytest.fixture
def programme(client: FlaskClient, org: Org) -> str:
    response = client.post(
        f"{BASE}/programmes",
        json={"code": "pj", "title": "青山县群众满意度评议", "bureau_code": "K1"},
        headers=org.headers("admin"),
    )
    assert response.status_code == 201, response.get_json()
    return "pj"


@pytest.fixture
def register(client: FlaskClient, org: Org, programme: str) -> Callable[..., Any]:
    """Register encounters through the API as a unit clerk; returns the JSON answer."""

    def send(rows: list[dict[str, Any]], user: str = "unit-h1", status: int = 201) -> Any:
        response = client.post(
            f"{BASE}/programmes/{programme}/encounters",
            json={"encounters": rows},
            headers=org.headers(user),
        )
        assert response.status_code == status, response.get_json()
        return response.get_json()

    return send
