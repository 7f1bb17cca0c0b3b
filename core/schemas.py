"""Schemas shared by every domain: the error envelope, pagination."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "stable English code"})
    message = fields.String(required=True, metadata={"description": "zh-CN sentence for people"})
    details = fields.Dict(metadata={"description": "field messages or other context"})
    request_id = fields.String()


class ErrorEnvelopeSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class PageArgsSchema(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PageMetaMixin(Schema):
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
