"""When a programme names a campaign, the staff member an encounter or answer names is matched
to that campaign's approved nominee of the same unit (by name, only when unambiguous)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from appraisal import services
from appraisal.models import Encounter, Rating
from core.extensions import db
from nominations.models import Nomination
from tests.appraisal.conftest import BASE, days_ago, form_csrf
from tests.factories import Org


def test_staff_are_matched_to_the_campaigns_approved_nominees(
    client: FlaskClient, org: Org, app: Flask, programme: str, register: Callable[..., Any]
) -> None:
    org.campaign("c1")
    approved = org.nomination("c1", "unit-h1", status="approved", name="李晓梅")
    org.nomination("c1", "unit-h1", status="submitted", name="赵强")
    org.nomination("c1", "unit-h2", status="approved", name="王芳")
    unknown = client.patch(
        f"{BASE}/programmes/pj", json={"campaign_slug": "nope"}, headers=org.headers("rev-k1")
    )
    assert unknown.status_code == 404
    linked = client.patch(
        f"{BASE}/programmes/pj", json={"campaign_slug": "c1"}, headers=org.headers("rev-k1")
    )
    assert linked.status_code == 200 and linked.get_json()["campaign_id"]
    register(
        [
            {
                "phone": "13812341234",
                "date": days_ago(1),
                "department": "急诊科",
                "staff_name": "李晓梅",
            },
            {
                "phone": "13812341235",
                "date": days_ago(1),
                "department": "内科",
                "staff_name": "赵强",
            },  # not approved
            {
                "phone": "13812341236",
                "date": days_ago(1),
                "department": "内科",
                "staff_name": "王芳",
            },  # another unit's nominee
            {"phone": "13812341237", "date": days_ago(1), "department": "内科"},
        ]
    )
    with app.app_context():
        number = db.session.get(Nomination, approved).number
        matched = [
            e.nomination_id for e in db.session.scalars(select(Encounter).order_by(Encounter.id))
        ]
        assert matched == [approved, None, None, None]
        last = db.session.scalar(select(Encounter).order_by(Encounter.id.desc()))
        path = services.link_path(last)
        db.session.remove()
    listing = client.get(f"{BASE}/programmes/pj/encounters", headers=org.headers("unit-h1"))
    numbers = {i["phone"]: i["nominee_number"] for i in listing.get_json()["items"]}
    assert numbers["138****1234"] == number and numbers["138****1237"] is None
    # The patient names the nominee on the page: the answer counts for her.
    page = client.get(path)
    client.post(
        path,
        data={
            "csrf_token": form_csrf(page.get_data(as_text=True)),
            "choice": "satisfied",
            "staff_name": "李晓梅",
        },
    )
    with app.app_context():
        assert db.session.scalar(select(Rating.nomination_id)) == approved
        db.session.remove()
