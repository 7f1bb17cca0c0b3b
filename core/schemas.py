"""Schemas shared by every domain: the error envelope, pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable English code"})
    message = fields.String(required=True, metadata={"description": "zh-CN sentence for people"})
    details = fields.Dict(metadata={"description": "field messages or other context"})
    request_id = fields.String(
        metadata={"description": "the request's id, also in the X-Request-ID header and the log"}
    )


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(
        ErrorBodySchema,
        required=True,
        metadata={"description": "every error answer has this one shape (docs/api.md)"},
    )


class PageArgsSchema(Schema):
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=100000),
        metadata={"description": "page number, from 1"},
    )
    per_page = fields.Integer(
        load_default=20,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "items per page (1–100, default 20)"},
    )


class PageMetaMixin(Schema):
    page = fields.Integer(required=True, metadata={"description": "this page's number"})
    per_page = fields.Integer(required=True, metadata={"description": "items per page asked"})
    total = fields.Integer(
        required=True, metadata={"description": "items matching the query, over all pages"}
    )
