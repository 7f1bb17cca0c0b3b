"""The console's second half: judging progress, judges' score sheets, combined results with the
sensitivity view, finalisation, publicity and objections, exports."""

from __future__ import annotations

from flask import Blueprint

from core.errors import AppError
from pages.common import error_page

bp = Blueprint("console_awards", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)
