"""send_media on a tiny Flask app: validators, conditional requests, ranges, accel, file handles."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from werkzeug.http import http_date
from werkzeug.test import TestResponse

from core import errors
from media.serving import send_media

SIZE = 300 * 1024
ETAG = "c0ffee42"
MIME = "video/mp4"


@pytest.fixture
def data(tmp_path: Path) -> bytes:
    content = random.Random(20240611).randbytes(SIZE)
    (tmp_path / "clip.mp4").write_bytes(content)
    (tmp_path / "empty.mp4").write_bytes(b"")
    return content


@pytest.fixture
def media_client(tmp_path: Path, data: bytes) -> FlaskClient:
    # Not named ``app``: the suite's conftest would then treat it as the database-backed app.
    app = Flask(__name__)
    errors.init_app(app)

    @app.get("/f/<name>")
    def immutable_file(name: str) -> Response:
        return send_media(tmp_path / name, mime=MIME, etag=ETAG, immutable=True)

    @app.get("/p/<name>")
    def private_file(name: str) -> Response:
        return send_media(tmp_path / name, mime=MIME, etag=ETAG, immutable=False)

    @app.get("/x/<name>")
    def accel_file(name: str) -> Response:
        return send_media(
            tmp_path / name,
            mime=MIME,
            etag=ETAG,
            immutable=True,
            accel_prefix="/_protected/",
            accel_path=f"ab/{name}",
        )

    return app.test_client()


def fetch(client: FlaskClient, url: str, method: str = "GET", **headers: str) -> TestResponse:
    """Buffered: the client drains the body and closes the response before handing it back."""
    return client.open(url, method=method, headers=headers, buffered=True)


def parse_multipart(response: TestResponse) -> list[tuple[dict[str, str], bytes]]:
    boundary = response.content_type.split("boundary=", 1)[1].encode()
    body = response.get_data()
    assert body.endswith(b"\r\n--" + boundary + b"--\r\n")
    chunks = body[: -len(b"\r\n--" + boundary + b"--\r\n")].split(b"\r\n--" + boundary + b"\r\n")
    assert chunks[0] == b""
    parts = []
    for chunk in chunks[1:]:
        head, content = chunk.split(b"\r\n\r\n", 1)
        fields = dict(line.decode().split(": ", 1) for line in head.split(b"\r\n"))
        parts.append((fields, content))
    return parts


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_full_get_has_body_and_headers(media_client: FlaskClient, data: bytes, tmp_path: Path):
    response = fetch(media_client, "/f/clip.mp4")
    assert response.status_code == 200
    assert response.get_data() == data
    assert response.headers["ETag"] == f'"{ETAG}"'
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Type"] == MIME
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    mtime = int((tmp_path / "clip.mp4").stat().st_mtime)
    assert response.headers["Last-Modified"] == http_date(mtime)
    assert "Content-Range" not in response.headers


def test_range_first_hundred_bytes(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=0-99")
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 0-99/{SIZE}"
    assert response.headers["Content-Length"] == "100"
    assert response.headers["Content-Type"] == MIME
    assert response.get_data() == data[:100]


def test_range_open_ended(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=100-")
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-{SIZE - 1}/{SIZE}"
    assert response.headers["Content-Length"] == str(SIZE - 100)
    assert response.get_data() == data[100:]


def test_range_suffix(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=-50")
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {SIZE - 50}-{SIZE - 1}/{SIZE}"
    assert response.get_data() == data[-50:]


def test_range_past_end_is_clipped(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range=f"bytes={SIZE - 10}-400000")
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes {SIZE - 10}-{SIZE - 1}/{SIZE}"
    assert response.headers["Content-Length"] == "10"
    assert response.get_data() == data[-10:]


def test_range_spanning_several_chunks(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=1000-200000")
    assert response.status_code == 206
    assert response.get_data() == data[1000:200001]


def test_multiple_ranges_are_multipart(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=200000-200099, 0-9,-5")
    assert response.status_code == 206
    assert response.mimetype == "multipart/byteranges"
    body = response.get_data()
    assert response.headers["Content-Length"] == str(len(body))
    parts = parse_multipart(response)
    # Disjoint ranges keep the order they were asked in.
    expected = [(200000, 200099), (0, 9), (SIZE - 5, SIZE - 1)]
    assert len(parts) == len(expected)
    for (fields, content), (start, end) in zip(parts, expected, strict=True):
        assert fields["Content-Type"] == MIME
        assert fields["Content-Range"] == f"bytes {start}-{end}/{SIZE}"
        assert content == data[start : end + 1]


def test_overlapping_ranges_are_coalesced(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=500-999,0-99,50-149,150-199")
    assert response.status_code == 206
    parts = parse_multipart(response)
    ranges = [fields["Content-Range"] for fields, _ in parts]
    assert ranges == [f"bytes 0-199/{SIZE}", f"bytes 500-999/{SIZE}"]
    assert [content for _, content in parts] == [data[0:200], data[500:1000]]


def test_ranges_coalescing_into_one_are_single_part(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=0-,0-,0-")
    assert response.status_code == 206
    assert response.mimetype == MIME
    assert response.headers["Content-Range"] == f"bytes 0-{SIZE - 1}/{SIZE}"
    assert response.get_data() == data


def test_too_many_ranges_are_ignored(media_client: FlaskClient, data: bytes):
    nine = ",".join(f"{i * 1000}-{i * 1000 + 9}" for i in range(9))
    response = fetch(media_client, "/f/clip.mp4", Range=f"bytes={nine}")
    assert response.status_code == 200
    assert "Content-Range" not in response.headers
    assert response.get_data() == data


def test_max_ranges_ranges_are_served(media_client: FlaskClient, data: bytes):
    eight = ",".join(f"{i * 1000}-{i * 1000 + 9}" for i in range(8))
    response = fetch(media_client, "/f/clip.mp4", Range=f"bytes={eight}")
    assert response.status_code == 206
    assert len(parse_multipart(response)) == 8


def test_unsatisfiable_range_is_416(media_client: FlaskClient):
    response = fetch(media_client, "/f/clip.mp4", Range=f"bytes={SIZE}-{SIZE + 10}")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{SIZE}"
    error = response.get_json()["error"]
    assert error["code"] == "range_not_satisfiable"
    assert error["message"]
    assert "immutable" not in response.headers.get("Cache-Control", "")


def test_unsatisfiable_specs_are_dropped_from_a_satisfiable_set(
    media_client: FlaskClient, data: bytes
):
    response = fetch(media_client, "/f/clip.mp4", Range=f"bytes={SIZE + 5}-,10-19,-0")
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 10-19/{SIZE}"
    assert response.get_data() == data[10:20]


@pytest.mark.parametrize(
    "header",
    ["bytes=abc", "bytes=10-5", "items=0-9", "bytes=", "bytes 0-9", "bytes=0-9;1-2", "bytes=-"],
)
def test_malformed_range_is_ignored(media_client: FlaskClient, data: bytes, header: str):
    response = fetch(media_client, "/f/clip.mp4", Range=header)
    assert response.status_code == 200
    assert response.get_data() == data


@pytest.mark.parametrize(
    "header", [f'"{ETAG}"', f'W/"{ETAG}"', f'"other", W/"{ETAG}" , "more"', "*"]
)
def test_if_none_match_is_304(media_client: FlaskClient, header: str):
    response = fetch(media_client, "/f/clip.mp4", **{"If-None-Match": header})
    assert response.status_code == 304
    assert response.get_data() == b""
    assert response.headers["ETag"] == f'"{ETAG}"'
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"


def test_if_none_match_other_tag_is_200(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", **{"If-None-Match": '"other", W/"nope"'})
    assert response.status_code == 200
    assert response.get_data() == data


def test_if_range_mismatch_sends_full_body(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=0-99", **{"If-Range": '"stale"'})
    assert response.status_code == 200
    assert response.get_data() == data


def test_if_range_weak_tag_never_matches(media_client: FlaskClient, data: bytes):
    response = fetch(media_client, "/f/clip.mp4", Range="bytes=0-99", **{"If-Range": f'W/"{ETAG}"'})
    assert response.status_code == 200
    assert response.get_data() == data


def test_if_range_match_honours_range(media_client: FlaskClient, data: bytes, tmp_path: Path):
    mtime = int((tmp_path / "clip.mp4").stat().st_mtime)
    for validator in (f'"{ETAG}"', http_date(mtime)):
        response = fetch(media_client, "/f/clip.mp4", Range="bytes=0-99", **{"If-Range": validator})
        assert response.status_code == 206
        assert response.get_data() == data[:100]


def test_head_has_headers_and_no_body(media_client: FlaskClient):
    response = fetch(media_client, "/f/clip.mp4", method="HEAD", Range="bytes=0-99")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["Content-Length"] == str(SIZE)
    assert response.headers["ETag"] == f'"{ETAG}"'
    assert response.headers["Accept-Ranges"] == "bytes"


def test_private_cache_control(media_client: FlaskClient):
    response = fetch(media_client, "/p/clip.mp4")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, max-age=60"


def test_accel_redirect_hands_body_to_nginx(media_client: FlaskClient):
    response = fetch(media_client, "/x/clip.mp4", Range="bytes=0-99")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["X-Accel-Redirect"] == "/_protected/ab/clip.mp4"
    assert response.headers["Content-Type"] == MIME
    assert response.headers["ETag"] == f'"{ETAG}"'
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "Content-Range" not in response.headers


def test_accel_mode_still_answers_304(media_client: FlaskClient):
    response = fetch(media_client, "/x/clip.mp4", **{"If-None-Match": f'"{ETAG}"'})
    assert response.status_code == 304
    assert "X-Accel-Redirect" not in response.headers


def test_missing_file_is_404(media_client: FlaskClient):
    response = fetch(media_client, "/f/nope.mp4")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "media_not_found"


def test_empty_file_is_empty_200(media_client: FlaskClient):
    response = fetch(media_client, "/f/empty.mp4")
    assert response.status_code == 200
    assert response.get_data() == b""
    assert response.headers["Content-Length"] == "0"


@pytest.mark.parametrize("header", ["bytes=0-", "bytes=-10", "bytes=0-0"])
def test_empty_file_with_range_is_416(media_client: FlaskClient, header: str):
    response = fetch(media_client, "/f/empty.mp4", Range=header)
    assert response.status_code == 416
    assert response.headers["Content-Range"] == "bytes */0"
    assert response.get_json()["error"]["code"] == "range_not_satisfiable"


def test_ranged_body_closes_file_when_consumed(media_client: FlaskClient, data: bytes):
    before = open_fds()
    response = media_client.get("/f/clip.mp4", headers={"Range": "bytes=10-150000"})
    assert open_fds() == before + 1  # the stream holds the file until drained
    assert b"".join(response.response) == data[10:150001]
    assert open_fds() == before
    response.close()


def test_ranged_body_closes_file_when_client_leaves(media_client: FlaskClient):
    before = open_fds()
    response = media_client.get("/f/clip.mp4", headers={"Range": "bytes=0-9,-5"})
    assert open_fds() == before + 1
    response.close()  # what the WSGI server does when the connection drops
    assert open_fds() == before


def test_if_modified_since_is_304_without_if_none_match(media_client: FlaskClient, tmp_path: Path):
    mtime = int((tmp_path / "clip.mp4").stat().st_mtime)
    response = fetch(media_client, "/f/clip.mp4", **{"If-Modified-Since": http_date(mtime)})
    assert response.status_code == 304
    # If-None-Match wins over the date (RFC 9110 §13.2.2).
    response = fetch(
        media_client,
        "/f/clip.mp4",
        **{"If-Modified-Since": http_date(mtime), "If-None-Match": '"other"'},
    )
    assert response.status_code == 200
