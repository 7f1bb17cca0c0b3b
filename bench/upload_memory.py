"""Peak memory of the web process while a large video upload streams in (tus PATCH), or while
a decompression-bomb photo is refused.

    .venv/bin/python -m bench.upload_memory [--megabytes 500]
    .venv/bin/python -m bench.upload_memory --photo-bomb [--side 6300]

Starts gunicorn (one sync worker) on a fresh instance with the demo data, creates a video upload
for a draft nomination, PATCHes the whole body in one request from a generator (so the client
holds no file), samples the worker's RSS every 20 ms, and prints idle RSS, peak RSS and the
difference (target: peak ≤ idle + 80 MB). Traffic goes to 127.0.0.1 only.

``--photo-bomb`` instead POSTs a small PNG of ``--side``×``--side`` pixels (6300: about 170 KB
on the wire, 40 million pixels) as the nominee's photo and prints the answer and the worker's
RSS growth (target: growth ≤ 150 MB).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import cleanup

ROOT = Path(__file__).resolve().parent.parent


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _prepare(instance: Path) -> tuple[str, int]:
    """Demo data with the campaign reopened for nominations; a clerk's token and a draft."""
    os.environ["ZUIMEI_INSTANCE_PATH"] = str(instance)
    from datetime import timedelta

    from flask_migrate import upgrade

    from campaigns import services as campaign_services
    from campaigns.models import Account, Campaign
    from core import create_app
    from core.auth import issue_token
    from core.extensions import db
    from core.types import utcnow
    from nominations import services as nomination_services
    from nominations.demo import seed
    from nominations.schemas import NominationCreateSchema

    app = create_app()
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        seed("bench-password-1")
        campaign = db.session.query(Campaign).one()
        now = utcnow()
        campaign_services.update_campaign(
            campaign,
            {
                "nomination_start": now - timedelta(days=1),
                "nomination_end": now + timedelta(days=1),
            },
        )
        campaign.phase = "nominating"  # straight back for the bench; the API would want a reason
        clerk = db.session.query(Account).filter_by(username="unit-bs").one()
        body = {
            "category": "village",
            "name": "压测",
            "gender": "male",
            "title": "乡村医生",
            "department": "村卫生室",
            "summary": "压测",
            "deeds": "压测" * 50,
            "unit_opinion": "同意",
        }
        nomination = nomination_services.create(
            clerk, campaign, NominationCreateSchema().load(body)
        )
        db.session.commit()
        token = issue_token(
            "staff", {"sub": clerk.id, "role": "unit", "v": clerk.token_version}, 3600
        )
        return token.token, nomination.id


def bomb_png(side: int) -> bytes:
    """A PNG of side×side pixels that compresses to almost nothing: a few lines of noise over
    a flat colour (what a decompression bomb looks like to a naive decoder)."""
    from PIL import Image

    image = Image.new("RGBA", (side, side), (250, 250, 245, 255))
    image.paste(Image.effect_noise((side, 4), 64).convert("RGBA"), (0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


class PeakSampler:
    """The worker's peak RSS, sampled every 20 ms between start() and stop()."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.idle = _rss_kb(pid)
        self.peak = self.idle
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, _rss_kb(self.pid))
            time.sleep(0.02)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_kb(self.pid))


def photo_bomb(port: int, worker: int, token: str, nomination_id: int, side: int) -> None:
    body = bomb_png(side)
    sampler = PeakSampler(worker)
    sampler.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    started = time.perf_counter()
    conn.request(
        "POST",
        f"/api/v1/nominations/{nomination_id}/photo",
        body=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "image/png"},
    )
    answer = conn.getresponse()
    payload = answer.read()
    elapsed = time.perf_counter() - started
    sampler.stop()
    try:
        code = json.loads(payload).get("error", {}).get("code", "-")
    except ValueError:
        code = "-"
    print(
        f"photo bomb: {side}x{side} PNG, {len(body) / 1024:.0f} KB, "
        f"answered {answer.status} {code} in {elapsed:.2f} s"
    )
    print(
        f"web worker RSS: idle {sampler.idle / 1024:.1f} MB, peak {sampler.peak / 1024:.1f} MB, "
        f"growth {(sampler.peak - sampler.idle) / 1024:.1f} MB (target <= 150 MB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--port", type=int, default=8792)
    parser.add_argument("--photo-bomb", action="store_true", help="upload a PNG bomb instead")
    parser.add_argument("--side", type=int, default=6300, help="the bomb's width and height")
    opts = parser.parse_args()
    size = opts.megabytes * 1024 * 1024
    instance = Path(tempfile.mkdtemp(prefix="zm-upload-"))
    env = dict(os.environ, ZUIMEI_INSTANCE_PATH=str(instance))
    os.environ.update(env)
    token, nomination_id = _prepare(instance)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{opts.port}",
            "--workers",
            "1",
            "--timeout",
            "600",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{opts.port}/healthz", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        worker = int(
            subprocess.run(
                ["pgrep", "-P", str(server.pid)], capture_output=True, text=True, check=True
            ).stdout.split()[0]
        )
        if opts.photo_bomb:
            photo_bomb(opts.port, worker, token, nomination_id, opts.side)
            return
        auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
        conn = http.client.HTTPConnection("127.0.0.1", opts.port, timeout=600)
        conn.request(
            "POST",
            f"/api/v1/nominations/{nomination_id}/video",
            headers={**auth, "Upload-Length": str(size)},
        )
        created = conn.getresponse()
        location = created.getheader("Location")
        json.loads(created.read())
        idle = _rss_kb(worker)
        peak = idle
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _rss_kb(worker))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        chunk = os.urandom(1024 * 1024)

        def body():  # type: ignore[no-untyped-def]
            for _ in range(opts.megabytes):
                yield chunk

        started = time.perf_counter()
        conn.request(
            "PATCH",
            location,
            body=body(),
            headers={
                **auth,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(size),
            },
        )
        answer = conn.getresponse()
        answer.read()
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        print(
            f"upload: {opts.megabytes} MB in {elapsed:.1f} s "
            f"({opts.megabytes / elapsed:.0f} MB/s), "
            f"status {answer.status}, Upload-Offset {answer.getheader('Upload-Offset')}"
        )
        print(
            f"web worker RSS: idle {idle / 1024:.1f} MB, peak {peak / 1024:.1f} MB, "
            f"growth {(peak - idle) / 1024:.1f} MB (target <= 80 MB)"
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        cleanup(instance)


if __name__ == "__main__":
    main()
