"""Photo decompression bombs, the daily upload quota, and the clean-up of unused uploads."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from rq import SimpleWorker

from core.extensions import db, redis_store
from core.jobs import enqueue
from core.types import utcnow
from media import jobs, services
from media.models import MediaAsset
from media.photos import process_photo
from media.rejections import MediaRejected
from media.storage import storage
from nominations.models import Nomination
from tests.factories import Org

ROOT = Path(__file__).resolve().parents[2]


def bomb_png(side: int = 6300) -> bytes:
    """side×side pixels in a few hundred KB: flat colour with a strip of noise."""
    image = Image.new("RGBA", (side, side), (250, 250, 245, 255))
    image.paste(Image.effect_noise((side, 4), 64).convert("RGBA"), (0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _photo(client: FlaskClient, org: Org, nid: int, body: bytes, mime: str = "image/png"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=body,
        headers={**org.headers("unit-h1"), "Content-Type": mime},
    )


def test_png_bomb_is_refused_over_http_without_leaving_files(
    client: FlaskClient, org: Org, app: Flask
) -> None:
    org.campaign()
    nid = org.nomination()
    body = bomb_png()
    assert len(body) < 400_000
    root = Path(app.config["MEDIA_ROOT"])

    def stored() -> set[Path]:  # the media root is the session's: compare, don't expect empty
        return {p for p in root.glob("p-*") if any(p.iterdir())}

    before = stored()
    answer = _photo(client, org, nid, body)
    assert answer.status_code == 422, answer.json
    error = answer.json["error"]
    assert error["code"] == "photo_too_large" and "万像素" in error["message"]
    assert stored() == before


# Peak memory from /proc: VmHWM belongs to this process image (ru_maxrss would carry the
# forking pytest's peak across exec), and writing 5 to clear_refs resets it after the imports.
_MEASURE = """
import sys
from pathlib import Path
from media.photos import process_photo
from media.rejections import MediaRejected
def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
with open("/proc/self/clear_refs", "w") as refs:
    refs.write("5")
before = status_mb("VmRSS")
try:
    result = process_photo(Path(sys.argv[1]), Path(sys.argv[2]))
    outcome = f"{result.width}x{result.height}"
except MediaRejected as exc:
    outcome = exc.code
print(outcome, status_mb("VmHWM") - before)
"""


def _peak_growth_mb(source: Path, out: Path) -> tuple[str, float]:
    """Run process_photo in a fresh interpreter: its peak RSS above the RSS before the call."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(source), str(out)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    outcome, growth = done.stdout.split()
    return outcome, float(growth)


def test_png_bomb_is_refused_before_its_pixels_are_decoded(tmp_path: Path) -> None:
    """6300×6300 RGBA is 160 MB decoded: the refusal comes from the header, and the process
    never grows by a fraction of that."""
    source = tmp_path / "bomb.png"
    source.write_bytes(bomb_png())
    outcome, growth = _peak_growth_mb(source, tmp_path / "out")
    assert outcome == "photo_too_large"
    assert growth < 60, f"grew {growth:.0f} MB while refusing"


def test_a_50_megapixel_phone_jpeg_is_accepted_with_a_reduced_decode(tmp_path: Path) -> None:
    """8160×6120 (a phone's 50 MP mode) is 150 MB as RGB: libjpeg decodes it at half scale."""
    source = tmp_path / "phone.jpg"
    Image.new("RGB", (8160, 6120), (30, 120, 200)).save(source, "JPEG", quality=80)
    outcome, growth = _peak_growth_mb(source, tmp_path / "out")
    assert outcome == "1600x1200"
    assert growth < 150, f"grew {growth:.0f} MB"


def test_an_elongated_jpeg_is_decoded_within_the_pixel_budget(tmp_path: Path) -> None:
    """A scale from the short side alone would decode 20000×1700 whole: the budget decides."""
    source = tmp_path / "strip.jpg"
    Image.new("RGB", (20000, 1700), "white").save(source, "JPEG")
    result = process_photo(source, tmp_path / "out", decode_pixels=10_000_000)
    assert result.width == 1600


def test_png_over_the_decode_budget_is_refused_and_jpeg_is_not(tmp_path: Path) -> None:
    png, jpeg = tmp_path / "big.png", tmp_path / "big.jpg"
    Image.new("RGB", (3000, 2000), "white").save(png)
    Image.new("RGB", (3000, 2000), "white").save(jpeg)
    with pytest.raises(MediaRejected) as refused:
        process_photo(png, tmp_path / "out1", decode_pixels=5_000_000)
    assert refused.value.code == "photo_too_large"
    # 6 MP over a 5 MP budget: decoded at half scale, so the photo is 1500 wide, not 1600.
    assert process_photo(jpeg, tmp_path / "out2", decode_pixels=5_000_000).width == 1500


# --- the daily upload quota ---------------------------------------------------------------------


def _small_jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 400), "green").save(out, "JPEG")
    return out.getvalue()


def test_uploads_per_nomination_per_day_are_capped(
    org: Org, make_app: Callable[..., Flask]
) -> None:
    org.campaign()
    nid, other = org.nomination(), org.nomination(name="另一位")
    client = make_app(MEDIA_UPLOADS_PER_NOMINATION_PER_DAY=3).test_client()
    photo = _small_jpeg()
    for _ in range(2):
        assert _photo(client, org, nid, photo, "image/jpeg").status_code == 201
    video = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**org.headers("unit-h1"), "Tus-Resumable": "1.0.0", "Upload-Length": "1000"},
    )
    assert video.status_code == 201  # the third upload of the day, a video
    refused = _photo(client, org, nid, photo, "image/jpeg")
    assert refused.status_code == 429
    error = refused.json["error"]
    assert error["code"] == "upload_quota_exhausted" and "明天" in error["message"]
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    assert error["details"]["limit"] == 3
    again = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**org.headers("unit-h1"), "Tus-Resumable": "1.0.0", "Upload-Length": "1000"},
    )
    assert again.status_code == 429 and again.json["error"]["code"] == "upload_quota_exhausted"
    # Another nomination has its own quota.
    assert _photo(client, org, other, photo, "image/jpeg").status_code == 201


# --- clean-up of unused uploads -----------------------------------------------------------------


def _age(asset_id: int, seconds: float) -> None:
    db.session.execute(
        MediaAsset.__table__.update()
        .where(MediaAsset.id == asset_id)
        .values(updated_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def _video(org: Org, nid: int, received: int, status: str = "receiving") -> MediaAsset:
    asset = services.start_video_upload(
        org.account("unit-h1"), db.session.get(Nomination, nid), 1000, "clip.mp4"
    )
    store = storage()
    store.append(asset.storage_key, services.ORIGINAL, io.BytesIO(b"x" * received), received)
    asset.received, asset.status = received, status
    db.session.commit()
    return asset


def _run_media_worker(app: Flask) -> None:
    with app.app_context():
        queue = redis_store.queue("media")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)


def test_abandoned_and_old_failed_uploads_lose_their_files_not_their_rows(
    ctx: Flask, org: Org
) -> None:
    org.campaign()
    nid = org.nomination()
    day = 24 * 3600
    abandoned = _video(org, nid, 400)
    fresh = _video(org, nid, 300)
    failed_old = _video(org, nid, 1000, status="failed")
    failed_new = _video(org, nid, 1000, status="failed")
    _age(abandoned.id, day + 60)
    _age(failed_old.id, 7 * day + 60)
    _age(failed_new.id, 2 * day)
    store = storage()
    orphan = "p-" + "ab" * 16
    store.append(orphan, services.ORIGINAL, io.BytesIO(b"half a photo"), 100)
    old = time.time() - day - 60
    os.utime(store.local_path(orphan, services.ORIGINAL), (old, old))
    os.utime(store.workdir(orphan), (old, old))
    young_orphan = "p-" + "cd" * 16
    store.append(young_orphan, services.ORIGINAL, io.BytesIO(b"arriving"), 100)

    assert jobs.sweep_abandoned_media() == {"abandoned": 1, "failed_purged": 1, "orphans": 1}
    db.session.expire_all()
    gone = db.session.get(MediaAsset, abandoned.id)
    assert gone is not None
    assert (gone.status, gone.failure_code, gone.received) == ("failed", "upload_abandoned", 0)
    assert not store.local_path(gone.storage_key, services.ORIGINAL).exists()
    purged = db.session.get(MediaAsset, failed_old.id)
    assert purged is not None and (purged.status, purged.received) == ("failed", 0)
    assert not store.local_path(purged.storage_key, services.ORIGINAL).exists()
    for kept in (fresh, failed_new):
        asset = db.session.get(MediaAsset, kept.id)
        assert asset is not None and asset.received > 0
        assert store.local_path(asset.storage_key, services.ORIGINAL).exists()
    assert not store.local_path(orphan, services.ORIGINAL).exists()
    assert store.local_path(young_orphan, services.ORIGINAL).exists()
    # Idempotent: a second pass finds nothing more.
    assert jobs.sweep_abandoned_media() == {"abandoned": 0, "failed_purged": 0, "orphans": 0}


def test_the_sweep_never_touches_an_upload_in_progress_or_the_current_photo(
    app: Flask, client: FlaskClient, org: Org
) -> None:
    org.campaign()
    nid = org.nomination()
    photo = _photo(client, org, nid, _small_jpeg(), "image/jpeg")
    assert photo.status_code == 201
    with app.app_context():
        busy = _video(org, nid, 10)
        busy_id, busy_key = busy.id, busy.storage_key
        _age(busy_id, 30 * 24 * 3600)
        _age(photo.json["id"], 30 * 24 * 3600)
        with services.upload_lock(busy_id):  # a PATCH streaming in right now
            assert jobs.sweep_abandoned_media()["abandoned"] == 0
        db.session.remove()
    with app.app_context():
        current = db.session.get(MediaAsset, photo.json["id"])
        assert current is not None and current.is_current and current.status == "ready"
        assert storage().local_path(current.storage_key, "photo.jpg").exists()
        assert storage().local_path(busy_key, services.ORIGINAL).exists()
        db.session.remove()


def test_the_sweep_runs_as_a_worker_job(app: Flask, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    with app.app_context():
        abandoned = _video(org, nid, 100)
        _age(abandoned.id, 2 * 24 * 3600)
        job = enqueue("media", jobs.sweep_abandoned_media)
        db.session.remove()
    _run_media_worker(app)
    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished"
        assert job.return_value() == {"abandoned": 1, "failed_purged": 0, "orphans": 0}
        db.session.remove()
