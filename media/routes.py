"""HTTP routes: resumable video upload (tus 1.0 core + creation), photo upload, asset status,
and the file server for renditions."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, g, request
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.errors import AppError
from core.extensions import db
from core.http import accepts_any_body
from core.schemas import ErrorEnvelopeSchema
from media import jobs, services
from media.models import PHOTOS_MAX, MediaAsset
from media.schemas import MediaAssetSchema, NominationMediaSchema, NominationPhotosSchema
from media.serving import send_media
from media.storage import storage
from nominations import services as nomination_services

blp = Blueprint(
    "media",
    __name__,
    url_prefix="/api/v1",
    description=(
        "照片与视频上传 (photos and videos). A nomination holds up to six photos, one of them "
        "the cover (the photo its card, ranking, poster and dossier show); it has one current "
        "video. Videos use the tus 1.0 resumable protocol: "
        "POST …/video with Upload-Length creates an upload, HEAD /uploads/<id> tells the offset, "
        "PATCH /uploads/<id> (Content-Type application/offset+octet-stream, Upload-Offset) "
        "appends bytes; an interrupted upload continues from the last received byte."
    ),
)
files = FlaskBlueprint("media_files", __name__)

STAFF = [{"bearerAuth": []}]
staff_required = campaign_services.staff_required
TUS_HEADERS = {"Tus-Resumable": services.TUS_VERSION}


def _tus_headers(asset: MediaAsset) -> dict[str, str]:
    return {
        **TUS_HEADERS,
        "Upload-Offset": str(asset.received),
        "Upload-Length": str(asset.declared_size),
        "Cache-Control": "no-store",
    }


def _int_header(name: str) -> int:
    value = request.headers.get(name, "")
    if not re.fullmatch(r"[0-9]{1,15}", value):
        raise AppError(
            f"缺少或无效的 {name} 请求头",
            code="bad_upload_header",
            status=400,
            details={"header": name},
        )
    return int(value)


@blp.route("/nominations/<id:nomination_id>/video", methods=["POST"])
@blp.doc(
    security=STAFF,
    parameters=[
        {"in": "header", "name": "Upload-Length", "required": True, "schema": {"type": "integer"}},
        {
            "in": "header",
            "name": "Upload-Metadata",
            "schema": {"type": "string"},
            "description": "tus metadata, e.g. filename <base64>",
        },
        {"in": "header", "name": "Tus-Resumable", "schema": {"type": "string", "enum": ["1.0.0"]}},
    ],
)
@blp.response(201, MediaAssetSchema, headers={"Location": {"schema": {"type": "string"}}})
@blp.alt_response(
    400,
    schema=ErrorEnvelopeSchema,
    description="bad_upload_header (Upload-Length), bad_upload_metadata, empty_upload",
)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="not_editable")
@blp.alt_response(
    413, schema=ErrorEnvelopeSchema, description="upload_too_large: refused before any byte is sent"
)
@blp.alt_response(
    429,
    schema=ErrorEnvelopeSchema,
    description="upload_quota_exhausted: MEDIA_UPLOADS_PER_NOMINATION_PER_DAY photos and videos "
    "started today for this nomination (Retry-After: until local midnight)",
)
@staff_required("unit", "admin")
def create_video_upload(nomination_id: int) -> Any:
    """Start a resumable video upload (tus 1.0 creation).

    The nominating unit's clerk, or an admin, while the nomination can be edited (draft or
    returned: 409 not_editable otherwise; another unit's: 404 nomination_not_found). Send
    ``Tus-Resumable: 1.0.0`` and ``Upload-Length``; a length over ``MEDIA_VIDEO_MAX_BYTES``
    (500 MB) is 413 upload_too_large before any byte is sent. Answers 201 with ``Location``:
    PATCH the bytes there, HEAD it to resume. Counts against the nomination's daily upload
    quota (429 upload_quota_exhausted). The finished upload is checked and transcoded by the
    worker (``GET /media/{asset_id}`` shows its status)."""
    nomination = nomination_services.get_for(g.account, nomination_id)
    length = _int_header("Upload-Length")
    name = services.parse_upload_metadata(request.headers.get("Upload-Metadata")).get("filename")
    asset = services.start_video_upload(g.account, nomination, length, name)
    db.session.commit()
    location = f"/api/v1/uploads/{asset.id}"
    body = services.describe(asset) | {"upload_url": location}
    return body, 201, {**_tus_headers(asset), "Location": location}


@blp.route("/uploads/<id:asset_id>", methods=["HEAD"])
@blp.doc(security=STAFF)
@blp.response(
    200,
    description="no body; Upload-Offset tells how many bytes the server holds",
    headers={
        "Upload-Offset": {"schema": {"type": "integer"}},
        "Upload-Length": {"schema": {"type": "integer"}},
        "Tus-Resumable": {"schema": {"type": "string"}},
    },
)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="media_not_found (no body)")
@staff_required("unit", "admin")
def upload_offset(asset_id: int) -> Response:
    """tus: how many bytes the server holds for an upload.

    The uploader (unit clerk of the nomination, or an admin). No body: ``Upload-Offset`` and
    ``Upload-Length`` headers; after a dropped connection, resume the PATCH from the offset."""
    asset = services.get_asset_for(g.account, asset_id)
    return Response(status=200, headers=_tus_headers(asset))


@accepts_any_body
@blp.route("/uploads/<id:asset_id>", methods=["PATCH"])
@blp.doc(
    security=STAFF,
    parameters=[
        {"in": "header", "name": "Upload-Offset", "required": True, "schema": {"type": "integer"}},
    ],
    requestBody={
        "content": {
            "application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}
        }
    },
)
@blp.response(204, description="stored; Upload-Offset tells the new offset")
@blp.alt_response(400, schema=ErrorEnvelopeSchema, description="bad_upload_header (Upload-Offset)")
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="media_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="offset_mismatch (with the server's Upload-Offset), upload_busy, "
    "upload_complete, not_editable",
)
@blp.alt_response(
    413, schema=ErrorEnvelopeSchema, description="more bytes than Upload-Length leaves"
)
@blp.alt_response(
    415,
    schema=ErrorEnvelopeSchema,
    description="Content-Type must be application/offset+octet-stream",
)
@staff_required("unit", "admin")
def upload_chunk(asset_id: int) -> Response:
    """tus: append bytes to an upload at ``Upload-Offset``.

    The uploader. ``Content-Type: application/offset+octet-stream`` (415 otherwise). The body
    streams to disk in 1 MiB chunks, each fsynced before the new offset is acknowledged; bytes
    that arrived before a dropped connection are kept. A wrong offset is 409 offset_mismatch
    (with the server's ``Upload-Offset``), two PATCHes at once 409 upload_busy, more bytes
    than declared 413. The last byte queues the transcoding."""
    if request.mimetype != "application/offset+octet-stream":
        raise AppError(
            "Content-Type 必须是 application/offset+octet-stream",
            code="unsupported_media_type",
            status=415,
        )
    offset = _int_header("Upload-Offset")
    request.max_content_length = current_app.config["MEDIA_VIDEO_MAX_BYTES"]
    with services.upload_lock(asset_id):
        slot = services.check_chunk(g.account, asset_id, offset, request.content_length)
        # Committed mid-request on purpose: a write request's transaction holds SQLite's write
        # lock (BEGIN IMMEDIATE) and bodies over weak connections take minutes to stream in.
        db.session.commit()
        services.append_chunk(slot, request.stream)
        # Committed before the lock is released: the next PATCH of this upload must read the
        # new offset, or it would take the old one as right and truncate the bytes just stored.
        db.session.commit()
    asset = services.finish_chunk(asset_id)
    complete = asset.status == "uploaded"
    db.session.commit()
    if complete:
        jobs.enqueue_processing(asset.id)
    return Response(status=204, headers=_tus_headers(asset))


@accepts_any_body
@blp.route("/nominations/<id:nomination_id>/photo", methods=["POST"])
@blp.doc(
    security=STAFF,
    requestBody={
        "content": {
            mime: {"schema": {"type": "string", "format": "binary"}}
            for mime in ("image/jpeg", "image/png", "image/webp")
        }
    },
)
@blp.response(201, MediaAssetSchema)
@blp.alt_response(400, schema=ErrorEnvelopeSchema, description="empty_upload, incomplete_upload")
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_editable; photo_limit: the nomination already holds six photos (refused "
    "before the body is read, and again when two uploads race for the last place)",
)
@blp.alt_response(413, schema=ErrorEnvelopeSchema, description="upload_too_large")
@blp.alt_response(
    429,
    schema=ErrorEnvelopeSchema,
    description="upload_quota_exhausted (Retry-After: until local midnight)",
)
@blp.alt_response(
    422,
    schema=ErrorEnvelopeSchema,
    description="not_an_image, photo_too_large (more pixels than MEDIA_PHOTO_MAX_PIXELS, or "
    "than MEDIA_PHOTO_DECODE_PIXELS for a PNG or WebP: refused from the header, undecoded)",
)
@staff_required("unit", "admin")
def upload_photo(nomination_id: int) -> Any:
    """Add a photo to the nominee's gallery.

    A nomination holds up to six photos (409 photo_limit for a seventh; delete one first); the
    first is the cover until another is chosen (``PUT …/photos/{asset_id}/cover``). The
    nominating unit's clerk, or an admin, while the nomination can be edited. The body is
    the image itself (JPEG, PNG or WebP; at most ``MEDIA_PHOTO_MAX_BYTES``, 413 beyond). The
    type is decided by the content, not the header (422 not_an_image); too many pixels is 422
    photo_too_large, refused from the header without decoding. The photo is re-encoded and its
    EXIF (GPS too) removed. Counts against the nomination's daily upload quota (429)."""
    nomination = nomination_services.get_for(g.account, nomination_id)
    request.max_content_length = current_app.config["MEDIA_PHOTO_MAX_BYTES"]
    services.check_photo_upload(g.account, nomination, request.content_length)
    # Committed mid-request on purpose: no transaction (on SQLite, the write lock that a write
    # request takes) may stay open while the body streams in.
    db.session.commit()
    asset = services.store_photo(g.account, nomination_id, request.stream)
    cover = services.cover_id(asset.nomination)
    db.session.commit()
    return services.describe(
        asset, token=services.preview_token(asset), cover=asset.id == cover
    ), 201


@blp.route("/media/<id:asset_id>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, MediaAssetSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="media_not_found")
@staff_required("unit", "reviewer", "admin")
def get_media(asset_id: int) -> Any:
    """A photo's or video's status and renditions.

    Staff who may see the nomination (its unit, a reviewer of the sub-tree, admins; others:
    404 media_not_found). Status goes receiving → uploaded → processing → ready | failed (a
    failed asset carries ``failure_code`` and a Chinese ``failure_reason``); preview links are
    signed and valid for an hour."""
    asset = services.get_asset_for(g.account, asset_id)
    cover = services.cover_id(asset.nomination) if asset.kind == "photo" else None
    return services.describe(
        asset,
        token=services.preview_token(asset),
        cover=asset.id == cover if asset.kind == "photo" else None,
    )


@blp.route("/nominations/<id:nomination_id>/media", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, NominationMediaSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@staff_required("unit", "reviewer", "admin")
def nomination_media(nomination_id: int) -> Any:
    """Every photo and video uploaded for a nomination, newest first.

    Staff who may see the nomination (its unit, a reviewer of the sub-tree, admins), with
    the status of each and signed preview links. Replaced and failed assets are listed too."""
    nomination = nomination_services.get_for(g.account, nomination_id)
    return {"items": services.described_assets(nomination)}


def _photos(nomination_id: int) -> dict[str, Any]:
    nomination = nomination_services.get_for(g.account, nomination_id)
    return {"items": services.photo_list(nomination), "limit": PHOTOS_MAX}


@blp.route("/nominations/<id:nomination_id>/photos", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, NominationPhotosSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@staff_required("unit", "reviewer", "admin")
def nomination_photos(nomination_id: int) -> Any:
    """The nomination's photo gallery, cover first.

    Staff who may see the nomination (its unit, a reviewer of the sub-tree, admins). Up to six
    ready photos with signed preview links: the cover first (``cover: true``), then the others
    in upload order. Removed photos are not listed (``GET …/media`` lists every upload)."""
    return _photos(nomination_id)


@blp.route("/nominations/<id:nomination_id>/photos/<id:asset_id>/cover", methods=["PUT"])
@blp.doc(security=STAFF)
@blp.response(200, NominationPhotosSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="nomination_not_found; media_not_found (not a photo of this gallery)",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="not_editable")
@staff_required("unit", "admin")
def choose_cover(nomination_id: int, asset_id: int) -> Any:
    """Make a photo of the gallery its cover.

    The nominating unit's clerk, or an admin, while the nomination can be edited (the rule of
    an upload). No body. The cover is what the nominee's card, the ranking, the share poster
    and the dossier show. Answers the gallery in its new order."""
    nomination = nomination_services.get_for(g.account, nomination_id)
    services.set_cover(g.account, nomination, asset_id)
    db.session.commit()
    return _photos(nomination_id)


@blp.route("/nominations/<id:nomination_id>/photos/<id:asset_id>", methods=["DELETE"])
@blp.doc(security=STAFF)
@blp.response(200, NominationPhotosSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="nomination_not_found; media_not_found (not a photo of this gallery)",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="not_editable")
@staff_required("unit", "admin")
def delete_photo(nomination_id: int, asset_id: int) -> Any:
    """Remove a photo from the gallery.

    The nominating unit's clerk, or an admin, while the nomination can be edited (the rule of
    an upload). The photo leaves the gallery (status ``removed``; its files are kept for the
    record, never shown to the public); if it was the cover, the next photo becomes the cover.
    Answers the gallery in its new order."""
    nomination = nomination_services.get_for(g.account, nomination_id)
    services.remove_photo(g.account, nomination, asset_id)
    db.session.commit()
    return _photos(nomination_id)


_MIME = {".mp4": "video/mp4", ".jpg": "image/jpeg"}


@files.route("/media/<id:asset_id>/<name>", methods=["GET", "HEAD"])
def media_file(asset_id: int, name: str) -> Response:
    """Renditions, posters and photos: public once the nominee is approved; owners preview with
    a signed link. Ranges, ETags and long-lived caching of immutable files."""
    asset = services.fetchable_asset(asset_id, name, request.args.get("t"))
    path = storage().local_path(asset.storage_key, name)
    suffix = path.suffix
    return send_media(
        path,
        mime=_MIME.get(suffix, "application/octet-stream"),
        etag=f"{asset.id}-{name}-{asset.ready_at.timestamp() if asset.ready_at else 0:.0f}",
        immutable=services.is_public(asset),
        accel_prefix=current_app.config.get("MEDIA_ACCEL_PREFIX"),
        accel_path=f"{asset.storage_key}/{name}",
    )
