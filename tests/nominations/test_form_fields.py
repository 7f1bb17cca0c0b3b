"""Campaign-defined form fields (推荐表 填报项): the definition and its checks, the values on
nominations (types, limits, unknown keys, required at submit), the lock after a submission, and
what the public sees."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from tests.factories import Org, nomination_body
from tests.pages.browser import staff_login

URL = "/api/v1/campaigns/c1/form-fields"
FIELDS: list[dict[str, Any]] = [
    {"key": "birth_month", "label": "出生年月", "type": "date", "required": True},
    {
        "key": "ethnicity",
        "label": "民族",
        "type": "choice",
        "options": ["汉族", "蒙古族", "回族"],
        "public": True,
    },
    {"key": "politics", "label": "政治面貌", "type": "choice", "options": ["中共党员", "群众"]},
    {"key": "rank", "label": "职称", "type": "text", "max_length": 10, "public": True},
    {"key": "years", "label": "从业年限", "type": "integer", "min_value": 0, "max_value": 60},
    {"key": "phone", "label": "联系电话", "type": "phone", "required": True},
    {"key": "honours", "label": "荣誉及获奖情况", "type": "long_text", "max_length": 50},
]


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.json
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def _define(client: FlaskClient, org: Org, items: list[dict[str, Any]] = FIELDS) -> Any:
    return client.put(URL, json={"fields": items}, headers=org.headers("admin"))


def _birth() -> str:
    return (utcnow() - timedelta(days=365 * 40)).date().isoformat()


def _complete() -> dict[str, Any]:
    return {"birth_month": _birth(), "ethnicity": "汉族", "phone": "13800138000", "rank": "主任"}


def test_the_definition_is_set_read_and_audited(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    body = _ok(_define(client, org))
    assert [f["key"] for f in body["fields"]] == [f["key"] for f in FIELDS]
    assert body["locked"] is False
    honours = body["fields"][-1]
    assert honours["max_length"] == 50 and honours["type_label"] == "长文本"
    # Defaults fill the limits left out.
    plain = _ok(_define(client, org, [{"key": "note", "label": "备注", "type": "text"}]))
    assert plain["fields"][0]["max_length"] == 60 and plain["fields"][0]["public"] is False
    numbers = [{"key": "n", "label": "数", "type": "integer"}]
    assert _ok(_define(client, org, numbers))["fields"][0]["max_value"] == 100
    # Clerks and reviewers read it; only the committee sets it.
    assert _ok(client.get(URL, headers=org.headers("unit-h1")))["fields"][0]["key"] == "n"
    _refused(client.put(URL, json={"fields": []}, headers=org.headers("unit-h1")), 403, "forbidden")
    _refused(client.put(URL, json={"fields": []}, headers=org.headers("rev-c")), 403, "forbidden")
    with app.app_context():
        assert db.session.query(AuditLog).filter_by(action="form_fields.set").count() == 3


def test_a_phone_can_never_be_public(client: FlaskClient, org: Org) -> None:
    org.campaign()
    item = {"key": "phone", "label": "联系电话", "type": "phone", "public": True}
    error = _refused(_define(client, org, [item]), 422, "phone_not_public")
    assert error["details"]["fields"] == {"fields.0.public": ["联系电话不能设为公开"]}
    assert _ok(client.get(URL, headers=org.headers("admin")))["fields"] == []


def test_malformed_definitions_are_refused(client: FlaskClient, org: Org) -> None:
    org.campaign()
    cases = [
        ([{"key": "Bad-Key", "label": "x", "type": "text"}], "invalid_field_key"),
        ([{"key": "name", "label": "姓名", "type": "text"}], "invalid_field_key"),
        (
            [
                {"key": "a", "label": "甲", "type": "text"},
                {"key": "a", "label": "乙", "type": "text"},
            ],
            "duplicate_field_key",
        ),
        ([{"key": "a", "label": "  ", "type": "text"}], "invalid_field_label"),
        ([{"key": "a", "label": "甲", "type": "text", "max_length": 201}], "invalid_field_limit"),
        (
            [{"key": "a", "label": "甲", "type": "integer", "min_value": 5, "max_value": 1}],
            "invalid_field_limit",
        ),
        (
            [{"key": "a", "label": "甲", "type": "choice", "options": ["一"]}],
            "invalid_field_options",
        ),
        (
            [{"key": "a", "label": "甲", "type": "choice", "options": ["一", "一"]}],
            "invalid_field_options",
        ),
        ([{"key": f"k{i}", "label": "甲", "type": "text"} for i in range(31)], "too_many_fields"),
    ]
    for items, code in cases:
        _refused(_define(client, org, items), 422, code)
    bad_type = _define(client, org, [{"key": "a", "label": "甲", "type": "file"}])
    assert bad_type.status_code == 422
    assert _ok(client.get(URL, headers=org.headers("admin")))["fields"] == []


def test_values_are_checked_by_type_and_limit(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    clerk = org.headers("unit-h1")
    url = "/api/v1/campaigns/c1/nominations"
    future = (utcnow() + timedelta(days=3)).date().isoformat()
    bad = {
        "birth_month": future,
        "ethnicity": "火星族",
        "rank": "一" * 11,
        "years": 61,
        "phone": "12345",
        "honours": "事" * 51,
        "politics": 3,
        "shoe_size": 42,
    }
    error = _refused(
        client.post(url, json=nomination_body(extra=bad), headers=clerk), 422, "invalid_extra"
    )
    assert error["details"]["fields"] == {
        "extra.birth_month": ["出生年月应在 1900-01-01 至今天之间"],
        "extra.ethnicity": ["民族请从给定选项中选择"],
        "extra.rank": ["职称最多 10 个字"],
        "extra.years": ["从业年限应在 0–60 之间"],
        "extra.phone": ["联系电话应为手机号码或带区号的固定电话"],
        "extra.honours": ["荣誉及获奖情况最多 50 个字"],
        "extra.politics": ["政治面貌格式有误"],
        "extra.shoe_size": ["本活动没有这个填报项"],
    }
    for value, message in (
        ("1980-13-01", "出生年月应为日期，如 1980-05-01"),
        (19800501, "出生年月格式有误"),
    ):
        error = _refused(
            client.post(url, json=nomination_body(extra={"birth_month": value}), headers=clerk),
            422,
            "invalid_extra",
        )
        assert error["details"]["fields"] == {"extra.birth_month": [message]}
    assert client.post(url, json=nomination_body(extra=["x"]), headers=clerk).status_code == 422
    good = {**_complete(), "years": 20, "phone": "0471-1234567", "honours": "全国\r\n三八红旗手"}
    made = _ok(client.post(url, json=nomination_body(extra=good), headers=clerk), 201)
    assert made["extra"]["phone"] == "0471-1234567"
    assert made["extra"]["honours"] == "全国\n三八红旗手"
    # An update merges; an empty value clears a field; an unknown key is refused.
    nid = made["id"]
    patched = _ok(
        client.patch(
            f"/api/v1/nominations/{nid}",
            json={"extra": {"years": None, "politics": "群众"}},
            headers=clerk,
        )
    )
    assert "years" not in patched["extra"] and patched["extra"]["politics"] == "群众"
    assert patched["extra"]["ethnicity"] == "汉族"
    _refused(
        client.patch(f"/api/v1/nominations/{nid}", json={"extra": {"x": 1}}, headers=clerk),
        422,
        "invalid_extra",
    )


def test_required_fields_are_checked_at_submit_not_on_drafts(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    clerk = org.headers("unit-h1")
    made = _ok(
        client.post(
            "/api/v1/campaigns/c1/nominations",
            json=nomination_body(extra={"ethnicity": "回族"}),
            headers=clerk,
        ),
        201,
    )
    nid = made["id"]
    error = _refused(
        client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk), 422, "extra_required"
    )
    assert error["details"]["fields"] == {
        "extra.birth_month": ["请填写出生年月"],
        "extra.phone": ["请填写联系电话"],
    }
    assert org.status_of(nid) == "draft"
    _ok(client.patch(f"/api/v1/nominations/{nid}", json={"extra": _complete()}, headers=clerk))
    assert (
        _ok(client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk))["status"]
        == "submitted"
    )


def test_another_units_nomination_stays_out_of_reach(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    nid = org.nomination(extra=_complete())
    other = org.headers("unit-h2")
    response = client.patch(
        f"/api/v1/nominations/{nid}", json={"extra": {"ethnicity": "回族"}}, headers=other
    )
    _refused(response, 404, "nomination_not_found")
    mine = _ok(client.get(f"/api/v1/nominations/{nid}", headers=org.headers("unit-h1")))
    assert mine["extra"]["ethnicity"] == "汉族"


def test_the_definition_locks_after_a_submission(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    org.nomination(status="submitted", extra={**_complete(), "rank": "主任护师", "years": 30})
    assert _ok(client.get(URL, headers=org.headers("admin")))["locked"] is True

    def changed(key: str, **values: Any) -> list[dict[str, Any]]:
        return [{**f, **values} if f["key"] == key else f for f in FIELDS]

    refused = [
        [f for f in FIELDS if f["key"] != "honours"],  # removed
        changed("years", type="text"),  # type changed
        changed("honours", required=True),  # newly required
        [*FIELDS, {"key": "new", "label": "新", "type": "text", "required": True}],
        changed("rank", max_length=3),  # the stored 主任护师 no longer fits
        changed("years", max_value=20),  # the stored 30 no longer fits
        changed("ethnicity", options=["蒙古族", "回族"]),  # 汉族 is in use
    ]
    for items in refused:
        _refused(_define(client, org, items), 409, "form_fields_locked")
    # Labels, limits that still fit and new optional fields are fine.
    allowed = [
        *changed("rank", label="专业技术职称", max_length=4),
        {"key": "new", "label": "新", "type": "text"},
    ]
    body = _ok(_define(client, org, allowed))
    assert body["fields"][3]["label"] == "专业技术职称" and len(body["fields"]) == len(FIELDS) + 1


def test_the_public_sees_only_public_fields(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    org.nomination(status="approved", extra={**_complete(), "politics": "中共党员", "years": 12})
    number = "D001"
    detail = _ok(client.get(f"/api/v1/campaigns/c1/nominees/{number}"))
    assert detail["extra"] == [
        {"key": "ethnicity", "label": "民族", "value": "汉族"},
        {"key": "rank", "label": "职称", "value": "主任"},
    ]
    text = str(detail)
    assert "13800138000" not in text and "中共党员" not in text
    # The H5 nominee page shows the same public fields, and nothing else of them.
    page = client.get(f"/c/c1/n/{number}").get_data(as_text=True)
    assert 'data-testid="extra-fields"' in page
    assert "<dt>民族</dt><dd>汉族</dd>" in page and "<dt>职称</dt><dd>主任</dd>" in page
    assert "13800138000" not in page and "中共党员" not in page
    # Making a field public (labels and the public flag may change after submissions) reaches
    # the cached public pages at once.
    public_politics = [{**f, "public": True} if f["key"] == "politics" else f for f in FIELDS]
    _ok(_define(client, org, public_politics))
    page = client.get(f"/c/c1/n/{number}").get_data(as_text=True)
    assert "<dt>政治面貌</dt><dd>中共党员</dd>" in page
    # Staff see every value, the phone included.
    listed = _ok(client.get("/api/v1/campaigns/c1/nominations", headers=org.headers("admin")))
    staff = _ok(
        client.get(f"/api/v1/nominations/{listed['items'][0]['id']}", headers=org.headers("admin"))
    )
    assert staff["extra"]["phone"] == "13800138000"


def test_the_portal_form_shows_the_campaigns_own_fields(client: FlaskClient, org: Org) -> None:
    org.campaign()
    _ok(_define(client, org))
    nid = org.nomination(extra={**_complete(), "honours": "省级优秀护士"})
    staff_login(client, "unit-h1")
    html = client.get(f"/portal/nominations/{nid}").get_data(as_text=True)
    assert '<fieldset id="extra" name="extra"' in html
    assert re.search(
        r'<input id="extra.birth_month" name="extra.birth_month" type="date" value="[0-9-]{10}"',
        html,
    )
    assert re.search(
        r'<input id="extra.phone" name="extra.phone" type="tel"'
        r'[^>]*value="13800138000"[^>]*data-required="1"',
        html,
    )
    assert '<option value="汉族" selected>汉族</option>' in html
    assert re.search(r'<input id="extra.years"[^>]*data-min="0" data-max="60"', html)
    assert re.search(
        r'<textarea id="extra.honours"[^>]*data-max-length="50"[^>]*>省级优秀护士</textarea>', html
    )
    assert 'id="extra.phone-error"' in html
    assert f'href="/console/campaigns/c1/nominations/{nid}/dossier" id="print-dossier"' in html
    # A campaign without its own fields keeps the group out of sight.
    org.campaign("c2")
    plain = client.get("/portal/c/c2/new").get_data(as_text=True)
    assert re.search(r'data-field="extra" hidden', plain) and 'name="extra.' not in plain
