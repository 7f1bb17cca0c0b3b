"""Probing uploads: name a file's kind by its bytes and prove a phone video complete and playable.

Pure functions on local paths, meant to run inside RQ worker jobs; nothing here knows about Flask,
the database or Redis.

**Truncated uploads** are reported as `truncated` whether or not the `moov` index survived the
cut: a top-level `moov`/`mdat` box that claims more bytes than the file holds, an `mdat` with no
`moov` at all (the recorder or the copy stopped before writing the index), or samples indexed past
the end of the file, or a last second that does not decode. Only a file that never looked like a
video is `not_a_video`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from media.rejections import MediaRejected, rejection

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
_HDR_TRANSFERS = {16: "smpte2084", 18: "arib-std-b67"}  # AVCOL_TRC_* values PyAV reports


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
class VideoSource:
    """A checked video as transcoding needs it: the probe plus the streams to read."""

    probe: VideoProbe
    video_index: int
    audio_index: int | None
    audio_rate: int | None
    fps: float | None
    hdr_transfer: str | None


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


def probe_video(path: Path, *, max_duration: float, declared_size: int | None = None) -> VideoProbe:
    """Prove the upload is a playable, complete phone video, or raise `MediaRejected`."""
    return inspect_source(path, max_duration=max_duration, declared_size=declared_size).probe


def inspect_source(
    path: Path, *, max_duration: float, declared_size: int | None = None
) -> VideoSource:
    """`probe_video`, keeping what transcoding needs to know about the streams."""
    size = path.stat().st_size
    # Checked first: a short file is an interrupted upload, whatever its first bytes say.
    if declared_size is not None and declared_size != size:
        raise rejection("size_mismatch")
    if size == 0 or sniff(path) != "mp4":
        raise rejection("not_a_video")
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
        raise rejection("not_a_video") from exc


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
                    raise rejection("truncated")
                break
            seen.add(box_type)
            offset += box_size
        else:
            raise rejection("not_a_video")
    if b"moov" not in seen:
        raise rejection("truncated" if b"mdat" in seen else "not_a_video")


def _inspect_container(
    container: av.container.InputContainer, family: str, size: int, max_duration: float
) -> VideoSource:
    video = next(
        (
            s
            for s in container.streams.video
            if not s.disposition & av.stream.Disposition.attached_pic
        ),
        None,
    )
    if video is None:
        raise rejection("no_video_stream")
    video_codec = video.codec_context.codec.canonical_name
    if video_codec not in _VIDEO_CODECS:
        raise rejection("unsupported_codec")
    audio = container.streams.audio[0] if container.streams.audio else None
    audio_codec = audio.codec_context.codec.canonical_name if audio else None
    if audio_codec is not None and audio_codec not in _AUDIO_CODECS:
        raise rejection("unsupported_audio")

    if video.duration is not None and video.time_base is not None:
        duration = float(video.duration * video.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    else:
        duration = 0.0
    if not duration > 0:
        raise rejection("not_a_video")
    if duration > max_duration:
        raise MediaRejected(
            "too_long",
            f"视频时长 {duration:.0f} 秒，超过上限 {max_duration:.0f} 秒，请剪短后重新上传",
        )

    for stream in (video, audio):
        entries = stream.index_entries if stream is not None else ()
        if len(entries) and max(e.pos + e.size for e in entries) > size:
            raise rejection("truncated")

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
    return VideoSource(
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
        raise rejection("corrupt") from exc
    raise rejection("corrupt")


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
        raise rejection("truncated") from exc
    if not decoded:
        raise rejection("truncated")
