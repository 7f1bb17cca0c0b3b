"""Schemas of media assets (what the owner sees) and of the upload endpoints."""

from __future__ import annotations

from marshmallow import Schema, fields


class RenditionSchema(Schema):
    label = fields.String()
    width = fields.Integer()
    height = fields.Integer()
    url = fields.String()


class MediaAssetSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "photo or video"})
    status = fields.String(
        metadata={"description": "receiving, uploaded, processing, ready, failed, replaced"}
    )
    received = fields.Integer(metadata={"description": "bytes received so far"})
    size = fields.Integer()
    failure_code = fields.String(allow_none=True)
    failure_reason = fields.String(allow_none=True, metadata={"description": "zh-CN, for the unit"})
    duration = fields.Float(allow_none=True)
    width = fields.Integer(allow_none=True)
    height = fields.Integer(allow_none=True)
    upload_url = fields.String(metadata={"description": "tus upload URL (video, while receiving)"})
    poster_url = fields.String()
    renditions = fields.List(fields.Nested(RenditionSchema))
    photo_url = fields.String()
    thumb_url = fields.String()


class NominationMediaSchema(Schema):
    items = fields.List(fields.Nested(MediaAssetSchema))
