"""Exports for the office: their kinds and files, starting one, its job's state, its download."""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from pathlib import Path
from typing import Any

from flask import current_app
from rq.exceptions import DeserializationError, InvalidJobOperation, NoSuchJobError
from rq.job import Job

from campaigns.models import Campaign
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import redis_store

KINDS = ("workbook", "winners_html", "audit_csv")
EXTENSIONS = {"workbook": "xlsx", "winners_html": "html", "audit_csv": "csv"}
MIMETYPES = {
    "workbook": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "winners_html": "text/html",
    "audit_csv": "text/csv",
}
# What the downloaded file is called (the campaign slug goes in front).
DOWNLOAD_NAMES = {
    "workbook": "评选档案.xlsx",
    "winners_html": "评选结果公示.html",
    "audit_csv": "操作日志.csv",
}
QUEUE = "exports"
JOB_TIMEOUT = 1800
RESULT_TTL = 86400
# Files older than this are past the job result's life, after which no download link reaches
# them: they are removed when a new export is started.
KEEP_SECONDS = RESULT_TTL + JOB_TIMEOUT + 3600

JOB_NAME = "awards.jobs.export_job"
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE_NAME = re.compile(r"^\d+-[a-z_]+-[A-Za-z0-9_-]+\.(xlsx|html|csv)$")


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


def start_export(campaign: Campaign, kind: str) -> str:
    """The id of a new export of ``campaign`` (audited: exports carry personal data). The caller
    commits, then enqueues the job under that id (``awards.jobs.enqueue_export``)."""
    if kind not in KINDS:
        raise ValidationFailed("不支持的导出类型", code="invalid_kind", details={"kind": kind})
    _prune(exports_dir())
    job_id = str(uuid.uuid4())
    audit.record("export.start", "export", job_id, campaign_id=campaign.id, after={"kind": kind})
    return job_id


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
    return {
        "job_id": job.id,
        "kind": job.args[1] if len(job.args) > 1 else None,
        "status": status,
        "progress": 100 if finished else int(job.meta.get("progress") or 0),
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
    """The export kind a file holds, from its extension."""
    suffix = path.suffix.lstrip(".")
    return next(kind for kind, ext in EXTENSIONS.items() if ext == suffix)


def download_name(campaign: Campaign, kind: str) -> str:
    return f"{campaign.slug}-{DOWNLOAD_NAMES[kind]}"
