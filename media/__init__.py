"""Photos and video profiles: uploads, storage, transcoding jobs and range serving."""

from __future__ import annotations

from flask import Flask

from media import services
from media.probing import sniff
from media.storage import storage
from nominations import level_forms as nomination_level_forms
from nominations import ports as nomination_ports


def init_app(app: Flask) -> None:
    """Give the public nominee listing its photo and video URLs, and the stamped recommendation
    forms their storage and content sniffer (process-wide, idempotent)."""
    nomination_ports.register_media(services.public_media)
    nomination_level_forms.register_media(storage=storage, sniff=sniff)
