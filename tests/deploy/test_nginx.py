"""The production recipe end to end: two gunicorn processes started with deploy/gunicorn.conf.py
behind an nginx rendered from deploy/nginx/zuimei.conf (placeholders and paths substituted,
nothing else changed), on loopback ports, against this run's database and Redis namespace.

Clients connect from 127.0.0.x addresses other than nginx's own 127.0.0.1, so the address the
app records can only be the client's if nginx's X-Forwarded-For and ZUIMEI_TRUSTED_PROXIES=1 work
together. Each test uses its own source address (edge rate limits are per address) and its own
campaign slug (the cache and the logs are shared by the module's tests).
"""

from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from flask import Flask
from sqlalchemy import select

from campaigns.models import Campaign
from core.extensions import db
from core.types import utcnow
from media.models import MediaAsset
from nominations.models import Nomination
from tests.factories import Org

ROOT = Path(__file__).resolve().parents[2]
NGINX_SITE = ROOT / "deploy" / "nginx" / "zuimei.conf"
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
ACCEL_PREFIX = "/_media"
START_TIMEOUT = 40.0
# The gunicorns behind nginx serve every test of this module: one clock start for all of them.
CLOCK_ANCHOR = "module"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if not found:
        pytest.fail(
            "nginx is not installed; tests/deploy runs the real nginx recipe: "
            "apt-get install nginx-light (or nginx)"
        )
    return found


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1, so the TLS server block runs as written."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.fail("openssl is not installed; tests/deploy makes a test certificate with it")
    cert, key = folder / "tls.crt", folder / "tls.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def render_site(substitutions: dict[str, str]) -> str:
    """deploy/nginx/zuimei.conf with each key replaced; every key must occur, no @@ may remain."""
    text = NGINX_SITE.read_text(encoding="utf-8")
    for old, new in substitutions.items():
        assert old in text, f"{old!r} is no longer in {NGINX_SITE}; update this test's rendering"
        text = text.replace(old, new)
    leftover = [
        line for line in text.splitlines() if "@@" in line and not line.lstrip().startswith("#")
    ]
    assert not leftover, f"unrendered placeholders: {leftover}"
    return text


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header_values(self, name: str) -> list[str]:
        return self.headers.get_all(name) or []


@dataclass
class Stack:
    https_port: int
    http_port: int
    cafile: Path
    web_logs: list[Path]
    media_root: Path
    _connections: dict[str, http.client.HTTPSConnection] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        *,
        source: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request to nginx over TLS, from ``source`` (kept alive per source address)."""
        sent = dict(headers or {})
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        while True:
            conn = self._connections.get(source)
            reused = conn is not None
            if conn is None:
                context = ssl.create_default_context(cafile=str(self.cafile))
                conn = http.client.HTTPSConnection(
                    "127.0.0.1",
                    self.https_port,
                    context=context,
                    timeout=15,
                    source_address=(source, 0),
                )
                self._connections[source] = conn
            try:
                conn.request(method, path, body=payload, headers=sent)
                response = conn.getresponse()
                return Reply(response.status, response.headers, response.read())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                conn.close()
                del self._connections[source]
                if not reused:
                    raise
                # nginx closed an idle kept-alive connection: once more on a new one

    def plain_http(self, path: str) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=15)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            conn.close()

    def web_log_lines(self, needle: str, expected: int = 0) -> list[list[str]]:
        """For each gunicorn, its access-log lines containing ``needle``. gunicorn writes a line
        just after the response, so wait (briefly) until there are ``expected`` in all."""
        deadline = time.monotonic() + 5
        while True:
            found = [
                [line for line in log.read_text().splitlines() if needle in line]
                for log in self.web_logs
            ]
            if sum(map(len, found)) >= expected or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()


def _wait_until_listening(
    port: int, process: subprocess.Popen[bytes], log: Path, what: str
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not listen on {port} within {START_TIMEOUT:.0f} s")


def _wait_until_healthy(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.2)
    pytest.fail(f"gunicorn on {port} not healthy within {START_TIMEOUT:.0f} s:\n{log.read_text()}")


def _stop(processes: list[subprocess.Popen[bytes]], sig: int) -> None:
    """Signal each process, then wait for all of them (gunicorn drains gracefully)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _start_web(
    index: int, port: int, app_config: dict[str, Any], tmp: Path, output: BinaryIO
) -> tuple[subprocess.Popen[bytes], Path]:
    """gunicorn with the production config file; settings through the environment, as the
    systemd unit passes them (the app's from the test run: same database, Redis, prefix)."""
    access_log = tmp / f"web{index}.access.log"
    access_log.touch()
    env = {
        **os.environ,
        "DATABASE_URL": app_config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app_config["REDIS_URL"],
        "SECRET_KEY": app_config["SECRET_KEY"],
        "ZUIMEI_REDIS_PREFIX": app_config["REDIS_PREFIX"],
        "ZUIMEI_INSTANCE_PATH": app_config["INSTANCE_PATH"],
        "ZUIMEI_MEDIA_ROOT": app_config["MEDIA_ROOT"],
        "ZUIMEI_MEDIA_ACCEL_PREFIX": ACCEL_PREFIX,
        "ZUIMEI_TRUSTED_PROXIES": "1",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
        "GUNICORN_GRACEFUL_TIMEOUT": "5",
        "GUNICORN_ACCESS_LOG": str(access_log),
        "GUNICORN_PROC_NAME": f"zuimei-test-web{index}",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp / f"prometheus{index}"),
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    return process, access_log


def _write_nginx_conf(
    tmp: Path, web_ports: list[int], http_port: int, https_port: int, media_root: Path
) -> Path:
    """The repository's site file rendered for loopback, inside a main file that stands in for
    Debian's /etc/nginx/nginx.conf with every path under ``tmp``."""
    cert, key = _self_signed(tmp)
    site = render_site(
        {
            "@@SERVER_NAME@@": "zuimei.test",
            "@@TLS_CERTIFICATE@@": str(cert),
            "@@TLS_CERTIFICATE_KEY@@": str(key),
            "@@WEB_1@@": f"127.0.0.1:{web_ports[0]}",
            "@@WEB_2@@": f"127.0.0.1:{web_ports[1]}",
            "    listen [::]:80;\n": "",
            "    listen [::]:443 ssl http2;\n": "",
            "listen 80;": f"listen 127.0.0.1:{http_port};",
            "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
            "/var/cache/nginx/zuimei": str(tmp / "cache"),
            "/var/log/nginx/zuimei.access.log": str(tmp / "nginx.access.log"),
            "/var/log/nginx/zuimei.error.log": str(tmp / "nginx.error.log"),
            "/srv/zuimei/media/": f"{media_root}/",
            "/srv/zuimei/app/pages/static/": f"{ROOT / 'pages' / 'static'}/",
        }
    )
    (tmp / "zuimei.conf").write_text(site, encoding="utf-8")
    temp_paths = "\n".join(
        f"    {kind}_temp_path {tmp / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = tmp / "nginx.conf"
    main.write_text(
        f"""{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {tmp / "nginx.pid"};
error_log {tmp / "nginx.main.error.log"} warn;
events {{ worker_connections 512; }}
http {{
    types {{
        text/html html; text/css css; application/javascript js;
        image/jpeg jpg; image/png png; video/mp4 mp4;
    }}
    default_type application/octet-stream;
{temp_paths}
    include {tmp / "zuimei.conf"};
}}
""",
        encoding="utf-8",
    )
    return main


@pytest.fixture(scope="module")
def stack(
    app: Flask, app_config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """nginx on two loopback ports (80 → redirect, 443 → TLS) in front of two gunicorns."""
    nginx = _nginx_binary()
    tmp = tmp_path_factory.mktemp("deploy")
    media_root = Path(app_config["MEDIA_ROOT"])
    media_root.mkdir(parents=True, exist_ok=True)
    webs: list[subprocess.Popen[bytes]] = []
    proxies: list[subprocess.Popen[bytes]] = []
    outputs: list[BinaryIO] = []
    try:
        web_ports = [_free_port(), _free_port()]
        web_logs = []
        for index, port in enumerate(web_ports, start=1):
            outputs.append((tmp / f"web{index}.out").open("wb"))
            process, access_log = _start_web(index, port, app_config, tmp, outputs[-1])
            webs.append(process)
            web_logs.append(access_log)
        for index, (process, port) in enumerate(zip(webs, web_ports, strict=True), start=1):
            _wait_until_healthy(port, process, tmp / f"web{index}.out")

        http_port, https_port = _free_port(), _free_port()
        main = _write_nginx_conf(tmp, web_ports, http_port, https_port, media_root)
        check = subprocess.run(
            [nginx, "-p", str(tmp), "-c", str(main), "-t"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert check.returncode == 0, f"nginx -t refused the rendered recipe:\n{check.stderr}"
        outputs.append((tmp / "nginx.out").open("wb"))
        proxies.append(
            subprocess.Popen(
                [nginx, "-p", str(tmp), "-c", str(main), "-g", "daemon off;"],
                stdout=outputs[-1],
                stderr=subprocess.STDOUT,
            )
        )
        _wait_until_listening(https_port, proxies[0], tmp / "nginx.out", "nginx")
        stack = Stack(https_port, http_port, tmp / "tls.crt", web_logs, media_root)
        try:
            yield stack
        finally:
            stack.close()
    finally:
        _stop(proxies, signal.SIGQUIT)  # first: it holds kept-alive connections to gunicorn
        _stop(webs, signal.SIGTERM)
        for output in outputs:
            output.close()


def _ranking(reply: Reply) -> dict[str, int]:
    assert reply.status == 200, reply.body
    return {item["number"]: item["votes"] for item in reply.json()["items"]}


def _cast(stack: Stack, org: Org, slug: str, voter: int, number: str, source: str) -> Reply:
    return stack.request(
        "POST",
        f"/api/v1/campaigns/{slug}/votes",
        source=source,
        body={"nominee": number},
        headers={**org.voter(voter), "X-Forwarded-For": "203.0.113.7"},  # forged by the client
    )


def test_votes_through_nginx_reach_both_hosts_and_carry_the_client_address(
    stack: Stack, org: Org, app: Flask
) -> None:
    slug, source = "nx-votes", "127.0.0.3"
    first, second, third = org.voting_campaign(slug, nominees=3)

    answers = [_cast(stack, org, slug, voter, first, source) for voter in range(1, 7)]
    answers += [_cast(stack, org, slug, voter, second, source) for voter in range(1, 4)]
    assert [a.status for a in answers] == [201] * 9, [a.body for a in answers]
    assert answers[-1].json()["nominee_votes"] == 3

    standings = stack.request(
        "GET", f"/api/v1/campaigns/{slug}/ranking?category=doctor", source=source
    )
    assert _ranking(standings) == {first: 6, second: 3, third: 0}

    # Both gunicorn processes answered votes (nginx spreads them over its upstream).
    per_host = stack.web_log_lines(f"POST /api/v1/campaigns/{slug}/votes", expected=9)
    assert sum(map(len, per_host)) == 9
    assert all(per_host), per_host
    # nginx replaced the client's forged header with the address it saw.
    assert all('xff="127.0.0.3"' in line for lines in per_host for line in lines), per_host

    # The ledger, drained as the worker would, recorded the client's address for every vote.
    from voting import services

    with app.app_context():
        assert services.drain_campaign(slug) == 9
        db.session.remove()
    page = stack.request(
        "GET",
        f"/api/v1/admin/campaigns/{slug}/votes?per_page=50",
        source=source,
        headers=org.headers("admin"),
    )
    assert page.status == 200, page.body
    assert [row["ip"] for row in page.json()["items"]] == ["127.0.0.3"] * 9


def test_public_reads_are_cached_briefly_unless_a_staff_credential_is_sent(
    stack: Stack, org: Org
) -> None:
    slug, source = "nx-cache", "127.0.0.4"
    numbers = org.voting_campaign(slug, nominees=6)
    path = f"/api/v1/campaigns/{slug}/ranking?category=doctor"

    def status(**headers: str) -> str:
        reply = stack.request("GET", path, source=source, headers=headers)
        assert reply.status == 200, reply.body
        assert reply.headers["Cache-Control"] == "public, max-age=5"
        assert reply.headers["Strict-Transport-Security"] == "max-age=31536000"
        return reply.headers["X-Cache-Status"]

    assert status() == "MISS"
    assert status() == "HIT"
    assert status(Cookie="zm_voter=some-voter-token; zm_csrf=x") == "HIT"
    assert status(**org.headers("admin")) == "BYPASS"
    assert status(Cookie="zm_staff=some-staff-token") == "BYPASS"
    # Only the miss and the two bypasses reached gunicorn.
    assert sum(map(len, stack.web_log_lines(f"GET {path} ", expected=3))) == 3

    listing = stack.request(
        "GET",
        f"/api/v1/campaigns/{slug}/nominees?category=doctor",
        source=source,
        headers={"Accept-Encoding": "gzip"},
    )
    assert listing.status == 200
    assert listing.headers["Content-Encoding"] == "gzip"
    assert len(json.loads(gzip.decompress(listing.body))["items"]) == 6

    # The vote path is never cached.
    vote = _cast(stack, org, slug, 1, numbers[0], source)
    assert vote.status == 201, vote.body
    assert "X-Cache-Status" not in vote.headers


def test_a_vote_burst_from_one_address_is_refused_at_the_edge(stack: Stack, org: Org) -> None:
    slug, source = "nx-burst", "127.0.0.5"
    (number,) = org.voting_campaign(slug, nominees=1)

    answers = [_cast(stack, org, slug, voter, number, source) for voter in range(100, 160)]

    edge = [
        a for a in answers if a.status == 429 and a.json()["error"]["details"] == {"source": "edge"}
    ]
    passed = [a for a in answers if a not in edge]
    # burst=20 with nodelay: the first 21 pass at once, the rest only at 10 a second.
    assert len(passed) >= 21
    assert len(edge) >= 20
    assert all(a.status == 201 for a in passed), [a.body for a in passed if a.status != 201]
    for reply in edge:
        assert reply.json()["error"]["code"] == "rate_limited"
        assert reply.headers["Retry-After"] == "1"
        assert reply.headers["Content-Type"] == "application/json"
    # Refused votes never reached gunicorn.
    reached = sum(
        map(len, stack.web_log_lines(f"POST /api/v1/campaigns/{slug}/votes", len(passed)))
    )
    assert reached == len(passed)


def test_media_files_are_sent_by_nginx_after_the_apps_check(
    stack: Stack, org: Org, app: Flask
) -> None:
    slug, source = "nx-media", "127.0.0.6"
    (number,) = org.voting_campaign(slug, nominees=1)
    key = f"p-{secrets.token_hex(16)}"
    content = secrets.token_bytes(200_000)
    folder = stack.media_root / key
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(content)
    (folder / "thumb.jpg").write_bytes(content[:1000])
    with app.app_context():
        nomination = db.session.scalar(
            select(Nomination)
            .join(Campaign, Campaign.id == Nomination.campaign_id)
            .where(Campaign.slug == slug, Nomination.number == number)
        )
        assert nomination is not None
        asset = MediaAsset(
            nomination_id=nomination.id,
            kind="photo",
            status="ready",
            storage_key=key,
            declared_size=len(content),
            received=len(content),
            renditions=[
                {"label": "photo", "file": "photo.jpg"},
                {"label": "thumb", "file": "thumb.jpg"},
            ],
            is_current=True,
            ready_at=utcnow(),
        )
        db.session.add(asset)
        db.session.commit()
        asset_id = asset.id
        db.session.remove()
    url = f"/media/{asset_id}/photo.jpg"

    whole = stack.request("GET", url, source=source)
    assert whole.status == 200
    assert whole.body == content
    assert whole.headers["Content-Type"] == "image/jpeg"
    assert whole.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "X-Accel-Redirect" not in whole.headers
    etags = whole.header_values("ETag")
    assert len(etags) == 1 and etags[0].startswith(f'"{asset_id}-photo.jpg-'), etags

    part = stack.request("GET", url, source=source, headers={"Range": "bytes=1000-1999"})
    assert part.status == 206
    assert part.body == content[1000:2000]
    assert part.headers["Content-Range"] == f"bytes 1000-1999/{len(content)}"

    unchanged = stack.request("GET", url, source=source, headers={"If-None-Match": etags[0]})
    assert unchanged.status == 304

    # The app saw every request (it checks access) but sent no body: nginx did.
    lines = [line for log in stack.web_log_lines(f"GET {url} ", expected=3) for line in log]
    assert len(lines) == 3
    assert all(" 200 0 " in line or " 304 0 " in line for line in lines), lines
    # The internal location cannot be asked for directly.
    direct = stack.request("GET", f"{ACCEL_PREFIX}/{key}/photo.jpg", source=source)
    assert direct.status == 404


def test_plain_http_redirects_and_versioned_assets_are_kept_a_year(stack: Stack) -> None:
    source = "127.0.0.7"
    moved = stack.plain_http("/c/some-campaign?x=1")
    assert moved.status == 301
    assert moved.headers["Location"] == "https://127.0.0.1/c/some-campaign?x=1"

    css = (ROOT / "pages" / "static" / "zm.css").read_bytes()
    versioned = stack.request(
        "GET", "/assets/zm.css?v=0123456789", source=source, headers={"Accept-Encoding": "gzip"}
    )
    assert versioned.status == 200
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert versioned.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(versioned.body) == css
    plain = stack.request("GET", "/assets/zm.css", source=source)
    assert plain.headers["Cache-Control"] == "public, max-age=300"
    assert plain.body == css
    # Served from disk by nginx: gunicorn never saw them.
    assert stack.web_log_lines("/assets/zm.css") == [[], []]
