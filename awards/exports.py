"""Exports for the office: their kinds and files, starting one (or joining an identical one
already on its way), its job's state, the campaign's recent exports, a download.

The vote browser's exports (``votes_xlsx``, ``votes_csv``) carry the browser's filters; their
rows are written by ``voting.exports``. Every export runs as an RQ job on the ``exports`` queue
(``awards.jobs``), never inside a request."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

from flask import current_app
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job

from awards.export_winners import winners_version
from campaigns.models import Campaign
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import redis_store
from voting.exports import dump_filters

KINDS = ("workbook", "winners_html", "audit_csv", "votes_xlsx", "votes_csv")
# Kinds that take the vote browser's filters.
VOTE_KINDS = ("votes_xlsx", "votes_csv")
EXTENSIONS = {
    "workbook": "xlsx",
    "winners_html": "html",
    "audit_csv": "csv",
    "votes_xlsx": "xlsx",
    "votes_csv": "csv",
}
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIMETYPES = {
    "workbook": XLSX_MIMETYPE,
    "winners_html": "text/html",
    "audit_csv": "text/csv",
    "votes_xlsx": XLSX_MIMETYPE,
    "votes_csv": "text/csv",
}
# What the downloaded file is called (the campaign slug goes in front).
DOWNLOAD_NAMES = {
    "workbook": "评选档案.xlsx",
    "winners_html": "评选结果公示.html",
    "audit_csv": "操作日志.csv",
    "votes_xlsx": "投票明细.xlsx",
    "votes_csv": "投票明细.csv",
}
# The vote kinds' names and help on the console's exports page (awards.labels has the others).
VOTE_EXPORT_LABELS = {
    "votes_xlsx": "投票明细（Excel）",
    "votes_csv": "投票明细（CSV）",
}
VOTE_EXPORT_HELP = {
    "votes_xlsx": (
        "全部投票逐条明细（在投票浏览页可按条件筛选后导出）；"
        "超过 Excel 单表行数上限时自动续在下一张表。"
    ),
    "votes_csv": "全部投票逐条明细，CSV（UTF-8），适合数百万条的大型导出和程序处理。",
}
QUEUE = "exports"
JOB_TIMEOUT = 1800
# A vote workbook of millions of rows takes a while (openpyxl writes a few thousand rows a
# second: bench/vote_export.py), so the vote kinds may run longer.
VOTE_JOB_TIMEOUT = 4 * 3600
RESULT_TTL = 86400
# Files older than this are past the job result's life, after which no download link reaches
# them: they are removed when a new export is started.
KEEP_SECONDS = RESULT_TTL + VOTE_JOB_TIMEOUT + 3600
# How many of a campaign's exports the console lists (newest first).
RECENT = 20
RUNNING = ("queued", "started", "deferred", "scheduled")

JOB_NAME = "awards.jobs.export_job"
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"^\d+-([a-z_]+)-[A-Za-z0-9_-]+\.(xlsx|html|csv)$")


def exports_dir() -> Path:
    return Path(current_app.instance_path) / "exports"


def file_name(campaign_id: int, kind: str, token: str) -> str:
    """``{campaign_id}-{kind}-{job_id}.{ext}``, the name an export job writes under."""
    return f"{campaign_id}-{kind}-{token}.{EXTENSIONS[kind]}"


def _prune(folder: Path, keep_seconds: int = KEEP_SECONDS) -> None:
    """Remove exports no download link can reach any more (and leftovers of crashed jobs)."""
    if not folder.is_dir():
        return
    cutoff = time.time() - keep_seconds
    for entry in folder.iterdir():
        if not (_FILE_NAME.match(entry.name) or entry.name.endswith(".part")):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()


def job_timeout(kind: str) -> int:
    return VOTE_JOB_TIMEOUT if kind in VOTE_KINDS else JOB_TIMEOUT


def _check(kind: str, filters: dict[str, Any] | None) -> dict[str, Any]:
    if kind not in KINDS:
        raise ValidationFailed("不支持的导出类型", code="invalid_kind", details={"kind": kind})
    dumped = dump_filters(filters)
    if dumped and kind not in VOTE_KINDS:
        raise ValidationFailed(
            "该导出类型不支持筛选条件",
            code="filters_not_supported",
            details={"kind": kind, "filters": sorted(dumped)},
        )
    return dumped


def _running_key(campaign_id: int, kind: str, filters: dict[str, Any]) -> str:
    what = json.dumps([kind, filters], sort_keys=True, ensure_ascii=False)
    return redis_store.key(
        "exports", "running", campaign_id, hashlib.sha256(what.encode()).hexdigest()[:32]
    )


def _recent_key(campaign_id: int) -> str:
    return redis_store.key("exports", "recent", campaign_id)


def running_export(
    campaign: Campaign, kind: str, filters: dict[str, Any] | None = None
) -> str | None:
    """The id of an identical export of ``campaign`` (same kind, same filters) that is queued or
    running, if there is one: starting it again would only build the same file twice."""
    dumped = _check(kind, filters)
    job_id = redis_store.client.get(_running_key(campaign.id, kind, dumped))
    if not job_id:
        return None
    job_id = job_id.decode() if isinstance(job_id, bytes) else str(job_id)
    try:
        status = _status_text(_job_of(campaign, job_id))
    except NotFound:
        return None
    return job_id if status in RUNNING else None


def start_export(campaign: Campaign, kind: str, filters: dict[str, Any] | None = None) -> str:
    """The id of a new export of ``campaign`` (audited: exports carry personal data). The caller
    commits, then enqueues the job under that id (``awards.jobs.enqueue_export``). Only the vote
    kinds take filters (the vote browser's, as ``VoteFilterSchema`` loads them)."""
    dumped = _check(kind, filters)
    if kind == "winners_html":
        # Refused at once, as the page's disabled button says; the job checks again (the result
        # may be reopened between the two).
        winners_version(campaign)
    _prune(exports_dir())
    job_id = str(uuid.uuid4())
    after: dict[str, Any] = {"kind": kind}
    if dumped:
        after["filters"] = dumped
    audit.record("export.start", "export", job_id, campaign_id=campaign.id, after=after)
    return job_id


def remember(campaign_id: int, kind: str, filters: dict[str, Any], job_id: str) -> None:
    """After the job is queued: list it among the campaign's recent exports, and mark it as the
    running export of its kind and filters (until it would time out)."""
    client = redis_store.client
    recent = _recent_key(campaign_id)
    pipe = client.pipeline()
    pipe.set(_running_key(campaign_id, kind, filters), job_id, ex=job_timeout(kind))
    pipe.zadd(recent, {job_id: time.time()})
    pipe.zremrangebyrank(recent, 0, -(RECENT + 1))
    pipe.expire(recent, KEEP_SECONDS)
    pipe.execute()


def recent_exports(campaign: Campaign) -> list[dict[str, Any]]:
    """The campaign's latest exports (newest first) whose jobs are still known, with status."""
    ids = redis_store.client.zrevrange(_recent_key(campaign.id), 0, RECENT - 1)
    items = []
    for raw in ids:
        job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        with contextlib.suppress(NotFound):
            items.append(export_status(campaign, job_id))
    return items


def _job_of(campaign: Campaign, job_id: str) -> Job:
    missing = NotFound("导出任务不存在或已过期", code="export_not_found")
    if not _JOB_ID.match(job_id or ""):
        raise missing
    try:
        job = Job.fetch(job_id, connection=redis_store.client)
        belongs = job.func_name == JOB_NAME and list(job.args[:1]) == [campaign.id]
    except (NoSuchJobError, DeserializationError, ValueError, TypeError, AttributeError) as exc:
        raise missing from exc
    if not belongs:
        raise missing
    return job


def _status_text(job: Job) -> str:
    try:
        status = job.get_status(refresh=True)
    except InvalidJobOperation:  # the job's hash expired between fetch and now
        raise NotFound("导出任务不存在或已过期", code="export_not_found") from None
    return str(getattr(status, "value", status))


def _export_error(job: Job, status: str) -> dict[str, str] | None:
    if status not in ("failed", "stopped", "canceled"):
        return None
    error = job.meta.get("error")
    if isinstance(error, dict) and error.get("code"):
        return {"code": str(error["code"]), "message": str(error.get("message") or "")}
    return {"code": "export_failed", "message": "导出失败，请稍后重试或联系系统管理员"}


def export_status(campaign: Campaign, job_id: str) -> dict[str, Any]:
    """Where a campaign's export job stands: status, progress 0–100, its file, its error."""
    job = _job_of(campaign, job_id)
    status = _status_text(job)
    result = job.return_value() if status == "finished" else None
    finished = isinstance(result, dict) and bool(result.get("file"))
    meta = job.meta
    return {
        "job_id": job.id,
        "kind": job.args[1] if len(job.args) > 1 else None,
        "filters": dict(job.args[2] or {}) if len(job.args) > 2 else {},
        "status": status,
        "progress": 100 if finished else int(meta.get("progress") or 0),
        "rows_done": meta.get("rows_done"),
        "rows_total": meta.get("rows_total"),
        "requested_at": meta.get("requested_at"),
        "requested_by": meta.get("requested_by"),
        "file": result["file"] if finished else None,
        "size": result.get("size") if finished else None,
        "error": _export_error(job, status),
    }


def export_file(campaign: Campaign, job_id: str) -> Path:
    """The finished export's file; 409 ``export_not_ready`` before the job finished."""
    state = export_status(campaign, job_id)
    if state["status"] != "finished" or not state["file"]:
        if state["error"]:
            raise Conflict(
                "导出失败，没有可下载的文件", code="export_failed", details=state["error"]
            )
        raise Conflict(
            "导出尚未完成，请稍后再试",
            code="export_not_ready",
            details={"status": state["status"], "progress": state["progress"]},
        )
    name = state["file"]
    path = exports_dir() / name
    if not _FILE_NAME.match(name) or not path.is_file():
        raise NotFound("导出文件已过期，请重新导出", code="export_not_found")
    return path


def kind_of(path: Path) -> str:
    """The export kind a file holds, from its name (``{campaign_id}-{kind}-{job_id}.{ext}``)."""
    match = _FILE_NAME.match(path.name)
    if match is None or match.group(1) not in KINDS:
        raise NotFound("导出文件已过期，请重新导出", code="export_not_found")
    return match.group(1)


def download_name(campaign: Campaign, kind: str) -> str:
    return f"{campaign.slug}-{DOWNLOAD_NAMES[kind]}"
