"""The SMS client in core.sms: Tencent Cloud's official SDK against a fake of its API on
loopback that recomputes every TC3-HMAC-SHA256 signature (tests/voting/sms_fake.py)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from core import config as core_config
from core import sms
from tests.voting.sms_fake import (
    APP_ID,
    SECRET_ID,
    SECRET_KEY,
    SIGN_NAME,
    TEMPLATE_ID,
    VERSION,
    FakeTencentSms,
)

PHONE = "13812341234"


@pytest.fixture
def fake() -> Iterator[FakeTencentSms]:
    with FakeTencentSms() as server:
        yield server


def _settings(fake: FakeTencentSms, **overrides: Any) -> dict[str, Any]:
    return {
        "SMS_PROVIDER": "tencent",
        "TENCENTCLOUD_SECRET_ID": SECRET_ID,
        "TENCENTCLOUD_SECRET_KEY": SECRET_KEY,
        "SMS_APP_ID": APP_ID,
        "SMS_SIGN_NAME": SIGN_NAME,
        "SMS_TEMPLATE_ID": TEMPLATE_ID,
        "SMS_ENDPOINT": fake.endpoint,
        "SMS_TIMEOUT": 1,
        **overrides,
    }


@pytest.fixture
def tc(app: Flask, make_app: Callable[..., Flask], fake: FakeTencentSms) -> Flask:
    """An app whose SMS provider is Tencent Cloud at the fake (``app``: the suite cleans up)."""
    return make_app(**_settings(fake))


def _send(application: Flask, phone: str = PHONE, code: str = "042917") -> sms.SendResult:
    with application.app_context():
        provider = sms.provider()
        assert isinstance(provider, sms.TencentSms)
        return provider.send_code(phone, code, template=TEMPLATE_ID)


def _refusal(application: Flask, phone: str = PHONE) -> sms.SmsError:
    with pytest.raises(sms.SmsError) as info:
        _send(application, phone)
    return info.value


# --- configuration ------------------------------------------------------------------------------


def test_sms_is_off_unless_configured(app: Flask) -> None:
    with app.app_context():
        assert sms.provider() is None and not sms.enabled()


def test_tencent_is_implied_by_its_credentials_and_needs_every_setting(
    fake: FakeTencentSms,
) -> None:
    settings = _settings(fake, SMS_PROVIDER=None)
    flask_app = Flask(__name__)
    flask_app.config.update(settings)
    core_config._configure_sms(flask_app, production=False)
    assert flask_app.config["SMS_PROVIDER"] == "tencent"

    incomplete = Flask(__name__)
    incomplete.config.update(_settings(fake, SMS_SIGN_NAME=None, SMS_TEMPLATE_ID=""))
    with pytest.raises(core_config.ConfigError, match="SMS_SIGN_NAME, ZUIMEI_SMS_TEMPLATE_ID"):
        core_config._configure_sms(incomplete, production=False)


def test_numeric_ids_from_the_environment_are_text(fake: FakeTencentSms) -> None:
    flask_app = Flask(__name__)
    flask_app.config.update(_settings(fake, SMS_APP_ID=1400000001, SMS_TEMPLATE_ID=1000001))
    core_config._configure_sms(flask_app, production=False)
    assert flask_app.config["SMS_APP_ID"] == "1400000001"
    assert flask_app.config["SMS_TEMPLATE_ID"] == "1000001"


def test_production_refuses_the_console_provider_and_a_plain_http_endpoint(
    fake: FakeTencentSms,
) -> None:
    console = Flask(__name__)
    console.config.update(SMS_PROVIDER="console")
    core_config._configure_sms(console, production=False)
    assert console.config["SMS_PROVIDER"] == "console"
    with pytest.raises(core_config.ConfigError, match="console"):
        core_config._configure_sms(console, production=True)

    plain = Flask(__name__)
    plain.config.update(_settings(fake))  # the fake's endpoint is http://127.0.0.1:port
    with pytest.raises(core_config.ConfigError, match="https"):
        core_config._configure_sms(plain, production=True)
    unknown = Flask(__name__)
    unknown.config.update(SMS_PROVIDER="aliyun")
    with pytest.raises(core_config.ConfigError, match="tencent or console"):
        core_config._configure_sms(unknown, production=False)


def test_numbers_are_normalised_and_masked() -> None:
    assert sms.normalise("+86 138-1234-1234") == PHONE
    assert sms.normalise("8613812341234") == PHONE
    for bad in ("12812341234", "1381234123", "138123412345", "+1 2025550123", "abc", ""):
        assert sms.normalise(bad) is None
    assert sms.mask(PHONE) == "138****1234"
    assert sms.mask("+8613812341234") == "138****1234"
    assert sms.mask("12") == "***"


# --- sending ------------------------------------------------------------------------------------


def test_a_code_is_sent_signed_and_its_serial_returned(tc: Flask, fake: FakeTencentSms) -> None:
    result = _send(tc, "+86 138 1234 1234", "042917")
    assert fake.verified == 1 and fake.calls == 1
    [message] = fake.sent
    assert message == {
        "phone": "+8613812341234",
        "params": ["042917"],
        "template": TEMPLATE_ID,
        "serial": result.message_id,
    }
    assert result.provider == "tencent" and result.status == "accepted"
    assert result.message_id.startswith("2433:") and result.request_id
    request = fake.requests[0]
    headers = request["headers"]
    assert headers["authorization"].startswith(f"TC3-HMAC-SHA256 Credential={SECRET_ID}/")
    assert headers["x-tc-action"] == "SendSms" and headers["x-tc-version"] == VERSION
    assert headers["x-tc-region"] == "ap-guangzhou"
    body = json.loads(request["body"])
    assert body["SmsSdkAppId"] == APP_ID and body["SignName"] == SIGN_NAME


def test_the_fake_refuses_a_request_whose_signature_does_not_match(
    tc: Flask, fake: FakeTencentSms
) -> None:
    """The fake's check is real: the SDK's own request verifies, the same request with one byte
    of its body changed (or signed with another key) does not."""
    _send(tc)
    request = fake.requests[0]
    headers, body = request["headers"], request["body"]
    assert fake.authenticate("POST", "/", headers, body) == ""
    tampered = body.replace(b"042917", b"042918")
    assert fake.authenticate("POST", "/", headers, tampered) == "AuthFailure.SignatureFailure"
    other = FakeTencentSms(secret_key="another-key")
    assert other.authenticate("POST", "/", headers, body) == "AuthFailure.SignatureFailure"
    stale = dict(headers, **{"x-tc-timestamp": str(int(time.time()) - 3600)})
    assert fake.authenticate("POST", "/", stale, body) == "AuthFailure.SignatureExpire"


def test_a_wrong_secret_key_is_refused_as_a_configuration_error(
    app: Flask, make_app: Callable[..., Flask], fake: FakeTencentSms
) -> None:
    wrong = make_app(**_settings(fake, TENCENTCLOUD_SECRET_KEY="not-the-key"))
    refused = _refusal(wrong)
    assert isinstance(refused, sms.SmsRefused) and not refused.transient
    assert (refused.code, refused.provider_code) == ("config", "AuthFailure.SignatureFailure")
    assert fake.sent == [] and fake.verified == 0


@pytest.mark.parametrize(
    ("how", "provider_code", "code", "transient"),
    [
        ("status", "LimitExceeded.PhoneNumberDailyLimit", "frequency_limit", False),
        ("status", "LimitExceeded.PhoneNumberThirtySecondLimit", "frequency_limit", False),
        ("status", "InvalidParameterValue.IncorrectPhoneNumber", "bad_number", False),
        ("status", "FailedOperation.PhoneNumberInBlacklist", "bad_number", False),
        ("error", "FailedOperation.InsufficientBalanceInSmsPackage", "balance", False),
        ("error", "UnauthorizedOperation.ServiceSuspendDueToArrears", "balance", False),
        ("error", "LimitExceeded.AppDailyLimit", "balance", False),
        ("error", "FailedOperation.TemplateIncorrectOrUnapproved", "config", False),
        ("error", "AuthFailure.SecretIdNotFound", "config", False),
        ("error", "FailedOperation.ContainSensitiveWord", "refused", False),
        ("error", "InternalError.Timeout", "unavailable", True),
        ("error", "RequestLimitExceeded", "unavailable", True),
        ("500", "ServerNetworkError", "unavailable", True),
        ("garbage", "JSONDecodeError", "unavailable", True),
    ],
)
def test_each_provider_failure_has_a_stable_code(
    tc: Flask,
    fake: FakeTencentSms,
    how: Any,
    provider_code: str,
    code: str,
    transient: bool,
) -> None:
    fake.fail_next(how, provider_code)
    refused = _refusal(tc)
    assert (refused.code, refused.provider_code, refused.transient) == (
        code,
        provider_code,
        transient,
    )
    assert isinstance(refused, sms.SmsUnavailable if transient else sms.SmsRefused)
    assert fake.sent == []
    assert _send(tc).status == "accepted"  # the next one goes through


def test_no_answer_within_the_timeout_is_a_transient_timeout(
    app: Flask, make_app: Callable[..., Flask], fake: FakeTencentSms
) -> None:
    slow = make_app(**_settings(fake, SMS_TIMEOUT=0.5))
    fake.fail_next("hang")
    started = time.monotonic()
    refused = _refusal(slow)
    assert time.monotonic() - started < 3
    assert isinstance(refused, sms.SmsUnavailable) and refused.code == "timeout"
    assert refused.transient


def test_a_provider_out_of_reach_is_unavailable(app: Flask, make_app: Callable[..., Flask]) -> None:
    with FakeTencentSms() as gone:
        settings = _settings(gone)  # its port, closed once the block ends
    closed = make_app(**settings)
    refused = _refusal(closed)
    assert (refused.code, refused.provider_code) == ("unavailable", "ClientNetworkError")


def test_a_number_that_is_not_mainland_is_refused_before_any_request(
    tc: Flask, fake: FakeTencentSms
) -> None:
    refused = _refusal(tc, "+1 2025550123")
    assert refused.code == "bad_number" and fake.calls == 0


def test_logs_show_the_number_masked_never_whole(
    tc: Flask, fake: FakeTencentSms, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _send(tc)
    fake.fail_next("status", "LimitExceeded.PhoneNumberDailyLimit")
    _refusal(tc)
    fake.fail_next("500")
    _refusal(tc)
    assert "138****1234" in caplog.text
    assert PHONE not in caplog.text and "042917" not in caplog.text


def test_the_console_provider_logs_the_code_with_the_number_masked(
    app: Flask, make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    console = make_app(SMS_PROVIDER="console")
    caplog.set_level(logging.INFO, logger="zuimei.sms")
    with console.app_context():
        provider = sms.provider()
        assert isinstance(provider, sms.ConsoleSms)
        result = provider.send_code(PHONE, "042917", template="demo")
    assert result.provider == "console"
    assert "042917" in caplog.text and "138****1234" in caplog.text and PHONE not in caplog.text
