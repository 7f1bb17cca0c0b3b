"""Exports: built by a real RQ worker (SimpleWorker, burst mode), downloaded and read back."""

from __future__ import annotations

import ast
import csv
import io
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from rq import SimpleWorker
from sqlalchemy import func, select, update

from awards import export_winners, export_workbook, exports, jobs, scoring
from awards.labels import ADJUSTMENT_LABELS, OBJECTION_STATUS_LABELS
from awards.models import ResultVersion
from campaigns.labels import AUDIT_ACTION_LABELS, AUDIT_LABELS, AUDIT_OBJECT_LABELS
from campaigns.models import Campaign
from core.errors import Conflict
from core.extensions import db, redis_store
from nominations.labels import ACTION_LABELS, STATUS_LABELS
from tests.factories import Org, campaign_title
from voting import services as voting_services
from voting.labels import DECISION_LABELS, VOTE_STATUS_LABELS
from voting.models import LedgerHead, Vote

SHEETS = ["推荐材料", "投票统计", "异常处理", "评委评分", "评选结果", "操作日志"]
CRITERIA = [
    {"code": "ethics", "name": "医德医风", "max_points": 30},
    {"code": "skill", "name": "业务能力", "max_points": 70},
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INVALID_REASON = "同一设备短时间内重复投票"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.json
    return response.json


def _finalised_campaign(app: Flask, client: FlaskClient, org: Org) -> list[str]:
    """v1: doctors with 4, 2 and 1 votes (one of the first's later ruled invalid), judged by
    `judge` on two criteria (two submitted sheets, one draft), results computed and finalised."""
    numbers = org.voting_campaign(nominees=3)
    voter = 0
    for number, count in zip(numbers, (4, 2, 1), strict=True):
        for _ in range(count):
            voter += 1
            _ok(
                client.post(
                    "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
                ),
                201,
            )
    with app.app_context():
        assert voting_services.drain_campaign("v1") == 7
        # The fraud review is not built yet: rule one vote invalid the way it will.
        first = db.session.scalar(select(Vote.id).where(Vote.nominee_number == numbers[0]))
        db.session.execute(
            update(Vote)
            .where(Vote.id == first)
            .values(status="invalid", status_reason=INVALID_REASON)
        )
        db.session.commit()
        db.session.remove()
    admin = org.headers("admin")
    judge = org.headers("judge")
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.put("/api/v1/admin/campaigns/v1/criteria", json={"items": CRITERIA}, headers=admin))
    _ok(
        client.post(
            "/api/v1/admin/campaigns/v1/judges",
            json={"username": "judge", "categories": ["doctor"]},
            headers=admin,
        )
    )
    for number, scores, submit in (
        (numbers[0], {"ethics": 25, "skill": 60.5}, True),
        (numbers[1], {"ethics": 20, "skill": 50}, True),
        (numbers[2], {"ethics": 10}, False),
    ):
        _ok(
            client.put(
                f"/api/v1/judging/v1/sheets/{number}",
                json={"scores": scores, "submit": submit},
                headers=judge,
            )
        )
    _ok(client.post("/api/v1/admin/campaigns/v1/results", json={}, headers=admin), 201)
    _ok(client.post("/api/v1/admin/campaigns/v1/results/1/finalize", headers=admin))
    return numbers


def _campaign_id(app: Flask, slug: str) -> int:
    with app.app_context():
        campaign_id = db.session.scalar(select(Campaign.id).where(Campaign.slug == slug))
        db.session.remove()
    assert campaign_id is not None
    return campaign_id


def _run_worker(app: Flask) -> None:
    with app.app_context():
        queue = redis_store.queue("exports")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)
        db.session.remove()


def _export(client: FlaskClient, org: Org, slug: str, kind: str) -> dict[str, Any]:
    return _ok(
        client.post(
            f"/api/v1/admin/campaigns/{slug}/exports",
            json={"kind": kind},
            headers=org.headers("admin"),
        ),
        202,
    )


def _download(client: FlaskClient, org: Org, url: str) -> tuple[bytes, str, str]:
    with client.get(url, headers=org.headers("admin")) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        return (
            response.get_data(),
            response.mimetype,
            response.headers["Content-Disposition"],
        )


def _exported(app: Flask, client: FlaskClient, org: Org, slug: str, kind: str) -> bytes:
    started = _export(client, org, slug, kind)
    _run_worker(app)
    state = _ok(
        client.get(
            f"/api/v1/admin/campaigns/{slug}/exports/{started['job_id']}",
            headers=org.headers("admin"),
        )
    )
    assert state["status"] == "finished", state
    body, _, _ = _download(client, org, state["download_url"])
    return body


def _rows(sheet: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in sheet.iter_rows(values_only=True)]


def test_workbook_is_built_by_the_worker_and_downloads(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = _finalised_campaign(app, client, org)
    started = _export(client, org, "v1", "workbook")
    assert started["status"] == "queued" and started["progress"] == 0
    assert started["kind"] == "workbook" and started["download_url"] is None
    _run_worker(app)
    state = _ok(
        client.get(
            f"/api/v1/admin/campaigns/v1/exports/{started['job_id']}", headers=org.headers("admin")
        )
    )
    assert state["status"] == "finished" and state["progress"] == 100 and state["error"] is None
    assert state["file"].endswith(f"-workbook-{started['job_id']}.xlsx")
    assert state["download_url"].endswith(f"/exports/{started['job_id']}/download")
    body, mimetype, disposition = _download(client, org, state["download_url"])
    assert mimetype == XLSX and state["size"] == len(body)
    assert disposition.startswith("attachment;") and "filename*=UTF-8''v1-" in disposition
    workbook = load_workbook(io.BytesIO(body))
    assert workbook.sheetnames == SHEETS
    tallies = _rows(workbook["投票统计"])
    assert tallies[0] == ("编号", "姓名", "奖项", "有效票", "待审票", "无效票", "合计")
    by_number = {row[0]: row[3:] for row in tallies[1:]}
    assert by_number == {
        numbers[0]: (3, 0, 1, 4),
        numbers[1]: (2, 0, 0, 2),
        numbers[2]: (1, 0, 0, 1),
    }
    with app.app_context():
        drained = db.session.scalar(select(func.count(Vote.id)))
        db.session.remove()
    assert sum(row[6] for row in tallies[1:]) == drained == 7
    fraud = _rows(workbook["异常处理"])
    assert ("无效", INVALID_REASON, 1) in [row[:3] for row in fraud]
    nominations = _rows(workbook["推荐材料"])
    assert [row[0] for row in nominations[1:]] == numbers
    assert {row[1] for row in nominations[1:]} == {"已通过"}


def test_jury_sheet_has_a_column_per_criterion_and_the_totals(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    numbers = _finalised_campaign(app, client, org)
    seen: list[int] = []
    with app.app_context():
        path = export_workbook.build_workbook(
            _campaign_id(app, "v1"), tmp_path / "w.xlsx", seen.append
        )
        db.session.remove()
    assert seen[0] == 0 and seen[-1] == 100 and seen == sorted(seen) and len(seen) == 8
    workbook = load_workbook(path)
    jury = _rows(workbook["评委评分"])
    assert jury[0] == (
        "评委账号",
        "评委姓名",
        "候选人编号",
        "候选人姓名",
        "医德医风（30分）",
        "业务能力（70分）",
        "总分",
        "提交时间（Asia/Shanghai）",
        "评语",
    )
    # Submitted sheets only: the draft for the third nominee is not a score yet.
    assert [row[:7] for row in jury[1:]] == [
        ("judge", None, numbers[0], "候选人0", 25, 60.5, 85.5),
        ("judge", None, numbers[1], "候选人1", 20, 50, 70),
    ]
    assert all(isinstance(row[7], datetime) for row in jury[1:])  # a real date-time cell


def test_results_sheet_has_the_version_the_method_and_the_ledger_head(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    numbers = _finalised_campaign(app, client, org)
    workbook = load_workbook(io.BytesIO(_exported(app, client, org, "v1", "workbook")))
    rows = _rows(workbook["评选结果"])
    assert rows[0][0] == "结果版本：第 1 版（定稿）"
    assert rows[1][:3] == ("奖项", "排名", "编号")
    entries = [row for row in rows[2:5]]
    assert [row[2] for row in entries] == numbers  # 3, 2, 1 valid votes and jury 85.5, 70, 0
    assert [row[1] for row in entries] == [1, 2, 3]
    assert [row[5] for row in entries] == [3, 2, 1]
    assert all(row[0] == "十大最美医生" and row[11] == "✓" for row in entries)
    texts = [row[0] for row in rows]
    assert "计算方法" in texts
    for line in scoring.METHOD.splitlines():
        assert line in texts
    facts = {row[0]: row[1] for row in rows if row[0] and len(row) > 1 and row[1] is not None}
    with app.app_context():
        head = db.session.scalar(select(LedgerHead.head_hash))
        db.session.remove()
    assert facts["投票账本链头（SHA-256）"] == head
    assert facts["账本收录选票数"] == 7 and facts["结果版本"] == 1
    assert facts["权重"] == "公众投票 30%，评委评分 70%，主办方评分 0%"
    audit = _rows(workbook["操作日志"])
    assert audit[0][0] == "时间（Asia/Shanghai）"
    assert audit[0][3] == "操作" and audit[0][-1] == "操作代码"
    finalize = [row for row in audit[1:] if row[-1] == "results.finalize"]
    assert len(finalize) == 1 and finalize[0][2:5] == ("评选办", "定稿", "结果版本")
    assert all(row[0].endswith("+08:00") for row in audit[1:])


def test_nominations_sheet_skips_drafts_and_keeps_formula_like_text_as_text(
    app: Flask, org: Org, tmp_path: Path
) -> None:
    org.campaign()
    org.nomination(status="submitted", name="王=医生", summary='=HYPERLINK("http://x","点我")')
    org.nomination(status="draft", name="草稿人")
    with app.app_context():
        path = export_workbook.build_workbook(_campaign_id(app, "c1"), tmp_path / "n.xlsx")
        db.session.remove()
    sheet = load_workbook(path)["推荐材料"]
    rows = _rows(sheet)
    assert len(rows) == 2  # the header and the submitted one
    assert rows[1][1:6] == ("已提交", "十大最美医生", "单位H1", "王=医生", "女")
    summary = sheet.cell(row=2, column=11)
    assert summary.value == '=HYPERLINK("http://x","点我")' and summary.data_type == "s"
    assert rows[1][9] == 12  # years of service: a number, not text
    assert "医生" not in [row[0] for row in _rows(load_workbook(path)["评选结果"])]


def test_only_admins_export(client: FlaskClient, org: Org) -> None:
    org.campaign()
    base = "/api/v1/admin/campaigns/c1/exports"
    for user in ("judge", "unit-h1", "rev-c"):
        headers = org.headers(user)
        refused = client.post(base, json={"kind": "workbook"}, headers=headers)
        assert refused.status_code == 403 and refused.json["error"]["code"] == "forbidden"
        assert client.get(f"{base}/abc", headers=headers).status_code == 403
        assert client.get(f"{base}/abc/download", headers=headers).status_code == 403
    assert client.post(base, json={"kind": "workbook"}).status_code == 401
    wrong = client.post(base, json={"kind": "pdf"}, headers=org.headers("admin"))
    assert wrong.status_code == 422 and "kind" in wrong.json["error"]["details"]["fields"]


def test_unknown_or_foreign_job_is_404(client: FlaskClient, org: Org) -> None:
    org.campaign("c1")
    org.campaign("c2")
    admin = org.headers("admin")
    other = _export(client, org, "c2", "audit_csv")["job_id"]
    for job_id in ("no-such-job", other, "a" * 65):
        for suffix in ("", "/download"):
            missing = client.get(
                f"/api/v1/admin/campaigns/c1/exports/{job_id}{suffix}", headers=admin
            )
            assert missing.status_code == 404, (job_id, suffix)
            assert missing.json["error"]["code"] == "export_not_found"
    assert _ok(client.get(f"/api/v1/admin/campaigns/c2/exports/{other}", headers=admin))[
        "kind"
    ] == ("audit_csv")


def test_download_before_the_worker_runs_is_409(client: FlaskClient, org: Org) -> None:
    org.campaign()
    job_id = _export(client, org, "c1", "workbook")["job_id"]
    url = f"/api/v1/admin/campaigns/c1/exports/{job_id}"
    early = client.get(f"{url}/download", headers=org.headers("admin"))
    assert early.status_code == 409
    assert early.json["error"]["code"] == "export_not_ready"
    assert early.json["error"]["details"] == {"status": "queued", "progress": 0}
    state = _ok(client.get(url, headers=org.headers("admin")))
    assert state["status"] == "queued" and state["download_url"] is None and state["file"] is None


def test_winners_html_escapes_user_text(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign("e1")
    org.nomination("e1", status="approved", name="<script>x</script>", title="主任<b>医师</b>")
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/e1/phase", json={"phase": "judging"}, headers=admin))
    _ok(client.post("/api/v1/admin/campaigns/e1/results", json={}, headers=admin), 201)
    _ok(client.post("/api/v1/admin/campaigns/e1/results/1/finalize", headers=admin))
    started = _export(client, org, "e1", "winners_html")
    _run_worker(app)
    state = _ok(
        client.get(f"/api/v1/admin/campaigns/e1/exports/{started['job_id']}", headers=admin)
    )
    body, mimetype, disposition = _download(client, org, state["download_url"])
    page = body.decode("utf-8")
    assert mimetype == "text/html" and disposition.startswith("attachment;")
    assert "<script" not in page and "<b>" not in page
    assert "<td>&lt;script&gt;x&lt;/script&gt;</td>" in page
    assert "主任&lt;b&gt;医师&lt;/b&gt;" in page
    assert f"<title>{campaign_title()}结果公示</title>" in page
    assert "测试县卫生健康局" in page and "十大最美医生（1名）" in page
    assert "尚未正式公示" in page and "公示期为7天" in page
    assert "@media print" in page and "size: A4" in page
    assert "http" not in page.replace('http-equiv="Content-Security-Policy"', "")


def test_winners_html_of_a_published_result_shows_the_window(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    _finalised_campaign(app, client, org)
    admin = org.headers("admin")
    _ok(client.post("/api/v1/campaigns/v1/phase", json={"phase": "publicity"}, headers=admin))
    campaign_id = _campaign_id(app, "v1")
    with app.app_context():
        version = db.session.scalar(select(ResultVersion).where(ResultVersion.version == 1))
        assert version is not None and version.status == "published"
        zone = ZoneInfo("Asia/Shanghai")
        start, end = (
            version.published_at.astimezone(zone),
            version.publicity_ends_at.astimezone(zone),
        )
        head = version.ledger_head
        path = export_winners.build_winners_html(campaign_id, tmp_path / "w.html")
        db.session.remove()
    page = path.read_text(encoding="utf-8")
    published = f"{start.year}年{start.month}月{start.day}日"
    assert f"发布日期：{published}" in page
    assert f"公示期自{published}起至{end.year}年{end.month}月{end.day}日止。" in page
    assert "尚未正式公示" not in page
    assert f"<code>{head}</code>；账本收录选票 7 张" in page
    assert page.count('<tr><td class="num">') == 3


def test_winners_html_needs_a_final_result(
    app: Flask, client: FlaskClient, org: Org, tmp_path: Path
) -> None:
    org.campaign()
    with app.app_context(), pytest.raises(Conflict) as refused:
        export_winners.build_winners_html(_campaign_id(app, "c1"), tmp_path / "w.html")
    assert refused.value.code == "no_final_result"
    # Asking for it is refused at once (the job would fail the same way).
    refused_now = client.post(
        "/api/v1/admin/campaigns/c1/exports",
        json={"kind": "winners_html"},
        headers=org.headers("admin"),
    )
    assert refused_now.status_code == 409
    assert refused_now.json["error"]["code"] == "no_final_result"


def test_audit_csv_has_a_bom_and_every_decision(app: Flask, client: FlaskClient, org: Org) -> None:
    _finalised_campaign(app, client, org)
    body = _exported(app, client, org, "v1", "audit_csv")
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [
        "时间（Asia/Shanghai）",
        "操作人",
        "角色",
        "操作",
        "对象类型",
        "对象编号",
        "理由",
        "变更前",
        "变更后",
        "IP",
        "操作代码",
    ]
    actions = [row[10] for row in rows[1:]]
    for action in ("campaign.phase", "criteria.set", "score.save", "results.finalize"):
        assert action in actions
    assert actions[-1] == "export.start" and rows[-1][3] == "发起导出"
    finalize = rows[1 + actions.index("results.finalize")]
    assert finalize[1:5] == ["admin", "评选办", "定稿", "结果版本"]
    assert finalize[8] == '{"version":1}'
    # Every action in Chinese, as campaigns.labels words it: no code is left in the 操作 column.
    assert all(row[3] == AUDIT_ACTION_LABELS[row[10]] for row in rows[1:])


def test_job_called_directly_writes_its_file_whole(app: Flask, org: Org) -> None:
    org.campaign()
    with app.app_context():
        made = jobs.export_job(_campaign_id(app, "c1"), "audit_csv")
        folder = exports.exports_dir()
        db.session.remove()
    path = folder / made["file"]
    assert made["file"].startswith(f"{_campaign_id(app, 'c1')}-audit_csv-")
    assert path.stat().st_size == made["size"] > 0
    assert not [p for p in folder.iterdir() if p.name.endswith(".part")]
    path.unlink()


# --- words and layout: what the office reads in Excel is what the screens say ------------------

ROOT = Path(__file__).resolve().parents[2]
# The codes an f-string action takes, by its prefix: the domain's own enumerations.
DYNAMIC_ACTIONS = {
    "nomination.": set(ACTION_LABELS),
    "votes.": set(DECISION_LABELS),
    "results.": set(ADJUSTMENT_LABELS) | {"clear"},
    "objection.": set(OBJECTION_STATUS_LABELS) - {"open"},
}


def _recorded_actions() -> dict[str, str]:
    """Every action code an ``audit.record(...)`` call in the code base can write, with where."""
    found: dict[str, str] = {}
    packages = [
        folder
        for folder in sorted(ROOT.iterdir())
        if (folder / "__init__.py").is_file() and folder.name not in ("tests", "bench")
    ]
    assert {"campaigns", "nominations", "voting", "awards"} <= {p.name for p in packages}
    for path in (path for folder in packages for path in sorted(folder.rglob("*.py"))):
        relative = path.relative_to(ROOT)
        source = path.read_text(encoding="utf-8")
        if "record(" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "record"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "audit"
                and node.args
            ):
                continue
            where = f"{relative}:{node.lineno}"
            first = node.args[0]
            if isinstance(first, ast.JoinedStr):
                head = first.values[0]
                prefix = head.value if isinstance(head, ast.Constant) else ""
                assert prefix in DYNAMIC_ACTIONS, f"{where}: name the codes of f'{prefix}…'"
                found |= {prefix + code: where for code in DYNAMIC_ACTIONS[prefix]}
                continue
            codes = [
                n.value
                for n in ast.walk(first)
                if isinstance(n, ast.Constant) and isinstance(n.value, str)
            ]
            assert codes, f"{where}: an action the test cannot read"
            found |= {code: where for code in codes}
    return found


def test_every_audited_action_has_a_chinese_label() -> None:
    recorded = _recorded_actions()
    assert {"campaign.phase", "nomination.approve", "votes.confirm", "export.start"} <= set(
        recorded
    )
    missing = {code: where for code, where in recorded.items() if code not in AUDIT_ACTION_LABELS}
    assert not missing, f"add these to campaigns.labels.AUDIT_ACTION_LABELS: {missing}"
    # The settings page's change log names its entries with the same map.
    assert AUDIT_LABELS.items() <= AUDIT_ACTION_LABELS.items()
    assert all(label and not label.isascii() for label in AUDIT_ACTION_LABELS.values())


def test_audit_labels_say_what_the_screens_say() -> None:
    for code, label in ACTION_LABELS.items():
        assert AUDIT_ACTION_LABELS[f"nomination.{code}"] == label
    for code, label in DECISION_LABELS.items():
        assert AUDIT_ACTION_LABELS[f"votes.{code}"] == label
    for code, label in ADJUSTMENT_LABELS.items():
        assert AUDIT_ACTION_LABELS[f"results.{code}"] == label
    assert AUDIT_ACTION_LABELS["objection.upheld"] == OBJECTION_STATUS_LABELS["upheld"]
    assert set(AUDIT_OBJECT_LABELS) >= {"nomination", "result_version", "committee_decision"}


def test_every_sheet_keeps_its_headers_in_view_and_says_the_screens_words(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    _finalised_campaign(app, client, org)
    workbook = load_workbook(io.BytesIO(_exported(app, client, org, "v1", "workbook")))
    # One header row frozen; two where a title stands above the headers.
    frozen = {name: workbook[name].freeze_panes for name in SHEETS}
    assert frozen == {name: "A2" for name in SHEETS} | {"异常处理": "A3", "评选结果": "A3"}
    for name in SHEETS:
        rows = _rows(workbook[name])
        below = int(frozen[name][1:])
        assert rows[below - 2][0] and all(
            isinstance(v, str) for v in rows[below - 2] if v is not None
        ), name  # the last frozen row is a row of headers
    nominations = _rows(workbook["推荐材料"])
    assert "通过时间（Asia/Shanghai）" in nominations[0]
    words = {v for row in _rows(workbook["推荐材料"]) + _rows(workbook["异常处理"]) for v in row}
    assert STATUS_LABELS["approved"] in words and VOTE_STATUS_LABELS["invalid"] in words
    assert not words & {"已审定", "待核", "approved", "invalid"}
    audit = _rows(workbook["操作日志"])
    assert {row[3] for row in audit[1:]} <= set(AUDIT_ACTION_LABELS.values())
    assert {"调整阶段", "设置评分标准", "保存评分", "计算结果", "定稿"} <= {row[3] for row in audit}


def test_an_empty_campaign_workbook_still_freezes_its_headers(
    app: Flask, org: Org, tmp_path: Path
) -> None:
    org.campaign()
    with app.app_context():
        path = export_workbook.build_workbook(_campaign_id(app, "c1"), tmp_path / "e.xlsx")
        db.session.remove()
    workbook = load_workbook(path)
    assert workbook["评选结果"].freeze_panes == "A2"
    assert _rows(workbook["评选结果"]) == [("尚未计算评选结果",)]
    assert all(workbook[name].freeze_panes for name in SHEETS)
