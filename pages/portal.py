"""The unit portal: a clinic clerk's nominations, the form, uploads, submit and resubmit."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from core.errors import AppError
from pages.common import error_page, render_page, staff_page

bp = Blueprint("portal", __name__, url_prefix="/portal", template_folder="templates")
bp.register_error_handler(AppError, error_page)


@bp.route("")
@staff_page("unit", "admin", login="portal")
def index() -> Any:
    return render_page("pages/portal/index.html")
