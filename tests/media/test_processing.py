"""Video probing, transcoding and photo cleaning, checked on real files and real ffmpeg output."""

from __future__ import annotations

import io
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import av
import pytest
from PIL import Image, ImageCms

from media.photos import process_photo
from media.probing import probe_video, sniff
from media.rejections import MediaRejected
from media.transcoding import TranscodeResult, transcode
from tests.media.clips import ffmpeg, make_clip

# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    width: int
    height: int
    codec: str
    profile: str | None
    pix_fmt: str | None
    rotation: int
    duration: float
    audio: str | None
    channels: int | None
    sample_rate: int | None
    color_trc: int


def facts(path: Path) -> Facts:
    """What a player would find in the file, read back with PyAV."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        context = video.codec_context
        first = next(container.decode(video=0))
        audio = container.streams.audio[0] if container.streams.audio else None
        return Facts(
            width=first.width,
            height=first.height,
            codec=context.name,
            profile=context.profile,
            pix_fmt=context.pix_fmt,
            rotation=first.rotation,
            duration=(container.duration or 0) / av.time_base,
            audio=audio.codec_context.name if audio else None,
            channels=audio.codec_context.channels if audio else None,
            sample_rate=audio.codec_context.sample_rate if audio else None,
            color_trc=context.color_trc,
        )


def top_level_boxes(path: Path) -> list[bytes]:
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        boxes.append(kind)
        offset += size
    return boxes


def rejected(call, *args, **kwargs) -> str:
    with pytest.raises(MediaRejected) as caught:
        call(*args, **kwargs)
    assert caught.value.message  # the clerk always gets a sentence
    return caught.value.code


def png_bytes(width: int = 8, height: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "green").save(buffer, "PNG")
    return buffer.getvalue()


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clips")


@pytest.fixture(scope="module")
def landscape(clips: Path) -> Path:
    return make_clip(clips / "landscape.mp4", width=1920, height=1080, seconds=2)


@pytest.fixture(scope="module")
def landscape_out(landscape: Path, tmp_path_factory: pytest.TempPathFactory) -> TranscodeResult:
    return transcode(landscape, tmp_path_factory.mktemp("landscape-out"))


@pytest.fixture(scope="module")
def small(clips: Path) -> Path:
    return make_clip(clips / "small.mp4", width=640, height=360, seconds=3)


def no_video_boxes() -> bytes:
    """A well-formed ftyp and a movie header with no tracks at all."""
    ftyp = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 512, b"isom", b"mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd_body = (
        struct.pack(">B3xIIII", 0, 0, 0, 1000, 0)
        + struct.pack(">IH10x", 0x00010000, 0x0100)
        + matrix
        + bytes(24)
        + struct.pack(">I", 2)
    )
    mvhd = struct.pack(">I4s", 8 + len(mvhd_body), b"mvhd") + mvhd_body
    return ftyp + struct.pack(">I4s", 8 + len(mvhd), b"moov") + mvhd


# --- sniffing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\xff\xd8\xff\xe0" + bytes(20), "jpeg"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20), "webp"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  ", "mp4"),
        (b"\x00\x00\x00\x14ftyp3gp4\x00\x00\x00\x003gp4", "mp4"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "unknown"),
        (b"<html><body>hello</body></html>", "unknown"),
    ],
)
def test_sniff_names_the_kind_from_the_first_bytes(tmp_path: Path, head: bytes, kind: str) -> None:
    path = tmp_path / "upload.mp4"
    path.write_bytes(head)
    assert sniff(path) == kind


# --- probing -------------------------------------------------------------------------------------


def test_probe_reports_the_clip_as_filmed(landscape: Path) -> None:
    probe = probe_video(landscape, max_duration=60, declared_size=landscape.stat().st_size)
    assert (probe.container, probe.video_codec, probe.audio_codec) == ("mp4", "h264", "aac")
    assert (probe.width, probe.height, probe.rotation) == (1920, 1080, 0)
    assert probe.duration == pytest.approx(2, abs=0.1)
    assert probe.size == landscape.stat().st_size


def test_probe_reports_display_size_of_a_rotated_phone_clip(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "rotated.mp4", width=640, height=360, rotate=90)
    probe = probe_video(clip, max_duration=60)
    assert (probe.width, probe.height, probe.rotation) == (360, 640, 90)


def test_png_renamed_mp4_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(png_bytes())
    assert rejected(probe_video, path, max_duration=60) == "not_a_video"


def test_zero_byte_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"")
    assert rejected(probe_video, path, max_duration=60) == "not_a_video"


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("事迹材料：这不是视频。\n" * 50, encoding="utf-8")
    assert rejected(probe_video, path, max_duration=60) == "not_a_video"


def test_heic_photo_renamed_mp4_is_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200))
    assert rejected(probe_video, path, max_duration=60) == "not_a_video"


def test_half_uploaded_mp4_is_truncated(small: Path, tmp_path: Path) -> None:
    """ffmpeg and most phones write `moov` last, so the cut takes the index away with it."""
    data = small.read_bytes()
    assert top_level_boxes(small).index(b"moov") > top_level_boxes(small).index(b"mdat")
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(probe_video, path, max_duration=60) == "truncated"


def test_half_uploaded_faststart_mp4_is_truncated(small: Path, tmp_path: Path) -> None:
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(small), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = faststart.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(probe_video, path, max_duration=60) == "truncated"


def test_upload_whose_tail_was_never_written_is_truncated(small: Path, tmp_path: Path) -> None:
    """Same size as promised, index intact, but the last part is zeros (a preallocated file)."""
    faststart = tmp_path / "faststart.mp4"
    ffmpeg("-i", str(small), "-c", "copy", "-movflags", "+faststart", str(faststart))
    data = bytearray(faststart.read_bytes())
    cut = len(data) * 3 // 10
    data[-cut:] = bytes(cut)
    path = tmp_path / "zeros.mp4"
    path.write_bytes(bytes(data))
    assert rejected(probe_video, path, max_duration=60) == "truncated"


def test_recording_that_never_wrote_its_index_is_truncated(tmp_path: Path) -> None:
    path = tmp_path / "crashed.mp4"
    ftyp = struct.pack(">I4s4sI4s", 20, b"ftyp", b"mp42", 0, b"mp42")
    path.write_bytes(ftyp + struct.pack(">I4s", 4008, b"mdat") + bytes(4000))
    assert rejected(probe_video, path, max_duration=60) == "truncated"


def test_declared_size_that_differs_is_size_mismatch(small: Path) -> None:
    declared = small.stat().st_size + 1
    assert rejected(probe_video, small, max_duration=60, declared_size=declared) == "size_mismatch"


def test_clip_longer_than_allowed_is_too_long(small: Path) -> None:
    with pytest.raises(MediaRejected) as caught:
        probe_video(small, max_duration=1.5)
    assert caught.value.code == "too_long"
    assert "3 秒" in caught.value.message


def test_png_header_glued_to_mp4_is_rejected(small: Path, tmp_path: Path) -> None:
    path = tmp_path / "polyglot.mp4"
    path.write_bytes(png_bytes() + small.read_bytes())
    assert rejected(probe_video, path, max_duration=60) == "not_a_video"


def test_mp4_with_valid_ftyp_and_no_tracks_has_no_video_stream(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.write_bytes(no_video_boxes())
    assert rejected(probe_video, path, max_duration=60) == "no_video_stream"


def test_audio_only_mp4_has_no_video_stream(small: Path, tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    ffmpeg("-i", str(small), "-vn", "-c", "copy", str(path))
    assert rejected(probe_video, path, max_duration=60) == "no_video_stream"


def test_motion_jpeg_mp4_is_unsupported_codec(small: Path, tmp_path: Path) -> None:
    path = tmp_path / "mjpeg.mp4"
    ffmpeg("-i", str(small), "-c:v", "mjpeg", "-an", str(path))
    assert rejected(probe_video, path, max_duration=60) == "unsupported_codec"


def test_bytes_a_phone_appends_after_the_movie_are_tolerated(small: Path, tmp_path: Path) -> None:
    path = tmp_path / "trailer.mp4"
    path.write_bytes(small.read_bytes() + b"SEFHtrailer-from-the-phone" * 20)
    assert probe_video(path, max_duration=60).video_codec == "h264"


# --- transcoding: the landscape reference clip ---------------------------------------------------


def test_landscape_1080p_gives_720p_and_480p(landscape_out: TranscodeResult) -> None:
    found = [(r.label, r.width, r.height) for r in landscape_out.renditions]
    assert found == [("720p", 1280, 720), ("480p", 854, 480)]
    for rendition in landscape_out.renditions:
        assert rendition.path.name == f"{rendition.label}.mp4"
        assert (facts(rendition.path).width, facts(rendition.path).height) == (
            rendition.width,
            rendition.height,
        )
        assert rendition.size == rendition.path.stat().st_size
        assert 50_000 < rendition.bitrate < 3_000_000


def test_renditions_are_h264_main_yuv420p(landscape_out: TranscodeResult) -> None:
    for rendition in landscape_out.renditions:
        found = facts(rendition.path)
        assert (found.codec, found.profile, found.pix_fmt) == ("h264", "Main", "yuv420p")


def test_renditions_carry_aac_stereo(landscape_out: TranscodeResult) -> None:
    for rendition in landscape_out.renditions:
        found = facts(rendition.path)
        assert (found.audio, found.channels, found.sample_rate) == ("aac", 2, 48000)


def test_renditions_keep_the_source_duration(landscape_out: TranscodeResult) -> None:
    assert landscape_out.duration == pytest.approx(2, abs=0.15)
    for rendition in landscape_out.renditions:
        assert facts(rendition.path).duration == pytest.approx(2, abs=0.15)


def test_renditions_put_moov_before_mdat(landscape_out: TranscodeResult) -> None:
    for rendition in landscape_out.renditions:
        boxes = top_level_boxes(rendition.path)
        assert boxes.index(b"moov") < boxes.index(b"mdat"), boxes


def test_poster_is_a_jpeg_of_the_top_rendition_size(landscape_out: TranscodeResult) -> None:
    assert landscape_out.poster.name == "poster.jpg"
    with Image.open(landscape_out.poster) as poster:
        assert poster.format == "JPEG"
        assert poster.size == (1280, 720)


def test_out_dir_holds_only_the_finished_files(landscape_out: TranscodeResult) -> None:
    names = sorted(p.name for p in landscape_out.poster.parent.iterdir())
    assert names == ["480p.mp4", "720p.mp4", "poster.jpg"]


# --- transcoding: other sources ------------------------------------------------------------------


def test_portrait_phone_clip_gives_portrait_renditions(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "portrait.mp4", width=1080, height=1920)
    result = transcode(clip, tmp_path / "out")
    found = [(facts(r.path).width, facts(r.path).height) for r in result.renditions]
    assert found == [(720, 1280), (480, 854)]


def test_rotation_metadata_is_turned_into_upright_pixels(tmp_path: Path) -> None:
    """A phone held upright stores a landscape frame and a 90° clockwise `rotate` tag."""
    clip = make_clip(tmp_path / "rotated.mp4", width=854, height=480, rotate=90, corner_marker=True)
    result = transcode(clip, tmp_path / "out")
    (rendition,) = result.renditions
    found = facts(rendition.path)
    assert (found.width, found.height, found.rotation) == (480, 854, 0)
    with av.open(str(rendition.path)) as container:
        picture = next(container.decode(video=0)).to_image()
    # The coded top-left corner is painted red; turned clockwise it ends at the top right.
    red_r, red_g, _ = picture.getpixel((picture.width - 20, 20))
    other_r, _, other_b = picture.getpixel((20, 20))
    assert red_r > 200 and red_g < 60
    assert other_r < 60 and other_b > 200


def test_clip_without_audio_gives_renditions_without_audio(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "silent.mp4", width=1280, height=720, acodec=None)
    result = transcode(clip, tmp_path / "out")
    assert [facts(r.path).audio for r in result.renditions] == [None, None]


def test_hevc_source_becomes_h264(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "hevc.mp4", width=1280, height=720, vcodec="libx265")
    assert probe_video(clip, max_duration=60).video_codec == "hevc"
    result = transcode(clip, tmp_path / "out")
    assert {facts(r.path).codec for r in result.renditions} == {"h264"}


def test_hdr_hevc_from_iphone_is_tone_mapped_to_sdr(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "hlg.mov", width=1280, height=720, vcodec="libx265", hdr=True)
    result = transcode(clip, tmp_path / "out")
    found = facts(result.renditions[0].path)
    assert (found.pix_fmt, found.color_trc) == ("yuv420p", 1)  # 8-bit, BT.709 transfer


def test_mov_container_is_accepted(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "iphone.mov", width=640, height=360, container="mov")
    assert probe_video(clip, max_duration=60).container == "mov"
    result = transcode(clip, tmp_path / "out")
    assert facts(result.renditions[0].path).codec == "h264"


def test_3gp_from_an_old_phone_is_accepted(tmp_path: Path) -> None:
    clip = make_clip(
        tmp_path / "old.3gp",
        width=352,
        height=288,
        vcodec="mpeg4",
        acodec="libopencore_amrnb",
        container="3gp",
    )
    probe = probe_video(clip, max_duration=60)
    assert (probe.container, probe.video_codec, probe.audio_codec) == ("3gp", "mpeg4", "amr_nb")
    result = transcode(clip, tmp_path / "out")
    found = facts(result.renditions[0].path)
    assert (found.codec, found.audio, found.channels) == ("h264", "aac", 2)


def test_small_source_is_not_upscaled(small: Path, tmp_path: Path) -> None:
    result = transcode(small, tmp_path / "out")
    assert [(r.label, r.width, r.height) for r in result.renditions] == [("360p", 640, 360)]
    with Image.open(result.poster) as poster:
        assert poster.size == (640, 360)


def test_source_between_rungs_keeps_its_own_size_on_top(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "wechat.mp4", width=544, height=960)
    result = transcode(clip, tmp_path / "out")
    found = [(r.label, r.width, r.height) for r in result.renditions]
    assert found == [("544p", 544, 960), ("480p", 480, 848)]


def test_transcode_refuses_what_the_probe_refuses(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_text("not a video", encoding="utf-8")
    assert rejected(transcode, path, tmp_path / "out") == "not_a_video"
    assert not (tmp_path / "out").exists()


def test_ffmpeg_past_its_timeout_is_transcode_timeout_and_leaves_nothing(
    landscape: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert rejected(transcode, landscape, out, timeout=0.01) == "transcode_timeout"
    assert list(out.iterdir()) == []


def test_ffmpeg_failure_is_transcode_failed_and_leaves_nothing(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(MediaRejected) as caught:
        transcode(small, out, memory_limit_mb=64)
    assert caught.value.code == "transcode_failed"
    assert str(tmp_path) not in caught.value.message
    assert list(out.iterdir()) == []


def test_retry_replaces_outputs_and_sweeps_a_killed_jobs_leftovers(
    small: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    stale = out / ".partial-killed"
    stale.mkdir(parents=True)
    (stale / "720p.mp4").write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    transcode(small, out, timeout=60)
    transcode(small, out, timeout=60)
    assert sorted(p.name for p in out.iterdir()) == ["360p.mp4", "poster.jpg"]


# --- photos --------------------------------------------------------------------------------------


def phone_photo(path: Path, size: tuple[int, int] = (1200, 800)) -> Path:
    """A JPEG as a phone saves it: sideways pixels, an orientation tag, GPS, ICC, a comment."""
    picture = Image.new("RGB", size, "blue")
    picture.paste((255, 0, 0), (0, 0, size[0] // 4, size[1] // 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90° clockwise to show
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (31.0, 14.0, 5.5), 3: "E", 4: (121.0, 28.0, 0.0)})
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    picture.save(path, "JPEG", exif=exif, icc_profile=icc, comment=b"shot at the clinic")
    return path


def test_photo_loses_all_metadata_including_gps(tmp_path: Path) -> None:
    result = process_photo(phone_photo(tmp_path / "upload.jpg"), tmp_path / "out")
    for path in (result.main, result.thumb):
        data = path.read_bytes()
        assert b"Exif" not in data and b"PhoneMaker" not in data and b"clinic" not in data
        with Image.open(path) as saved:
            assert saved.format == "JPEG"
            assert len(saved.getexif()) == 0
            assert not {"exif", "icc_profile", "comment", "xmp"} & set(saved.info)


def test_photo_orientation_is_applied_to_the_pixels(tmp_path: Path) -> None:
    result = process_photo(phone_photo(tmp_path / "upload.jpg"), tmp_path / "out")
    assert (result.width, result.height) == (800, 1200)
    with Image.open(result.main) as saved:
        assert saved.size == (800, 1200)
        red_r, _, red_b = saved.getpixel((saved.width - 20, 20))
        assert red_r > 200 and red_b < 60


def test_photo_is_bounded_to_max_side(tmp_path: Path) -> None:
    source = tmp_path / "big.png"
    Image.new("RGB", (2400, 1200), "white").save(source)
    result = process_photo(source, tmp_path / "out", max_side=1000)
    assert (result.width, result.height) == (1000, 500)
    with Image.open(result.main) as saved:
        assert saved.size == (1000, 500)


def test_photo_gets_a_square_thumbnail(tmp_path: Path) -> None:
    result = process_photo(phone_photo(tmp_path / "upload.jpg"), tmp_path / "out")
    assert result.thumb.name == "thumb.jpg" and result.main.name == "photo.jpg"
    with Image.open(result.thumb) as thumb:
        assert (thumb.format, thumb.size) == ("JPEG", (400, 400))
    assert sorted(p.name for p in result.main.parent.iterdir()) == ["photo.jpg", "thumb.jpg"]


def test_transparent_png_is_accepted_on_white(tmp_path: Path) -> None:
    source = tmp_path / "portrait.png"
    Image.new("RGBA", (300, 500), (0, 0, 0, 0)).save(source)
    result = process_photo(source, tmp_path / "out")
    with Image.open(result.main) as saved:
        assert saved.getpixel((10, 10)) == (255, 255, 255)
        assert saved.size == (300, 500)


def test_webp_is_accepted(tmp_path: Path) -> None:
    source = tmp_path / "portrait.webp"
    Image.new("RGB", (640, 480), "orange").save(source, "WEBP")
    result = process_photo(source, tmp_path / "out")
    assert (result.width, result.height) == (640, 480)


def test_text_renamed_jpg_is_not_an_image(tmp_path: Path) -> None:
    source = tmp_path / "portrait.jpg"
    source.write_text("照片", encoding="utf-8")
    assert rejected(process_photo, source, tmp_path / "out") == "not_an_image"


def test_truncated_jpeg_is_not_an_image(tmp_path: Path) -> None:
    source = phone_photo(tmp_path / "upload.jpg")
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    assert rejected(process_photo, source, tmp_path / "out") == "not_an_image"
    assert not any((tmp_path / "out").glob("*.jpg"))


def test_png_claiming_huge_dimensions_is_photo_too_large(tmp_path: Path) -> None:
    data = bytearray(png_bytes())
    ihdr = bytearray(data[12:29])  # chunk type and 13 bytes of header
    ihdr[4:12] = struct.pack(">II", 30_000, 30_000)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    source = tmp_path / "bomb.png"
    source.write_bytes(bytes(data))
    assert rejected(process_photo, source, tmp_path / "out") == "photo_too_large"


def test_photo_over_max_pixels_is_photo_too_large(tmp_path: Path) -> None:
    source = phone_photo(tmp_path / "upload.jpg")
    assert rejected(process_photo, source, tmp_path / "out", max_pixels=500_000) == (
        "photo_too_large"
    )
