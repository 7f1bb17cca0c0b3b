"""Cleaning portrait photos: checked by content, re-encoded without EXIF, with a thumbnail.

Pure functions on local paths; nothing here knows about Flask, the database or Redis.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageCms, ImageOps

from media.partials import partial_folder
from media.probing import sniff
from media.rejections import MediaRejected, rejection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PhotoResult:
    main: Path
    thumb: Path
    width: int
    height: int


# EXIF orientation → the transpose that shows the picture upright (what ImageOps.exif_transpose
# does, applied here to the reduced picture, which no longer carries the EXIF).
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Modes that resample well as they are; others (palette, 1-bit, 16-bit) become RGB(A) first.
_RESAMPLABLE = ("RGB", "RGBA", "L", "LA")


def too_large(limit: int) -> MediaRejected:
    return MediaRejected(
        "photo_too_large",
        f"照片像素过多（上限 {limit / 10_000:.0f} 万像素），请缩小或另存为 JPG 后重新上传",
    )


def process_photo(
    source: Path,
    out_dir: Path,
    *,
    max_pixels: int = 50_000_000,
    decode_pixels: int = 12_000_000,
    max_side: int = 1600,
    thumb_side: int = 400,
) -> PhotoResult:
    """Re-encode a portrait photo as a clean JPEG (no EXIF, no GPS) plus a square thumbnail.

    Memory is bounded before any pixel is decoded: the header's size is checked against
    ``max_pixels``; a JPEG is then decoded at 1/2, 1/4 or 1/8 scale (libjpeg's reduced decode,
    `Image.draft`) so that at most ``decode_pixels`` are decoded, and other formats, which have
    no reduced decode, are refused above ``decode_pixels`` (WebP above half of it). The picture
    is shrunk to ``max_side`` right after decoding, before any conversion copies it."""
    kind = sniff(source)
    if kind not in ("jpeg", "png", "webp"):
        raise rejection("not_an_image")
    try:
        # Pillow's own MAX_IMAGE_PIXELS check runs inside open(); ours run on the header, before
        # any pixel is decoded. The global is left alone: other code shares it.
        with Image.open(source, formats=[kind.upper()]) as opened:
            width, height = opened.size
            if width * height > max_pixels:
                raise too_large(max_pixels)
            if kind == "jpeg":
                scale = _draft_scale(width, height, max_side, decode_pixels)
                if scale > 1:
                    opened.draft(None, (width // scale, height // scale))
            # libwebp decodes into a buffer of its own that Pillow then copies: twice the cost.
            budget = decode_pixels // 2 if kind == "webp" else decode_pixels
            if opened.width * opened.height > budget:
                raise too_large(max_pixels if kind == "jpeg" else budget)
            turn = _UPRIGHT.get(opened.getexif().get(0x0112, 1))
            icc = opened.info.get("icc_profile")
            opened.load()
            picture = _reduced(opened, max_side)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise too_large(max_pixels) from exc
    # Pillow's decoders signal a damaged file with any of these, depending on where it breaks.
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        log.info("photo %s did not decode: %s", source.name, exc)
        raise rejection("not_an_image") from exc

    if turn is not None:
        picture = picture.transpose(turn)
    picture = _clean_rgb(picture, icc)
    side = min(thumb_side, *picture.size)
    # Portraits put the face in the upper part; a centred crop would cut through the chin.
    thumb = ImageOps.fit(picture, (side, side), Image.Resampling.LANCZOS, centering=(0.5, 0.35))

    out_dir.mkdir(parents=True, exist_ok=True)
    work = partial_folder(out_dir)
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


def _draft_scale(width: int, height: int, max_side: int, decode_pixels: int) -> int:
    """The JPEG decode scale (1, 2, 4 or 8): as small a decode as still fills ``max_side``, and
    at least small enough to stay within ``decode_pixels``."""
    scale = 1
    while scale < 8:
        fills = min(width, height) // (scale * 2) >= max_side
        over = (width // scale) * (height // scale) > decode_pixels
        if not (fills or over):
            break
        scale *= 2
    return scale


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """A new picture, shrunk to ``max_side``; the caller's full-size one can then be released."""
    if image.mode not in _RESAMPLABLE or "transparency" in image.info:
        has_alpha = "A" in image.mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    width, height = image.size
    if max(width, height) <= max_side:
        return image.copy()
    ratio = max_side / max(width, height)
    size = (max(1, round(width * ratio)), max(1, round(height * ratio)))
    # reducing_gap: first shrink by box averaging (Image.reduce), then resample with LANCZOS.
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _clean_rgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """A fresh sRGB image with the pixels only: a new Image carries no EXIF, XMP, comment or ICC."""
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
