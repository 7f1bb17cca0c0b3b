"""The committee console's first half: the campaign list, the live dashboard, settings, the review
queue and the fraud desk — who may open them, what the server renders into them, and that user
input stays text. (What the scripts do is covered by the end-to-end browser tests.)"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from awards.models import JudgeAssignment
from campaigns.models import Campaign, Category
from core.extensions import db
from core.types import utcnow
from media.labels import MEDIA_STATUS_LABELS
from tests.factories import Org
from tests.pages.browser import staff_login
from voting import cast, fraud, labels
from voting.models import Vote

PAGES = ("", "/settings", "/review", "/fraud")
ROLES_ALLOWED = {
    "": ("admin", "reviewer"),
    "/settings": ("admin",),
    "/review": ("admin", "reviewer"),
    "/fraud": ("admin",),
}


def page_data(html: str) -> dict[str, Any]:
    """The JSON the page hands to console.js."""
    match = re.search(
        r'<script type="application/json" id="console-data">(.*?)</script>', html, re.S
    )
    assert match, "page has no console-data block"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def html_of(client: FlaskClient, path: str, status: int = 200) -> str:
    response = client.get(path)
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    return response.get_data(as_text=True)


# --- who may open what ------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_console_login(client: FlaskClient, org: Org) -> None:
    org.campaign()
    for suffix in PAGES:
        response = client.get(f"/console/c/c1{suffix}")
        assert response.status_code == 302
        assert response.headers["Location"] == f"/console/login?next=/console/c/c1{suffix}"
    assert client.get("/console").headers["Location"] == "/console/login?next=/console"


@pytest.mark.parametrize("username", ["admin", "rev-k1", "judge", "unit-h1"])
def test_each_page_opens_for_its_roles_only(client: FlaskClient, org: Org, username: str) -> None:
    org.campaign()
    role = {"admin": "admin", "rev-k1": "reviewer", "judge": "judge", "unit-h1": "unit"}[username]
    staff_login(client, username, area="console")
    for suffix in PAGES:
        response = client.get(f"/console/c/c1{suffix}")
        body = response.get_data(as_text=True)
        if role in ROLES_ALLOWED[suffix]:
            assert response.status_code == 200, (suffix, body[:300])
            assert "Content-Security-Policy" in response.headers
        else:
            assert response.status_code == 403, suffix
            assert "不对您的账号开放" in body
    index = client.get("/console")
    assert index.status_code == (403 if role == "unit" else 200)


def test_an_unknown_campaign_is_a_chinese_404_page(client: FlaskClient, org: Org) -> None:
    staff_login(client, "admin", area="console")
    for suffix in PAGES:
        response = client.get(f"/console/c/no-such{suffix}")
        assert response.status_code == 404
        body = response.get_data(as_text=True)
        assert "页面不存在" in body and "评选活动不存在" in body
        assert response.mimetype == "text/html"


def test_the_navigation_shows_only_the_roles_sections(client: FlaskClient, org: Org) -> None:
    org.campaign()
    staff_login(client, "rev-k1", area="console")
    html = html_of(client, "/console/c/c1/review")
    assert 'href="/console/c/c1/review" class="active"' in html
    assert "/console/c/c1/fraud" not in html and "/console/c/c1/settings" not in html


def test_pages_carry_no_inline_script_or_style(client: FlaskClient, org: Org) -> None:
    org.campaign()
    staff_login(client, "admin", area="console")
    for path in ("/console", *(f"/console/c/c1{s}" for s in PAGES)):
        html = html_of(client, path)
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert " style=" not in html and not re.search(r"\son[a-z]+=", html), path
        assert "/assets/console.js?v=" in html or path == "/console"


# --- the campaign list ------------------------------------------------------------------------


def test_admins_see_every_campaign_with_phase_dates_and_work(client: FlaskClient, org: Org) -> None:
    org.campaign("c1")
    org.campaign("c2", phase="draft", title="筹备中的活动")
    org.nomination("c1", status="submitted")
    org.nomination("c1", status="submitted", name="王五")
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console")
    assert 'data-testid="campaign-c1"' in html and 'data-testid="campaign-c2"' in html
    assert "推荐申报" in html and "筹备中" in html
    assert re.search(r'href="/console/c/c1/review">2</a>', html)


def test_reviewers_see_campaigns_with_work_in_their_sub_tree(client: FlaskClient, org: Org) -> None:
    org.campaign("c1")
    org.campaign("c2", phase="voting")
    org.nomination("c1", unit_user="unit-h1", status="submitted")

    def rows(html: str) -> dict[str, str]:
        parts = html.split('<tr data-testid="campaign-')[1:]
        return {part.split('"')[0]: part.split("</tr>")[0] for part in parts}

    token = staff_login(client, "rev-k2", area="console")  # H1 is not under K2
    listed = rows(html_of(client, "/console"))
    assert set(listed) == {"c1"}  # review under way there; nothing of K2's anywhere
    assert "todo-count" not in listed["c1"]
    client.post("/logout", data={"csrf_token": token})
    staff_login(client, "rev-k1", area="console")
    listed = rows(html_of(client, "/console"))
    assert re.search(r'class="todo-count" href="/console/c/c1/review">1</a>', listed["c1"])


def test_judges_see_the_campaigns_they_judge_with_their_sheets(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign("c1")
    org.campaign("c2")
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "c1"))
        nurse = db.session.scalar(
            select(Category).where(Category.campaign_id == campaign.id, Category.code == "nurse")
        )
        db.session.add(
            JudgeAssignment(
                campaign_id=campaign.id, account_id=org.accounts["judge"], category_id=nurse.id
            )
        )
        db.session.commit()
    staff_login(client, "judge", area="console")
    html = html_of(client, "/console")
    assert 'href="/console/c/c1/sheets"' in html and "十大最美护士" in html
    assert 'data-testid="campaign-c2"' not in html


# --- dashboard --------------------------------------------------------------------------------


def test_the_dashboard_hands_the_script_what_it_needs(client: FlaskClient, org: Org) -> None:
    numbers = org.voting_campaign(nominees=2)
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1")
    data = page_data(html)
    assert data["page"] == "dashboard" and data["role"] == "admin" and data["standings"]
    assert [c["code"] for c in data["categories"]] == ["doctor", "nurse"]
    assert data["nominees"][numbers[0]]["name"] == "候选人0"
    for marker in (
        'id="chart-votes-per-minute"',
        'id="total-valid"',
        'id="ledger-health"',
        'id="freezes"',
        'id="dash-updated"',
        'id="dash-error"',
    ):
        assert marker in html
    # The script asks the trend for its window only; until the API filters by it, it ignores it.
    since = client.get("/api/v1/admin/campaigns/v1/trend?since=2026-01-01T00:00:00Z")
    assert since.status_code == 200


def test_reviewers_get_their_workload_not_the_committee_figures(
    client: FlaskClient, org: Org
) -> None:
    org.campaign()
    org.nomination(status="submitted")
    staff_login(client, "rev-k1", area="console")
    html = html_of(client, "/console/c/c1")
    assert 'id="count-todo">1<' in html
    assert 'id="total-valid"' not in html and 'id="freezes"' not in html
    assert page_data(html)["nominees"] == {}


def test_the_dashboard_renders_while_redis_is_down(
    client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page itself never reads Redis: the script reports the outage and keeps its data."""
    import redis

    org.voting_campaign(nominees=1)
    staff_login(client, "admin", area="console")

    def down(*_: Any, **__: Any) -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(redis.Redis, "execute_command", down)
    assert client.get("/console/c/v1").status_code == 200
    assert client.get("/api/v1/admin/campaigns/v1/tally").status_code == 503


def _shanghai_midnight(days: int) -> datetime:
    """A midnight in Asia/Shanghai ``days`` days from today by the app's clock."""
    zone = ZoneInfo("Asia/Shanghai")
    today = utcnow().astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


# --- settings ---------------------------------------------------------------------------------


def test_settings_show_the_campaign_in_its_time_zone_and_the_phase_history(
    client: FlaskClient, org: Org
) -> None:
    day = _shanghai_midnight(30)
    org.campaign(  # given in UTC, shown in the campaign's zone
        voting_start=(day + timedelta(hours=8)).astimezone(UTC).isoformat(),
        voting_end=(day + timedelta(days=9)).astimezone(UTC).isoformat(),
        nomination_start=(day - timedelta(days=300)).astimezone(UTC).isoformat(),
        nomination_end=(day - timedelta(days=30)).astimezone(UTC).isoformat(),
    )
    token = staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/c1/settings")
    shown = (day + timedelta(hours=8)).strftime("%Y-%m-%dT%H:%M")
    assert f'name="voting_start" type="datetime-local" value="{shown}"' in html
    assert 'data-testid="category-doctor"' in html and 'id="category-form"' in html
    refused = client.post(
        "/api/v1/campaigns/c1/phase", json={"phase": "draft"}, headers={"X-CSRF-Token": token}
    )
    assert refused.status_code == 422  # a step back needs a reason
    back = client.post(
        "/api/v1/campaigns/c1/phase",
        json={"phase": "draft", "reason": "奖项设置有误，退回修改"},
        headers={"X-CSRF-Token": token},
    )
    assert back.status_code == 200
    html = html_of(client, "/console/c/c1/settings")
    history = html.split('data-testid="phase-history"')[1].split("</table>")[0]
    assert "推荐申报 → 筹备中" in history and "奖项设置有误，退回修改" in history
    assert "筹备中 → 推荐申报" in history
    assert 'data-back=""' in html  # forward moves need no reason


def test_settings_lock_rules_while_voting_and_categories_after_nominating(
    client: FlaskClient, org: Org
) -> None:
    org.voting_campaign(nominees=1)
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1/settings")
    assert 'id="rules-locked"' in html and 'id="category-locked"' in html
    assert 'id="category-form"' not in html
    assert re.search(r'<fieldset class="form-grid" disabled id="rules-fields">', html)


def test_settings_change_log_names_the_changed_fields(client: FlaskClient, org: Org) -> None:
    org.campaign()
    token = staff_login(client, "admin", area="console")
    response = client.patch(
        "/api/v1/campaigns/c1",
        json={"title": "新名称<b>", "publicity_days": 5},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    html = html_of(client, "/console/c/c1/settings")
    log = html.split('id="change-log"')[1]
    assert "修改设置" in log and "名称、公示天数" in log
    assert "新名称&lt;b&gt;" in html and "新名称<b>" not in html


# --- review -----------------------------------------------------------------------------------


def test_the_review_queue_escapes_what_units_typed(client: FlaskClient, org: Org) -> None:
    org.campaign()
    evil = "<script>alert(1)</script>"
    nomination_id = org.nomination(status="submitted", name=evil)
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/c1/review")
    assert f'data-testid="review-{nomination_id}"' in html
    assert evil not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_queue_shows_what_waits_for_each_role(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign(require_recommendation=True, max_per_unit=5)
    plain = org.nomination(status="submitted", name="甲")
    recommended = org.nomination(status="submitted", name="乙")
    returned = org.nomination(status="returned", name="丙")
    draft = org.nomination(name="丁")
    other = org.nomination(unit_user="unit-h3", status="submitted", name="戊")
    token = staff_login(client, "rev-k1", area="console")
    assert (
        client.post(
            f"/api/v1/nominations/{recommended}/review",
            json={"decision": "approve"},
            headers={"X-CSRF-Token": token},
        ).json["recommended"]
        is True
    )

    def ids(html: str) -> set[int]:
        return {int(i) for i in re.findall(r'data-testid="review-(\d+)"', html)}

    # The bureau's own work: submitted, not yet recommended, in its sub-tree.
    assert ids(html_of(client, "/console/c/c1/review")) == {plain}
    assert ids(html_of(client, "/console/c/c1/review?status=recommended")) == {recommended}
    assert ids(html_of(client, "/console/c/c1/review?status=all")) == {plain, recommended, returned}
    html = html_of(client, "/console/c/c1/review")
    assert 'id="decision-recommend"' in html and 'id="decision-approve"' not in html
    assert page_data(html)["role"] == "reviewer"

    client.post("/logout", data={"csrf_token": token})
    staff_login(client, "admin", area="console")
    # The committee, on a campaign that requires a recommendation: the recommended ones.
    assert ids(html_of(client, "/console/c/c1/review")) == {recommended}
    assert ids(html_of(client, "/console/c/c1/review?status=submitted")) == {
        plain,
        recommended,
        other,
    }
    assert draft not in ids(html_of(client, "/console/c/c1/review?status=all"))
    assert ids(html_of(client, "/console/c/c1/review?status=returned")) == {returned}
    html = html_of(client, "/console/c/c1/review?status=submitted&category=nurse")
    assert ids(html) == set() and 'id="review-empty"' in html
    # An unknown view or category falls back instead of failing.
    assert ids(html_of(client, "/console/c/c1/review?status=bogus&category=x&page=x")) == {
        recommended
    }
    html = html_of(client, "/console/c/c1/review")
    for marker in (
        'id="decision-approve"',
        'id="decision-return"',
        'id="decision-reject"',
        'id="decision-comment"',
        'id="decision-withdraw"',
    ):
        assert marker in html
    tabs = html.split('id="review-tabs"')[1].split("</nav>")[0]
    assert re.search(r'data-testid="view-todo">待我处理 <span class="count"[^>]*>1<', tabs)
    assert re.search(r'data-testid="view-submitted">全部待审 <span class="count"[^>]*>3<', tabs)
    assert 'data-count="todo"' in tabs and 'data-count="approved"' in tabs
    # What the page rereads after each decision: the same figures, as JSON, never cached.
    counts = client.get("/console/c/c1/review/counts")
    assert counts.status_code == 200 and counts.headers["Cache-Control"] == "no-store"
    views = counts.json["views"]
    assert (
        views["todo"] == 1
        and views["submitted"] == 3
        and set(views)
        == {
            "todo",
            "submitted",
            "recommended",
            "returned",
            "approved",
            "rejected",
            "withdrawn",
            "all",
        }
    )


def test_the_queue_pages_through_long_lists(
    client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pages import console

    monkeypatch.setattr(console, "QUEUE_PER_PAGE", 2)
    org.campaign(max_per_unit=10)
    made = [org.nomination(status="submitted", name=f"人{i}") for i in range(5)]
    staff_login(client, "admin", area="console")
    seen: list[int] = []
    for page in (1, 2, 3):
        html = html_of(client, f"/console/c/c1/review?page={page}")
        seen += [int(i) for i in re.findall(r'data-testid="review-(\d+)"', html)]
        assert f"第 {page} / 3 页" in html
    assert seen == made


def test_a_decision_through_the_api_shows_in_the_queue(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nomination_id = org.nomination(status="submitted")
    token = staff_login(client, "admin", area="console")
    approved = client.post(
        f"/api/v1/nominations/{nomination_id}/review",
        json={"decision": "approve", "comment": None},
        headers={"X-CSRF-Token": token},
    )
    assert approved.status_code == 200 and approved.json["number"] == "D001"
    html = html_of(client, "/console/c/c1/review?status=approved")
    row = html.split(f'data-testid="review-{nomination_id}"')[1].split("</tr>")[0]
    assert "D001" in row and "已通过" in row


def test_the_review_page_says_when_review_is_closed(client: FlaskClient, org: Org) -> None:
    org.voting_campaign(nominees=1)
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1/review")
    assert 'id="review-closed"' in html and page_data(html)["review_open"] is False


# --- fraud ------------------------------------------------------------------------------------


@dataclass
class FakeFinding:
    """What a detector hands the scan job (see voting.detectors.model.Finding)."""

    rule: str
    nominee: str | None
    vote_ids: tuple[str, ...]
    evidence: dict[str, Any]
    score: float = 0.97
    severity: str = "high"
    explanation: str = "同一网段在短时间内集中投票"


def _flag(app: Flask, client: FlaskClient, org: Org) -> tuple[int, str]:
    numbers = org.voting_campaign(nominees=2)
    for voter in range(3):
        client.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": numbers[0]},
            headers=org.voter(voter),
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
        )
    from voting import services

    with app.app_context():
        services.drain_campaign("v1")
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        ids = list(db.session.scalars(select(Vote.id)))
        scan = fraud.start_scan(campaign, "test")
        minute = int(utcnow().timestamp() // 60)
        evidence = {
            "top_addresses": [{"prefix": "10.9.9.", "votes": 3, "voters": 3}],
            "devices": [],
            "histogram": [{"minute": minute, "votes": 3}],
        }
        fraud._file_flag(
            campaign,
            scan,
            FakeFinding("address_concentration", numbers[0], tuple(ids), evidence),
        )
        scan.status = "done"
        db.session.commit()
        flag_id = fraud.list_flags(campaign)[0].id
        db.session.remove()
    return flag_id, numbers[0]


def test_the_fraud_desk_keeps_watch_notes_apart(app: Flask, client: FlaskClient, org: Org) -> None:
    """A 观察 (watch) note is neither in the page's flag list nor in its counts; the page has
    its own watch panel (filled from the API's severity=watch list)."""
    flag_id, number = _flag(app, client, org)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        ids = tuple(db.session.scalars(select(Vote.id)))
        scan = fraud.start_scan(campaign, "test")
        note = FakeFinding("new_identity_surge", number, ids, {"top_addresses": []}, 0.55, "watch")
        assert fraud._file_flag(campaign, scan, note)
        db.session.commit()
        db.session.remove()
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1/fraud")
    assert [f["id"] for f in page_data(html)["flags"]] == [flag_id]
    open_label = labels.FLAG_STATUS_LABELS["open"]
    assert f"{open_label}（1）" in html and f"{open_label}（2）" not in html
    assert 'id="watch-flags"' in html and "不能据此作废投票" in html
    everything = page_data(html_of(client, "/console/c/v1/fraud?status="))
    assert [f["severity"] for f in everything["flags"]] == ["high"]


def test_the_fraud_desk_lists_flags_with_the_latest_scan(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    flag_id, number = _flag(app, client, org)
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1/fraud")
    data = page_data(html)
    assert [f["id"] for f in data["flags"]] == [flag_id]
    assert data["flags"][0]["nominee"] == number and data["status"] == "open"
    assert data["scan"]["status"] == "done"
    assert data["nominees"][number]["name"] == "候选人0"
    for marker in (
        'id="flag-confirm"',
        'id="flag-dismiss"',
        'id="flag-undo"',
        'id="nominee-votes"',
        'id="flag-histogram"',
        'id="scan-start"',
        'id="flag-reason"',
        'id="flag-status"',
    ):
        assert marker in html
    assert page_data(html_of(client, "/console/c/v1/fraud?status=confirmed"))["flags"] == []
    everything = page_data(html_of(client, "/console/c/v1/fraud?status="))
    assert everything["status"] == "" and len(everything["flags"]) == 1
    assert page_data(html_of(client, f"/console/c/v1/fraud?flag={flag_id}"))["selected"] == flag_id


def test_confirming_a_flag_drops_the_count_the_desk_rereads(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    """The calls the fraud desk makes, with the page's cookie and CSRF token."""
    flag_id, number = _flag(app, client, org)
    token = staff_login(client, "admin", area="console")
    headers = {"X-CSRF-Token": token}

    def valid() -> int:
        tally = client.get("/api/v1/admin/campaigns/v1/tally").json
        return next(n["valid"] for n in tally["nominees"] if n["nominee"] == number)

    assert valid() == 3
    url = f"/api/v1/admin/campaigns/v1/fraud/flags/{flag_id}"
    assert client.post(f"{url}/confirm", json={"reason": "同一网段"}).status_code == 403
    confirmed = client.post(f"{url}/confirm", json={"reason": "同一网段"}, headers=headers)
    assert confirmed.status_code == 200 and confirmed.json["status"] == "confirmed"
    assert valid() == 0
    html = html_of(client, "/console/c/v1/fraud?status=confirmed")
    assert [f["id"] for f in page_data(html)["flags"]] == [flag_id]
    undone = client.post(f"{url}/undo", json={"reason": "复核"}, headers=headers)
    assert undone.json["status"] == "open" and valid() == 3


# --- helpers ----------------------------------------------------------------------------------


def test_times_are_shown_in_the_campaign_time_zone(ctx: Flask) -> None:
    from pages.console import input_time, local_time

    campaign = Campaign(timezone="Asia/Shanghai")
    local = _shanghai_midnight(40) + timedelta(minutes=30)  # 16:30 UTC the day before
    moment = local.astimezone(UTC)
    assert moment.date() < local.date()
    assert local_time(moment, campaign) == local.strftime("%Y-%m-%d 00:30")
    assert input_time(moment, campaign) == local.strftime("%Y-%m-%dT00:30")
    assert local_time(None, campaign) == ""
    assert local_time(moment, Campaign(timezone="Not/AZone")) == local.strftime("%Y-%m-%d 00:30")


# --- the new-campaign form (campaign list) ----------------------------------------------------


def test_the_create_form_is_for_admins_only(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign("c1")
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "c1"))
        nurse = db.session.scalar(
            select(Category).where(Category.campaign_id == campaign.id, Category.code == "nurse")
        )
        db.session.add(
            JudgeAssignment(
                campaign_id=campaign.id, account_id=org.accounts["judge"], category_id=nurse.id
            )
        )
        db.session.commit()
    for username in ("rev-k1", "judge"):
        token = staff_login(client, username, area="console")
        html = html_of(client, "/console")
        assert 'data-testid="campaign-c1"' in html
        assert "campaign-create" not in html and 'id="console-data"' not in html
        client.post("/logout", data={"csrf_token": token})
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console")
    form = html.split('id="campaign-create-form"')[1].split("</form>")[0]
    for name in (
        "slug",
        "title",
        "organizer",
        "description",
        "timezone",
        "nomination_start",
        "nomination_end",
        "voting_start",
        "voting_end",
        "rules.votes_per_day",
        "rules.votes_per_nominee_per_day",
        "rules.hide_counts",
        "weights.public",
        "weights.jury",
        "weights.organizer",
        "require_recommendation",
        "publicity_days",
    ):
        assert f'name="{name}"' in form, name
    assert 'id="campaign-create"' in form and 'id="campaign-create-error"' in form
    assert '<option value="Asia/Shanghai" selected>' in form
    assert 'name="voting_start" type="datetime-local" required' in form
    assert "2–63 位" in form  # the slug's pattern, explained
    assert "/assets/console.js?v=" in html
    data = page_data(html)
    assert data["page"] == "index" and data["slugs"] == ["c1"]


def test_the_create_form_checks_with_the_schemas_own_limits(client: FlaskClient, org: Org) -> None:
    from campaigns.schemas import SLUG
    from pages.console_campaign import CREATE_FIELDS, create_form_rules

    rules = create_form_rules()
    assert list(rules) == list(CREATE_FIELDS)
    assert rules["slug"]["pattern"] == SLUG.regex.pattern and rules["slug"]["required"]
    assert (rules["title"]["max_length"], rules["description"]["max_length"]) == (120, 5000)
    assert (rules["rules.votes_per_day"]["min"], rules["rules.votes_per_day"]["max"]) == (1, 50)
    assert rules["rules.votes_per_day"]["type"] == "integer"
    assert rules["weights.public"]["required"] and not rules["weights.organizer"]["required"]
    assert rules["weights.organizer"]["value"] == 0  # the API's own default
    assert rules["weights.public"]["value"] + rules["weights.jury"]["value"] == 100
    assert rules["publicity_days"] == {
        **rules["publicity_days"],
        "value": 7,
        "min": 1,
        "max": 60,
        "required": False,
    }
    assert rules["timezone"]["value"] == "Asia/Shanghai"
    assert rules["voting_end"]["type"] == "datetime" and rules["voting_end"]["required"]
    assert rules["rules.hide_counts"]["type"] == "boolean"
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console")
    assert page_data(html)["fields"] == rules
    assert re.search(
        r'name="rules\.votes_per_day" type="number"[^>]* min="1" max="50" value="5"', html
    )
    assert 'id="campaign-create-panel" open' in html  # no campaign yet: the form is open
    assert 'id="campaign-list-empty"' in html


def test_what_the_create_form_sends_and_what_it_maps_back(client: FlaskClient, org: Org) -> None:
    """The calls the form makes, with the page's cookie and CSRF token: times as wall times of the
    chosen zone with their offset; refusals with the details the form puts on its fields."""
    org.campaign("c1")
    token = staff_login(client, "admin", area="console")
    headers = {"X-CSRF-Token": token}
    day = _shanghai_midnight(60)
    slug = f"{day.year}-xian-doctor"
    nomination_end = day + timedelta(days=31, hours=18)
    voting_start = day + timedelta(days=61, hours=8)
    too_early = (day - timedelta(days=28) + timedelta(hours=9)).isoformat()  # before they open
    body = {
        "slug": slug,
        "title": f"{day.year}年度某县“最美医生”评选",
        "organizer": "某县卫生健康局",
        "description": "",
        "timezone": "Asia/Shanghai",
        "nomination_start": (day + timedelta(hours=9)).isoformat(),
        "nomination_end": nomination_end.isoformat(),
        "voting_start": voting_start.isoformat(),
        "voting_end": (day + timedelta(days=70, hours=20)).isoformat(),
        "rules": {"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
        "weights": {"public": 30, "jury": 70, "organizer": 0},
        "require_recommendation": True,
    }
    assert client.post("/api/v1/campaigns", json=body).status_code == 403  # no CSRF token
    bad = client.post(
        "/api/v1/campaigns",
        json={
            **body,
            "weights": {"public": 30, "jury": 60, "organizer": 0},
            "nomination_end": too_early,
        },
        headers=headers,
    )
    assert bad.status_code == 422
    assert bad.json["error"]["details"]["fields"]["weights"] == {
        "_schema": ["各项权重之和必须为 100"]
    }
    windows = client.post(
        "/api/v1/campaigns",
        json={**body, "nomination_end": too_early},
        headers=headers,
    )
    assert windows.status_code == 422
    assert list(windows.json["error"]["details"]["fields"]) == ["nomination_end"]
    taken = client.post("/api/v1/campaigns", json={**body, "slug": "c1"}, headers=headers)
    assert taken.status_code == 409 and taken.json["error"]["code"] == "campaign_exists"
    created = client.post("/api/v1/campaigns", json=body, headers=headers)
    assert created.status_code == 201 and created.json["slug"] == slug
    assert created.json["publicity_days"] == 7  # left to the API's default
    html = html_of(client, f"/console/c/{slug}/settings")  # where the form goes next
    shown = voting_start.strftime("%Y-%m-%dT%H:%M")
    assert f'name="voting_start" type="datetime-local" value="{shown}"' in html
    shown = nomination_end.strftime("%Y-%m-%dT%H:%M")
    assert f'name="nomination_end" type="datetime-local" value="{shown}"' in html
    assert 'id="category-form"' in html and "筹备中" in html
    listed = page_data(html_of(client, "/console"))
    assert set(listed["slugs"]) == {"c1", slug}


def test_the_fraud_desk_says_voting_words_from_voting_labels(client: FlaskClient, org: Org) -> None:
    org.campaign()
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/c1/fraud")
    words = page_data(html)["labels"]
    assert words["rules"] == labels.RULE_LABELS and words["severities"] == labels.SEVERITY_LABELS
    assert words["flag_statuses"] == labels.FLAG_STATUS_LABELS
    assert words["decisions"] == labels.DECISION_LABELS
    assert words["media_statuses"] == MEDIA_STATUS_LABELS
    tabs = html.split('id="flag-status"')[1].split("</select>")[0]
    assert f">{labels.FLAG_STATUS_LABELS['confirmed']}（0）<" in tabs


# --- held votes on the fraud desk -------------------------------------------------------------


def _held(app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch) -> str:
    """Five votes in one minute for a nominee whose pace limit is two: three are held."""
    from voting import services

    numbers = org.voting_campaign(
        nominees=2, rules={"velocity_factor": 2, "velocity_floor": 2, "freeze_minutes": 0}
    )
    moment = utcnow().replace(second=5, microsecond=0)
    monkeypatch.setattr(cast, "clock", lambda: moment)
    answers = [
        client.post(
            "/api/v1/campaigns/v1/votes", json={"nominee": numbers[0]}, headers=org.voter(v)
        ).json["status"]
        for v in range(5)
    ]
    assert answers == ["valid", "valid", "pending", "pending", "pending"]
    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    return numbers[0]


def test_the_fraud_desk_lists_held_votes_and_a_decision_clears_them(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = _held(app, client, org, monkeypatch)
    token = staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/v1/fraud")
    panel = html.split(' id="held-votes"')[1].split("</section>")[0]
    row = panel.split(f'data-testid="held-{number}"')[1].split("</tr>")[0]
    assert "候选人0" in row and "十大最美医生" in row
    assert f'data-testid="held-pending-{number}" data-value="3"' in row
    assert f'data-testid="held-valid-{number}" data-value="2"' in row
    assert f'id="held-release-{number}"' in row and f'id="held-void-{number}"' in row
    assert "系统自动暂扣（3）" in row
    assert f"/console/c/v1/votes?status=pending&amp;nominee={number}" in row
    assert 'data-value="3">共 3 票' in panel and 'id="held-empty" hidden' in panel
    assert page_data(html)["held"] == [{"nominee": number, "pending": 3, "valid": 2}]

    # What the panel sends: all of the nominee's held votes, with a reason.
    url = "/api/v1/admin/campaigns/v1/votes/pending"
    headers = {"X-CSRF-Token": token}
    assert (
        client.post(
            url, json={"decision": "release", "reason": "", "nominee": number}, headers=headers
        ).status_code
        == 422
    )
    released = client.post(
        url,
        json={"decision": "release", "reason": "核实为同科室同事", "nominee": number},
        headers=headers,
    )
    assert released.status_code == 200 and released.json["vote_count"] == 3
    tally = client.get("/api/v1/admin/campaigns/v1/tally").json  # what the panel rereads
    counts = next(n for n in tally["nominees"] if n["nominee"] == number)
    assert (counts["pending"], counts["valid"]) == (0, 5)
    html = html_of(client, "/console/c/v1/fraud")
    panel = html.split(' id="held-votes"')[1].split("</section>")[0]
    assert 'data-testid="held-' + number not in panel
    assert 'id="held-empty" >没有待审票。' in panel and 'id="held-table" hidden' in panel
    assert page_data(html)["held"] == []


def test_held_votes_render_while_redis_is_down(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    number = _held(app, client, org, monkeypatch)
    staff_login(client, "admin", area="console")

    def down(*_: Any, **__: Any) -> Any:
        raise redis.ConnectionError("down")

    monkeypatch.setattr(redis.Redis, "execute_command", down)
    html = html_of(client, "/console/c/v1/fraud")
    assert f'data-testid="held-{number}"' in html


# --- the vote browser -------------------------------------------------------------------------


def _ballots(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    numbers = org.voting_campaign(nominees=2)
    for voter, (number, ip) in enumerate(
        [
            (numbers[0], "10.9.9.1"),
            (numbers[0], "10.9.9.2"),
            (numbers[0], "10.9.8.1"),
            (numbers[1], "172.16.0.1"),
            (numbers[1], "172.16.0.2"),
        ]
    ):
        response = client.post(
            "/api/v1/campaigns/v1/votes",
            json={"nominee": number},
            headers=org.voter(voter),
            environ_base={"REMOTE_ADDR": ip},
        )
        assert response.status_code == 201
    from voting import services

    with app.app_context():
        services.drain_campaign("v1")
        db.session.remove()
    return numbers


def test_the_vote_browser_is_for_admins(client: FlaskClient, org: Org) -> None:
    org.campaign()
    assert client.get("/console/c/c1/votes").headers["Location"] == (
        "/console/login?next=/console/c/c1/votes"
    )
    token = staff_login(client, "rev-k1", area="console")
    assert client.get("/console/c/c1/votes").status_code == 403
    client.post("/logout", data={"csrf_token": token})
    staff_login(client, "admin", area="console")
    html = html_of(client, "/console/c/c1/votes")
    assert 'id="vote-browser"' in html and 'id="vote-browser-empty"' in html
    assert 'href="/api/v1/admin/campaigns/c1/votes.csv"' in html
    assert " style=" not in html and not re.search(r"\son[a-z]+=", html)
    assert client.get("/console/c/no-such/votes").status_code == 404
    assert 'id="vote-browser-link"' in html_of(client, "/console/c/c1/fraud")


def test_the_vote_browser_filters_and_its_downloads_carry_the_filters(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = _ballots(app, client, org)
    staff_login(client, "admin", area="console")

    def rows(html: str) -> list[str]:
        return re.findall(r'<tr data-testid="vote-([^"]+)"', html)

    everything = html_of(client, "/console/c/v1/votes")
    assert len(rows(everything)) == 5 and 'data-value="5"' in everything
    assert "候选人0" in everything and "10.9.9.1" in everything

    html = html_of(client, f"/console/c/v1/votes?prefix=10.9.9.&nominee={numbers[0].lower()}")
    assert len(rows(html)) == 2
    csv_href = re.search(r'id="vote-browser-csv" href="([^"]+)"', html).group(1)
    csv_href = csv_href.replace("&amp;", "&")
    assert csv_href == f"/api/v1/admin/campaigns/v1/votes.csv?nominee={numbers[0]}&prefix=10.9.9."
    xlsx_href = re.search(r'id="vote-browser-xlsx" href="([^"]+)"', html).group(1)
    assert xlsx_href.replace("&amp;", "&") == csv_href.replace("votes.csv", "votes.xlsx")
    exported = client.get(csv_href)
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    lines = exported.get_data(as_text=True).lstrip("\ufeff").strip().splitlines()
    assert len(lines) == 3 and all("10.9.9." in line for line in lines[1:])
    # The workbook is an export job: the browser following the link lands on the exports page.
    workbook = client.get(xlsx_href.replace("&amp;", "&"), headers={"Accept": "text/html"})
    assert workbook.status_code == 303
    assert workbook.headers["Location"].startswith("/console/c/v1/exports?job=")
    listed = client.get("/api/v1/admin/campaigns/v1/exports").json["items"]
    assert [(e["kind"], e["filters"]) for e in listed] == [
        ("votes_xlsx", {"nominee": numbers[0], "prefix": "10.9.9."})
    ]
    assert 'value="10.9.9."' in html and f'value="{numbers[0]}"' in html  # the form keeps them

    # Times are read in the campaign's zone and sent with its offset.
    html = html_of(client, "/console/c/v1/votes?start=2999-01-01T00:00&status=valid")
    assert rows(html) == [] and 'id="vote-browser-empty"' in html
    assert "start=2999-01-01T00%3A00%3A00%2B08%3A00" in html
    assert len(rows(html_of(client, "/console/c/v1/votes?end=2999-01-01T00:00"))) == 5
    assert rows(html_of(client, "/console/c/v1/votes?status=pending")) == []

    # Wrong filters are said in Chinese and nothing is listed or offered for download.
    html = html_of(client, "/console/c/v1/votes?prefix=10.9.9.%25&start=soon")
    assert 'id="vote-browser-error"' in html and 'id="vote-browser-csv"' not in html
    assert "网段前缀只能包含数字" in html and "请填写有效的时间" in html
    html = html_of(client, "/console/c/v1/votes?start=2026-05-02T00:00&end=2026-05-01T00:00")
    assert "截止时间应晚于开始时间" in html
    html = html_of(client, "/console/c/v1/votes?voter=0")
    assert "投票人编号应为正整数" in html
    # An unknown status falls back to every status.
    assert len(rows(html_of(client, "/console/c/v1/votes?status=bogus&page=x"))) == 5


def test_the_vote_browser_pages_and_links_flags(
    app: Flask, client: FlaskClient, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pages import console

    monkeypatch.setattr(console, "VOTES_PER_PAGE", 2)
    flag_id, number = _flag(app, client, org)  # three votes, all in the flag
    staff_login(client, "admin", area="console")
    seen: list[str] = []
    for page in (1, 2):
        html = html_of(client, f"/console/c/v1/votes?nominee={number}&page={page}")
        seen += re.findall(r'<tr data-testid="vote-([^"]+)"', html)
        assert f"第 {page} / 2 页" in html
    assert len(seen) == len(set(seen)) == 3
    assert f'href="?nominee={number}&amp;page=2"' in html_of(
        client, f"/console/c/v1/votes?nominee={number}"
    )
    url = f"/api/v1/admin/campaigns/v1/fraud/flags/{flag_id}/confirm"
    token = staff_login(client, "admin", area="console")
    assert (
        client.post(url, json={"reason": "同一网段"}, headers={"X-CSRF-Token": token}).status_code
        == 200
    )
    html = html_of(client, f"/console/c/v1/votes?flag={flag_id}&status=invalid")
    assert 'id="vote-browser-flag"' in html and f"刷票线索 #{flag_id}" in html
    assert f"/console/c/v1/fraud?status=&amp;flag={flag_id}" in html
    assert f"votes.csv?status=invalid&amp;flag={flag_id}" in html


def test_vote_filters_read_times_in_the_campaign_zone(ctx: Flask) -> None:
    from werkzeug.datastructures import MultiDict

    from pages.console import describe_vote_reason, vote_filters

    campaign = Campaign(timezone="Asia/Shanghai")
    start = _shanghai_midnight(-3) + timedelta(hours=8, minutes=30)
    typed = start.strftime("%Y-%m-%dT%H:%M")  # what the datetime-local field sends
    form, query, loaded, errors = vote_filters(
        campaign, MultiDict({"start": typed, "nominee": " d001 ", "status": "x"})
    )
    assert errors == {} and form["status"] == "" and form["nominee"] == "D001"
    assert query == {"nominee": "D001", "start": f"{typed}:00+08:00"}
    assert loaded is not None and loaded["start"] == start.astimezone(UTC)
    _, _, loaded, errors = vote_filters(campaign, MultiDict({"flag": "99999999999"}))
    assert loaded is None and errors == {"flag": "线索编号应为正整数"}
    assert describe_vote_reason("velocity") == "速度异常暂扣"
    assert describe_vote_reason("release:admin") == "已放行（admin）"
    assert describe_vote_reason(None) == ""


def test_ledger_rewinds_read_in_the_campaigns_time_zone(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    from voting.models import LedgerRewind

    org.voting_campaign(nominees=1, timezone="America/Los_Angeles")
    seen = utcnow().replace(microsecond=0)
    acknowledged = seen + timedelta(minutes=7)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))
        assert campaign is not None and campaign.timezone == "America/Los_Angeles"
        for key, ack in (("e2e-rewind-1", None), ("e2e-rewind-2", acknowledged)):
            db.session.add(
                LedgerRewind(
                    campaign_id=campaign.id,
                    event_key=key,
                    detected_at=seen,
                    detected_by="watch",
                    reason="restarted",
                    redis_seq=0,
                    known_seq=3,
                    lifted_to=1003,
                    possibly_lost=3,
                    acknowledged_at=ack,
                    acknowledged_by="admin" if ack else None,
                    acknowledgement="已核对" if ack else None,
                )
            )
        db.session.commit()
        db.session.remove()
    staff_login(client, "admin", area="console")
    html = client.get("/console/c/v1/ledger").get_data(as_text=True)
    zone = ZoneInfo("America/Los_Angeles")
    local = seen.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    assert html.count(f'<td class="small">{local}</td>') == 2
    assert "发现时间（America/Los_Angeles）" in html
    assert seen.isoformat() not in html  # never the raw UTC value
    when = acknowledged.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    assert f'admin 已确认：已核对<span class="muted">（{when}）' in html
