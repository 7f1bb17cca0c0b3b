"""Text messages: a small provider interface and Tencent Cloud SMS through its official SDK.

``provider()`` is the configured provider (core/config.py: ``ZUIMEI_SMS_PROVIDER``), or None
when SMS is off. A provider sends one message to one mainland number from an approved template::

    result = sms.provider().send_code("13812341234", "042917", template="1234567")

and answers a :class:`SendResult`, or raises :class:`SmsError` with a stable ``code``:

- :class:`SmsRefused` (``transient`` False): the provider said no and will say no again —
  ``bad_number`` (not a number it can reach, or on its blacklist), ``frequency_limit`` (this
  number has had too many messages lately), ``balance`` (the account's package is used up or in
  arrears), ``config`` (credentials, signature, template or app id wrong), ``refused`` (any
  other refusal). Retrying is pointless.
- :class:`SmsUnavailable` (``transient`` True): ``unavailable`` (the provider's own error, HTTP
  5xx, a connection refused, an answer that is not its JSON) or ``timeout`` (no answer in
  ``ZUIMEI_SMS_TIMEOUT`` seconds: the message may or may not have gone). A later try may work.

Phone numbers are personal information: nothing here logs one except masked (``mask``), and the
SDK's own logger (which writes whole request bodies at DEBUG) is kept out of the app's logs.

``console`` is for the embedded demo only: it writes the code to the log instead of sending it,
must be asked for by name, and the configuration refuses it in production.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from flask import current_app

log = logging.getLogger("zuimei.sms")

# The SDK logs each request and answer (numbers, codes) at DEBUG to this logger: those records
# are never made, and nothing it logs reaches the app's handlers.
_sdk_log = logging.getLogger("tencentcloud_sdk_common")
_sdk_log.setLevel(logging.WARNING)
_sdk_log.propagate = False

DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"

_MAINLAND = re.compile(r"1[3-9]\d{9}")


def mask(phone: str) -> str:
    """A number as logs and pages may show it: 138****1234."""
    digits = re.sub(r"\D", "", phone or "")
    if len(digits) >= 11:
        digits = digits[-11:]
        return f"{digits[:3]}****{digits[-4:]}"
    return "***"


@dataclass(frozen=True)
class SendResult:
    """What the provider said about one message it accepted."""

    provider: str
    message_id: str  # the provider's id for the message (Tencent Cloud: SerialNo)
    status: str  # "accepted": taken for delivery; delivery receipts come later, if at all
    request_id: str | None = None


class SmsError(Exception):
    """The message was not sent. ``code`` is stable English; ``provider_code`` is the provider's
    own (e.g. ``LimitExceeded.PhoneNumberDailyLimit``); ``transient`` says whether to retry."""

    transient = False

    def __init__(
        self,
        code: str,
        message: str = "",
        *,
        provider_code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.provider_code = provider_code
        self.request_id = request_id
        super().__init__(message or code)


class SmsRefused(SmsError):
    """The provider refused; it will refuse again."""


class SmsUnavailable(SmsError):
    """The provider could not be reached or failed on its side; a later try may work."""

    transient = True


class SmsProvider(Protocol):
    name: str

    def send(self, phone: str, params: list[str], *, template: str) -> SendResult:
        """Send template ``template`` with ``params`` to ``phone`` (11 digits, mainland)."""
        ...

    def send_code(self, phone: str, code: str, *, template: str) -> SendResult:
        """Send a one-time code; the template has one variable, the code."""
        ...


def normalise(phone: str) -> str | None:
    """A Chinese mainland mobile number as its 11 digits (``+86``/``86`` and spaces or dashes
    dropped), or None for anything else."""
    value = re.sub(r"[\s-]", "", phone or "")
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("86") and len(value) == 13:
        value = value[2:]
    return value if _MAINLAND.fullmatch(value) else None


# --- Tencent Cloud ---------------------------------------------------------------------------

# Per-number and request-level error codes of SendSms (tencentcloud.sms.v20210111.errorcodes).
_BAD_NUMBER = {
    "InvalidParameterValue.IncorrectPhoneNumber",
    "FailedOperation.PhoneNumberParseFail",
    "FailedOperation.PhoneNumberInBlacklist",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
    "UnsupportedOperation.ChineseMainlandTemplateToGlobalPhone",
    "UnsupportedOperation.UnsupportedRegion",
    "LimitExceeded.AppCountryOrRegionInBlacklist",
}
_FREQUENCY = {
    "LimitExceeded.PhoneNumberThirtySecondLimit",
    "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberDailyLimit",
    "LimitExceeded.PhoneNumberSameContentDailyLimit",
    "LimitExceeded.DeliveryFrequencyLimit",
}
_BALANCE = {
    "FailedOperation.InsufficientBalanceInSmsPackage",
    "UnauthorizedOperation.ServiceSuspendDueToArrears",
}
_CONFIG_PREFIXES = (
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidParameter",
    "MissingParameter",
    "FailedOperation.SignatureIncorrectOrUnapproved",
    "FailedOperation.TemplateIncorrectOrUnapproved",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
    "FailedOperation.TemplateUnapprovedOrNotExist",
    "FailedOperation.MissingSignature",
    "FailedOperation.SignIdNotExist",
    "FailedOperation.TemplateIdNotExist",
)
# Tencent Cloud's own trouble, its API throttle, and the SDK's network and HTTP failures.
_TRANSIENT_PREFIXES = (
    "InternalError",
    "RequestLimitExceeded",
    "ResourceUnavailable",
    "ServerNetworkError",
    "ClientNetworkError",
    "JSONDecodeError",
    "KeyError",
    "TypeError",
    "ValueError",
)


def classify(provider_code: str) -> tuple[str, bool]:
    """(stable code, transient) for a Tencent Cloud error code."""
    if provider_code in _BAD_NUMBER:
        return "bad_number", False
    if provider_code in _FREQUENCY:
        return "frequency_limit", False
    if provider_code in _BALANCE:
        return "balance", False
    if provider_code.startswith(_TRANSIENT_PREFIXES):
        return "unavailable", True
    if provider_code.startswith(_CONFIG_PREFIXES):
        return "config", False
    if provider_code.startswith("LimitExceeded"):
        # The app's own daily or global caps: the account, not this number.
        return "balance", False
    return "refused", False


def _error(provider_code: str, request_id: str | None, detail: str = "") -> SmsError:
    code, transient = classify(provider_code)
    if provider_code == "ClientNetworkError" and "timed out" in detail.lower():
        code = "timeout"
    kind = SmsUnavailable if transient else SmsRefused
    return kind(
        code,
        f"tencent cloud sms: {provider_code}",
        provider_code=provider_code,
        request_id=request_id,
    )


@dataclass(frozen=True)
class TencentSettings:
    secret_id: str
    secret_key: str
    app_id: str
    sign_name: str
    region: str
    endpoint: str  # host[:port]
    scheme: str  # https, or http for a loopback fake
    timeout: float


def _split_endpoint(value: str | None) -> tuple[str, str]:
    if not value:
        return DEFAULT_ENDPOINT, "https"
    if "://" not in value:
        return value.strip("/"), "https"
    parts = urlsplit(value)
    return parts.netloc, parts.scheme or "https"


@functools.lru_cache(maxsize=8)
def _client(settings: TencentSettings):  # type: ignore[no-untyped-def]
    """One SDK client per configuration (and per process), so its HTTP connection is reused."""
    from tencentcloud.common import credential
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.sms.v20210111 import sms_client

    http = HttpProfile(
        protocol=settings.scheme,
        endpoint=settings.endpoint,
        reqMethod="POST",
        reqTimeout=settings.timeout,  # type: ignore[arg-type]  # handed to requests as is
    )
    profile = ClientProfile(signMethod="TC3-HMAC-SHA256", httpProfile=http, language="zh-CN")
    cred = credential.Credential(settings.secret_id, settings.secret_key)
    client = sms_client.SmsClient(cred, settings.region, profile)
    # The SDK reads its proxy from the environment itself and hands it to every request, so
    # requests need not look at the environment and ~/.netrc again for each text (about a tenth
    # of a text's CPU when a county's week goes out).
    session = getattr(getattr(getattr(client, "request", None), "conn", None), "_session", None)
    if session is not None:
        session.trust_env = False
    return client


class TencentSms:
    """Tencent Cloud SMS (API 2021-01-11, ``SendSms``) through ``tencentcloud-sdk-python-sms``:
    the SDK signs each request (TC3-HMAC-SHA256) and talks HTTP; this maps its answers."""

    name = "tencent"

    def __init__(self, settings: TencentSettings) -> None:
        self.settings = settings

    @classmethod
    def from_config(cls) -> TencentSms:
        config = current_app.config
        endpoint, scheme = _split_endpoint(config.get("SMS_ENDPOINT"))
        return cls(
            TencentSettings(
                secret_id=str(config["TENCENTCLOUD_SECRET_ID"]),
                secret_key=str(config["TENCENTCLOUD_SECRET_KEY"]),
                app_id=str(config["SMS_APP_ID"]),
                sign_name=str(config["SMS_SIGN_NAME"]),
                region=str(config.get("SMS_REGION") or "ap-guangzhou"),
                endpoint=endpoint,
                scheme=scheme,
                timeout=float(config.get("SMS_TIMEOUT") or 5),
            )
        )

    def send_code(self, phone: str, code: str, *, template: str) -> SendResult:
        return self.send(phone, [code], template=template)

    def send(self, phone: str, params: list[str], *, template: str) -> SendResult:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )
        from tencentcloud.sms.v20210111 import models

        number = normalise(phone)
        if number is None:
            raise SmsRefused("bad_number", "not a mainland mobile number")
        request = models.SendSmsRequest()
        request.PhoneNumberSet = [f"+86{number}"]
        request.SmsSdkAppId = self.settings.app_id
        request.SignName = self.settings.sign_name
        request.TemplateId = str(template)
        request.TemplateParamSet = [str(p) for p in params]
        try:
            response = _client(self.settings).SendSms(request)
        except TencentCloudSDKException as exc:
            error = _error(str(exc.code or "ClientNetworkError"), exc.requestId, str(exc.message))
            log.warning(
                "sms to %s failed: %s (%s, request %s)",
                mask(number),
                error.code,
                error.provider_code,
                error.request_id,
            )
            raise error from exc
        statuses = response.SendStatusSet or []
        status = statuses[0] if statuses else None
        if status is None or status.Code != "Ok":
            provider_code = (status.Code if status is not None else None) or "InternalError.Empty"
            error = _error(provider_code, response.RequestId)
            log.warning(
                "sms to %s refused: %s (%s, request %s)",
                mask(number),
                error.code,
                provider_code,
                response.RequestId,
            )
            raise error
        # DEBUG: the outcome is recorded where it matters (the invitation's or code's status);
        # a line per accepted text would be 100,000 lines for one county's month of invitations.
        log.debug(
            "sms to %s accepted (template %s, serial %s, request %s)",
            mask(number),
            template,
            status.SerialNo,
            response.RequestId,
        )
        return SendResult(
            provider=self.name,
            message_id=str(status.SerialNo or ""),
            status="accepted",
            request_id=response.RequestId,
        )


class ConsoleSms:
    """The embedded demo's provider: the message goes to the log (number masked), not a phone.
    Only with ``ZUIMEI_SMS_PROVIDER=console``; the configuration refuses it in production."""

    name = "console"

    def send_code(self, phone: str, code: str, *, template: str) -> SendResult:
        return self.send(phone, [code], template=template)

    def send(self, phone: str, params: list[str], *, template: str) -> SendResult:
        number = normalise(phone)
        if number is None:
            raise SmsRefused("bad_number", "not a mainland mobile number")
        log.warning(
            "console sms (demo only, nothing sent) to %s, template %s: %s",
            mask(number),
            template,
            " ".join(params),
        )
        return SendResult(provider=self.name, message_id="console", status="accepted")


def enabled() -> bool:
    return current_app.config.get("SMS_PROVIDER") in ("tencent", "console")


def provider() -> SmsProvider | None:
    """The configured provider, or None when SMS is off."""
    name = current_app.config.get("SMS_PROVIDER")
    if name == "tencent":
        return TencentSms.from_config()
    if name == "console":
        return ConsoleSms()
    return None
