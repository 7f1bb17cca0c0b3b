"""The H5 voting page for phones: campaign home, nominee page, ranking, and the vote."""

from __future__ import annotations

from flask import Blueprint

from core.errors import AppError
from pages.common import error_page

bp = Blueprint("h5", __name__, template_folder="templates")
bp.register_error_handler(AppError, error_page)
