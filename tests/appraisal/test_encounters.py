"""Encounters in: files (.xlsx, CSV) and the API, validated row by row; who may send them;
phones encrypted at rest and masked in every answer."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from appraisal import uploads
from appraisal.models import Encounter, Invitation, Upload
from core.audit import AuditLog
from core.extensions import db
from tests.appraisal.conftest import BASE, csv_bytes, days_ago, today, xlsx_bytes
from tests.factories import Org

HEADER = ["手机号", "就诊日期", "科室", "工作人员", "工号"]


def _upload(
    client: FlaskClient, org: Org, data: bytes, name: str, user: str = "unit-h1", query: str = ""
) -> Any:
    return client.post(
        f"{BASE}/programmes/pj/uploads{query}",
        data={"file": (io.BytesIO(data), name)},
        headers=org.headers(user),
        content_type="multipart/form-data",
    )


def _rows() -> list[list[Any]]:
    future = today().toordinal() + 2  # two: the test may cross midnight
    return [
        HEADER,
        ["13812341234", days_ago(1), "内科", "王医生", "D001"],  # 2: good
        ["1381234", days_ago(1), "内科", None, None],  # 3: bad phone
        ["13912345678", date.fromordinal(future).isoformat(), "外科"],  # 4
        ["+86 139-1234-5679", days_ago(2), "外科", None, None],  # 5: good (normalised)
        ["13812341234", days_ago(1), "内科", None, None],  # 6: duplicate of row 2
        ["13700001111", "昨天", "儿科"],  # 7: bad date
        ["13700002222", days_ago(1), ""],  # 8: no department
        [None, None, None],  # blank: skipped
        ["13700003333", days_ago(400), "儿科"],  # 10: past the retention
    ]


def _check_report(body: dict[str, Any]) -> None:
    assert body["rows_total"] == 8
    assert body["rows_accepted"] == 2
    refused = {r["row"]: r["code"] for r in body["refused"]}
    assert refused == {
        3: "bad_phone",
        4: "future_date",
        6: "duplicate_in_file",
        7: "bad_date",
        8: "missing_department",
        10: "too_old",
    }
    assert all(r["message"] for r in body["refused"])
    assert "1381234" not in str(body)


def test_an_excel_file_is_checked_row_by_row(
    client: FlaskClient, org: Org, programme: str, app: Flask
) -> None:
    response = _upload(client, org, xlsx_bytes(_rows()), "week.xlsx")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["kind"] == "xlsx"
    _check_report(body)
    # The report is kept, for the unit and the bureau; never for another unit.
    again = client.get(
        f"{BASE}/programmes/pj/uploads/{body['upload_id']}", headers=org.headers("unit-h1")
    )
    assert again.get_json() == body
    assert (
        client.get(
            f"{BASE}/programmes/pj/uploads/{body['upload_id']}", headers=org.headers("rev-k1")
        ).status_code
        == 200
    )
    assert (
        client.get(
            f"{BASE}/programmes/pj/uploads/{body['upload_id']}", headers=org.headers("unit-h2")
        ).status_code
        == 404
    )
    with app.app_context():
        encounters = list(db.session.scalars(select(Encounter).order_by(Encounter.id)))
        assert [e.phone_masked for e in encounters] == ["138****1234", "139****5679"]
        assert encounters[0].staff_name == "王医生" and encounters[0].staff_number == "D001"
        invitations = list(db.session.scalars(select(Invitation)))
        assert {i.status for i in invitations} == {"queued"}
        # Nothing in the tables holds a whole number.
        for query in ("SELECT * FROM appraisal_encounters", "SELECT * FROM appraisal_uploads"):
            dump = str(db.session.execute(text(query)).all())
            assert "13812341234" not in dump and "13912345679" not in dump
        assert db.session.scalar(select(Upload.rows_accepted)) == 2


def test_a_csv_in_utf8_or_gbk_is_read_the_same(
    client: FlaskClient, org: Org, programme: str
) -> None:
    rows = _rows()
    response = _upload(client, org, csv_bytes(rows), "week.csv")
    assert response.status_code == 201
    body = response.get_json()
    assert body["kind"] == "csv"
    _check_report(body)
    # The same visits again (Excel's GBK CSV): each is a duplicate of the first upload now.
    again = _upload(client, org, csv_bytes(rows, "gb18030"), "week-gbk.csv").get_json()
    assert again["rows_accepted"] == 0
    assert {r["row"]: r["code"] for r in again["refused"]}[2] == "duplicate"
    assert {r["row"]: r["code"] for r in again["refused"]}[5] == "duplicate"


def test_the_file_type_is_told_by_content(client: FlaskClient, org: Org, programme: str) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    old_xls = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hi")
    for data, name in ((png, "week.csv"), (old_xls, "week.xlsx"), (buffer.getvalue(), "a.xlsx")):
        response = _upload(client, org, data, name)
        assert response.status_code == 422, name
        assert response.get_json()["error"]["code"] == "wrong_file_type"
    # An Excel file named .csv is read as Excel.
    good = xlsx_bytes([HEADER, ["13812341234", days_ago(1), "内科"]])
    assert _upload(client, org, good, "week.csv").get_json()["kind"] == "xlsx"


def test_whole_files_refused(client: FlaskClient, org: Org, programme: str, app: Flask) -> None:
    missing = _upload(
        client, org, csv_bytes([["手机号", "科室"], ["13812341234", "内科"]]), "a.csv"
    )
    assert missing.status_code == 422
    assert missing.get_json()["error"]["code"] == "missing_columns"
    assert missing.get_json()["error"]["details"]["missing"] == ["date"]
    old = app.config["APPRAISAL_UPLOAD_MAX_ROWS"]
    app.config["APPRAISAL_UPLOAD_MAX_ROWS"] = 3
    try:
        rows = [HEADER] + [[f"1381234{n:04d}", days_ago(1), "内科"] for n in range(4)]
        too_many = _upload(client, org, csv_bytes(rows), "a.csv")
        exactly = _upload(client, org, csv_bytes(rows[:4]), "b.csv")
    finally:
        app.config["APPRAISAL_UPLOAD_MAX_ROWS"] = old
    assert too_many.status_code == 422
    assert too_many.get_json()["error"]["code"] == "too_many_rows"
    assert exactly.status_code == 201 and exactly.get_json()["rows_accepted"] == 3
    empty = client.post(
        f"{BASE}/programmes/pj/uploads",
        data=b"",
        headers={**org.headers("unit-h1"), "Content-Type": "application/octet-stream"},
    )
    assert empty.status_code == 422


def test_who_may_send_encounters(
    client: FlaskClient, org: Org, programme: str, register: Callable[..., Any]
) -> None:
    row = [{"phone": "13812341234", "date": days_ago(1), "department": "内科"}]
    for user, status in (("judge", 403), ("unit-h3", 403)):  # H3 is under K2, not K1
        response = client.post(
            f"{BASE}/programmes/pj/encounters",
            json={"encounters": row},
            headers=org.headers(user),
        )
        assert response.status_code == status, user
    # A clerk names only their own unit.
    other = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"unit_code": "H2", "encounters": row},
        headers=org.headers("unit-h1"),
    )
    assert other.get_json()["error"]["code"] == "not_own_unit"
    # The bureau names a unit; K2's reviewer does not run this programme.
    ok = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"unit_code": "H2", "encounters": row},
        headers=org.headers("rev-k1"),
    )
    assert ok.status_code == 201
    foreign = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"unit_code": "H2", "encounters": row},
        headers=org.headers("rev-k2"),
    )
    assert foreign.status_code == 403
    assert (
        client.post(f"{BASE}/programmes/pj/encounters", json={"encounters": row}).status_code == 401
    )


def test_the_api_registers_and_lists_masked(
    client: FlaskClient, org: Org, programme: str, register: Callable[..., Any], app: Flask
) -> None:
    body = register(
        [
            {"phone": "13812341234", "date": days_ago(0), "department": "内科", "staff_name": "王"},
            {"phone": "12345", "date": days_ago(0), "department": "内科"},
            {"phone": "13812341234", "date": days_ago(0), "department": "内科"},
        ]
    )
    assert body["rows_accepted"] == 1
    assert [(r["row"], r["code"]) for r in body["refused"]] == [
        (2, "bad_phone"),
        (3, "duplicate_in_file"),
    ]
    listing = client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("unit-h1"))
    item = listing.get_json()["items"][0]
    assert item["phone"] == "138****1234" and item["invitation_status"] == "queued"
    assert "13812341234" not in listing.get_data(as_text=True)
    # Another unit sees none of them; the bureau sees all.
    assert (
        client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("unit-h2")).get_json()[
            "total"
        ]
        == 0
    )
    assert (
        client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("rev-k1")).get_json()[
            "total"
        ]
        == 1
    )
    malformed = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"encounters": [{"phone": "13812341234"}]},
        headers=org.headers("unit-h1"),
    )
    assert malformed.status_code == 422
    old = app.config["APPRAISAL_API_MAX_ROWS"]
    app.config["APPRAISAL_API_MAX_ROWS"] = 2
    try:
        register(
            [{"phone": "13812341234", "date": days_ago(0), "department": "外科"}] * 3,
            status=422,
        )
    finally:
        app.config["APPRAISAL_API_MAX_ROWS"] = old


def test_programmes_belong_to_their_bureau(client: FlaskClient, org: Org, programme: str) -> None:
    body = {"code": "pj2", "title": "另一个评议", "bureau_code": "K1"}
    assert (
        client.post(f"{BASE}/programmes", json=body, headers=org.headers("rev-k2")).status_code
        == 403
    )
    assert (
        client.post(f"{BASE}/programmes", json=body, headers=org.headers("unit-h1")).status_code
        == 403
    )
    inst = {**body, "bureau_code": "H1"}
    assert (
        client.post(f"{BASE}/programmes", json=inst, headers=org.headers("admin")).status_code
        == 422
    )
    assert (
        client.post(f"{BASE}/programmes", json=body, headers=org.headers("rev-k1")).status_code
        == 201
    )
    dup = client.post(f"{BASE}/programmes", json=body, headers=org.headers("rev-k1"))
    assert dup.status_code == 409
    seen = client.get(f"{BASE}/programmes", headers=org.headers("unit-h1")).get_json()["items"]
    assert {p["code"] for p in seen} == {"pj", "pj2"}
    assert (
        client.get(f"{BASE}/programmes", headers=org.headers("unit-h3")).get_json()["items"] == []
    )
    closed = client.patch(
        f"{BASE}/programmes/pj", json={"status": "closed"}, headers=org.headers("rev-k2")
    )
    assert closed.status_code == 403
    assert (
        client.patch(
            f"{BASE}/programmes/pj", json={"status": "closed"}, headers=org.headers("rev-k1")
        ).status_code
        == 200
    )
    refused = client.post(
        f"{BASE}/programmes/pj/encounters",
        json={"encounters": [{"phone": "13812341234", "date": days_ago(1), "department": "内科"}]},
        headers=org.headers("unit-h1"),
    )
    assert refused.get_json()["error"]["code"] == "programme_closed"


def test_the_export_never_holds_a_whole_number(
    client: FlaskClient, org: Org, programme: str, register: Callable[..., Any]
) -> None:
    register(
        [
            {"phone": "13812341234", "date": days_ago(1), "department": "内科", "staff_name": "王"},
            {"phone": "13998765432", "date": days_ago(2), "department": "外科"},
        ]
    )
    response = client.get(f"{BASE}/programmes/pj/encounters.csv", headers=org.headers("unit-h1"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.get_data(as_text=True)
    assert "138****1234" in body and "139****5432" in body and "待发送" in body
    assert "13812341234" not in body and "13998765432" not in body
    other = client.get(f"{BASE}/programmes/pj/encounters.csv", headers=org.headers("unit-h2"))
    assert other.status_code == 200 and other.get_data(as_text=True).count("\n") == 1
    assert (
        client.get(f"{BASE}/programmes/pj/encounters.csv", headers=org.headers("judge")).status_code
        == 403
    )


def test_a_workbook_that_unpacks_too_far_is_refused(
    client: FlaskClient, org: Org, programme: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(uploads, "MAX_UNPACKED", 1024)
    rows = [HEADER] + [[f"1381234{n:04d}", days_ago(1), "内科" * 20] for n in range(50)]
    response = _upload(client, org, xlsx_bytes(rows), "big.xlsx")
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "file_too_large"


def test_uploads_are_audited_without_numbers(
    client: FlaskClient, org: Org, programme: str, app: Flask
) -> None:
    rows = [HEADER, ["13812341234", days_ago(1), "内科"], ["12", days_ago(1), "内科"]]
    assert _upload(client, org, csv_bytes(rows), "a.csv").status_code == 201
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "appraisal.upload"))
        assert entry is not None and entry.actor_name == "unit-h1"
        assert entry.after == {"unit": "H1", "rows": 2, "accepted": 1}
        assert "13812341234" not in str(entry.after)
        db.session.remove()
