"""CPU work on uploaded media: check phone videos, transcode them for WeChat, clean portrait photos.

Pure functions on local paths, meant to run inside RQ worker jobs; nothing here knows about Flask,
the database or Redis. Every refusal a clinic clerk should see is a `MediaRejected` with a stable
English `code` and a zh-CN `message`.

Rules the callers rely on:

- **Truncated uploads** are reported as `truncated` whether or not the `moov` index survived the
  cut: a top-level `moov`/`mdat` box that claims more bytes than the file holds, an `mdat` with no
  `moov` at all (the recorder or the copy stopped before writing the index), or samples indexed
  past the end of the file, or a last second that does not decode. Only a file that never looked
  like a video is `not_a_video`.
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
import io
import logging
import math
import os
import re
import resource
import shutil
import signal
import struct
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import imageio_ffmpeg
from PIL import Image, ImageCms, ImageOps

log = logging.getLogger(__name__)

_VIDEO_CODECS = frozenset({"h264", "hevc", "mpeg4"})  # mpeg4 part 2: old phones' 3GP clips
_AUDIO_CODECS = frozenset({"aac", "mp3", "amr_nb"})

# HEIF/AVIF photos and camera raws share the ISO box format and would otherwise sniff as video.
_STILL_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
    | {b"crx "}
)
_BOX_LIMIT = 65_536  # real uploads have a handful of top-level boxes; fragmented ones a few hundred
_TAIL_PACKET_LIMIT = 600
_HEAD_PACKET_LIMIT = 500

_RUNGS = (720, 480)
# (H.264 level, maxrate, bufsize): level 3.1 keeps 480p playable on the oldest Android decoders.
_CAPS = {720: ("4.0", "2500k", "5000k"), 480: ("3.1", "1200k", "2400k")}
_MAX_FPS = 30
_KEYFRAME_SECONDS = 2
_POSTER_AT = 1.0
_HDR_TRANSFERS = {16: "smpte2084", 18: "arib-std-b67"}  # AVCOL_TRC_* values PyAV reports
_PARTIAL_PREFIX = ".partial-"

_MESSAGES = {
    "not_a_video": "文件不是有效的视频，请上传手机拍摄的 MP4/MOV 视频",
    "no_video_stream": "文件中没有视频画面，请上传手机拍摄的视频",
    "truncated": "视频文件不完整（上传或拷贝可能中断），请重新上传",
    "corrupt": "视频画面无法解码，文件可能已损坏，请从手机重新导出后上传",
    "unsupported_codec": "视频编码格式不受支持，请上传手机直接拍摄的 MP4/MOV 视频（H.264 或 HEVC）",
    "unsupported_audio": "视频的声音格式不受支持，请上传手机直接拍摄的 MP4/MOV 视频",
    "size_mismatch": "收到的文件大小与上传时不符，上传可能中断，请重新上传",
    "transcode_timeout": "视频处理超时，请剪短视频或降低分辨率后重新上传",
    "not_an_image": "文件不是有效的照片，请上传 JPG、PNG 或 WebP 格式的照片",
}


class MediaRejected(Exception):
    """An upload that cannot be used, with a code for machines and a sentence for the clerk."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _reject(code: str) -> MediaRejected:
    return MediaRejected(code, _MESSAGES[code])


@dataclass(frozen=True)
class VideoProbe:
    container: str
    duration: float
    width: int  # as displayed: after rotation and sample aspect ratio
    height: int
    rotation: int  # clockwise degrees the player turns the coded frame (the phones' `rotate` tag)
    video_codec: str
    audio_codec: str | None
    size: int


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
class PhotoResult:
    main: Path
    thumb: Path
    width: int
    height: int


@dataclass(frozen=True)
class _Source:
    probe: VideoProbe
    video_index: int
    audio_index: int | None
    audio_rate: int | None
    fps: float | None
    hdr_transfer: str | None


@dataclass(frozen=True)
class _Target:
    label: str
    width: int
    height: int
    level: str
    maxrate: str
    bufsize: str


def ffmpeg_binary() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def sniff(path: Path) -> str:
    """Name the file's kind from its first bytes; the extension and the declared type lie."""
    with path.open("rb") as f:
        head = f.read(64)
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] not in _STILL_IMAGE_BRANDS:
        return "mp4"
    return "unknown"


# --- probing -------------------------------------------------------------------------------------


def probe_video(path: Path, *, max_duration: float, declared_size: int | None = None) -> VideoProbe:
    """Prove the upload is a playable, complete phone video, or raise `MediaRejected`."""
    return _inspect(path, max_duration=max_duration, declared_size=declared_size).probe


def _inspect(path: Path, *, max_duration: float, declared_size: int | None = None) -> _Source:
    size = path.stat().st_size
    # Checked first: a short file is an interrupted upload, whatever its first bytes say.
    if declared_size is not None and declared_size != size:
        raise _reject("size_mismatch")
    if size == 0 or sniff(path) != "mp4":
        raise _reject("not_a_video")
    with path.open("rb") as f:
        brand = f.read(12)[8:12]
    family = "mov" if brand == b"qt  " else "3gp" if brand.startswith(b"3g") else "mp4"
    _check_boxes(path, size)
    try:
        # The mov demuxer is forced so that no other demuxer (playlists, concat) can claim the file
        # and make ffmpeg open anything but this one local file.
        with av.open(
            f"file:{path.resolve()}",
            format="mov",
            container_options={
                "protocol_whitelist": "file",
                "probesize": str(8 * 1024 * 1024),
                "analyzeduration": str(10_000_000),
            },
        ) as container:
            return _inspect_container(container, family, size, max_duration)
    except av.FFmpegError as exc:
        log.info("probe of %s failed: %s", path.name, exc)
        raise _reject("not_a_video") from exc


def _check_boxes(path: Path, size: int) -> None:
    seen: set[bytes] = set()
    offset = 0
    with path.open("rb") as f:
        for _ in range(_BOX_LIMIT):
            if size - offset < 8:
                break
            f.seek(offset)
            header = f.read(16)
            box_size = int.from_bytes(header[:4], "big")
            box_type = header[4:8]
            header_len = 8
            if box_size == 1:
                if len(header) < 16:
                    break
                box_size = int.from_bytes(header[8:16], "big")
                header_len = 16
            elif box_size == 0:
                box_size = size - offset
            # Bytes that do not parse as a box end the walk: some phones append their own trailers.
            if box_size < header_len or not all(0x20 <= b < 0x7F for b in box_type):
                break
            if offset + box_size > size:
                if box_type in (b"moov", b"mdat", b"moof"):
                    raise _reject("truncated")
                break
            seen.add(box_type)
            offset += box_size
        else:
            raise _reject("not_a_video")
    if b"moov" not in seen:
        raise _reject("truncated" if b"mdat" in seen else "not_a_video")


def _inspect_container(
    container: av.container.InputContainer, family: str, size: int, max_duration: float
) -> _Source:
    video = next(
        (
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ),
        None,
    )
    if video is None:
        raise _reject("no_video_stream")
    video_codec = video.codec_context.codec.canonical_name
    if video_codec not in _VIDEO_CODECS:
        raise _reject("unsupported_codec")
    audio = container.streams.audio[0] if container.streams.audio else None
    audio_codec = audio.codec_context.codec.canonical_name if audio else None
    if audio_codec is not None and audio_codec not in _AUDIO_CODECS:
        raise _reject("unsupported_audio")

    if video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    if not duration > 0:
        raise _reject("not_a_video")
    if duration > max_duration:
        raise MediaRejected(
            "too_long",
            f"视频时长 {duration:.0f} 秒，超过上限 {max_duration:.0f} 秒，请剪短后重新上传",
        )

    for stream in (video, audio):
        entries = stream.index_entries if stream is not None else ()
        if len(entries) and max(e.pos + e.size for e in entries) > size:
            raise _reject("truncated")

    first = _first_frame(container, video)
    _check_tail(container, video, duration)

    rotation = round(-first.rotation / 90) * 90 % 360
    sar = video.sample_aspect_ratio or Fraction(1)
    width = round(first.width * sar) if sar != 1 else first.width
    height = first.height
    if rotation in (90, 270):
        width, height = height, width
    rate = video.guessed_rate or video.average_rate
    probe = VideoProbe(
        container=family,
        duration=duration,
        width=width,
        height=height,
        rotation=rotation,
        video_codec=video_codec,
        audio_codec=audio_codec,
        size=size,
    )
    return _Source(
        probe=probe,
        video_index=video.index,
        audio_index=audio.index if audio else None,
        audio_rate=audio.codec_context.sample_rate if audio else None,
        fps=float(rate) if rate else None,
        hdr_transfer=_HDR_TRANSFERS.get(video.codec_context.color_trc),
    )


def _first_frame(container: av.container.InputContainer, video: av.VideoStream) -> av.VideoFrame:
    try:
        for count, packet in enumerate(container.demux(video)):
            frames = packet.decode()
            if frames:
                return frames[0]
            if count >= _HEAD_PACKET_LIMIT:
                break
    except av.FFmpegError as exc:
        raise _reject("corrupt") from exc
    raise _reject("corrupt")


def _check_tail(
    container: av.container.InputContainer, video: av.VideoStream, duration: float
) -> None:
    """Decode from the last keyframe before the final second to the end.

    Samples indexed past the end of the file were caught before this; what is caught here is a
    tail that is there but was never written (zeros from a preallocated file, a broken copy).
    Phones put a keyframe every second or two, so this decodes a few seconds at most; the packet
    cap bounds the cost for long-GOP exports, which then are checked only that far.
    """
    target = max(0.0, duration - 1.0)
    decoded = False
    try:
        container.seek(int(target / video.time_base), stream=video, backward=True)
        for count, packet in enumerate(container.demux(video)):
            decoded = bool(packet.decode()) or decoded
            if count >= _TAIL_PACKET_LIMIT:
                break
    except av.FFmpegError as exc:
        raise _reject("truncated") from exc
    if not decoded:
        raise _reject("truncated")


# --- transcoding ---------------------------------------------------------------------------------


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
    src = _inspect(source, max_duration=math.inf)
    targets = _plan(src.probe.width, src.probe.height)
    out_dir.mkdir(parents=True, exist_ok=True)
    _sweep_partials(out_dir, older_than=timeout + 600)
    work = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=out_dir))
    try:
        argv = _ffmpeg_argv(src, source, work, targets, threads)
        _run_ffmpeg(argv, timeout=timeout, threads=threads, memory_limit_mb=memory_limit_mb)
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
    src: _Source, source: Path, work: Path, targets: list[_Target], threads: int
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


def _child_limits(cpu_seconds: int, memory_bytes: int) -> Callable[[], None]:
    """Runs in the forked child before exec: ffmpeg, not the worker, gets the limits."""

    def apply() -> None:
        os.nice(10)
        # SIGXCPU at the soft limit lets ffmpeg stop by itself; the hard limit kills it.
        _lower_limit(resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 5)
        _lower_limit(resource.RLIMIT_AS, memory_bytes, memory_bytes)

    return apply


def _child_env() -> dict[str, str]:
    # The worker's secrets (database, Redis, WeChat) have no business in a process that parses
    # untrusted uploads. Without the arena cap, glibc reserves 64 MB of address space per busy
    # thread, and RLIMIT_AS would then fail even a 360p clip on a many-core machine.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "MALLOC_ARENA_MAX": "2"}


def _lower_limit(limit: int, soft: int, hard: int) -> None:
    _, current = resource.getrlimit(limit)
    if current != resource.RLIM_INFINITY:  # an unprivileged process cannot raise its hard limit
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(limit, (soft, hard))


def _run_ffmpeg(argv: list[str], *, timeout: float, threads: int, memory_limit_mb: int) -> None:
    cpu_seconds = max(1, math.ceil(timeout * threads))
    cpu_before = _children_cpu()
    started = time.monotonic()
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell; only file paths are inserted
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            preexec_fn=_child_limits(cpu_seconds, memory_limit_mb * 1024 * 1024),
            env=_child_env(),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # run() has already killed and reaped ffmpeg
        log.warning("ffmpeg passed its %g s timeout", timeout)
        raise _reject("transcode_timeout") from exc
    except OSError as exc:  # the limits can stop ffmpeg from even starting
        log.warning("ffmpeg could not start: %s", exc)
        raise MediaRejected(
            "transcode_failed", _failed_message(exc.strerror or "启动失败")
        ) from exc
    if done.returncode == 0:
        log.info("ffmpeg finished in %.1f s", time.monotonic() - started)
        return
    stderr = done.stderr.decode("utf-8", "replace")
    log.warning("ffmpeg exited with %s: %s", done.returncode, stderr[-4000:])
    if _children_cpu() - cpu_before >= cpu_seconds - 0.5:
        raise _reject("transcode_timeout")  # stopped by RLIMIT_CPU: the same budget, spent as CPU
    raise MediaRejected("transcode_failed", _failed_message(_reason(stderr, done.returncode)))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _reason(stderr: str, returncode: int) -> str:
    """One line of ffmpeg's complaint, short and without our paths, fit to show a clerk."""
    if returncode < 0:
        return f"ffmpeg stopped by {signal.Signals(-returncode).name}"
    lines = []
    for raw in stderr.splitlines():
        line = re.sub(r"\[[^\]]*\]\s*", "", raw)  # "[dec:hevc @ 0x55...]" prefixes
        line = re.sub(r"(?:file:)?/\S*", "…", line)
        line = re.sub(r"[^\w .,:;()/%+=-]", "", line, flags=re.ASCII).strip()
        if line:
            lines.append(line)
    # The first error names the cause; the last lines are usually its consequences.
    errors = [line for line in lines if "error" in line.lower()]
    reason = errors[0] if errors else lines[-1] if lines else f"exit status {returncode}"
    return reason[:160]


def _failed_message(reason: str) -> str:
    return f"视频转码失败，请重新导出后上传（原因：{reason}）"


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
            raise MediaRejected("transcode_failed", _failed_message(f"{target.label} 输出不完整"))
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


def _sweep_partials(out_dir: Path, *, older_than: float) -> None:
    """Remove work folders of jobs that were killed mid-run; a live job's folder is younger."""
    now = time.time()
    for entry in out_dir.glob(f"{_PARTIAL_PREFIX}*"):
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > older_than:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            continue


# --- photos --------------------------------------------------------------------------------------


def process_photo(
    source: Path,
    out_dir: Path,
    *,
    max_pixels: int = 40_000_000,
    max_side: int = 1600,
    thumb_side: int = 400,
) -> PhotoResult:
    """Re-encode a portrait photo as a clean JPEG (no EXIF, no GPS) plus a square thumbnail."""
    kind = sniff(source)
    if kind not in ("jpeg", "png", "webp"):
        raise _reject("not_an_image")
    too_large = MediaRejected(
        "image_too_large",
        f"照片像素过多（上限 {max_pixels / 10_000:.0f} 万像素），请缩小后重新上传",
    )
    try:
        # Pillow's own MAX_IMAGE_PIXELS check runs inside open(); ours, against `max_pixels`,
        # runs before any pixel is decoded. The global is left alone: other code shares it.
        with Image.open(source, formats=[kind.upper()]) as opened:
            if opened.width * opened.height > max_pixels:
                raise too_large
            opened.load()
            oriented = ImageOps.exif_transpose(opened)
            picture = _clean_rgb(oriented)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_large from exc
    # Pillow's decoders signal a damaged file with any of these, depending on where it breaks.
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        log.info("photo %s did not decode: %s", source.name, exc)
        raise _reject("not_an_image") from exc

    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    side = min(thumb_side, *picture.size)
    # Portraits put the face in the upper part; a centred crop would cut through the chin.
    thumb = ImageOps.fit(picture, (side, side), Image.Resampling.LANCZOS, centering=(0.5, 0.35))

    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=_PARTIAL_PREFIX, dir=out_dir))
    try:
        for image, name in ((picture, "photo.jpg"), (thumb, "thumb.jpg")):
            image.save(work / name, "JPEG", quality=85, progressive=True, optimize=True)
        os.replace(work / "photo.jpg", out_dir / "photo.jpg")
        os.replace(work / "thumb.jpg", out_dir / "thumb.jpg")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PhotoResult(
        main=out_dir / "photo.jpg",
        thumb=out_dir / "thumb.jpg",
        width=picture.width,
        height=picture.height,
    )


def _clean_rgb(image: Image.Image) -> Image.Image:
    """A fresh sRGB image with the pixels only: a new Image carries no EXIF, XMP, comment or ICC."""
    icc = image.info.get("icc_profile")
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        rgb, alpha = rgba.convert("RGB"), rgba.getchannel("A")
    else:
        rgb, alpha = image.convert("RGB"), None
    if icc:
        # Phone photos are often Display P3; dropping the profile without converting dulls them.
        try:
            rgb = ImageCms.profileToProfile(
                rgb,
                ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                ImageCms.createProfile("sRGB"),
                outputMode="RGB",
            )
        except (ImageCms.PyCMSError, OSError, ValueError):
            log.info("ignoring an unreadable ICC profile")
    # Transparent PNG areas become white, not the black that a plain RGB conversion shows.
    clean = Image.new("RGB", rgb.size, "white")
    clean.paste(rgb, mask=alpha)
    return clean
