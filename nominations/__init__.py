"""Nominations, the review workflow and the public nominee listing."""

from __future__ import annotations

from flask import Flask

from nominations import public_view


def init_app(app: Flask) -> None:
    """Keep the cached public view of each campaign in step with the commits that change it."""
    public_view.init_app(app)
