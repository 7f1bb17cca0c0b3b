"""The demo's photos and short videos, made at first start: portraits drawn with Pillow, clips
made by the bundled ffmpeg (imageio-ffmpeg) from lavfi sources. They enter through the media
services the upload routes use (the photo re-encoded at once, the video uploaded in resumable
steps and transcoded by media's own job), never written into storage around them."""

from __future__ import annotations

import io
import logging
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from PIL import Image, ImageDraw, ImageFont

from campaigns.models import Account
from core.extensions import db
from nominations.models import Nomination

log = logging.getLogger("zuimei.demo")

# Background per category prefix: doctors blue, nurses pink, village doctors green.
_COLOURS = {
    "D": ((36, 99, 160), (120, 176, 222)),
    "N": ((190, 70, 110), (240, 170, 196)),
    "H": ((170, 60, 120), (236, 160, 200)),
    "V": ((46, 125, 70), (150, 205, 140)),
}
_SKIN = ((241, 205, 178), (224, 180, 150), (200, 150, 120))
_HAIR = ((30, 24, 20), (60, 44, 34), (90, 80, 76))


def portrait(number: str, seed: int, size: tuple[int, int] = (600, 800)) -> bytes:
    """A JPEG portrait placeholder: a gradient, a silhouette in a white coat, the number."""
    width, height = size
    top, bottom = _COLOURS.get(number[:1], _COLOURS["D"])
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / (height - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (width, y)], fill=colour)
    skin, hair = _SKIN[seed % len(_SKIN)], _HAIR[(seed // 3) % len(_HAIR)]
    cx = width // 2
    # Shoulders in a white coat, a collar, the head and the hair.
    draw.ellipse([cx - 230, int(height * 0.62), cx + 230, int(height * 1.25)], fill=(248, 248, 250))
    draw.polygon(
        [(cx - 60, int(height * 0.62)), (cx, int(height * 0.76)), (cx + 60, int(height * 0.62))],
        fill=top,
    )
    draw.ellipse([cx - 105, int(height * 0.24), cx + 105, int(height * 0.56)], fill=skin)
    draw.chord([cx - 112, int(height * 0.2), cx + 112, int(height * 0.48)], 180, 360, fill=hair)
    font = ImageFont.load_default(size=72)
    box = draw.textbbox((0, 0), number, font=font)
    draw.text(
        (cx - (box[2] - box[0]) // 2, int(height * 0.05)),
        number,
        font=font,
        fill=(255, 255, 255),
    )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def clip(number: str, seconds: float = 3.0, seed: int = 0) -> bytes:
    """A short MP4 (H.264 + AAC): a moving test pattern with the number drawn on it and a tone.
    Without a usable font the number is left out (drawtext needs one)."""
    binary = imageio_ffmpeg.get_ffmpeg_exe()
    label = "".join(ch for ch in number if ch.isalnum())
    text = (
        f",drawtext=text='{label}':fontsize=72:fontcolor=white:box=1:boxcolor=black@0.4"
        ":x=(w-tw)/2:y=(h-th)/2"
    )
    frequency = 330 + 55 * (seed % 6)
    with tempfile.TemporaryDirectory(prefix="zm-demo-") as folder:
        target = Path(folder) / "clip.mp4"
        for overlay in (text, ""):
            argv = [
                binary, "-hide_banner", "-loglevel", "error", "-y",
                "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=25:duration={seconds}{overlay}",
                "-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={seconds}",
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "64k", "-shortest", "-movflags", "+faststart",
                str(target),
            ]  # fmt: skip
            done = subprocess.run(argv, capture_output=True, timeout=60, check=False)  # noqa: S603
            if done.returncode == 0 and target.exists():
                return target.read_bytes()
            log.info("demo clip for %s without drawtext: %s", number, done.stderr[-200:])
        raise RuntimeError(f"ffmpeg could not make the demo clip for {number}")


def attach_photo(
    media: Any, account: Account, nomination: Nomination, label: str, seed: int
) -> None:
    """Upload a generated portrait as the nomination's photo (media.services, as the route).
    ``label``: the number it will get (drafts have none yet)."""
    body = portrait(label, seed)
    media.check_photo_upload(account, nomination, len(body))
    media.store_photo(account, nomination.id, io.BytesIO(body))


def attach_video(
    media: Any, account: Account, nomination: Nomination, label: str, seed: int
) -> int:
    """Upload a generated clip through the resumable-upload steps; returns the asset id, to be
    transcoded once committed (media.jobs.process_video)."""
    body = clip(label, seed=seed)
    asset = media.start_video_upload(account, nomination, len(body), "demo.mp4")
    asset_id = int(asset.id)
    with media.upload_lock(asset_id):
        slot = media.check_chunk(account, asset_id, 0, len(body))
        media.append_chunk(slot, io.BytesIO(body))
    media.finish_chunk(asset_id)
    db.session.flush()
    return asset_id
