"""A fake of Tencent Cloud's SMS API (2021-01-11) on loopback, for testing core.sms through the
official SDK: every request's TC3-HMAC-SHA256 signature is recomputed here from the secret key
and the request as received, and refused the way Tencent Cloud refuses it when it differs."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal

from tencentcloud.sms.v20210111 import sms_client

from tests.loopback import LoopbackFake

SECRET_ID = "AKIDfakeSecretId0000000000000000"
SECRET_KEY = "fakeSecretKey00000000000000000000"
APP_ID = "1400000001"
SIGN_NAME = "青山卫健"
TEMPLATE_ID = "1000001"
SERVICE = "sms"
# The API version the SDK speaks (its own constant: a version name, not a calendar date).
VERSION = sms_client.SmsClient._apiVersion
MAX_SKEW = 300  # seconds: Tencent Cloud refuses older (or newer) signatures

Failure = Literal["status", "error", "500", "hang", "garbage"]

_AUTH = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[^/]+)"
    r"/tc3_request, SignedHeaders=(?P<headers>[a-z;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def tc3_signature(
    secret_key: str,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    signed_headers: str,
    payload: bytes,
    timestamp: str,
    date: str,
    service: str,
) -> str:
    """Tencent Cloud's TC3-HMAC-SHA256, written from its specification (not the SDK's code)."""
    # Each signed header as "name:value\n", name and value in lower case, value trimmed.
    canonical_headers = "".join(
        f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed_headers.split(";")
    )
    canonical_request = "\n".join(
        [
            method,
            path,
            query,
            canonical_headers,
            signed_headers,
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    k_date = _hmac(("TC3" + secret_key).encode(), date)
    k_service = _hmac(k_date, service)
    k_signing = _hmac(k_service, "tc3_request")
    return hmac.new(k_signing, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencentSms(LoopbackFake):
    """``SendSms`` with Tencent Cloud's answers and error codes.

    ``sent`` lists the messages accepted ({"phone", "params", "template", "serial"}); ``calls``
    counts requests that reached the API (signed or not); ``verified`` counts signatures that
    checked out. ``fail_next`` spoils the next request(s)."""

    thread_name = "fake-tencent-sms"

    def __init__(
        self,
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
        app_id: str = APP_ID,
        sign_name: str = SIGN_NAME,
        templates: tuple[str, ...] = (TEMPLATE_ID,),
    ) -> None:
        super().__init__()
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.sign_name = sign_name
        self.templates = set(templates)
        self.sent: list[dict[str, Any]] = []
        self.calls = 0
        self.verified = 0
        self.requests: list[dict[str, Any]] = []  # headers and body of each request
        self.hang_seconds = 5.0
        self._failures: list[tuple[Failure, str]] = []
        self._lock = threading.Lock()

    # --- set-up ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The value for ZUIMEI_SMS_ENDPOINT."""
        return self.base

    def fail_next(self, how: Failure = "500", code: str = "InternalError.OtherError") -> None:
        """Spoil the next request: ``status`` answers 200 with the number's SendStatus ``code``
        (e.g. LimitExceeded.PhoneNumberDailyLimit), ``error`` answers Tencent Cloud's
        ``Response.Error`` with ``code``, ``500`` an HTTP 500 page, ``hang`` nothing until past
        the client's timeout, ``garbage`` a 200 that is not JSON. Calls queue up."""
        with self._lock:
            self._failures.append((how, code))

    def take_failure(self) -> tuple[Failure, str] | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    # --- the API -----------------------------------------------------------------------------

    def authenticate(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        """The error code Tencent Cloud would answer for this request's signature, or ""."""
        match = _AUTH.match(headers.get("authorization", ""))
        if match is None:
            return "AuthFailure.SignatureFailure"
        if match["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound"
        timestamp = headers.get("x-tc-timestamp", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > MAX_SKEW:
            return "AuthFailure.SignatureExpire"
        date = datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d")
        if match["date"] != date or match["service"] != SERVICE:
            return "AuthFailure.SignatureFailure"
        if not {"content-type", "host"} <= set(match["headers"].split(";")):
            return "AuthFailure.SignatureFailure"
        path_part, _, query = path.partition("?")
        expected = tc3_signature(
            self.secret_key,
            method=method,
            path=path_part,
            query=query,
            headers=headers,
            signed_headers=match["headers"],
            payload=body,
            timestamp=timestamp,
            date=date,
            service=SERVICE,
        )
        if not hmac.compare_digest(expected, match["sig"]):
            return "AuthFailure.SignatureFailure"
        return ""

    def send_sms(
        self, headers: dict[str, str], body: dict[str, Any], refuse: str = ""
    ) -> dict[str, Any]:
        """SendSms; ``refuse`` answers each number with that SendStatus code instead of Ok."""
        if headers.get("x-tc-action") != "SendSms":
            return _error("InvalidAction", "no such action")
        if headers.get("x-tc-version") != VERSION:
            return _error("NoSuchVersion", "no such version")
        if not headers.get("x-tc-region"):
            return _error("MissingParameter", "region missing")
        if str(body.get("SmsSdkAppId")) != self.app_id:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId not found")
        if body.get("SignName") != self.sign_name:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved", "signature unapproved")
        if str(body.get("TemplateId")) not in self.templates:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved", "template unapproved")
        numbers = body.get("PhoneNumberSet") or []
        if not numbers:
            return _error("MissingParameter.EmptyPhoneNumberSet", "no phone number")
        params = [str(p) for p in body.get("TemplateParamSet") or []]
        statuses = []
        for number in numbers:
            serial = f"2433:{uuid.uuid4().hex[:24]}"
            if not re.fullmatch(r"\+861[3-9]\d{9}", str(number)):
                statuses.append(_status(number, "", "InvalidParameterValue.IncorrectPhoneNumber"))
                continue
            if refuse:
                statuses.append(_status(number, "", refuse))
                continue
            with self._lock:
                self.sent.append(
                    {
                        "phone": str(number),
                        "params": params,
                        "template": str(body.get("TemplateId")),
                        "serial": serial,
                    }
                )
            statuses.append(_status(number, serial, "Ok"))
        return {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}}

    def last_code(self, phone: str) -> str:
        """The code in the last message sent to ``phone`` (11 digits or +86…)."""
        wanted = phone if phone.startswith("+86") else f"+86{phone}"
        with self._lock:
            for message in reversed(self.sent):
                if message["phone"] == wanted:
                    return str(message["params"][0])
        raise AssertionError(f"no message was sent to {phone}")


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}
    }


def _status(number: Any, serial: str, code: str) -> dict[str, Any]:
    return {
        "SerialNo": serial,
        "PhoneNumber": str(number),
        "Fee": 1 if code == "Ok" else 0,
        "SessionContext": "",
        "Code": code,
        "Message": "send success" if code == "Ok" else code,
        "IsoCode": "CN",
    }


class _Handler(BaseHTTPRequestHandler):
    owner: FakeTencentSms
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        with self.owner._lock:
            self.owner.calls += 1
            self.owner.requests.append({"headers": headers, "body": raw})
        failure = self.owner.take_failure()
        if failure is not None and failure[0] in ("hang", "500", "garbage"):
            how = failure[0]
            if how == "hang":
                self.owner.released.wait(self.owner.hang_seconds)
                self.close_connection = True
                return
            if how == "500":
                self._send(500, b"<html>500 Internal Server Error</html>", "text/html")
                return
            self._send(200, b"<html>gateway</html>", "text/html")
            return
        refusal = self.owner.authenticate("POST", self.path, headers, raw)
        if refusal:
            self._json(_error(refusal, "signature check failed"))
            return
        with self.owner._lock:
            self.owner.verified += 1
        if failure is not None and failure[0] == "error":
            self._json(_error(failure[1], "injected failure"))
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._json(_error("FailedOperation.JsonParseFail", "bad json"))
            return
        refuse = failure[1] if failure is not None and failure[0] == "status" else ""
        self._json(self.owner.send_sms(headers, body if isinstance(body, dict) else {}, refuse))

    def _json(self, body: dict[str, Any]) -> None:
        # Tencent Cloud answers "application/json" exactly (the SDK checks for it).
        self._send(200, json.dumps(body, ensure_ascii=False).encode(), "application/json")

    def _send(self, status: int, payload: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


FakeTencentSms.handler = _Handler
