"""Objections with an attachment are capped per address and local day."""

from __future__ import annotations

import base64
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from tests.awards.test_reopen import _published_with_adjustments
from tests.factories import Org

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


def _objection(client: FlaskClient, attachment: bool, address: str = "198.51.100.7"):  # type: ignore[no-untyped-def]
    body = {"contact_name": "王先生", "contact_phone": "13800000000", "text": "对公示结果有异议"}
    if attachment:
        body["attachment"] = f"data:image/png;base64,{PNG}"
    return client.post(
        "/api/v1/campaigns/v1/objections",
        json=body,
        environ_base={"REMOTE_ADDR": address},
    )


def test_attachments_per_address_per_day_are_capped(
    app: Flask, client: FlaskClient, org: Org, make_app: Callable[..., Flask]
) -> None:
    _published_with_adjustments(app, client, org)
    capped = make_app(OBJECTION_ATTACHMENTS_PER_IP_PER_DAY=2).test_client()
    for _ in range(2):
        assert _objection(capped, True).status_code == 201
    refused = _objection(capped, True)
    assert refused.status_code == 429, refused.json
    error = refused.json["error"]
    assert error["code"] == "objection_quota_exhausted" and "明天" in error["message"]
    assert error["details"]["limit"] == 2
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    # Without an attachment the objection is still heard; another address has its own quota.
    assert _objection(capped, False).status_code == 201
    assert _objection(capped, True, address="198.51.100.8").status_code == 201
