"""The committee console: settings, review, live dashboard, fraud, judging, results, exports."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from core.errors import AppError
from pages.common import error_page, render_page, staff_page

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)


@bp.route("")
@staff_page("admin", "reviewer", "judge", login="console")
def index() -> Any:
    return render_page("pages/console/index.html")
