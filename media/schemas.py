"""Schemas of media assets (what the owner sees) and of the upload endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class RenditionSchema(Schema):
    label = fields.String(metadata={"description": "the rendition's name, e.g. 720p"})
    width = fields.Integer(metadata={"description": "pixels"})
    height = fields.Integer(metadata={"description": "pixels"})
    url = fields.String(metadata={"description": "where to fetch it (signed, valid for an hour)"})


class MediaAssetSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "photo or video"})
    status = fields.String(
        metadata={
            "description": "receiving, uploaded, processing, ready, failed, replaced (a video "
            "superseded by a newer one; photos made before the gallery), removed (a photo the "
            "unit took out of the gallery)"
        }
    )
    received = fields.Integer(metadata={"description": "bytes received so far"})
    size = fields.Integer(metadata={"description": "the upload's declared length in bytes"})
    failure_code = fields.String(
        allow_none=True, metadata={"description": "stable code of why processing failed"}
    )
    failure_reason = fields.String(allow_none=True, metadata={"description": "zh-CN, for the unit"})
    duration = fields.Float(allow_none=True, metadata={"description": "video length, seconds"})
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    upload_url = fields.String(metadata={"description": "tus upload URL (video, while receiving)"})
    poster_url = fields.String(metadata={"description": "a still of the video (once ready)"})
    renditions = fields.List(
        fields.Nested(RenditionSchema),
        metadata={"description": "the video transcoded for phones, once ready"},
    )
    photo_url = fields.String(metadata={"description": "the re-encoded photo (once ready)"})
    thumb_url = fields.String(metadata={"description": "a small rendition of the photo"})
    cover = fields.Boolean(
        metadata={
            "description": "photos only: true on the gallery's cover (the photo cards, ranking, "
            "poster and dossier show), false on its other photos and on removed ones"
        }
    )


class NominationMediaSchema(Schema):
    items = fields.List(
        fields.Nested(MediaAssetSchema),
        metadata={"description": "every photo and video uploaded, newest first"},
    )


class NominationPhotosSchema(Schema):
    items = fields.List(
        fields.Nested(MediaAssetSchema),
        metadata={
            "description": "the gallery in order: the cover first (cover: true), then the other "
            "photos in upload order"
        },
    )
    limit = fields.Integer(metadata={"description": "how many photos a nomination may hold (6)"})
