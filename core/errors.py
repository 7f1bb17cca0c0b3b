"""Domain errors and the one error shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger("zuimei.errors")


class AppError(Exception):
    """A refusal the caller can act on. ``code`` is stable English; ``message`` is zh-CN."""

    status = 400
    code = "bad_request"
    message = "请求有误"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class NotFound(AppError):
    status, code, message = 404, "not_found", "未找到该对象"


class Forbidden(AppError):
    status, code, message = 403, "forbidden", "没有权限执行此操作"


class Unauthorized(AppError):
    status, code, message = 401, "unauthorized", "请先登录"


class Conflict(AppError):
    status, code, message = 409, "conflict", "当前状态不允许此操作"


class ValidationFailed(AppError):
    status, code, message = 422, "validation_error", "提交的内容有误，请检查后重试"


class RateLimited(AppError):
    status, code, message = 429, "rate_limited", "操作太频繁，请稍后再试"


class ServiceUnavailable(AppError):
    status, code, message = 503, "service_unavailable", "服务暂时不可用，请稍后再试"


# What the caller sees for HTTP errors that arrive without a domain error behind them.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "请求有误"),
    401: ("unauthorized", "请先登录"),
    403: ("forbidden", "没有权限执行此操作"),
    404: ("not_found", "未找到请求的地址"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "无法提供所请求的格式"),
    409: ("conflict", "当前状态不允许此操作"),
    413: ("payload_too_large", "上传的内容过大"),
    415: ("unsupported_media_type", "请求内容类型不受支持，请使用 application/json"),
    416: ("range_not_satisfiable", "请求的范围无效"),
    422: ("validation_error", "提交的内容有误，请检查后重试"),
    428: ("precondition_required", "需要先完成验证"),
    429: ("rate_limited", "操作太频繁，请稍后再试"),
    500: ("internal_error", "服务器出错了，请稍后再试"),
    503: ("service_unavailable", "服务暂时不可用，请稍后再试"),
}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {"code": code, "message": message, "details": _text_keys(details or {})}
    g.error_code = code  # for the access log and the metrics of this request
    request_id = getattr(g, "request_id", None)
    if request_id:
        body["request_id"] = request_id
    response = jsonify({"error": body})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _text_keys(value: Any) -> Any:
    """Details with every mapping key as text: marshmallow keys a list's item errors by index
    (int) beside field names, and a JSON encoder that sorts keys cannot order the two."""
    if isinstance(value, dict):
        return {str(key): _text_keys(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_text_keys(item) for item in value]
    return value


def _handle_app_error(exc: AppError) -> Response:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    code, message = HTTP_CODES.get(status, ("http_error", "请求无法完成"))
    details: dict[str, Any] = {}
    data = getattr(exc, "data", None)  # webargs puts validation messages here
    if isinstance(data, dict) and "messages" in data:
        messages = data["messages"]
        if _is_malformed_json(messages):
            code, message = "malformed_json", "请求体不是合法的 JSON"
            status = 400
        else:
            details = {"fields": _flatten_locations(messages)}
    headers = {}
    if status == 405 and exc.get_response().headers.get("Allow"):
        headers["Allow"] = exc.get_response().headers["Allow"]
    if isinstance(data, dict) and data.get("headers"):
        headers.update(data["headers"])
    return error_response(status, code, message, details, headers)


def _is_malformed_json(messages: Any) -> bool:
    if not isinstance(messages, dict):
        return False
    body = messages.get("json")
    return body == ["Invalid JSON body."] or (
        isinstance(body, dict) and body.get("_schema") == ["Invalid JSON body."]
    )


def _flatten_locations(messages: Any) -> Any:
    """webargs nests messages by location (json, query); callers care about the fields."""
    if isinstance(messages, dict) and set(messages) <= {
        "json",
        "query",
        "form",
        "headers",
        "files",
    }:
        merged: dict[str, Any] = {}
        for part in messages.values():
            if isinstance(part, dict):
                merged.update(part)
        return merged
    return messages


def _handle_unexpected(exc: Exception) -> Response:
    if isinstance(exc, HTTPException):
        return _handle_http_exception(exc)
    if isinstance(exc, redis.RedisError | ConnectionError):
        # Redis is out of reach (a rate-limit check, a counter read): refuse, never guess.
        log.error("redis unavailable on %s %s: %s", request.method, request.path, exc)
        code, message = HTTP_CODES[503]
        return error_response(503, code, message)
    log.exception(
        "unhandled error on %s %s (request_id=%s)",
        request.method,
        request.path,
        getattr(g, "request_id", "-"),
    )
    code, message = HTTP_CODES[500]
    return error_response(500, code, message)


def init_app(app: Flask) -> None:
    app.register_error_handler(AppError, _handle_app_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
