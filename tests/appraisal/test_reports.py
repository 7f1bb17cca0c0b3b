"""Reports (item 4 of #19): the arithmetic on a seeded month with known numbers, walk-ins apart,
overdue cases, ranking, month boundaries in the programme's zone, access rules, the 通报 xlsx."""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from sqlalchemy import select

from appraisal import reports
from appraisal.models import Case, Encounter, Invitation, Programme, Rating
from campaigns import services as campaign_services
from campaigns.models import Unit
from core import clock
from core.audit import AuditLog
from core.extensions import db
from tests.appraisal.conftest import BASE, ZONE
from tests.factories import Org, counted


@dataclass
class Seeded:
    month: str  # the previous month, YYYY-MM in the programme's zone
    start: datetime  # its first moment (UTC)
    end: datetime  # the next month's first moment (UTC)


def _encounter(programme: Programme, unit: Unit, when: datetime) -> Encounter:
    encounter = Encounter(
        programme_id=programme.id,
        unit_id=unit.id,
        source="api",
        phone_masked="138****1234",
        encounter_date=when.date(),
        department="内科",
        link_nonce=secrets.token_hex(8),
        purge_after=when + timedelta(days=90),
    )
    db.session.add(encounter)
    db.session.flush()
    return encounter


def _invite(
    programme: Programme, unit: Unit, sent: datetime, delivery: str | None, answer: str | None
) -> None:
    encounter = _encounter(programme, unit, sent)
    db.session.add(
        Invitation(
            encounter_id=encounter.id,
            programme_id=programme.id,
            status="sent",
            sent_at=sent,
            delivery=delivery,
        )
    )
    if answer:
        _rate(programme, unit, sent + timedelta(minutes=30), answer, encounter=encounter)


def _rate(
    programme: Programme,
    unit: Unit,
    when: datetime,
    choice: str,
    kind: str = "invited",
    encounter: Encounter | None = None,
) -> Rating:
    rating = Rating(
        programme_id=programme.id,
        unit_id=unit.id,
        encounter_id=encounter.id if encounter else None,
        kind=kind,
        choice=choice,
        created_at=when,
    )
    db.session.add(rating)
    db.session.flush()
    return rating


def _case(
    programme: Programme,
    unit: Unit,
    opened: datetime,
    deadline: datetime,
    closed: datetime | None = None,
) -> None:
    rating = _rate(programme, unit, opened - timedelta(days=70), "dissatisfied")
    db.session.add(
        Case(
            programme_id=programme.id,
            unit_id=unit.id,
            rating_id=rating.id,
            status="closed" if closed else "open",
            deadline_at=deadline,
            closed_at=closed,
            created_at=opened,
        )
    )


def seed(app: Flask, code: str = "pj") -> Seeded:
    """Last month, in Asia/Shanghai: H1 10 sent / 8 delivered / 6 of them answered and one
    answer without a receipt (7 answers: 4 满意, 2 基本满意, 1 不满意), 3 walk-ins (2 满意,
    1 不满意), cases 3 opened / 3 closed / 2 overdue; H2 4 sent, none delivered, no answer;
    H4 (made here) 14 answers (8, 4, 2): the same rate as H1 with more answers."""
    with app.app_context():
        programme = db.session.scalar(select(Programme).where(Programme.code == code))
        assert programme is not None
        last = reports.current_month(programme).shift(-1)
        start, end = last.bounds(programme)
        h1 = campaign_services.get_unit("H1")
        h2 = campaign_services.get_unit("H2")
        h4 = campaign_services.create_unit("H4", "单位H4", "institution", "K1")
        inside = start + timedelta(days=2)
        # H1: 8 delivered (6 answered), 2 undelivered; one answer without a receipt counted in
        # answers but not in the response rate. One invitation just before the month.
        for answer in ("satisfied",) * 4 + ("basic", "dissatisfied"):
            _invite(programme, h1, inside, "delivered", answer)
        for _ in range(2):
            _invite(programme, h1, inside, "delivered", None)
        _invite(programme, h1, start, "undelivered", None)  # the very first moment: counted
        _invite(programme, h1, end - timedelta(hours=2), None, "basic")  # answered in the month
        _invite(programme, h1, start - timedelta(seconds=1), "delivered", None)  # last month
        _rate(programme, h1, end, "dissatisfied")  # the next month's first moment
        _rate(programme, h1, start - timedelta(seconds=1), "dissatisfied")
        for choice in ("satisfied", "satisfied", "dissatisfied"):
            _rate(programme, h1, inside, choice, kind="walk_in")
        now = clock.utcnow()
        _case(programme, h1, inside, now - timedelta(days=1))  # open, overdue
        _case(
            programme, h1, inside, inside + timedelta(days=1), closed=inside + timedelta(days=3)
        )  # closed late
        _case(programme, h1, inside, now + timedelta(days=9), closed=inside + timedelta(hours=5))
        _case(
            programme,
            h1,
            start - timedelta(days=3),
            now + timedelta(days=9),
            closed=inside + timedelta(days=1),
        )  # opened the month before, closed in this one
        _invite(programme, h2, inside, "undelivered", None)
        _invite(programme, h2, inside, "undelivered", None)
        _invite(programme, h2, inside, None, None)
        _invite(programme, h2, inside, None, None)
        for choice in ("satisfied",) * 8 + ("basic",) * 4 + ("dissatisfied",) * 2:
            _rate(programme, h4, inside, choice)
        db.session.commit()
        db.session.remove()
    return Seeded(month=last.label, start=start, end=end)


def _get(client: FlaskClient, org: Org, url: str, user: str = "rev-k1", status: int = 200) -> Any:
    response = client.get(url, headers=org.headers(user))
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_json()


def test_the_month_per_unit(client: FlaskClient, org: Org, app: Flask, programme: str) -> None:
    seeded = seed(app)
    body = _get(client, org, f"{BASE}/programmes/pj/reports?month={seeded.month}")
    assert body["month"] == seeded.month and body["timezone"] == "Asia/Shanghai"
    rows = {r["unit_code"]: r for r in body["units"]}
    assert [r["unit_code"] for r in body["units"]] == ["H4", "H1", "H2"]  # K2's H3 not there
    h1 = rows["H1"]
    assert (h1["sent"], h1["delivered"], h1["responded"]) == (10, 8, 6)
    assert (h1["answers"], h1["satisfied"], h1["basic"], h1["dissatisfied"]) == (7, 4, 2, 1)
    assert h1["delivery_rate"] == 0.8 and h1["response_rate"] == 0.75
    assert h1["satisfaction_rate"] == round(6 / 7, 4) and h1["satisfied_rate"] == round(4 / 7, 4)
    assert (h1["walk_in_answers"], h1["walk_in_satisfied"], h1["walk_in_dissatisfied"]) == (3, 2, 1)
    assert h1["walk_in_satisfaction_rate"] == round(2 / 3, 4)
    assert (h1["cases_opened"], h1["cases_closed"], h1["cases_overdue"]) == (3, 3, 2)
    assert h1["rank"] == 2
    h2 = rows["H2"]
    assert (h2["sent"], h2["delivered"], h2["answers"]) == (4, 0, 0)
    assert h2["delivery_rate"] == 0.0
    assert h2["response_rate"] is None and h2["satisfaction_rate"] is None
    assert h2["satisfied_rate"] is None and h2["walk_in_satisfaction_rate"] is None
    assert h2["rank"] is None
    h4 = rows["H4"]
    assert h4["satisfaction_rate"] == h1["satisfaction_rate"] and h4["answers"] == 14
    assert h4["rank"] == 1 and h4["sent"] == 0 and h4["response_rate"] is None
    total = body["total"]
    assert (total["sent"], total["delivered"], total["answers"]) == (14, 8, 21)
    assert total["satisfaction_rate"] == round(18 / 21, 4)
    assert total["walk_in_answers"] == 3 and total["cases_overdue"] == 2


def test_month_boundaries_follow_the_programme_zone(
    client: FlaskClient, org: Org, app: Flask, programme: str
) -> None:
    seeded = seed(app)
    # The month starts at local midnight: 16:00 UTC the day before, in Asia/Shanghai.
    assert seeded.start.astimezone(UTC).hour == 16
    assert seeded.start.astimezone(ZONE).day == 1 and seeded.start.astimezone(UTC).day != 1
    year, month = (int(part) for part in seeded.month.split("-"))
    previous = reports.Month(year, month).shift(-1).label
    body = _get(client, org, f"{BASE}/programmes/pj/reports?month={previous}")
    h1 = next(r for r in body["units"] if r["unit_code"] == "H1")
    # The invitation and the answer a second before the month, and the case opened before it.
    assert (h1["sent"], h1["delivered"], h1["answers"], h1["dissatisfied"]) == (1, 1, 1, 1)
    assert h1["cases_opened"] == 1 and h1["cases_closed"] == 0 and h1["cases_overdue"] == 0
    # This month (the default): the answer at its very first moment.
    this_month = _get(client, org, f"{BASE}/programmes/pj/reports")
    assert this_month["month"] == seeded.end.astimezone(ZONE).strftime("%Y-%m")
    h1_now = next(r for r in this_month["units"] if r["unit_code"] == "H1")
    assert (h1_now["answers"], h1_now["dissatisfied"], h1_now["sent"]) == (1, 1, 0)


def test_trend_per_unit(client: FlaskClient, org: Org, app: Flask, programme: str) -> None:
    seeded = seed(app)
    body = _get(client, org, f"{BASE}/programmes/pj/reports/trend?unit=H1&months=3")
    assert body["unit_code"] == "H1" and len(body["months"]) == 3
    labels = [p["month"] for p in body["months"]]
    assert labels[1] == seeded.month and labels == sorted(labels)
    point = body["months"][1]
    assert (point["sent"], point["answers"], point["satisfaction_rate"]) == (10, 7, round(6 / 7, 4))
    everyone = _get(client, org, f"{BASE}/programmes/pj/reports/trend")
    assert len(everyone["months"]) == 6 and everyone["unit_code"] is None
    assert everyone["months"][-2]["answers"] == 21
    mine = _get(client, org, f"{BASE}/programmes/pj/reports/trend?months=3", user="unit-h2")
    assert mine["months"][1]["sent"] == 4 and mine["months"][1]["answers"] == 0
    assert mine["months"][1]["satisfaction_rate"] is None
    for bad in ("months=0", "months=25", "months=x"):
        _get(client, org, f"{BASE}/programmes/pj/reports/trend?{bad}", status=422)


def test_who_sees_what(client: FlaskClient, org: Org, app: Flask, programme: str) -> None:
    seeded = seed(app)
    url = f"{BASE}/programmes/pj/reports?month={seeded.month}"
    own = _get(client, org, url, user="unit-h1")
    assert [r["unit_code"] for r in own["units"]] == ["H1"] and own["total"]["answers"] == 7
    assert len(_get(client, org, url, user="rev-c")["units"]) == 3
    assert len(_get(client, org, url, user="admin")["units"]) == 3
    assert _get(client, org, url, user="unit-h3", status=403)["error"]["code"] == (
        "unit_not_in_programme"
    )
    assert _get(client, org, url, user="rev-k2", status=403)["error"]["code"] == (
        "not_programme_bureau"
    )
    _get(client, org, url, user="judge", status=403)
    assert client.get(url).status_code == 401
    _get(client, org, f"{BASE}/programmes/nope/reports", status=404)
    trend = f"{BASE}/programmes/pj/reports/trend"
    assert _get(client, org, f"{trend}?unit=H2", user="unit-h1", status=403)["error"]["code"] == (
        "not_own_unit"
    )
    assert _get(client, org, f"{trend}?unit=H3", status=403)["error"]["code"] == (
        "unit_not_in_programme"
    )
    _get(client, org, f"{trend}?unit=NOPE", status=404)
    for bad in ("2024-13", "24-01", "x", "2024-1"):
        body = _get(client, org, f"{BASE}/programmes/pj/reports?month={bad}", status=422)
        assert body["error"]["code"] == "bad_month"
    _get(client, org, f"{BASE}/programmes/pj/reports/2024-13.xlsx", status=422)
    _get(client, org, f"{BASE}/programmes/pj/reports/{seeded.month}.xlsx", "unit-h3", 403)


def test_a_constant_number_of_queries(
    client: FlaskClient, org: Org, app: Flask, programme: str
) -> None:
    seeded = seed(app)
    url = f"{BASE}/programmes/pj/reports?month={seeded.month}"

    def statements() -> int:
        with app.app_context(), counted() as seen:
            _get(client, org, url)
        return len(seen)

    few = statements()
    with app.app_context():
        for n in range(6):
            campaign_services.create_unit(f"HX{n}", f"新单位{n}", "institution", "K1")
        db.session.commit()
    assert statements() == few
    assert len(_get(client, org, url)["units"]) == 9


def test_the_bulletin_workbook(client: FlaskClient, org: Org, app: Flask, programme: str) -> None:
    seeded = seed(app)
    response = client.get(
        f"{BASE}/programmes/pj/reports/{seeded.month}.xlsx", headers=org.headers("rev-k1")
    )
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    assert sheet.freeze_panes == "C2"
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = rows[0]
    assert list(header[:4]) == ["名次", "单位", "发送邀请", "送达"]
    assert "满意率（满意+基本满意）" in header and "现场评价数" in header and "逾期" in header
    assert [r[1] for r in rows[1:]] == ["单位H4", "单位H1", "单位H2", "合计"]
    column = header.index("满意率（满意+基本满意）")
    assert rows[2][column] == round(6 / 7, 4)
    assert rows[3][column] == "—" and rows[3][0] is None
    assert rows[2][header.index("逾期")] == 2
    phone = re.compile(r"1\d{10}|\d{3}\*{4}\d{4}")
    assert not any(phone.search(str(v)) for row in rows for v in row if v is not None)
    mine = client.get(
        f"{BASE}/programmes/pj/reports/{seeded.month}.xlsx", headers=org.headers("unit-h2")
    )
    names = [r[1] for r in load_workbook(io.BytesIO(mine.data)).active.iter_rows(values_only=True)]
    assert names == ["单位", "单位H2", "合计"]
    with app.app_context():
        exports = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "appraisal.report.export")
        ).all()
        assert len(exports) == 2


def test_month_arithmetic() -> None:
    december = reports.Month(1999, 12)
    assert december.shift(1) == reports.Month(2000, 1) and december.shift(-12).year == 1998
    assert reports.Month(2000, 1).shift(-1) == december and december.label == "1999-12"
    assert reports.rate(1, 0) is None and reports.rate(0, 3) == 0.0
