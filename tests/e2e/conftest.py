"""End-to-end tests: the real app served on loopback, driven by headless Chromium (Debian's
package) through Playwright. WeChat is the only thing faked: its API by the loopback fake the
voting tests use, its authorisation page by a route in the browser that answers as WeChat does
(a redirect back to our callback with a code)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect
from werkzeug.serving import make_server

from tests.voting.wechat_fake import APP_ID, APP_SECRET, FakeWeChat

# Assertions wait up to 10 s: a shared two-core machine can be slow, never wrong.
expect.set_options(timeout=10_000)

CHROMIUM = os.environ.get("ZUIMEI_CHROMIUM", "/usr/bin/chromium")
WECHAT_UA = (
    "Mozilla/5.0 (Linux; Android 13; V2218A Build/TP1A.220624.014; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/116.0.0.0 Mobile Safari/537.36 XWEB/1160117 "
    "MMWEBSDK/20240301 MMWEBID/2547 MicroMessenger/8.0.48.2580(0x2800303B) WeChat/arm64 "
    "Weixin NetType/4G Language/zh_CN ABI/arm64"
)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
# Where screenshots go: docs/screenshots when asked (make screenshots), else the test's tmp dir.
SHOTS = os.environ.get("ZUIMEI_SCREENSHOT_DIR")


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self._server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


@pytest.fixture
def fake_wechat() -> Iterator[FakeWeChat]:
    with FakeWeChat(app_id=APP_ID, secret=APP_SECRET) as server:
        yield server


@pytest.fixture
def live(make_app: Callable[..., Flask], fake_wechat: FakeWeChat) -> Iterator[LiveServer]:
    app = make_app(
        WECHAT_APP_ID=APP_ID,
        WECHAT_APP_SECRET=APP_SECRET,
        WECHAT_API_BASE=fake_wechat.base,
        WECHAT_TIMEOUT=2,
    )
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def playwright_browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package (README: test command)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


def _wechat_authorize(fake: FakeWeChat, openid: str) -> Callable[[Any], None]:
    """Answer open.weixin.qq.com's authorisation page as WeChat does for snsapi_base: no
    prompt, straight back to redirect_uri with a one-time code and the state."""
    counter = {"n": 0}

    def handle(route: Any) -> None:
        query = parse_qs(urlsplit(route.request.url).query)
        counter["n"] += 1
        code = f"code-{openid}-{counter['n']}"
        fake.add_code(code, openid)
        back = urlencode({"code": code, "state": query["state"][0]})
        target = query["redirect_uri"][0] + "?" + back
        route.fulfill(status=302, headers={"Location": target})

    return handle


# WeChat's JS-SDK as the page meets it: wx.config / wx.ready / the share setters, recording
# what the page asks for in window.wx.calls.
FAKE_JSSDK = """
window.wx = {
  calls: [],
  config: function (c) { this.calls.push(['config', c]); },
  ready: function (f) { setTimeout(f, 0); },
  error: function () {},
  updateAppMessageShareData: function (d) { this.calls.push(['share', d]); },
  updateTimelineShareData: function (d) { this.calls.push(['timeline', d]); }
};
"""


def serve_fake_jssdk(context: Any) -> None:
    context.route(
        "https://res.wx.qq.com/**",
        lambda route: route.fulfill(
            status=200, content_type="application/javascript", body=FAKE_JSSDK
        ),
    )


@pytest.fixture
def phone(playwright_browser: Any, fake_wechat: FakeWeChat) -> Iterator[Any]:
    """A phone in WeChat: small touch viewport, WeChat's user agent, Chinese locale."""
    context = playwright_browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        user_agent=WECHAT_UA,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
    )
    # Nothing may leave the machine (the JS-SDK script from res.wx.qq.com included) but the
    # authorisation page, answered here; the later route wins where both match.
    context.route("https://**/*", lambda route: route.abort())
    context.route("https://open.weixin.qq.com/**", _wechat_authorize(fake_wechat, "openid-e2e-1"))
    serve_fake_jssdk(context)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def desktop(playwright_browser: Any) -> Iterator[Any]:
    context = playwright_browser.new_context(viewport=DESKTOP, locale="zh-CN")
    context.route("https://**/*", lambda route: route.abort())
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Any, str], Path]:
    folder = Path(SHOTS) if SHOTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        return path

    return take


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The werkzeug test server does not close a static file's handle when the browser drops the
    connection mid-response (a navigation away); the handle is then collected with a warning.
    gunicorn closes it. Only that warning is ignored, and only in these tests."""
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore:Exception ignored in. <_io.FileIO"
                    ":pytest.PytestUnraisableExceptionWarning"
                )
            )
            item.add_marker(pytest.mark.filterwarnings("ignore:unclosed file:ResourceWarning"))
