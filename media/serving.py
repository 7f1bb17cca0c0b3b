"""Serve stored media files over HTTP: validators, conditional GETs and byte ranges, streamed.

``send_media`` answers a GET or HEAD inside a Flask request. Choices worth knowing:

* More than ``max_ranges`` range specs in one ``Range`` header: the header is ignored and the
  whole file is sent with 200, as RFC 9110 §14.2 allows. A 416 would tell the client its ranges
  are wrong when they are merely too many; ignoring them still bounds the work to one full body.
* Overlapping or touching ranges are coalesced (sorted and merged) before serving, so a request
  can never make the body larger than the file plus part headers. Ranges that neither overlap nor
  touch are served in the order asked, as RFC 9110 §15.3.7.2 recommends.
* Several ranges that coalesce into one are answered as a single-part 206.
* Ranges are honoured on GET only (RFC 9110 §14.2); HEAD always describes the full 200.
* A zero-byte file answers 200 with an empty body, and any satisfiable-looking ``Range`` on it
  gets 416, since no byte range of an empty file can be written in a ``Content-Range``.
* A malformed ``Range`` (unknown unit, bad syntax, last-pos before first-pos) is ignored: 200.
* With ``accel_prefix`` (nginx in front) the body and ranges are left to nginx through
  ``X-Accel-Redirect``; ``If-None-Match`` is still answered here. nginx's static handler puts its
  own ``ETag`` on what it serves, so its location should say ``etag off;`` and pass ours on, or
  clients will see two different validators.
* Bodies are streamed in 64 KiB reads with ``direct_passthrough``; do not combine media views
  with anything that buffers the body (``core.http.cacheable`` would hash it).
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from flask import Response, request
from werkzeug.http import http_date, parse_date, parse_etags, quote_etag

from core.errors import NotFound, error_response

CHUNK_SIZE = 64 * 1024
_IMMUTABLE = "public, max-age=31536000, immutable"
_PRIVATE = "private, max-age=60"
_RANGE_SPEC = re.compile(r"([0-9]*)-([0-9]*)")
_ACCEL_PATH = re.compile(r"[A-Za-z0-9._~/-]+")
# Beyond this many digits a position is past any real file; int() would refuse >4300 digits.
_MAX_DIGITS = 18
_HUGE = 1 << 62

# A byte slice (offset, length) of the file, or literal bytes such as a multipart part header.
_Piece = bytes | tuple[int, int]


def send_media(
    path: Path,
    *,
    mime: str,
    etag: str,
    immutable: bool,
    accel_prefix: str | None = None,
    accel_path: str | None = None,
    max_ranges: int = 8,
) -> Response:
    """Answer the current GET/HEAD with the file at ``path``.

    ``etag`` is the bare validator (no quotes); it is sent strong. ``accel_path`` defaults to the
    file name and is appended to ``accel_prefix``. Raises ``NotFound`` (``media_not_found``) when
    the file is missing.
    """
    if max_ranges < 1:
        raise ValueError("max_ranges must be at least 1")
    info = _stat(path)
    size = info.st_size
    mtime = int(info.st_mtime)
    validators = {
        "ETag": quote_etag(etag),
        "Cache-Control": _IMMUTABLE if immutable else _PRIVATE,
        "Last-Modified": http_date(mtime),
    }

    if _not_modified(etag, mtime):
        response = Response(status=304)
        response.headers.update(validators)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    common = {**validators, "Accept-Ranges": "bytes", "X-Content-Type-Options": "nosniff"}

    if accel_prefix is not None:
        response = Response(status=200, content_type=mime)
        response.headers.update(common)
        response.headers["X-Accel-Redirect"] = _accel_target(accel_prefix, accel_path or path.name)
        return response

    ranges: list[tuple[int, int]] | None = None
    if request.method == "GET" and "Range" in request.headers and _if_range_holds(etag, mtime):
        ranges = _parse_ranges(request.headers["Range"], size, max_ranges)
        if ranges == []:
            return error_response(
                416,
                "range_not_satisfiable",
                "请求的范围超出文件大小",
                {"size": size},
                # No validators or caching: this JSON body is not the file.
                {
                    "Content-Range": f"bytes */{size}",
                    "Accept-Ranges": "bytes",
                    "X-Content-Type-Options": "nosniff",
                },
            )

    if ranges is None:
        return _respond(path, 200, mime, size, [(0, size)], common)

    if len(ranges) == 1:
        start, end = ranges[0]
        common["Content-Range"] = f"bytes {start}-{end}/{size}"
        return _respond(path, 206, mime, end - start + 1, [(start, end - start + 1)], common)

    boundary = secrets.token_hex(16)
    pieces: list[_Piece] = []
    length = 0
    for start, end in ranges:
        head = (
            f"\r\n--{boundary}\r\n"
            f"Content-Type: {mime}\r\n"
            f"Content-Range: bytes {start}-{end}/{size}\r\n\r\n"
        ).encode("latin-1")
        pieces += [head, (start, end - start + 1)]
        length += len(head) + end - start + 1
    tail = f"\r\n--{boundary}--\r\n".encode("latin-1")
    pieces.append(tail)
    length += len(tail)
    return _respond(path, 206, f"multipart/byteranges; boundary={boundary}", length, pieces, common)


def _stat(path: Path) -> os.stat_result:
    try:
        info = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise NotFound("文件不存在", code="media_not_found") from None
    if not stat.S_ISREG(info.st_mode):
        raise NotFound("文件不存在", code="media_not_found")
    return info


def _not_modified(etag: str, mtime: int) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        # RFC 9110 §13.1.2: weak comparison, and If-Modified-Since is then disregarded.
        return parse_etags(if_none_match).contains_weak(etag)
    since = parse_date(request.headers.get("If-Modified-Since"))
    return since is not None and mtime <= since.timestamp()


def _if_range_holds(etag: str, mtime: int) -> bool:
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith('"'):
        # Strong comparison only (RFC 9110 §13.1.5); a weak tag never matches.
        return value == quote_etag(etag)
    if value.startswith("W/"):
        return False
    date = parse_date(value)
    return date is not None and int(date.timestamp()) == mtime


def _parse_ranges(header: str, size: int, max_ranges: int) -> list[tuple[int, int]] | None:
    """Inclusive (start, end) pairs to serve; ``None`` to ignore the header, ``[]`` for 416."""
    unit, sep, range_set = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    # Empty list elements are legal (RFC 9110 §5.6.1) and count for nothing.
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if not specs or len(specs) > max_ranges:
        return None

    wanted: list[tuple[int, int]] = []
    for spec in specs:
        match = _RANGE_SPEC.fullmatch(spec)
        if match is None:
            return None
        first, last = match.groups()
        if first:
            start = _position(first)
            end = _position(last) if last else _HUGE
            if end < start:
                return None
            if start < size:
                wanted.append((start, min(end, size - 1)))
        elif last:
            suffix = _position(last)
            if suffix > 0 and size > 0:
                wanted.append((max(0, size - suffix), size - 1))
        else:
            return None
    return _coalesce(wanted) if wanted else []


def _position(digits: str) -> int:
    significant = digits.lstrip("0")
    return _HUGE if len(significant) > _MAX_DIGITS else int(digits)


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    # Nothing merged: keep the client's order, which it may rely on for parsing the parts.
    return ranges if len(merged) == len(ranges) else merged


def _accel_target(prefix: str, accel_path: str) -> str:
    relative = accel_path.lstrip("/")
    # nginx resolves the redirect as an internal URI: anything that could escape the prefix or
    # need escaping is a caller bug, not something to pass through.
    if not _ACCEL_PATH.fullmatch(relative) or ".." in relative.split("/"):
        raise ValueError(f"unsafe accel path: {accel_path!r}")
    return f"{prefix.rstrip('/')}/{relative}"


def _respond(
    path: Path,
    status: int,
    content_type: str,
    length: int,
    pieces: list[_Piece],
    headers: dict[str, str],
) -> Response:
    body: _FileStream | bytes = b""
    if request.method != "HEAD" and length > 0:
        try:
            file = path.open("rb", buffering=0)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound("文件不存在", code="media_not_found") from None
        body = _FileStream(file, pieces)
    response = Response(body, status=status, content_type=content_type, direct_passthrough=True)
    response.headers.update(headers)
    response.headers["Content-Length"] = str(length)
    return response


class _FileStream:
    """The response body: owns the open file until the WSGI server calls ``close``.

    A generator alone would not do: a server that gives up before the first iteration (client
    gone) closes an unstarted generator without running its ``finally``, leaking the file.
    """

    def __init__(self, file: BinaryIO, pieces: list[_Piece]) -> None:
        self._file = file
        self._pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        try:
            for piece in self._pieces:
                if isinstance(piece, bytes):
                    yield piece
                    continue
                offset, remaining = piece
                self._file.seek(offset)
                while remaining > 0:
                    chunk = self._file.read(min(CHUNK_SIZE, remaining))
                    if not chunk:
                        # The file shrank under us; a short body makes the server drop the
                        # connection, which clients read as a failed transfer, not as data.
                        return
                    remaining -= len(chunk)
                    yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._file.close()
