"""Transcoding a checked phone video into the renditions and the poster WeChat plays.

Pure functions on local paths, meant to run inside RQ worker jobs; nothing here knows about Flask,
the database or Redis.

- **No upscaling**: renditions are made for the short sides 720 and 480 that the source can fill.
  A source whose short side is below 720 gets its own size as the top rendition, labelled by its
  (even) short side (a 640x360 source gives a single "360p"; 540x960 gives "540p" and "480p").
- **No audio in, no audio out**: a silent source gives renditions without an audio stream rather
  than a made-up silent track.
- **Renditions** are MP4 with `moov` first, H.264 Main (level 4.0 above 480p, 3.1 at or below),
  yuv420p, at most 30 fps, a keyframe every 2 s, AAC 128k stereo; HLG/PQ HDR from iPhones is
  tone-mapped to BT.709. The poster is a JPEG from 1 s in (the first frame of clips under 2 s) at
  the top rendition's size.
- Renditions are re-encoded from decoded frames, so nothing of the upload's container (metadata,
  GPS location atoms, trailing bytes some phones append) reaches the public.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av

from media.ffmpeg import failed_message, ffmpeg_binary, run_ffmpeg
from media.partials import partial_folder, sweep_partials
from media.probing import VideoSource, inspect_source
from media.rejections import MediaRejected

log = logging.getLogger(__name__)

_RUNGS = (720, 480)
# (H.264 level, maxrate, bufsize): level 3.1 keeps 480p playable on the oldest Android decoders.
_CAPS = {720: ("4.0", "2500k", "5000k"), 480: ("3.1", "1200k", "2400k")}
_MAX_FPS = 30
_KEYFRAME_SECONDS = 2
_POSTER_AT = 1.0


@dataclass(frozen=True)
class Rendition:
    label: str
    width: int
    height: int
    path: Path
    size: int
    bitrate: int  # bits/s over the whole file, audio included


@dataclass(frozen=True)
class TranscodeResult:
    renditions: list[Rendition]  # largest first
    poster: Path
    duration: float


@dataclass(frozen=True)
class _Target:
    label: str
    width: int
    height: int
    level: str
    maxrate: str
    bufsize: str


def transcode(
    source: Path,
    out_dir: Path,
    *,
    timeout: float = 1800,
    threads: int = 2,
    memory_limit_mb: int = 2048,
) -> TranscodeResult:
    """Make the H.264/AAC renditions and the poster WeChat plays, named `{label}.mp4`, `poster.jpg`.

    The source is probed again here so that nothing unchecked ever reaches ffmpeg. Outputs appear
    in `out_dir` only once all of them are complete; a failure leaves nothing behind.
    """
    src = inspect_source(source, max_duration=math.inf)
    targets = _plan(src.probe.width, src.probe.height)
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep_partials(out_dir, older_than=timeout + 600)
    work = partial_folder(out_dir)
    try:
        argv = _ffmpeg_argv(src, source, work, targets, threads)
        run_ffmpeg(argv, timeout=timeout, threads=threads, memory_limit_mb=memory_limit_mb)
        renditions, duration = _check_outputs(work, out_dir, targets)
        poster = work / "poster.jpg"
        if not poster.is_file() or poster.stat().st_size == 0:
            raise MediaRejected(
                "transcode_failed", "视频转码失败（未能生成封面图），请重新导出后上传"
            )
        for target in targets:
            os.replace(work / f"{target.label}.mp4", out_dir / f"{target.label}.mp4")
        os.replace(poster, out_dir / "poster.jpg")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return TranscodeResult(renditions=renditions, poster=out_dir / "poster.jpg", duration=duration)


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def _plan(width: int, height: int) -> list[_Target]:
    short, long = min(width, height), max(width, height)
    own = short - short % 2
    top = min(own, _RUNGS[0])
    sides = [top] + [rung for rung in _RUNGS[1:] if rung < top]
    targets = []
    for side in sides:
        # At the source's own size the long side is kept as is: no rounding drift from the ratio.
        other = long - long % 2 if side == own else _even(long * side / short)
        w, h = (other, side) if width >= height else (side, other)
        level, maxrate, bufsize = _CAPS[720] if side > 480 else _CAPS[480]
        targets.append(_Target(f"{side}p", w, h, level, maxrate, bufsize))
    return targets


def _ffmpeg_argv(
    src: VideoSource, source: Path, work: Path, targets: list[_Target], threads: int
) -> list[str]:
    top = targets[0]
    # ffmpeg turns the decoded frames upright by itself (autorotate is on by default) and writes
    # no display matrix for a re-encoded stream, so the graph works in display orientation.
    # Scaling first, then one split: the source (possibly 4K HDR) is decoded and converted once,
    # and the smaller renditions and the poster are cut from the top rendition's frames.
    chain = [f"scale=w={top.width}:h={top.height}:out_range=tv"]
    if src.hdr_transfer and _can_tone_map():
        # iPhones film HLG/PQ HDR; shown untouched on SDR phones it looks grey and washed out.
        chain += [
            f"zscale=tin={src.hdr_transfer}:pin=bt2020:min=bt2020nc:t=linear:npl=100",
            "format=gbrpf32le",
            "zscale=p=bt709",
            "tonemap=tonemap=hable:desat=0",
            "zscale=t=bt709:m=bt709:r=tv",
        ]
    chain += ["setsar=1", "format=yuv420p"]
    if src.fps and src.fps > _MAX_FPS + 0.5:
        chain.append(f"fps={_MAX_FPS}")
    chain.append(f"split={len(targets) + 1}" + "".join(f"[s{i}]" for i in range(len(targets) + 1)))
    graph = [f"[0:{src.video_index}]" + ",".join(chain)]
    for i, target in enumerate(targets):
        scale = "null" if i == 0 else f"scale=w={target.width}:h={target.height}"
        graph.append(f"[s{i}]{scale}[v{i}]")
    poster_at = _POSTER_AT if src.probe.duration >= 2 * _POSTER_AT else 0.0
    graph.append(f"[s{len(targets)}]trim=start={poster_at}[poster]")

    argv = [
        ffmpeg_binary(),
        "-nostdin", "-y", "-hide_banner", "-nostats", "-loglevel", "error",
        "-filter_complex_threads", str(threads),
        "-protocol_whitelist", "file,pipe",
        "-f", "mov",
        "-threads", str(threads),
        "-i", f"file:{source.resolve()}",
        "-filter_complex", ";".join(graph),
    ]  # fmt: skip
    for i, target in enumerate(targets):
        argv += ["-map", f"[v{i}]"]
        if src.audio_index is not None:
            argv += ["-map", f"0:{src.audio_index}"]
        argv += [
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
            "-profile:v", "main", "-level:v", target.level,
            "-maxrate", target.maxrate, "-bufsize", target.bufsize,
            "-force_key_frames", f"expr:gte(t,n_forced*{_KEYFRAME_SECONDS})",
            "-threads", str(threads),
        ]  # fmt: skip
        if src.hdr_transfer and _can_tone_map():
            argv += ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
        if src.audio_index is not None:
            rate = "48000" if src.audio_rate == 48000 else "44100"
            argv += ["-c:a", "aac", "-b:a", "128k", "-ac", "2", "-ar", rate]
        argv += [
            "-map_metadata", "-1", "-map_chapters", "-1",
            "-movflags", "+faststart",
            "-f", "mp4", f"file:{work / f'{target.label}.mp4'}",
        ]  # fmt: skip
    argv += [
        "-map", "[poster]", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "3",
        "-map_metadata", "-1",
        "-f", "image2", "-update", "1", f"file:{work / 'poster.jpg'}",
    ]  # fmt: skip
    return argv


@functools.cache
def _can_tone_map() -> bool:
    """zscale needs ffmpeg built with zimg; a build without it still transcodes HDR, only greyer."""
    listing = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [ffmpeg_binary(), "-hide_banner", "-filters"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout
    names = {line.split()[1] for line in listing.splitlines() if len(line.split()) > 2}
    if not {"zscale", "tonemap"} <= names:
        log.warning(
            "this ffmpeg has no zscale/tonemap: HDR videos are converted without tone mapping"
        )
        return False
    return True


def _check_outputs(
    work: Path, out_dir: Path, targets: list[_Target]
) -> tuple[list[Rendition], float]:
    renditions = []
    durations = []
    for target in targets:
        path = work / f"{target.label}.mp4"
        try:
            with av.open(str(path)) as container:
                video = container.streams.video[0]
                ok = (video.width, video.height) == (target.width, target.height)
                duration = (container.duration or 0) / av.time_base
        except (av.FFmpegError, IndexError, FileNotFoundError):
            ok, duration = False, 0.0
        if not ok or duration <= 0:
            raise MediaRejected("transcode_failed", failed_message(f"{target.label} 输出不完整"))
        size = path.stat().st_size
        durations.append(duration)
        renditions.append(
            Rendition(
                label=target.label,
                width=target.width,
                height=target.height,
                path=out_dir / path.name,
                size=size,
                bitrate=round(size * 8 / duration),
            )
        )
    return renditions, durations[0]
