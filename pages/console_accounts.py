"""The committee console's staff accounts page: who may log in, with password reset,
deactivation and reactivation calling the /api/v1/accounts endpoints (console_accounts.js)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint

from campaigns import services as campaign_services
from campaigns.labels import ROLE_LABELS
from core.errors import AppError
from pages.common import error_page, render_page, staff_page

bp = Blueprint("console_accounts", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)

# Accounts are not a campaign's: their times are shown in the bureau's default zone.
_ZONE = ZoneInfo("Asia/Shanghai")


def _row(account: Any) -> dict[str, Any]:
    last = account.last_login_at
    return {
        "username": account.username,
        "display_name": account.display_name or "",
        "role": ROLE_LABELS.get(account.role, account.role),
        "unit": account.unit.name if account.unit else "",
        "is_active": account.is_active,
        "last_login": last.astimezone(_ZONE).strftime("%Y-%m-%d %H:%M") if last else "从未登录",
    }


@bp.route("/accounts")
@staff_page("admin", login="console")
def accounts() -> Any:
    """Every staff account with its state; the buttons act through the API."""
    rows = [_row(account) for account in campaign_services.list_accounts()]
    return render_page("pages/console/accounts.html", rows=rows)
