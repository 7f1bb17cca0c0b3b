"""The vote browser's exports as jobs: ``GET …/votes.xlsx`` starts (or joins) an export job and
answers 202 (303 for a browser), a real RQ worker builds the file, the job reports rows done of
total, the workbook continues on a new sheet before Excel's row limit, and ``votes.csv`` streams
while it is small and becomes a job when it is not."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from rq import SimpleWorker
from rq.job import Job
from sqlalchemy import select

from awards import exports as award_exports
from awards import jobs as award_jobs
from campaigns.models import Campaign
from core.extensions import db, redis_store
from core.types import utcnow
from tests.factories import Org
from voting import exports as vote_exports
from voting.models import Vote

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
BASE = "/api/v1/admin/campaigns/v1"
FORMULA_AGENT = "=cmd|' /C calc'!A0"


def _store_votes(app: Flask, slug: str, specs: list[tuple[str, str, str, str | None]]) -> datetime:
    """Votes straight into the table (as the drain leaves them): (nominee, ip, status, agent),
    one a second in chain order, starting 30 minutes ago. Returns the first vote's time."""
    first = (utcnow() - timedelta(minutes=30)).replace(microsecond=0)
    with app.app_context():
        campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
        assert campaign is not None
        zone = ZoneInfo(campaign.timezone)
        for index, (number, ip, status, agent) in enumerate(specs, start=1):
            at = first + timedelta(seconds=index - 1)
            db.session.add(
                Vote(
                    id=f"{slug}-{index:06d}",
                    campaign_id=campaign.id,
                    seq=index,
                    category_code="doctor",
                    nominee_number=number,
                    voter_id=index,
                    at=at,
                    day=at.astimezone(zone).date().isoformat(),
                    ip=ip,
                    device=None,
                    user_agent=agent,
                    status=status,
                    written_status="valid",
                    status_reason="测试" if status == "invalid" else None,
                    chain_index=index,
                    prev_hash="0" * 64,
                    hash=f"{index:064x}",
                )
            )
        db.session.commit()
        db.session.remove()
    return first


def _run_worker(app: Flask) -> None:
    with app.app_context():
        queue = redis_store.queue("exports")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        db.session.remove()


def _queued(app: Flask) -> int:
    with app.app_context():
        return redis_store.queue("exports").count


def _exported_files(app: Flask) -> list[str]:
    with app.app_context():
        folder = award_exports.exports_dir()
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _finished(client: FlaskClient, headers: dict[str, str], state: dict[str, Any]) -> Any:
    done = client.get(state["status_url"], headers=headers)
    assert done.status_code == 200, done.json
    assert done.json["status"] == "finished", done.json
    return done.json


def _download(client: FlaskClient, headers: dict[str, str], url: str) -> tuple[bytes, str]:
    with client.get(url, headers=headers) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_data(), response.mimetype


def _rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


@pytest.fixture
def ballots(app: Flask, org: Org) -> list[str]:
    """v1 with two nominees: 5 votes for the first (one invalid, one from 10.9.9.x with a
    formula-like agent), 3 for the second."""
    numbers = org.voting_campaign(nominees=2)
    a, b = numbers
    _store_votes(
        app,
        "v1",
        [
            (a, "10.9.9.1", "valid", "Mozilla/5.0"),
            (b, "10.1.1.1", "valid", "Mozilla/5.0"),
            (a, "10.9.9.2", "valid", FORMULA_AGENT),
            (a, "10.1.1.2", "invalid", "bot\x01agent"),
            (b, "10.1.1.3", "valid", None),
            (a, "10.1.1.4", "valid", "Mozilla/5.0"),
            (b, "10.1.1.5", "pending", "Mozilla/5.0"),
            (a, "10.1.1.6", "valid", "Mozilla/5.0"),
        ],
    )
    return numbers


def test_workbook_is_a_job_not_built_in_the_request(
    app: Flask, client: FlaskClient, org: Org, ballots: list[str]
) -> None:
    admin = org.headers("admin")
    files = _exported_files(app)
    answer = client.get(f"{BASE}/votes.xlsx?nominee={ballots[0].lower()}", headers=admin)
    assert answer.status_code == 202, answer.json
    state = answer.json
    assert answer.headers["Location"] == state["status_url"]
    assert state["status_url"].endswith(f"/exports/{state['job_id']}")
    assert state["kind"] == "votes_xlsx" and state["status"] == "queued"
    assert state["progress"] == 0 and state["download_url"] is None and state["file"] is None
    assert state["filters"] == {"nominee": ballots[0]}  # as stored: upper case
    assert state["requested_by"] == "admin"
    # Nothing was built in the request: the job waits on the queue and no file exists.
    assert _queued(app) == 1 and _exported_files(app) == files
    early = client.get(f"{state['status_url']}/download", headers=admin)
    assert early.status_code == 409 and early.json["error"]["code"] == "export_not_ready"

    # The same export again joins the one on its way; other filters start another.
    again = client.get(f"{BASE}/votes.xlsx?nominee={ballots[0]}", headers=admin)
    assert again.status_code == 202 and again.json["job_id"] == state["job_id"]
    other = client.get(f"{BASE}/votes.xlsx?nominee={ballots[1]}", headers=admin).json
    assert other["job_id"] != state["job_id"] and _queued(app) == 2

    _run_worker(app)
    done = _finished(client, admin, state)
    assert done["progress"] == 100 and done["rows_done"] == done["rows_total"] == 5
    body, mimetype = _download(client, admin, done["download_url"])
    assert mimetype == XLSX and len(body) == done["size"]
    workbook = load_workbook(io.BytesIO(body))
    assert workbook.sheetnames == ["导出说明", "投票明细-1"]
    assert workbook["投票明细-1"].freeze_panes == "A2"  # the header row stays in view
    info = dict(_rows(workbook["导出说明"]))
    assert info["投票数"] == 5 and info["筛选条件"] == f"候选人编号={ballots[0]}"
    rows = _rows(workbook["投票明细-1"])
    assert rows[0] == vote_exports.COLUMNS
    assert [r[1] for r in rows[1:]] == [ballots[0]] * 5
    assert [r[0] for r in rows[1:]] == [
        "v1-000001",
        "v1-000003",
        "v1-000004",
        "v1-000006",
        "v1-000008",
    ]
    by_id = {r[0]: dict(zip(vote_exports.COLUMNS, r, strict=True)) for r in rows[1:]}
    # What the voter's browser sent stays text: no formula, no character XML cannot carry.
    assert by_id["v1-000003"]["user_agent"] == FORMULA_AGENT
    assert workbook["投票明细-1"]["K3"].data_type == "s"
    assert by_id["v1-000004"]["user_agent"] == "botagent"
    assert by_id["v1-000004"]["status"] == "invalid"
    assert isinstance(by_id["v1-000001"]["at"], datetime)
    # A new identical request after the job finished starts a fresh export.
    fresh = client.get(f"{BASE}/votes.xlsx?nominee={ballots[0]}", headers=admin).json
    assert fresh["job_id"] != state["job_id"] and fresh["status"] == "queued"


def test_the_job_reports_rows_done_of_total_as_it_goes(
    app: Flask,
    client: FlaskClient,
    org: Org,
    ballots: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pages of 3 votes, a report after each: another reader sees the rows grow in Redis."""
    monkeypatch.setattr(vote_exports, "BATCH", 3)
    monkeypatch.setattr(award_jobs, "ROWS_REPORT_EVERY", 0)
    seen: list[tuple[int, Any, Any]] = []
    real_save_meta = Job.save_meta

    def save_meta(job: Job) -> None:
        real_save_meta(job)
        stored = Job.fetch(job.id, connection=job.connection).meta  # as the status call reads it
        seen.append((stored.get("progress"), stored.get("rows_done"), stored.get("rows_total")))

    monkeypatch.setattr(Job, "save_meta", save_meta)
    admin = org.headers("admin")
    state = client.get(f"{BASE}/votes.xlsx", headers=admin).json
    _run_worker(app)
    assert (0, 0, 8) in seen
    assert [s for s in seen if s[1] is not None and s[1] > 0] == [
        (37, 3, 8),
        (75, 6, 8),
        (99, 8, 8),
        (100, 8, 8),
    ]
    done = _finished(client, admin, state)
    assert (done["progress"], done["rows_done"], done["rows_total"]) == (100, 8, 8)


def test_a_workbook_continues_on_a_new_sheet_before_the_row_limit(
    app: Flask,
    client: FlaskClient,
    org: Org,
    ballots: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Excel's 1,048,576 rows lowered to 4: a header and 3 votes a sheet, 8 votes on 3 sheets."""
    assert vote_exports.SHEET_MAX_ROWS == 1_048_576
    monkeypatch.setattr(vote_exports, "SHEET_MAX_ROWS", 4)
    monkeypatch.setattr(vote_exports, "BATCH", 5)  # pages and sheets do not line up
    admin = org.headers("admin")
    state = client.get(f"{BASE}/votes.xlsx", headers=admin).json
    _run_worker(app)
    body, _ = _download(client, admin, _finished(client, admin, state)["download_url"])
    workbook = load_workbook(io.BytesIO(body))
    assert workbook.sheetnames == ["导出说明", "投票明细-1", "投票明细-2", "投票明细-3"]
    sheets = [_rows(workbook[f"投票明细-{n}"]) for n in (1, 2, 3)]
    assert [len(rows) for rows in sheets] == [4, 4, 3]
    assert all(rows[0] == vote_exports.COLUMNS for rows in sheets)
    ids = [row[0] for rows in sheets for row in rows[1:]]
    assert ids == [f"v1-{n:06d}" for n in range(1, 9)]  # chain order, none lost or repeated
    info = dict(_rows(workbook["导出说明"]))
    assert info["投票数"] == 8 and info["明细工作表"] == "投票明细-1、投票明细-2、投票明细-3"

    # Exactly full sheets make no empty extra sheet; no vote at all still gives a header.
    monkeypatch.setattr(vote_exports, "SHEET_MAX_ROWS", 5)
    state = client.get(f"{BASE}/votes.xlsx", headers=admin).json
    nothing = client.get(f"{BASE}/votes.xlsx?status=pending&prefix=192.", headers=admin).json
    _run_worker(app)
    body, _ = _download(client, admin, _finished(client, admin, state)["download_url"])
    assert load_workbook(io.BytesIO(body)).sheetnames == ["导出说明", "投票明细-1", "投票明细-2"]
    body, _ = _download(client, admin, _finished(client, admin, nothing)["download_url"])
    empty = load_workbook(io.BytesIO(body))
    assert empty.sheetnames == ["导出说明", "投票明细-1"]
    assert _rows(empty["投票明细-1"]) == [vote_exports.COLUMNS]


def test_filters_reach_the_job(
    app: Flask, client: FlaskClient, org: Org, ballots: list[str]
) -> None:
    admin = org.headers("admin")
    with app.app_context():
        first = db.session.scalar(select(Vote.at).where(Vote.id == "v1-000001"))
    start = (first + timedelta(seconds=2)).isoformat()
    end = (first + timedelta(seconds=7)).isoformat()  # votes 3 … 7
    query = {"status": "valid", "prefix": "10.1.1.", "start": start, "end": end}
    state = client.get(f"{BASE}/votes.xlsx", query_string=query, headers=admin).json
    assert set(state["filters"]) == {"status", "prefix", "start", "end"}
    _run_worker(app)
    done = _finished(client, admin, state)
    body, _ = _download(client, admin, done["download_url"])
    rows = _rows(load_workbook(io.BytesIO(body))["投票明细-1"])
    assert [r[0] for r in rows[1:]] == ["v1-000005", "v1-000006"]
    assert done["rows_total"] == 2


def test_csv_streams_while_small_and_becomes_a_job_when_large(
    app: Flask,
    client: FlaskClient,
    org: Org,
    ballots: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = org.headers("admin")
    monkeypatch.setattr(vote_exports, "CSV_STREAM_MAX_ROWS", 6)
    monkeypatch.setattr(vote_exports, "BATCH", 2)
    # 6 valid votes: at the limit, streamed in this response (in keyset pages of 2).
    small = client.get(f"{BASE}/votes.csv?status=valid", headers=admin)
    assert small.status_code == 200 and small.mimetype == "text/csv"
    text = small.get_data(as_text=True)
    assert text.startswith("\ufeffid,nominee_number")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert [line[0] for line in lines[1:]] == [f"v1-{n:06d}" for n in (1, 2, 3, 5, 6, 8)]
    assert all(line[3] == "valid" for line in lines[1:])
    assert "'" + FORMULA_AGENT in text  # Excel would run it as a formula
    assert _queued(app) == 0

    # 8 votes: more than the limit, so a job (never built in the request).
    files = _exported_files(app)
    large = client.get(f"{BASE}/votes.csv", headers=admin)
    assert large.status_code == 202 and large.json["kind"] == "votes_csv"
    assert large.headers["Location"] == large.json["status_url"] and _queued(app) == 1
    assert _exported_files(app) == files
    _run_worker(app)
    done = _finished(client, admin, large.json)
    assert done["rows_done"] == done["rows_total"] == 8
    body, mimetype = _download(client, admin, done["download_url"])
    assert mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert tuple(rows[0]) == vote_exports.COLUMNS
    assert [row[0] for row in rows[1:]] == [f"v1-{n:06d}" for n in range(1, 9)]
    assert rows[4][vote_exports.COLUMNS.index("user_agent")] == "bot\x01agent"


def test_a_browser_is_sent_to_the_exports_page(
    app: Flask, client: FlaskClient, org: Org, ballots: list[str]
) -> None:
    from tests.pages.browser import staff_login

    staff_login(client, "admin", area="console")
    html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    answer = client.get(f"{BASE}/votes.xlsx?prefix=10.9.9.", headers=html)
    assert answer.status_code == 303
    job_id = answer.headers["Location"].rsplit("job=", 1)[1]
    assert answer.headers["Location"] == f"/console/c/v1/exports?job={job_id}"
    page = client.get(answer.headers["Location"])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    data = json.loads(re.search(r'id="b2-data">(.*?)</script>', text, re.S).group(1))
    assert data["focus"] == job_id and 'data-kind="votes_xlsx"' in text
    listed = client.get(f"{BASE}/exports").json["items"]
    assert [(e["job_id"], e["kind"], e["filters"]) for e in listed] == [
        (job_id, "votes_xlsx", {"prefix": "10.9.9."})
    ]
    _run_worker(app)
    listed = client.get(f"{BASE}/exports").json["items"]
    assert listed[0]["status"] == "finished" and listed[0]["download_url"]
    with client.get(listed[0]["download_url"]) as response:  # the cookie is enough
        assert response.status_code == 200 and response.mimetype == XLSX


def test_started_from_the_exports_api_with_filters(
    app: Flask, client: FlaskClient, org: Org, ballots: list[str]
) -> None:
    admin = org.headers("admin")
    started = client.post(
        f"{BASE}/exports",
        json={"kind": "votes_csv", "filters": {"nominee": ballots[1], "status": "pending"}},
        headers=admin,
    )
    assert started.status_code == 202 and started.json["filters"] == {
        "nominee": ballots[1],
        "status": "pending",
    }
    refused = client.post(
        f"{BASE}/exports", json={"kind": "workbook", "filters": {"status": "valid"}}, headers=admin
    )
    assert refused.status_code == 422
    assert refused.json["error"]["code"] == "filters_not_supported"
    bad = client.post(
        f"{BASE}/exports",
        json={"kind": "votes_xlsx", "filters": {"prefix": "10.%"}},
        headers=admin,
    )
    assert bad.status_code == 422
    _run_worker(app)
    done = _finished(client, admin, started.json)
    body, _ = _download(client, admin, done["download_url"])
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["v1-000007"]


def test_only_admins_and_only_their_campaigns_exports(
    app: Flask, client: FlaskClient, org: Org, ballots: list[str]
) -> None:
    admin = org.headers("admin")
    for user in ("judge", "unit-h1", "rev-c"):
        headers = org.headers(user)
        for path in ("votes.xlsx", "votes.csv", "exports"):
            refused = client.get(f"{BASE}/{path}", headers=headers)
            assert refused.status_code == 403, (user, path)
            assert refused.json["error"]["code"] == "forbidden"
    assert client.get(f"{BASE}/votes.xlsx").status_code == 401
    assert _queued(app) == 0

    # Another bureau's campaign: same filters, its own job, invisible from v1.
    org.voting_campaign(slug="v2", nominees=1)
    mine = client.get(f"{BASE}/votes.xlsx", headers=admin).json
    theirs = client.get("/api/v1/admin/campaigns/v2/votes.xlsx", headers=admin).json
    assert theirs["job_id"] != mine["job_id"]
    for suffix in ("", "/download"):
        missing = client.get(f"{BASE}/exports/{theirs['job_id']}{suffix}", headers=admin)
        assert missing.status_code == 404 and missing.json["error"]["code"] == "export_not_found"
    assert [e["job_id"] for e in client.get(f"{BASE}/exports", headers=admin).json["items"]] == [
        mine["job_id"]
    ]
    assert client.get("/api/v1/admin/campaigns/nope/votes.xlsx", headers=admin).status_code == 404
    # A bad filter is a 422 with the fields named, never a 500 and never a job.
    bad = client.get(f"{BASE}/votes.xlsx?status=lost&voter=2147483648", headers=admin)
    assert bad.status_code == 422
    assert set(bad.json["error"]["details"]["fields"]) == {"status", "voter"}
    assert _queued(app) == 2
