"""The unit portal's pages: who may open them, what they show, and that user input stays text.

The page scripts (validation, save, submit, uploads) are driven by the browser tests; here the
Flask test client checks the server side: access, content, escaping and the data handed to the
scripts."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from campaigns import services as campaign_services
from campaigns.models import Account
from core.extensions import db
from media.labels import MEDIA_STATUS_LABELS, VIDEO_PROGRESS_LABELS
from media.models import STATUSES as MEDIA_STATUSES
from nominations import services as nomination_services
from nominations.models import DEEDS_MAX, Nomination
from nominations.schemas import NominationCreateSchema, NominationUpdateSchema
from pages.portal import FIELD_LABELS, form_rules
from tests.factories import Org, campaign_title, nomination_body
from tests.pages.browser import staff_login

XSS = "<script>alert(1)</script>"


def _html(response) -> str:  # type: ignore[no-untyped-def]
    return response.get_data(as_text=True)


def _page_data(html: str) -> dict:  # type: ignore[type-arg]
    match = re.search(
        r'<script type="application/json" id="portal-data">(.*?)</script>', html, re.S
    )
    assert match, "page has no data block"
    return json.loads(match.group(1))


class _Scripts(HTMLParser):
    """Every <script> tag with its attributes, and every inline style or handler attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts.append(dict(attrs))
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag}[{name}]")


def _assert_csp_clean(html: str) -> None:
    parser = _Scripts()
    parser.feed(html)
    assert parser.inline == []
    for attrs in parser.scripts:
        assert attrs.get("src") or attrs.get("type") == "application/json", attrs


def _review(org: Org, nid: int, who: str, decision: str, comment: str | None) -> None:
    with org.app.app_context():
        nomination = db.session.get(Nomination, nid)
        assert nomination is not None
        nomination_services.review(org.account(who), nomination, decision, comment)
        db.session.commit()
        db.session.remove()


# --- access -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/portal", "/portal/c/c1/new", "/portal/nominations/{nid}"])
def test_anonymous_visitors_are_sent_to_the_login_page(
    client: FlaskClient, org: Org, path: str
) -> None:
    org.campaign()
    nid = org.nomination()
    target = path.format(nid=nid)
    response = client.get(target)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/portal/login?next={target}"


@pytest.mark.parametrize("user", ["judge", "rev-k1"])
@pytest.mark.parametrize("path", ["/portal", "/portal/c/c1/new", "/portal/nominations/{nid}"])
def test_judges_and_reviewers_get_a_chinese_403_page(
    client: FlaskClient, org: Org, user: str, path: str
) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    staff_login(client, user, area="console")
    response = client.get(path.format(nid=nid))
    assert response.status_code == 403
    html = _html(response)
    assert "无权访问" in html and "不对您的账号开放" in html
    assert "李晓梅" not in html


def test_another_units_nomination_is_refused_like_a_missing_one(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    theirs = org.nomination(unit_user="unit-h2", name="别家的人")
    staff_login(client, "unit-h1")
    refused = client.get(f"/portal/nominations/{theirs}")
    assert refused.status_code == 404
    html = _html(refused)
    assert "推荐材料不存在" in html and "别家的人" not in html
    missing = client.get("/portal/nominations/999999")
    assert missing.status_code == 404 and "推荐材料不存在" in _html(missing)
    # …and the list never shows it either.
    assert "别家的人" not in _html(client.get("/portal"))


def test_unknown_and_draft_campaigns_have_no_form(client: FlaskClient, org: Org) -> None:
    org.campaign("d1", phase="draft")
    staff_login(client, "unit-h1")
    for slug in ("nope", "d1"):
        response = client.get(f"/portal/c/{slug}/new")
        assert response.status_code == 404
        assert "评选活动不存在" in _html(response)


# --- the list -----------------------------------------------------------------------------------


def test_portal_lists_the_units_nominations_with_statuses_numbers_comments_and_quota(
    client: FlaskClient, org: Org
) -> None:
    org.campaign(max_per_unit=4)
    draft = org.nomination(name="草稿人")
    returned = org.nomination(status="returned", name="退回人")
    approved = org.nomination(status="approved", name="通过人")
    recommended = org.nomination(status="submitted", name="推荐人", category="nurse")
    _review(org, recommended, "rev-k1", "approve", "材料扎实，同意推荐")
    rejected = org.nomination(status="submitted", name="未过人", category="nurse")
    _review(org, rejected, "admin", "reject", "事迹与本奖项不符")
    org.nomination(unit_user="unit-h2", name="别家的人")
    staff_login(client, "unit-h1")

    response = client.get("/portal")
    assert response.status_code == 200
    html = _html(response)
    _assert_csp_clean(html)
    assert campaign_title() in html
    assert 'data-testid="new-nomination-c1"' in html and 'href="/portal/c/c1/new"' in html

    def row(nid: int) -> str:
        start = html.index(f'data-testid="nomination-{nid}"')
        return html[start : html.index("</tr>", start)]

    assert "草稿" in row(draft) and 'data-testid="submit-' in row(draft)
    assert "已退回" in row(returned) and "请补充" in row(returned)
    assert "修改后重新提交" in row(returned)
    assert "已通过" in row(approved) and "D001" in row(approved)
    assert 'data-testid="withdraw-' not in row(approved)
    assert "已推荐" in row(recommended) and "材料扎实，同意推荐" in row(recommended)
    assert "未通过" in row(rejected) and "事迹与本奖项不符" in row(rejected)
    assert "别家的人" not in html
    # Submitted, returned and approved hold places; drafts do not.
    doctor = re.search(r'data-testid="quota-c1-doctor"[^>]*>(.*?)</li>', html, re.S)
    nurse = re.search(r'data-testid="quota-c1-nurse"[^>]*>(.*?)</li>', html, re.S)
    assert doctor and re.sub(r"<[^>]+>", "", doctor.group(1)).startswith("十大最美医生：已用 2 / 4")
    assert nurse and re.sub(r"<[^>]+>", "", nurse.group(1)).startswith("十大最美护士：已用 1 / 4")


def test_list_shows_closed_campaigns_where_the_unit_has_nominations_only(
    client: FlaskClient, org: Org
) -> None:
    org.campaign("open1", title="仍在推荐的活动")
    org.campaign("gone", title="与本单位无关的评审活动", phase="reviewing")
    org.campaign("mine", title="本单位参加过的活动")
    nid = org.nomination("mine", status="submitted")
    with org.app.app_context():
        campaign = campaign_services.get_campaign("mine")
        campaign_services.change_phase(campaign, "reviewing", None)
        db.session.commit()
        db.session.remove()
    staff_login(client, "unit-h1")
    html = _html(client.get("/portal"))
    assert "仍在推荐的活动" in html and "本单位参加过的活动" in html
    assert "与本单位无关的评审活动" not in html
    assert 'data-testid="new-nomination-mine"' not in html  # reviewing: no new drafts
    assert f'data-testid="nomination-{nid}"' in html


def test_admin_picks_a_unit_to_look_at(client: FlaskClient, org: Org) -> None:
    org.campaign()
    draft = org.nomination(name="草稿人")
    staff_login(client, "admin", area="console")
    html = _html(client.get("/portal"))
    assert 'id="unit-picker"' in html and 'id="pick-unit"' in html
    assert "草稿人" not in html
    html = _html(client.get("/portal?unit=H1"))
    assert f'data-testid="nomination-{draft}"' in html
    assert 'href="/portal/c/c1/new?unit=H1"' in html
    assert client.get("/portal?unit=NOPE").status_code == 404


# --- the form -----------------------------------------------------------------------------------


def test_form_rules_follow_the_schemas() -> None:
    rules = {r["name"]: r for r in form_rules()}
    schema_fields = set(NominationCreateSchema().fields) | set(NominationUpdateSchema().fields)
    assert set(rules) == schema_fields
    assert all(name in FIELD_LABELS for name in schema_fields), "every field has a Chinese label"
    assert rules["deeds"]["max_length"] == DEEDS_MAX == 3000
    assert rules["deeds"]["required"] and not rules["position"]["required"]
    assert rules["years_of_service"]["type"] == "integer"
    assert (rules["years_of_service"]["min"], rules["years_of_service"]["max"]) == (0, 70)
    assert [v for v, _ in rules["gender"]["choices"]] == ["male", "female"]


def test_new_form_has_every_schema_field_with_limits_and_a_deeds_counter(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    staff_login(client, "unit-h1")
    response = client.get("/portal/c/c1/new")
    assert response.status_code == 200
    html = _html(response)
    _assert_csp_clean(html)
    assert "Content-Security-Policy" in response.headers
    for name in set(NominationCreateSchema().fields) | set(NominationUpdateSchema().fields):
        assert f'id="{name}" name="{name}"' in html, name
        assert f'<label for="{name}">{FIELD_LABELS[name]}' in html, name
    assert 'data-max-length="3000"' in html
    assert re.search(r'id="deeds-counter"[^>]*>0 / 3000</div>', html)
    assert re.search(r'id="summary-counter"[^>]*>0 / 120</div>', html)
    assert 'data-min="0"' in html and 'data-max="70"' in html
    assert '<option value="female">女</option>' in html
    assert "十大最美医生（已用 0 / 2）" in html
    for element in ('id="save"', 'id="submit"', 'id="nomination-form"', 'id="form-error"'):
        assert element in html
    # The unit is the clerk's own and cannot be changed; uploads come after the first save.
    assert re.search(r'<select id="unit_code"[^>]*disabled', html)
    assert 'id="photo-input"' not in html and 'id="media-after-save"' in html
    data = _page_data(html)
    assert data["mode"] == "new" and data["campaign"] == "c1" and data["nomination_id"] is None


def test_admin_new_form_lets_the_committee_name_the_unit(client: FlaskClient, org: Org) -> None:
    org.campaign()
    staff_login(client, "admin", area="console")
    html = _html(client.get("/portal/c/c1/new?unit=H2"))
    select = re.search(r'<select id="unit_code"[^>]*>', html)
    assert select and "disabled" not in select.group(0)
    assert '<option value="H2" selected>' in html
    assert _page_data(html)["is_admin"] is True


def test_new_form_is_closed_outside_the_nomination_window(client: FlaskClient, org: Org) -> None:
    org.campaign(phase="reviewing")
    staff_login(client, "unit-h1")
    response = client.get("/portal/c/c1/new")
    assert response.status_code == 200
    html = _html(response)
    assert 'id="closed-notice"' in html and "当前不在推荐时间内" in html
    assert 'id="nomination-form"' not in html


def test_edit_page_prefills_the_draft_and_offers_uploads(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    staff_login(client, "unit-h1")
    response = client.get(f"/portal/nominations/{nid}")
    assert response.status_code == 200
    html = _html(response)
    _assert_csp_clean(html)
    body = nomination_body()
    assert f'value="{body["name"]}"' in html and f'value="{body["title"]}"' in html
    assert '<option value="female" selected>' in html
    assert '<option value="doctor" selected>' in html
    assert f">{body['deeds']}</textarea>" in html
    assert f">{len(body['deeds'])} / 3000</div>" in html
    for element in (
        'id="photo-input"',
        'id="video-input"',
        'id="video-progress"',
        'id="video-status"',
        'id="withdraw"',
    ):
        assert element in html, element
    data = _page_data(html)
    assert data["mode"] == "edit" and data["nomination_id"] == nid
    assert data["editable"] and data["submittable"] and data["withdrawable"]
    assert data["video_max_bytes"] == org.app.config["MEDIA_VIDEO_MAX_BYTES"]
    assert data["photo_max_bytes"] == org.app.config["MEDIA_PHOTO_MAX_BYTES"]


def test_returned_nomination_shows_the_comment_and_offers_resubmit(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    _review(org, nid, "rev-k1", "return", "请补充近三年的获奖情况\n并附证明材料")
    staff_login(client, "unit-h1")
    html = _html(client.get(f"/portal/nominations/{nid}"))
    box = re.search(r'<div[^>]*id="return-comment".*?</div>', html, re.S)
    assert box, "no return comment box"
    assert "请补充近三年的获奖情况\n并附证明材料" in box.group(0)
    assert "单位K1" in box.group(0)
    assert re.search(r'id="submit"[^>]*>重新提交</button>', html)
    # The category is locked after a return; the form still carries it.
    assert re.search(r'<select id="category"[^>]*disabled', html)
    assert _page_data(html)["status"] == "returned"


def test_submitted_nomination_is_shown_read_only(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(status="submitted")
    staff_login(client, "unit-h1")
    html = _html(client.get(f"/portal/nominations/{nid}"))
    assert 'id="nomination-form"' not in html and 'id="dossier"' in html
    assert "正在审核中" in html and 'id="withdraw"' in html
    assert 'id="photo-input"' not in html and 'id="video-input"' not in html
    assert not _page_data(html)["editable"]


def test_script_in_name_and_deeds_is_shown_as_text(client: FlaskClient, org: Org) -> None:
    org.campaign()
    draft = org.nomination(name=XSS[:40], deeds=f"第一段{XSS}\n第二段")
    submitted = org.nomination(status="submitted", name="提交人", deeds=f"事迹{XSS}")
    staff_login(client, "unit-h1")
    pages = [
        _html(client.get("/portal")),
        _html(client.get(f"/portal/nominations/{draft}")),
        _html(client.get(f"/portal/nominations/{submitted}")),
    ]
    for html in pages:
        assert "<script>alert" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        _assert_csp_clean(html)
    assert "第一段&lt;script&gt;alert(1)&lt;/script&gt;\n第二段</textarea>" in pages[1]
    assert re.search(r'id="deeds-text"[^>]*>事迹&lt;script&gt;', pages[2])


def test_page_data_cannot_break_out_of_its_script_block(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination(name="</script><b>x")
    staff_login(client, "unit-h1")
    html = _html(client.get(f"/portal/nominations/{nid}"))
    assert "</script><b>" not in html
    assert _page_data(html)["nomination_id"] == nid


def test_edit_page_shows_the_current_photo_and_an_unfinished_video_upload(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    nid = org.nomination()
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (20, 120, 200)).save(out, format="JPEG")
    headers = org.headers("unit-h1")
    photo = client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=out.getvalue(),
        headers={**headers, "Content-Type": "image/jpeg"},
    )
    assert photo.status_code == 201, photo.json
    started = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "5000000",
            "Upload-Metadata": "filename 5LuL57uNLm1wNA==",  # 介绍.mp4
        },
    )
    assert started.status_code == 201, started.json
    staff_login(client, "unit-h1")
    html = _html(client.get(f"/portal/nominations/{nid}"))
    current = re.search(r'<img id="photo-current"[^>]*>', html)
    assert current and f"/media/{photo.json['id']}/thumb.jpg?t=" in current.group(0)
    assert "未完成的视频上传「介绍.mp4」" in html
    data = _page_data(html)
    assert data["photo"]["id"] == photo.json["id"]
    [pending] = data["receiving"]
    assert pending["upload_url"] == f"/api/v1/uploads/{started.json['id']}"
    assert (pending["name"], pending["size"], pending["received"]) == ("介绍.mp4", 5000000, 0)
    assert data["pending_video"]["status"] == "receiving" and data["video"] is None


def test_the_uploader_says_media_statuses_in_media_labels_words(
    client: FlaskClient, org: Org
) -> None:
    assert set(MEDIA_STATUS_LABELS) == set(VIDEO_PROGRESS_LABELS) == set(MEDIA_STATUSES)
    org.campaign()
    staff_login(client, "unit-h1")
    data = _page_data(_html(client.get("/portal/c/c1/new")))
    assert data["labels"]["video_progress"] == VIDEO_PROGRESS_LABELS


def test_clerk_without_a_unit_is_told_so(app: Flask, client: FlaskClient, org: Org) -> None:
    with app.app_context():
        account = db.session.get(Account, org.accounts["unit-h1"])
        assert account is not None
        account.unit_id = None
        db.session.commit()
        db.session.remove()
    staff_login(client, "unit-h1")
    html = _html(client.get("/portal"))
    assert 'id="no-unit"' in html and "尚未绑定推荐单位" in html


def test_portal_assets_are_served(client: FlaskClient, org: Org) -> None:
    org.campaign()
    staff_login(client, "unit-h1")
    html = _html(client.get("/portal/c/c1/new"))
    for name in ("portal.js", "portal.css"):
        start = html.index(f"/assets/{name}?v=")
        response = client.get(html[start : html.index('"', start)])
        status, body = response.status_code, response.data
        response.close()
        assert status == 200 and body
