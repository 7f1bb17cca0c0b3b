"""Stamped recommendation forms (盖章推荐表) level by level: the committee's rules, the checks by
content, who may upload and download, replacement with the old form kept, and the pages."""

from __future__ import annotations

import io
import os
import re
import zlib
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select

from core.audit import AuditLog
from core.extensions import db
from core.types import utcnow
from nominations import level_forms, levels
from nominations.models import Nomination
from pages.common import asset_url
from tests.factories import Org
from tests.pages.browser import staff_login


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.json


def _refused(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.json["error"]["code"] == code, response.json
    return response.json["error"]


def _pdf(pages: int = 1) -> bytes:
    sheets = [Image.new("RGB", (120, 170), "white") for _ in range(pages)]
    out = io.BytesIO()
    sheets[0].save(out, "PDF", save_all=True, append_images=sheets[1:])
    return out.getvalue()


def _pdf_with_object_stream(pages: int) -> bytes:
    """A PDF 1.5+ file whose catalog and page tree sit in a compressed object stream only."""
    kids = " ".join(f"{10 + i} 0 R" for i in range(pages))
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>",
    ]
    objects += ["<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>"] * pages
    numbers = [1, 2, *range(10, 10 + pages)]
    body, offsets = b"", []
    for text in objects:
        offsets.append(len(body))
        body += text.encode() + b" "
    header = " ".join(f"{n} {o}" for n, o in zip(numbers, offsets, strict=True)).encode() + b" "
    packed = zlib.compress(header + body)
    stream = (
        b"5 0 obj\n<< /Type /ObjStm /N %d /First %d /Length %d /Filter /FlateDecode >>\nstream\n"
        % (len(objects), len(header), len(packed))
    )
    return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + stream + packed + b"\nendstream\nendobj\n%%EOF\n"


def _image(kind: str, size: tuple[int, int] = (300, 420)) -> bytes:
    picture = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    out = io.BytesIO()
    picture.save(out, kind)
    return out.getvalue()


def _chain(
    client: FlaskClient, org: Org, *, county: bool | None = True, unit: bool | None = True
) -> dict[str, Any]:
    now = utcnow()
    county_level: dict[str, Any] = {
        "unit_level": "county",
        "deadline": (now + timedelta(days=5)).isoformat(),
        "quotas": {"doctor": 2, "nurse": 2},
    }
    if county is not None:
        county_level["stamped_form"] = county
    body: dict[str, Any] = {
        "levels": [
            county_level,
            {
                "unit_level": "city",
                "deadline": (now + timedelta(days=8)).isoformat(),
                "quotas": {"doctor": 2, "nurse": 2},
            },
        ]
    }
    if unit is not None:
        body["unit_stamped_form"] = unit
    return _ok(client.put("/api/v1/campaigns/c1/levels", json=body, headers=org.headers("admin")))


def _upload(
    client: FlaskClient,
    org: Org,
    nid: int,
    level: str,
    who: str,
    data: bytes,
    name: str | None = "推荐表.pdf",
    content_type: str = "application/octet-stream",
) -> Any:
    query = f"?name={quote(name)}" if name else ""
    return client.post(
        f"/api/v1/nominations/{nid}/level-forms/{level}{query}",
        data=data,
        headers={**org.headers(who), "Content-Type": content_type},
    )


def _pass(client: FlaskClient, org: Org, nid: int, who: str) -> Any:
    return client.post(
        f"/api/v1/nominations/{nid}/level-decision",
        json={"decision": "pass", "comment": "同意推荐上报"},
        headers=org.headers(who),
    )


def _fetch(client: FlaskClient, url: str, headers: dict[str, str]) -> Any:
    """A download, read and closed (send_file streams from an open file)."""
    response = client.get(url, headers=headers)
    response.get_data()
    response.close()
    return response


def _forms(client: FlaskClient, org: Org, nid: int, who: str) -> dict[str, dict[str, Any]]:
    listing = _ok(client.get(f"/api/v1/nominations/{nid}/level-forms", headers=org.headers(who)))
    return {level["unit_level"]: level for level in listing["levels"]}


def test_the_committee_sets_the_rules_and_edits_elsewhere_keep_them(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    answer = _chain(client, org, county=True, unit=True)
    assert [lv["stamped_form"] for lv in answer["levels"]] == [True, False]
    assert answer["unit_stamped_form"] is True
    # The 推荐层级 page sends no flags: a deadline or quota edit leaves the rules alone.
    kept = _chain(client, org, county=None, unit=None)
    assert [lv["stamped_form"] for lv in kept["levels"]] == [True, False]
    assert kept["unit_stamped_form"] is True
    off = _chain(client, org, county=False, unit=None)
    assert [lv["stamped_form"] for lv in off["levels"]] == [False, False]
    assert off["unit_stamped_form"] is True
    single = _ok(
        client.put("/api/v1/campaigns/c1/levels", json={"levels": []}, headers=org.headers("admin"))
    )
    assert single["levels"] == [] and single["unit_stamped_form"] is False
    with app.app_context():
        entries = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "levels.set").order_by(AuditLog.id)
        ).all()
        assert entries[0].after["unit_stamped_form"] is True
        assert entries[-1].before["unit_stamped_form"] is True
        assert entries[-1].after["unit_stamped_form"] is False


def test_the_unit_uploads_its_form_before_it_may_submit(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org, county=False, unit=True)
    nid = org.nomination()
    refused = _refused(
        client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1")),
        409,
        "stamped_form_required",
    )
    assert refused["details"] == {"unit_level": "unit"} and "公章" in refused["message"]

    before = _forms(client, org, nid, "unit-h1")["unit"]
    assert before["required"] is True and before["uploaded"] is False and before["can_upload"]
    listing = _ok(_upload(client, org, nid, "unit", "unit-h1", _pdf(pages=2)), 201)
    mine = listing["levels"][0]
    assert mine["unit_level"] == "unit" and mine["uploaded"] is True
    assert mine["current"]["kind"] == "pdf" and mine["current"]["pages"] == 2
    assert mine["current"]["uploaded_by"] == "unit-h1" and mine["current"]["uploaded_at"]
    assert mine["current"]["content_type"] == "application/pdf"
    assert mine["current"]["download_url"].endswith(f"/nominations/{nid}/level-forms/unit")

    submitted = _ok(
        client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1"))
    )
    assert submitted["status"] == "submitted" and submitted["at_level"] == "county"
    # Submitted: the unit's level is no longer where the nomination is.
    _refused(_upload(client, org, nid, "unit", "unit-h1", _pdf()), 409, "not_at_your_level")
    with app.app_context():
        entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "level_form.upload"))
        assert entry is not None and entry.object_id == str(nid)
        assert entry.after["unit_level"] == "unit" and entry.after["pages"] == 2
        assert len(entry.after["sha256"]) == 64 and entry.before["form"] is None


def test_a_bureau_uploads_its_form_before_it_may_pass_up(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org, county=True, unit=False)
    nid = org.nomination(status="submitted")  # the unit's form is not required
    _refused(_pass(client, org, nid, "rev-k1"), 409, "stamped_form_required")
    # The old review call is the same pass.
    refused = _refused(
        client.post(
            f"/api/v1/nominations/{nid}/review",
            json={"decision": "approve"},
            headers=org.headers("rev-k1"),
        ),
        409,
        "stamped_form_required",
    )
    assert refused["details"] == {"unit_level": "county"}
    # A return needs no form.
    county = _forms(client, org, nid, "rev-k1")["county"]
    assert county["required"] and county["can_upload"] and county["unit"] == "单位K1"
    _ok(
        _upload(client, org, nid, "county", "rev-k1", _image("PNG"), "盖章表.png", "image/png"), 201
    )
    passed = _ok(_pass(client, org, nid, "rev-k1"))
    assert passed["at_level"] == "city"
    # The city's level does not require one: it passes without.
    assert _ok(_pass(client, org, nid, "rev-c"))["at_level"] == "committee"
    city_view = _forms(client, org, nid, "rev-c")
    assert city_view["county"]["current"]["kind"] == "png"
    assert city_view["city"]["uploaded"] is False and city_view["city"]["can_upload"] is False


def test_files_are_checked_by_their_content(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination()
    png = _image("PNG")
    pdf = _pdf()
    stored = Path(app.config["MEDIA_ROOT"])
    folders = set(stored.glob("f-*"))
    fakes = [
        (png, "推荐表.pdf", "application/octet-stream"),  # a PNG renamed .pdf
        (png, None, "application/pdf"),  # a PNG declared a PDF
        (os.urandom(4000), "推荐表.pdf", "application/pdf"),
        (b"%PDF-1.4\n%%EOF\n", "推荐表.pdf", "application/pdf"),  # no page at all
        (pdf[: len(pdf) - 40], "推荐表.pdf", "application/pdf"),  # truncated
        (_image("JPEG")[:3000], "scan.jpg", "image/jpeg"),  # truncated
        (_image("WEBP"), "scan.webp", "image/webp"),
        (b"", "推荐表.pdf", "application/pdf"),
    ]
    for data, name, content_type in fakes:
        error = _refused(
            _upload(client, org, nid, "unit", "unit-h1", data, name, content_type),
            422,
            "invalid_form_file",
        )
        assert error["message"]
    assert _forms(client, org, nid, "unit-h1")["unit"]["uploaded"] is False
    assert set(stored.glob("f-*")) == folders  # nothing refused was kept in storage

    # The content decides when the name and the type claim nothing.
    jpeg = _ok(_upload(client, org, nid, "unit", "unit-h1", _image("JPEG"), None), 201)
    assert jpeg["levels"][0]["current"]["kind"] == "jpeg"
    packed = _ok(
        _upload(client, org, nid, "unit", "unit-h1", _pdf_with_object_stream(3), "表.PDF"), 201
    )
    assert packed["levels"][0]["current"]["pages"] == 3


def test_pdf_pages_are_counted_from_the_page_tree() -> None:
    assert level_forms.pdf_pages(_pdf(pages=4)) == 4
    assert level_forms.pdf_pages(_pdf_with_object_stream(5)) == 5
    for broken in (b"%PDF-1.7\n", b"PNG %PDF-1.4 %%EOF", _pdf()[:-30]):
        with pytest.raises(ValueError):
            level_forms.pdf_pages(broken)


def test_an_oversize_form_is_refused_with_413(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination()
    monkeypatch.setitem(app.config, "LEVEL_FORM_MAX_BYTES", 4096)
    error = _refused(
        _upload(client, org, nid, "unit", "unit-h1", _image("PNG")), 413, "form_too_large"
    )
    assert error["details"] == {"max_bytes": 4096} and "MB" in error["message"]
    listing = _forms(client, org, nid, "unit-h1")["unit"]
    assert listing["uploaded"] is False
    small = _ok(_upload(client, org, nid, "unit", "unit-h1", _pdf(), "a.pdf"), 201)
    assert small["max_bytes"] == 4096


def test_who_may_upload_where(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    _chain(client, org)
    pdf = _pdf()
    draft = org.nomination()
    # Another role's level, or no staff role for it.
    _refused(_upload(client, org, draft, "unit", "rev-k1", pdf), 404, "nomination_not_found")
    _refused(_upload(client, org, draft, "unit", "judge", pdf), 403, "forbidden")
    # Another unit's nomination is missing to it, for the list and the download too.
    _refused(_upload(client, org, draft, "unit", "unit-h2", pdf), 404, "nomination_not_found")
    _refused(
        client.get(f"/api/v1/nominations/{draft}/level-forms", headers=org.headers("unit-h2")),
        404,
        "nomination_not_found",
    )
    _refused(_upload(client, org, draft, "county", "unit-h1", pdf), 403, "forbidden")
    _refused(_upload(client, org, draft, "province", "unit-h1", pdf), 404, "level_not_found")
    _refused(_upload(client, org, draft, "nowhere", "admin", pdf), 404, "level_not_found")
    # An admin acts for the unit, as at submit; never for a bureau.
    _ok(_upload(client, org, draft, "unit", "admin", pdf), 201)
    _ok(client.post(f"/api/v1/nominations/{draft}/submit", headers=org.headers("unit-h1")))

    _refused(_upload(client, org, draft, "unit", "rev-k1", pdf), 403, "forbidden")
    _refused(_upload(client, org, draft, "county", "admin", pdf), 403, "forbidden")
    _refused(_upload(client, org, draft, "county", "rev-k2", pdf), 404, "nomination_not_found")
    # The city's reviewer: the nomination waits at the county, and county is not its level.
    _refused(_upload(client, org, draft, "city", "rev-c", pdf), 409, "not_at_your_level")
    _refused(_upload(client, org, draft, "county", "rev-c", pdf), 409, "not_at_your_level")
    _ok(_upload(client, org, draft, "county", "rev-k1", pdf), 201)
    _ok(_pass(client, org, draft, "rev-k1"))
    # Passed up: the county's form stays, its upload is closed.
    _refused(_upload(client, org, draft, "county", "rev-k1", pdf), 409, "not_at_your_level")
    _ok(_upload(client, org, draft, "city", "rev-c", pdf), 201)


def test_the_committee_and_the_bureaus_above_download_others_do_not(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination(name="王建国")
    pdf, png = _pdf(pages=2), _image("PNG")
    _ok(_upload(client, org, nid, "unit", "unit-h1", pdf), 201)
    _ok(client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1")))
    _ok(_upload(client, org, nid, "county", "rev-k1", png, "scan.png", "image/png"), 201)

    for who in ("admin", "rev-c", "rev-k1", "unit-h1"):
        got = _fetch(client, f"/api/v1/nominations/{nid}/level-forms/unit", org.headers(who))
        assert got.status_code == 200, who
        assert got.data == pdf and got.mimetype == "application/pdf"
        assert got.headers["Content-Disposition"].startswith("attachment")
        assert "filename*=UTF-8''" in got.headers["Content-Disposition"]
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in got.headers["Cache-Control"]
    for who in ("admin", "rev-c", "rev-k1"):
        got = _fetch(client, f"/api/v1/nominations/{nid}/level-forms/county", org.headers(who))
        assert got.status_code == 200 and got.data == png and got.mimetype == "image/png", who
    # Below the county: the unit reads that it is there, not the file.
    _refused(
        client.get(f"/api/v1/nominations/{nid}/level-forms/county", headers=org.headers("unit-h1")),
        404,
        "level_form_not_found",
    )
    assert _forms(client, org, nid, "unit-h1")["county"]["current"]["download_url"] is None
    assert _forms(client, org, nid, "rev-c")["county"]["current"]["download_url"]
    # Another county's reviewer and another unit do not see the nomination at all.
    for who in ("rev-k2", "unit-h2"):
        _refused(
            client.get(f"/api/v1/nominations/{nid}/level-forms/unit", headers=org.headers(who)),
            404,
            "nomination_not_found",
        )
    _refused(
        client.get(f"/api/v1/nominations/{nid}/level-forms/city", headers=org.headers("admin")),
        404,
        "level_form_not_found",
    )


def test_a_new_upload_replaces_the_form_and_keeps_the_old_one(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination()
    first, second = _pdf(pages=1), _pdf(pages=3)
    _ok(_upload(client, org, nid, "unit", "unit-h1", first, "第一版.pdf"), 201)
    listing = _ok(_upload(client, org, nid, "unit", "unit-h1", second, "第二版.pdf"), 201)
    unit = listing["levels"][0]
    assert unit["current"]["pages"] == 3 and unit["current"]["original_name"] == "第二版.pdf"
    [old] = unit["history"]
    assert old["pages"] == 1 and old["replaced_at"] and old["original_name"] == "第一版.pdf"
    headers = org.headers("admin")
    assert _fetch(client, unit["current"]["download_url"], headers).data == second
    assert _fetch(client, old["download_url"], headers).data == first
    _refused(
        client.get(
            f"/api/v1/nominations/{nid}/level-forms/county?form={old['id']}", headers=headers
        ),
        404,
        "level_form_not_found",
    )
    with app.app_context():
        entries = db.session.scalars(
            select(AuditLog).where(AuditLog.action == "level_form.upload").order_by(AuditLog.id)
        ).all()
        assert [e.before["form"] for e in entries] == [None, old["id"]]


def test_a_single_level_campaign_needs_no_form(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    listing = _ok(
        client.get(f"/api/v1/nominations/{nid}/level-forms", headers=org.headers("unit-h1"))
    )
    assert listing["chained"] is False and listing["levels"] == []
    _refused(_upload(client, org, nid, "unit", "unit-h1", _pdf()), 404, "level_not_found")
    assert (
        _ok(client.post(f"/api/v1/nominations/{nid}/submit", headers=org.headers("unit-h1")))[
            "status"
        ]
        == "submitted"
    )
    approved = client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    assert _ok(approved)["status"] == "approved"


def test_the_review_desk_uploads_with_the_page_cookie_and_the_portal_partial(
    app: Flask, org: Org
) -> None:
    org.campaign()
    admin = app.test_client()
    _chain(admin, org, unit=False)
    nid = org.nomination(status="submitted")
    county = app.test_client()
    csrf = staff_login(county, "rev-k1", area="console")
    page = county.get(f"/console/c/c1/review?id={nid}").get_data(as_text=True)
    assert 'data-level-forms data-follow="detail-body"' in page and "level_forms.js" in page
    # level_forms.js posts the file itself with the cookie and the CSRF header.
    url = f"/api/v1/nominations/{nid}/level-forms/county?name=scan.png"
    _refused(county.post(url, data=_image("PNG"), content_type="image/png"), 403, "csrf_failed")
    posted = county.post(
        url, data=_image("PNG"), content_type="image/png", headers={"X-CSRF-Token": csrf}
    )
    assert _ok(posted, 201)["levels"][1]["uploaded"] is True
    assert _fetch(county, "/assets/level_forms.js", {}).status_code == 200

    # The portal's form page includes the partial for the unit's clerk.
    clerk = app.test_client()
    staff_login(clerk, "unit-h1", area="portal")
    form_page = clerk.get(f"/portal/nominations/{nid}")
    assert form_page.status_code == 200
    assert f'data-nomination="{nid}"' in form_page.get_data(as_text=True)

    with app.test_request_context("/portal"):
        shown = render_template(
            "pages/portal/_level_form.html",
            nomination=SimpleNamespace(id=nid),
            asset_url=asset_url,
        )
        assert f'data-nomination="{nid}"' in shown and "level_forms.js" in shown
        assert (
            render_template(
                "pages/portal/_level_form.html", nomination=None, asset_url=asset_url
            ).strip()
            == ""
        )


def test_the_overview_without_a_caller_shows_no_links_and_no_uploads(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    _chain(client, org)
    nid = org.nomination()
    _ok(_upload(client, org, nid, "unit", "unit-h1", _pdf()), 201)
    with app.test_request_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        overview = levels.form_overview(None, nomination)
        unit = overview["levels"][0]
        assert unit["uploaded"] is True and unit["current"]["download_url"] is None
        assert not any(level["can_upload"] for level in overview["levels"])
        assert [level["unit_level"] for level in overview["levels"]] == ["unit", "county", "city"]
        db.session.remove()


def test_the_dossier_says_which_stamped_forms_are_in(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    """The printed 推荐审批表 notes each level's stamped form under its opinion: uploaded (with
    its date and pages), or required and missing."""
    org.campaign()
    _chain(client, org, county=True, unit=False)
    nid = org.nomination(status="submitted")
    page = app.test_client()
    staff_login(page, "admin", area="console")
    url = f"/console/campaigns/c1/nominations/{nid}/dossier"
    before = page.get(url).get_data(as_text=True)
    assert "盖章推荐表：须上传，尚未上传" in before and "盖章推荐表已上传" not in before
    _ok(_upload(client, org, nid, "county", "rev-k1", _pdf(pages=2)), 201)
    after = page.get(url).get_data(as_text=True)
    assert "须上传，尚未上传" not in after
    assert re.search(r"盖章推荐表已上传（\d{4}年\d{1,2}月\d{1,2}日，共 2 页）", after)
