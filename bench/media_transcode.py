"""Video transcode benchmark: one phone-like 1080p clip through `media.transcoding.transcode`.

    .venv/bin/python -m bench.media_transcode [--seconds 60] [--threads 2]

Makes a 1920x1080 25 fps H.264 + AAC clip (lavfi testsrc2 and a sine tone, at a phone's bitrate)
in a temporary folder, transcodes it with the job's defaults, and prints the wall time, the speed
as a multiple of real time, and each rendition's size. Exits non-zero if the transcode fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from media.ffmpeg import ffmpeg_binary
from media.probing import probe_video
from media.rejections import MediaRejected
from media.transcoding import transcode


def _make_source(path: Path, seconds: int) -> None:
    argv = [
        ffmpeg_binary(),
        "-nostdin", "-y", "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=25:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
        # Roughly what an Android phone writes for 1080p: H.264 at ~16 Mbit/s, AAC 48 kHz.
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "16M", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-f", "mp4", str(path),
    ]  # fmt: skip
    subprocess.run(argv, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="zm-bench-media-") as folder:
        source = Path(folder) / "source.mp4"
        started = time.monotonic()
        _make_source(source, args.seconds)
        print(
            f"source: {args.seconds} s 1920x1080 25 fps, {source.stat().st_size / 1e6:.1f} MB "
            f"(made in {time.monotonic() - started:.1f} s)"
        )
        try:
            started = time.monotonic()
            probe = probe_video(source, max_duration=args.seconds + 1)
            probed = time.monotonic() - started
            started = time.monotonic()
            result = transcode(source, Path(folder) / "out", threads=args.threads)
            wall = time.monotonic() - started
        except MediaRejected as exc:
            print(f"transcode failed: {exc.code}: {exc.message}", file=sys.stderr)
            return 1
        print(f"probe: {probed:.2f} s")
        print(f"transcode wall time: {wall:.1f} s with {args.threads} threads")
        print(f"speed: {probe.duration / wall:.1f} x real time")
        for rendition in result.renditions:
            print(
                f"  {rendition.label}: {rendition.width}x{rendition.height}, "
                f"{rendition.size / 1e6:.2f} MB, {rendition.bitrate / 1000:.0f} kbit/s"
            )
        print(f"  poster: {result.poster.stat().st_size / 1000:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
