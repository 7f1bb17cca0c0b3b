"""Logs: the request id on every record, JSON lines in production, one access line per request.

Every log record carries ``request_id``: inside a request it is ``g.request_id`` (core/http.py
takes it from ``X-Request-ID`` or makes one); inside an RQ job it is the id of the request that
enqueued the job (core/jobs.py stores it in the job's meta and sets it here for the job's run).
Records made inside a job also carry ``job`` (the function) and ``job_id``.

``ZUIMEI_LOG_FORMAT=json`` writes one JSON object per line to stderr::

    {"ts": "2026-03-01T08:00:00.123+00:00", "level": "INFO", "logger": "zuimei.access",
     "message": "POST /api/v1/campaigns/v1/votes 201 2.1ms", "request_id": "…", "method": "POST",
     …}

``text`` (the default outside production) leaves logging as it was: Flask's, gunicorn's and RQ's
own human formats. Production defaults to ``json``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
import traceback
from datetime import UTC, datetime
from typing import Any, TextIO

from flask import (
    Flask,
    Response,
    g,
    has_request_context,
    request,
    request_finished,
    request_started,
)

ACCESS_LOGGER = "zuimei.access"
access_log = logging.getLogger(ACCESS_LOGGER)

# Set while an RQ job runs (core/jobs.py): the request that enqueued it, and the job itself.
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "zuimei_request_id", default=None
)
job_var: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "zuimei_job", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is
# written as a field of its own.
_STANDARD = frozenset(
    logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None).__dict__.keys()
) | {"message", "asctime", "request_id", "zuimei_job", "taskName"}


def current_request_id() -> str | None:
    """The request id of the request being served, else of the job being run, else None."""
    if has_request_context():
        request_id = g.get("request_id")
        if request_id:
            return str(request_id)
    return request_id_var.get()


def enter_job(job_id: str, name: str, request_id: str | None) -> tuple[Any, Any]:
    """Mark the running context as job ``name``; every record until :func:`exit_job` carries it."""
    return request_id_var.set(request_id), job_var.set((job_id, name))


def exit_job(tokens: tuple[Any, Any]) -> None:
    request_id_var.reset(tokens[0])
    job_var.reset(tokens[1])


# --- records ----------------------------------------------------------------------------------

_factory_installed = False


def _install_record_factory() -> None:
    """Stamp ``request_id`` (and ``zuimei_job``, ``(job_id, job)`` in a job) on every record at
    creation, so every handler sees them, pytest's caplog included. Once per process. (Hence
    ``extra={"request_id": …}`` is refused by logging: the record has it already.)"""
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = current_request_id()
        # One namespaced attribute for the job: RQ passes ``job_id`` in ``extra=`` itself, and
        # logging refuses an extra key the record already has.
        record.zuimei_job = job_var.get()
        return record

    logging.setLogRecordFactory(factory)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, request_id, then job and job_id
    inside a job, then every ``extra=`` field, then ``exc_info``/``stack_info`` when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        job = getattr(record, "zuimei_job", None)
        if job:
            out["job_id"], out["job"] = job
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exc_info"] = record.exc_text
        if record.stack_info:
            out["stack_info"] = record.stack_info
        return json.dumps(out, ensure_ascii=False, default=str, separators=(",", ":"))


_JSON_HANDLER_MARK = "_zuimei_json_handler"


def configure_json_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every logger's records, as JSON lines, to ``stream`` (stderr) through one root
    handler. Idempotent: a second call only adjusts the level. RQ's worker sees the root handler
    and adds none of its own, so its lines come out as JSON too."""
    root = logging.getLogger()
    if not any(getattr(h, _JSON_HANDLER_MARK, False) for h in root.handlers):
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(JsonFormatter())
        setattr(handler, _JSON_HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else str(level).upper())


_TEXT_HANDLER_MARK = "_zuimei_text_handler"


def configure_worker_text_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """In text mode, show the app's own records (``zuimei.*``: what the periodic jobs did,
    refusals, failures) in the worker's output, in RQ's format (``11:10:49 message``); without
    it only their warnings would reach stderr, bare. Nothing when the root logger has handlers
    (JSON mode, or a host application's set-up) or once done."""
    app_log = logging.getLogger("zuimei")
    if logging.getLogger().handlers or any(
        getattr(h, _TEXT_HANDLER_MARK, False) for h in app_log.handlers
    ):
        return
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    setattr(handler, _TEXT_HANDLER_MARK, True)
    app_log.addHandler(handler)
    if app_log.level == logging.NOTSET:
        app_log.setLevel(level if isinstance(level, int) else str(level).upper())


def log_format(app: Flask) -> str:
    """``json`` or ``text``: ZUIMEI_LOG_FORMAT (app.config LOG_FORMAT), else json in production."""
    chosen = str(app.config.get("LOG_FORMAT") or "").strip().lower()
    if chosen in ("json", "text"):
        return chosen
    return "json" if app.config.get("ENV_NAME") == "production" else "text"


# --- the access line --------------------------------------------------------------------------


def stamp_request_start(sender: Flask, **_: Any) -> None:
    """``request_started`` receiver (also used by core.metrics): when the request began."""
    g.zuimei_started = time.perf_counter()


def _request_finished(sender: Flask, response: Response, **_: Any) -> None:
    started = g.get("zuimei_started")
    log_access(
        request.method,
        request.path,
        response.status_code,
        round((time.perf_counter() - started) * 1000, 2) if started else None,
        request.endpoint,
        request.remote_addr,
    )


def log_access(
    method: str,
    path: str,
    status: int,
    duration_ms: float | None,
    endpoint: str | None,
    remote_addr: str | None,
) -> None:
    """The access line of one request (the path never with its query string: OAuth codes and
    tokens travel there); the error code of a refusal from ``g``."""
    extra: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "duration_ms": duration_ms,
        "endpoint": endpoint,
        "remote_addr": remote_addr,
    }
    error_code = g.get("error_code")
    if error_code:
        extra["error_code"] = error_code
    access_log.info("%s %s %s %sms", method, path, status, duration_ms, extra=extra)


def init_app(app: Flask) -> None:
    """Stamp request ids on records, choose the format, and log access lines when asked.

    ``ZUIMEI_ACCESS_LOG`` (app.config ACCESS_LOG) turns the access line on or off; by default it
    is on in json mode only (in text mode gunicorn's own access log serves)."""
    _install_record_factory()
    fmt = log_format(app)
    app.config["LOG_FORMAT"] = fmt
    if fmt == "json":
        configure_json_logging(app.config.get("LOG_LEVEL") or "INFO")
    access = app.config.get("ACCESS_LOG")
    if access is None:
        access = fmt == "json"
    elif isinstance(access, str):
        access = access.strip().lower() in ("1", "true", "yes", "on")
    app.config["ACCESS_LOG"] = bool(access)
    if app.config["ACCESS_LOG"]:
        if access_log.level == logging.NOTSET:
            access_log.setLevel(logging.INFO)
        request_started.connect(stamp_request_start, app)
        request_finished.connect(_request_finished, app)
