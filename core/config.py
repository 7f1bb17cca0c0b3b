"""Configuration: a class of defaults, the environment, test overrides, one production check."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask

from core import api_docs, clock


class ConfigError(RuntimeError):
    """The configuration cannot run safely; raised at start-up, never during a request."""


class DefaultConfig:
    ENV_NAME = "development"
    SECRET_KEY: str | None = None
    SQLALCHEMY_DATABASE_URI: str | None = None
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] | None = None
    REDIS_URL: str | None = None
    # Every Redis key the app writes starts with this; tests use their own prefix.
    REDIS_PREFIX = "zm"
    # The vote path's own Redis (counters, rankings, quotas, idempotency keys, the ledger
    # stream, freezes); RQ, login throttles, rate limits and caches stay on REDIS_URL. Unset:
    # the vote path uses REDIS_URL too. Forms (docs/scaling.md):
    #   redis-cluster://[user:pass@]host:port[,host:port...]
    #   redis-sentinel://[user:pass@]host:port[,host:port...]/<service>[/<db>]
    #   redis://... | rediss://... | unix://...  (one separate server)
    VOTE_REDIS_URL: str | None = None
    # Stricter mode: after the vote script, WAIT until this many replicas have the vote (0: off)
    # for at most VOTE_WAIT_TIMEOUT_MS; a vote not confirmed in time is answered 503.
    VOTE_WAIT_REPLICAS = 0
    # The vote's own lane beneath Flask (voting/vote_lane.py); off: every vote through the view.
    VOTE_LANE = True
    VOTE_WAIT_TIMEOUT_MS = 100
    # How often (seconds) each process publishes the highest vote sequence it acknowledged, so
    # that a vote Redis that lost acknowledged votes (failover, restore) is detected and its
    # sequence lifted past them; 0 publishes after every vote.
    VOTE_ACK_MARK_INTERVAL = 1.0
    # When the vote Redis is found behind the highest acknowledged number recorded in the
    # database (restored from an older file, restarted empty), its sequence goes on from that
    # number plus this margin. The record is at most about a second old (the watch job runs every
    # second), so the margin must exceed the votes a campaign can acknowledge in that second
    # plus a drain lag: numbers in it may have been given to voters and are never handed out
    # again (docs/voting.md, "Durability: rewinds"). 20,000 covers two seconds at 10,000 votes/s,
    # twice a provincial close; a skipped number costs nothing (it is not reported as missing).
    VOTE_SEQ_REWIND_MARGIN = 20000
    MAX_CONTENT_LENGTH = 2 * 1024 * 1024
    JSON_SORT_KEYS = False

    # flask-smorest / OpenAPI
    API_TITLE = "Zuimei 最美评选 API"
    # The overview at the top of /api/docs (auth, CSRF, errors, idempotency, rate limits).
    API_SPEC_OPTIONS = api_docs.spec_options()
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api"
    OPENAPI_JSON_PATH = "openapi.json"
    OPENAPI_SWAGGER_UI_PATH = "/docs"
    OPENAPI_SWAGGER_UI_URL = (
        None  # served from our own static copy if present, else ReDoc-free page
    )

    # auth
    STAFF_TOKEN_TTL = 8 * 3600
    VOTER_TOKEN_TTL = 7 * 24 * 3600
    LOGIN_SLOW_AFTER = 5  # failures of one (username, address) pair before each try must wait
    LOGIN_LOCK_AFTER = 10  # failures of one (username, address) pair before it is refused
    LOGIN_IP_SLOW_AFTER = 10  # failures from one address (any name) before each try must wait
    LOGIN_IP_LOCK_AFTER = 30  # failures from one address before it is refused
    LOGIN_WINDOW = 15 * 60
    LOGIN_LOCK_SECONDS = 15 * 60

    TRUSTED_PROXIES = 0
    # Hard limits; breaching one answers 429 rate_limited. The vote's own are counted inside
    # the vote script (same round trip); the others use core.ratelimit ("N/minute;M/hour").
    VOTE_IP_PER_MINUTE = 120
    VOTE_VOTER_PER_MINUTE = 20
    VOTER_CREATE_IP_LIMIT = "20/minute;200/hour"
    CHALLENGE_IP_LIMIT = "30/minute"
    # Share posters one address may have drawn (pages/poster.py; kept ones are not counted).
    POSTER_DRAW_IP_LIMIT = "20/minute;300/hour"
    # 我的投票 and receipts (voting/receipt_routes.py): per voter, and the public reads per address.
    RECEIPT_VOTER_LIMIT = "60/minute;600/hour"
    RECEIPT_PUBLIC_IP_LIMIT = "30/minute;300/hour"
    # New first-party device cookies (core/device.py) the page's beacon gives one address; past
    # it a browser gets none and its votes share the address's cookieless soft-limit count.
    DEVICE_COOKIE_ADDRESS_LIMIT = "120/minute;3000/day"
    CHALLENGE_TTL = 120
    CHALLENGE_PASS_TTL = 300
    RATELIMIT_ENABLED = True
    DEVICE_IDENTITY: bool | None = None
    MEDIA_ROOT: str | None = None
    FRAUD_SCAN_INTERVAL = 600  # seconds between scheduled scans of a campaign in voting
    OBJECTION_ATTACHMENT_MAX_BYTES = 1024 * 1024
    MEDIA_VIDEO_MAX_BYTES = 500 * 1024 * 1024
    MEDIA_VIDEO_MAX_SECONDS = 600
    MEDIA_PHOTO_MAX_BYTES = 15 * 1024 * 1024
    # A stamped recommendation form (盖章推荐表, PDF or image) at one level (level_forms).
    LEVEL_FORM_MAX_BYTES = 20 * 1024 * 1024
    MEDIA_TRANSCODE_TIMEOUT = 1800
    MEDIA_TRANSCODE_THREADS = 2
    MEDIA_TRANSCODE_MEMORY_MB = 2048
    # Behind nginx: serve files with X-Accel-Redirect to this internal location (e.g. /_media).
    MEDIA_ACCEL_PREFIX: str | None = None
    # Photos (docs/media.md): more pixels than MAX_PIXELS are refused from the header; at most
    # DECODE_PIXELS are ever decoded (a JPEG is decoded at 1/2, 1/4 or 1/8 scale to fit; a PNG
    # over it, or a WebP over half of it, is refused). A 6300×6300 PNG: 170 KB sent, 160 MB
    # decoded.
    MEDIA_PHOTO_MAX_PIXELS = 50_000_000
    MEDIA_PHOTO_DECODE_PIXELS = 12_000_000
    # Uploads (photos and videos) one nomination may start per local day; then 429.
    MEDIA_UPLOADS_PER_NOMINATION_PER_DAY = 20
    # Clean-up (media.jobs.sweep_abandoned_media): an upload still "receiving" after this many
    # seconds is abandoned; a failed or replaced asset keeps its files this long.
    MEDIA_ABANDONED_AFTER = 24 * 3600
    MEDIA_FAILED_KEEP = 7 * 24 * 3600
    # Objections with an attachment accepted from one address per local day; then 429.
    OBJECTION_ATTACHMENTS_PER_IP_PER_DAY = 5
    # Objections one contact phone may file against one published version (its window); 0: off.
    OBJECTION_PER_PERSON = 5
    # /metrics bearer token (ZUIMEI_METRICS_TOKEN); required in production.
    METRICS_TOKEN: str | None = None
    DEFAULT_TIMEZONE = "Asia/Shanghai"

    # SMS (core/sms.py; docs/voting.md, "Phone voters (sms)"). Off unless configured:
    # ZUIMEI_SMS_PROVIDER=tencent (implied when TENCENTCLOUD_SECRET_ID and ZUIMEI_SMS_APP_ID are
    # set) needs the secret id and key, the app id, the sign name and the code template id;
    # "console" writes codes to the log for the embedded demo and is refused in production.
    SMS_PROVIDER: str | None = None
    TENCENTCLOUD_SECRET_ID: str | None = None
    TENCENTCLOUD_SECRET_KEY: str | None = None
    SMS_APP_ID: str | None = None  # Tencent Cloud's SmsSdkAppId, e.g. 1400000000
    SMS_SIGN_NAME: str | None = None  # the approved signature, e.g. 青山卫健
    SMS_TEMPLATE_ID: str | None = None  # the code template: one variable, {1} = the code
    SMS_REGION = "ap-guangzhou"
    # Where the SDK sends its requests: unset, https://sms.tencentcloudapi.com; a test points it
    # at a loopback fake (http://127.0.0.1:port). Production refuses plain http.
    SMS_ENDPOINT: str | None = None
    SMS_TIMEOUT = 5.0  # seconds for one SendSms call
    SMS_CODE_TTL = 300  # seconds a code is good for
    SMS_CODE_MAX_TRIES = 5  # wrong answers that burn a code
    # Codes sent, counted per phone, per client address and per device cookie (core.ratelimit);
    # answers checked, per address. "" turns one off.
    SMS_PHONE_LIMIT = "1/minute;10/day"
    SMS_IP_LIMIT = "10/minute;100/hour;300/day"
    SMS_DEVICE_LIMIT = "3/minute;20/day"
    SMS_VERIFY_IP_LIMIT = "30/minute;300/hour"

    # Satisfaction programmes 群众评议 (appraisal/, docs/appraisal.md).
    # ZUIMEI_PII_KEY: 32 random bytes, as 64 hex digits or URL-safe base64; encrypts patients'
    # phone numbers at rest. Unset: development derives one from SECRET_KEY; production refuses
    # to store a phone number without it (503 pii_key_missing).
    PII_KEY: str | None = None
    # The invitation template (two variables: {1} the unit's name, {2} the rating link) and the
    # base of the link in it, e.g. https://pj.example.cn (unset: SERVER_NAME, else loopback).
    APPRAISAL_SMS_TEMPLATE_ID: str | None = None
    APPRAISAL_LINK_BASE: str | None = None
    APPRAISAL_SMS_PER_SECOND = 50  # invitations sent per second, all workers together
    APPRAISAL_SMS_MAX_ATTEMPTS = 4  # tries of one invitation while the provider fails transiently
    APPRAISAL_SMS_RETRY_SECONDS = 60  # wait before the first retry, doubled for each next one
    APPRAISAL_SMS_BATCH = 500  # invitations one dispatch run claims
    APPRAISAL_UPLOAD_MAX_ROWS = 20000  # rows in one uploaded file
    APPRAISAL_API_MAX_ROWS = 500  # encounters in one API call
    APPRAISAL_LINK_DAYS = 30  # a rating link is good for this many days after its encounter
    # Walk-in ratings (QR code at a unit's window), per device cookie and per address; page
    # answers per address.
    APPRAISAL_WALKIN_DEVICE_LIMIT = "2/hour;5/day"
    APPRAISAL_WALKIN_IP_LIMIT = "30/hour;200/day"
    APPRAISAL_ANSWER_IP_LIMIT = "30/minute;300/hour"
    # The SMS provider's callbacks (delivery receipts, replies such as 退订/TD) are accepted at
    # /api/v1/appraisal/sms/status|replies?token=<this>; unset, both are off (404).
    APPRAISAL_SMS_CALLBACK_TOKEN: str | None = None
    # A 「不满意」 answer's case is due by the end of this day of the next month (local time).
    APPRAISAL_CASE_DAY = 15


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def load_config(app: Flask, test_config: dict[str, Any] | None = None) -> None:
    """Fill ``app.config`` from defaults, the environment and ``test_config``; then check it."""
    app.config.from_object(DefaultConfig)
    app.config["ENV_NAME"] = os.environ.get("ZUIMEI_ENV", "development").strip().lower()
    app.config.from_prefixed_env("ZUIMEI")
    for name in ("SECRET_KEY", "REDIS_URL"):
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    if os.environ.get("DATABASE_URL"):
        app.config["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(os.environ["DATABASE_URL"])
    for name in (
        "WECHAT_APP_ID",
        "WECHAT_APP_SECRET",
        "WECHAT_API_BASE",
        # Tencent Cloud's own variable names (its SDK and CLI read the same ones).
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
    ):
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    if test_config:
        app.config.update(test_config)

    production = app.config["ENV_NAME"] == "production"
    app.config["EMBEDDED_DATABASE"] = not app.config.get("SQLALCHEMY_DATABASE_URI")
    app.config["EMBEDDED_REDIS"] = not app.config.get("REDIS_URL")
    if production:
        _check_production(app)

    instance = Path(app.instance_path)
    if (
        app.config["EMBEDDED_DATABASE"]
        or app.config["EMBEDDED_REDIS"]
        or not app.config.get("SECRET_KEY")
    ):
        instance.mkdir(parents=True, exist_ok=True)
    if app.config["EMBEDDED_DATABASE"]:
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance / 'zuimei.db'}"
    if app.config["EMBEDDED_REDIS"]:
        app.config["REDIS_URL"] = f"unix://{instance / 'redis.sock'}"
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = _instance_secret(instance)

    app.config["SQLALCHEMY_DATABASE_URI"] = _normalise_db_url(app.config["SQLALCHEMY_DATABASE_URI"])
    app.config["TRUSTED_PROXIES"] = int(app.config.get("TRUSTED_PROXIES") or 0)
    device = app.config.get("DEVICE_IDENTITY")
    app.config["DEVICE_IDENTITY"] = (not production) if device is None else _truthy(device)
    if not app.config.get("MEDIA_ROOT"):
        app.config["MEDIA_ROOT"] = str(instance / "media")
    _configure_sms(app, production)


_SMS_REQUIRED = (
    ("TENCENTCLOUD_SECRET_ID", "TENCENTCLOUD_SECRET_ID"),
    ("TENCENTCLOUD_SECRET_KEY", "TENCENTCLOUD_SECRET_KEY"),
    ("SMS_APP_ID", "ZUIMEI_SMS_APP_ID"),
    ("SMS_SIGN_NAME", "ZUIMEI_SMS_SIGN_NAME"),
    ("SMS_TEMPLATE_ID", "ZUIMEI_SMS_TEMPLATE_ID"),
)


def _configure_sms(app: Flask, production: bool) -> None:
    """The SMS provider: ``tencent``, ``console`` or None (off), checked at start-up."""
    config = app.config
    # from_prefixed_env reads numbers as JSON: ids are text here.
    for name in ("SMS_APP_ID", "SMS_TEMPLATE_ID", "SMS_SIGN_NAME"):
        if config.get(name) not in (None, ""):
            config[name] = str(config[name]).strip()
    provider = str(config.get("SMS_PROVIDER") or "").strip().lower()
    if not provider and config.get("TENCENTCLOUD_SECRET_ID") and config.get("SMS_APP_ID"):
        provider = "tencent"
    if provider in ("", "off", "none", "0", "false"):
        config["SMS_PROVIDER"] = None
        return
    if provider not in ("tencent", "console"):
        raise ConfigError(f"ZUIMEI_SMS_PROVIDER must be tencent or console, not {provider!r}")
    if provider == "console" and production:
        raise ConfigError("ZUIMEI_SMS_PROVIDER=console writes codes to the log: not in production")
    if provider == "tencent":
        missing = [env for key, env in _SMS_REQUIRED if not config.get(key)]
        if missing:
            raise ConfigError("ZUIMEI_SMS_PROVIDER=tencent needs " + ", ".join(missing))
        endpoint = str(config.get("SMS_ENDPOINT") or "")
        if production and "://" in endpoint and not endpoint.startswith("https://"):
            raise ConfigError("ZUIMEI_SMS_ENDPOINT must be https:// in production")
    config["SMS_PROVIDER"] = provider


def _check_production(app: Flask) -> None:
    missing = [
        name
        for name, key in (
            ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI"),
            ("REDIS_URL", "REDIS_URL"),
            ("SECRET_KEY", "SECRET_KEY"),
        )
        if not app.config.get(key)
    ]
    if missing:
        raise ConfigError(
            "ZUIMEI_ENV=production refuses embedded defaults; set " + ", ".join(missing)
        )
    if len(str(app.config["SECRET_KEY"])) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters in production")
    if str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"):
        raise ConfigError("ZUIMEI_ENV=production needs PostgreSQL, not SQLite")
    if clock.offset_seconds():
        raise ConfigError(
            f"{clock.OFFSET_VARIABLE} moves the clock for tests; unset it in production"
        )
    if app.config.get("METRICS_TOKEN") in (None, ""):
        # /metrics names queues, error codes and vote rates: never open to the internet.
        raise ConfigError("ZUIMEI_ENV=production needs ZUIMEI_METRICS_TOKEN for /metrics")


def _normalise_db_url(url: str) -> str:
    # Heroku-style and bare postgres URLs mean psycopg 3 here.
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def _instance_secret(instance: Path) -> str:
    """A development secret generated once into instance/, never into the repository."""
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its secret
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value
