"""Photo and resumable video uploads through the API, processing by a real worker, serving."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from rq import SimpleWorker

from core.extensions import db, redis_store
from media.models import MediaAsset
from tests.factories import Org

TUS = {"Tus-Resumable": "1.0.0"}


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (1200, 800), (200, 80, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90
    exif[0x8825] = {1: "N", 2: (31.0, 14.0, 0.0), 3: "E", 4: (121.0, 28.0, 0.0)}  # GPS
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def _photo(
    client: FlaskClient,
    org: Org,
    nid: int,
    body: bytes,
    user: str = "unit-h1",
    mime: str = "image/jpeg",
):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/nominations/{nid}/photo",
        data=body,
        headers={**org.headers(user), "Content-Type": mime},
    )


def _run_media_worker(app: Flask) -> None:
    with app.app_context():
        queue = redis_store.queue("media")
        SimpleWorker([queue], connection=redis_store.client).work(burst=True)


def test_photo_is_reencoded_without_exif_and_previewable(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    response = _photo(client, org, nid, _jpeg_with_gps())
    assert response.status_code == 201, response.json
    body = response.json
    assert body["kind"] == "photo" and body["status"] == "ready"
    assert (body["width"], body["height"]) == (800, 1200)  # orientation applied
    photo = client.get(body["photo_url"])
    assert photo.status_code == 200 and photo.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(photo.data))
    assert not image.getexif() and "exif" not in image.info
    photo.close()
    # Without the preview link, an unapproved nominee's photo is not public.
    assert client.get(body["photo_url"].split("?")[0]).status_code == 404


def test_fake_photo_and_oversize_photo_are_refused(
    client: FlaskClient, org: Org, make_app: Callable[..., Flask]
) -> None:
    org.campaign()
    nid = org.nomination()
    fake = _photo(client, org, nid, b"this is not an image at all" * 10)
    assert fake.status_code == 422 and fake.json["error"]["code"] == "not_an_image"
    small = make_app(MEDIA_PHOTO_MAX_BYTES=1000).test_client()
    big = _photo(small, org, nid, _jpeg_with_gps())
    assert big.status_code == 413 and big.json["error"]["code"] in (
        "upload_too_large",
        "payload_too_large",
    )
    with client.application.app_context():
        assert db.session.query(MediaAsset).filter_by(status="ready").count() == 0


def test_uploads_respect_ownership_and_editability(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    assert _photo(client, org, nid, _jpeg_with_gps(), user="unit-h2").status_code == 404
    assert _photo(client, org, nid, _jpeg_with_gps(), user="rev-k1").status_code == 403
    created = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**org.headers("unit-h2"), **TUS, "Upload-Length": "100"},
    )
    assert created.status_code == 404
    approved = org.nomination(status="approved")
    locked = _photo(client, org, approved, _jpeg_with_gps())
    assert locked.status_code == 409 and locked.json["error"]["code"] == "not_editable"


def test_oversize_video_is_refused_before_any_byte(
    org: Org, make_app: Callable[..., Flask]
) -> None:
    org.campaign()
    nid = org.nomination()
    small = make_app(MEDIA_VIDEO_MAX_BYTES=1024).test_client()
    response = small.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**org.headers("unit-h1"), **TUS, "Upload-Length": "1025"},
    )
    assert response.status_code == 413 and response.json["error"]["code"] == "upload_too_large"


def test_resumable_upload_protocol(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    clerk = org.headers("unit-h1")
    payload = bytes(range(256)) * 400  # 102400 bytes
    created = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={
            **clerk,
            **TUS,
            "Upload-Length": str(len(payload)),
            "Upload-Metadata": "filename " + base64.b64encode("事迹.mp4".encode()).decode(),
        },
    )
    assert created.status_code == 201, created.json
    url = created.headers["Location"]
    assert created.json["status"] == "receiving"
    head = client.head(url, headers=clerk)
    assert head.headers["Upload-Offset"] == "0" and head.headers["Upload-Length"] == "102400"

    def patch(offset: int, chunk: bytes, **extra: str):  # type: ignore[no-untyped-def]
        return client.patch(
            url,
            data=chunk,
            headers={
                **clerk,
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": extra.get("ctype", "application/offset+octet-stream"),
            },
        )

    first = patch(0, payload[:40000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "40000"
    wrong = patch(0, payload[:10])
    assert wrong.status_code == 409 and wrong.json["error"]["code"] == "offset_mismatch"
    assert wrong.headers["Upload-Offset"] == "40000"
    bad_type = patch(40000, payload[40000:50000], ctype="application/json")
    assert bad_type.status_code == 415
    too_much = patch(40000, payload[40000:] + b"extra")
    assert too_much.status_code == 413
    assert client.head(url, headers=clerk).headers["Upload-Offset"] == "40000"
    done = patch(40000, payload[40000:])
    assert done.status_code == 204 and done.headers["Upload-Offset"] == "102400"
    with app.app_context():
        asset = db.session.get(MediaAsset, created.json["id"])
        assert asset.status == "uploaded" and asset.original_name == "事迹.mp4"
        from media.storage import storage

        stored = storage().local_path(asset.storage_key, "original")
        assert stored.read_bytes() == payload
        assert redis_store.queue("media").count == 1
        db.session.remove()
    after = patch(102400, b"x")
    assert after.status_code == 409 and after.json["error"]["code"] == "upload_complete"


def test_interrupted_patch_keeps_what_arrived(app: Flask, client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    clerk = org.headers("unit-h1")
    url = client.post(
        f"/api/v1/nominations/{nid}/video", headers={**clerk, **TUS, "Upload-Length": "3000000"}
    ).headers["Location"]

    class Dropping(io.BytesIO):
        """A 3 MB body whose connection drops after 1.5 MiB."""

        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= 1_572_864:
                raise ConnectionResetError("client went away")
            size = 1_572_864 - self.tell() if size is None or size < 0 else size
            return super().read(min(size, 1_572_864 - self.tell()))

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            chunk = self.read(len(buffer))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    response = client.patch(
        url,
        input_stream=Dropping(b"v" * 3000000),
        headers={
            **clerk,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.status_code == 204
    offset = int(client.head(url, headers=clerk).headers["Upload-Offset"])
    assert offset == 1_572_864
    rest = client.patch(
        url,
        data=b"v" * (3000000 - offset),
        headers={
            **clerk,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert rest.status_code == 204 and rest.headers["Upload-Offset"] == "3000000"


@pytest.fixture
def phone_clip(tmp_path: Path) -> bytes:
    from tests.media.clips import make_clip

    return make_clip(tmp_path / "clip.mp4", width=1080, height=1920, seconds=2).read_bytes()


def _upload_video(client: FlaskClient, org: Org, nid: int, payload: bytes) -> int:
    clerk = org.headers("unit-h1")
    created = client.post(
        f"/api/v1/nominations/{nid}/video",
        headers={**clerk, **TUS, "Upload-Length": str(len(payload))},
    )
    url = created.headers["Location"]
    done = client.patch(
        url,
        data=payload,
        headers={
            **clerk,
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert done.status_code == 204
    return int(created.json["id"])


def test_video_is_transcoded_by_the_worker_and_served_once_approved(
    app: Flask, client: FlaskClient, org: Org, phone_clip: bytes
) -> None:
    org.campaign()
    nid = org.nomination(status="draft")
    asset_id = _upload_video(client, org, nid, phone_clip)
    _run_media_worker(app)
    clerk = org.headers("unit-h1")
    status = client.get(f"/api/v1/media/{asset_id}", headers=clerk).json
    assert status["status"] == "ready", status
    labels = {r["label"]: (r["width"], r["height"]) for r in status["renditions"]}
    assert labels == {"720p": (720, 1280), "480p": (480, 854)}
    preview = status["renditions"][0]["url"]
    assert client.get(preview).status_code == 200  # owner's signed preview
    public_url = preview.split("?")[0]
    assert client.get(public_url).status_code == 404  # not approved yet

    # Submit and approve; the public now sees the video on the nominee page.
    client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk)
    client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    detail = client.get("/api/v1/campaigns/c1/nominees/D001").json
    assert detail["video"]["duration"] == pytest.approx(2, abs=0.3)
    assert detail["video"]["poster_url"].endswith("/poster.jpg")
    ranged = client.get(public_url, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.data) == 100
    assert "immutable" in ranged.headers["Cache-Control"]
    ranged.close()
    assert client.get(f"/media/{asset_id}/original").status_code == 404  # never the upload


def test_a_bad_video_fails_with_a_reason_and_keeps_the_previous_one(
    app: Flask, client: FlaskClient, org: Org, phone_clip: bytes
) -> None:
    org.campaign()
    nid = org.nomination(status="draft")
    good = _upload_video(client, org, nid, phone_clip)
    _run_media_worker(app)
    png = io.BytesIO()
    Image.new("RGB", (10, 10)).save(png, format="PNG")
    bad = _upload_video(client, org, nid, png.getvalue())
    _run_media_worker(app)
    clerk = org.headers("unit-h1")
    failed = client.get(f"/api/v1/media/{bad}", headers=clerk).json
    assert failed["status"] == "failed" and failed["failure_code"] == "not_a_video"
    assert failed["failure_reason"]  # a sentence the unit can read
    assert client.get(f"/api/v1/media/{good}", headers=clerk).json["status"] == "ready"
    third = _upload_video(client, org, nid, phone_clip)
    _run_media_worker(app)
    assert client.get(f"/api/v1/media/{third}", headers=clerk).json["status"] == "ready"
    assert client.get(f"/api/v1/media/{good}", headers=clerk).json["status"] == "replaced"


def test_odd_upload_headers_and_ids_are_clear_refusals(client: FlaskClient, org: Org) -> None:
    org.campaign()
    nid = org.nomination()
    clerk = org.headers("unit-h1")
    for value in ("²", "-5", "1e9", ""):
        response = client.post(
            f"/api/v1/nominations/{nid}/video", headers={**clerk, **TUS, "Upload-Length": value}
        )
        assert response.status_code == 400, value
        assert response.json["error"]["code"] == "bad_upload_header"
    assert client.get("/media/99999999999999999999999/poster.jpg").status_code == 404
    assert client.get("/api/v1/nominations/99999999999999999999", headers=clerk).status_code == 404


def test_a_video_finished_after_approval_does_not_replace_the_reviewed_one(
    app: Flask, client: FlaskClient, org: Org, phone_clip: bytes
) -> None:
    org.campaign()
    nid = org.nomination(status="draft")
    asset_id = _upload_video(client, org, nid, phone_clip)
    clerk = org.headers("unit-h1")
    client.post(f"/api/v1/nominations/{nid}/submit", headers=clerk)
    client.post(
        f"/api/v1/nominations/{nid}/review",
        json={"decision": "approve"},
        headers=org.headers("admin"),
    )
    _run_media_worker(app)
    status = client.get(f"/api/v1/media/{asset_id}", headers=clerk).json
    assert status["status"] == "failed" and status["failure_code"] == "nomination_locked"
    assert "video" not in client.get("/api/v1/campaigns/c1/nominees/D001").json


def test_openapi_documents_the_upload_answers(client: FlaskClient) -> None:
    """Found by tests/fuzz: HEAD /uploads/<id> answered an undocumented 200 (schemathesis read it
    as the JSON `default` error), and the upload refusals had no body schema."""
    paths = client.get("/api/openapi.json").json["paths"]
    head = paths["/api/v1/uploads/{asset_id}"]["head"]["responses"]
    assert "content" not in head["200"]
    assert set(head["200"]["headers"]) == {"Upload-Offset", "Upload-Length", "Tus-Resumable"}
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    declared = {
        ("/api/v1/nominations/{nomination_id}/video", "post"): {400, 403, 404, 409, 413},
        ("/api/v1/uploads/{asset_id}", "head"): {404},
        ("/api/v1/uploads/{asset_id}", "patch"): {400, 403, 404, 409, 413, 415},
        ("/api/v1/nominations/{nomination_id}/photo", "post"): {400, 403, 404, 409, 413, 422},
        ("/api/v1/media/{asset_id}", "get"): {404},
        ("/api/v1/nominations/{nomination_id}/media", "get"): {404},
    }
    for (path, method), statuses in declared.items():
        responses = paths[path][method]["responses"]
        for status in statuses:
            body = responses[str(status)]["content"]["application/json"]["schema"]
            assert body == envelope, (method, path, status)
