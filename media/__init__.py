"""Photos and video profiles: uploads, storage, transcoding jobs and range serving."""

from __future__ import annotations

from flask import Flask

from media import services
from nominations import ports as nomination_ports


def init_app(app: Flask) -> None:
    """Give the public nominee listing its photo and video URLs (process-wide, idempotent)."""
    nomination_ports.register_media(services.public_media)
