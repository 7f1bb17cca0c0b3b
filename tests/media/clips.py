"""Short synthetic phone clips made with the same ffmpeg binary the media code runs."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

from media.ffmpeg import ffmpeg_binary

_CONTAINERS = {"mp4": "mp4", "mov": "mov", "3gp": "3gp"}


@functools.cache
def encoders() -> frozenset[str]:
    listing = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-encoders"], capture_output=True, text=True, check=True
    ).stdout
    return frozenset(line.split()[1] for line in listing.splitlines() if line.startswith(" V"))


def require_encoder(name: str) -> None:
    if name not in encoders():
        pytest.skip(f"this ffmpeg build has no {name} encoder")


def ffmpeg(*args: str) -> None:
    subprocess.run(
        [ffmpeg_binary(), "-nostdin", "-y", "-hide_banner", "-loglevel", "error", *args],
        check=True,
        timeout=120,
    )


def make_clip(
    path: Path,
    *,
    width: int,
    height: int,
    seconds: float = 2,
    fps: int = 10,
    vcodec: str = "libx264",
    acodec: str | None = "aac",
    container: str = "mp4",
    rotate: int | None = None,
    corner_marker: bool = False,
    hdr: bool = False,
) -> Path:
    """Write a clip of coded size `width`x`height`.

    `rotate` is the phones' `rotate` tag: clockwise degrees the player turns the coded frame.
    `corner_marker` paints the coded frame's top-left quarter red, to see where rotation puts it.
    `hdr` makes a 10-bit HEVC clip tagged BT.2020 HLG, as iPhones film.
    """
    if vcodec not in ("libx264",):
        require_encoder(vcodec)
    pattern = "color=c=blue:" if corner_marker else "testsrc2="  # testsrc2 has red areas of its own
    video = f"{pattern}size={width}x{height}:rate={fps}:duration={seconds}"
    if corner_marker:
        video += f",drawbox=x=0:y=0:w={width // 4}:h={height // 4}:color=red:t=fill"
    if hdr:
        # Tagged on the frames: since ffmpeg 7 the frames' tags win over encoder options.
        video += ",format=yuv420p10le"
        video += ",setparams=color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc"
    args = ["-f", "lavfi", "-i", video]
    if acodec:
        rate = 8000 if acodec == "libopencore_amrnb" else 48000
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate={rate}:duration={seconds}"]
    args += ["-c:v", vcodec]
    if vcodec == "libx264":
        args += ["-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    elif vcodec == "libx265":
        args += ["-preset", "ultrafast", "-tag:v", "hvc1", "-x265-params", "log-level=error"]
        args += ["-pix_fmt", "yuv420p10le" if hdr else "yuv420p"]
    else:
        args += ["-q:v", "5", "-pix_fmt", "yuv420p"]
    if acodec:
        args += ["-c:a", acodec]
        if acodec == "libopencore_amrnb":
            args += ["-ar", "8000", "-ac", "1", "-b:a", "12.2k"]
    args += ["-shortest", "-f", _CONTAINERS[container]]
    if rotate is None:
        ffmpeg(*args, str(path))
        return path
    # Encoding with rotation set on the input would make ffmpeg turn the pixels instead; a
    # stream copy is what leaves only the display matrix, as a phone writes it.
    plain = path.with_name(f"plain-{path.name}")
    ffmpeg(*args, str(plain))
    ffmpeg(
        "-display_rotation",
        str(-rotate),
        "-i",
        str(plain),
        "-c",
        "copy",
        "-f",
        _CONTAINERS[container],
        str(path),
    )
    plain.unlink()
    return path
