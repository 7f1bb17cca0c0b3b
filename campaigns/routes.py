"""HTTP routes for login, units, accounts, campaigns and categories."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, make_response
from flask.views import MethodView
from flask_smorest import Blueprint

from campaigns import categories as campaign_categories
from campaigns import services
from campaigns.schemas import (
    AccountActivateSchema,
    AccountCreateSchema,
    AccountDeactivateSchema,
    AccountListSchema,
    AccountSchema,
    CampaignAdminSchema,
    CampaignClerkSchema,
    CampaignCreateSchema,
    CampaignListSchema,
    CampaignSchema,
    CampaignUpdateSchema,
    CategoryCreateSchema,
    CategorySchema,
    CategoryUpdateSchema,
    LoginResultSchema,
    LoginSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    PhaseChangeSchema,
    UnitCreateSchema,
    UnitListSchema,
    UnitSchema,
)
from core.auth import client_ip
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema
from core.web import STAFF_COOKIE, clear_credential, credential_is_cookie, set_credential

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1",
    description="登录、单位、账号、评选活动与奖项 (login, units, accounts, campaigns, categories)",
)

STAFF_SECURITY = [{"bearerAuth": []}]
SESSION_REFUSALS = "unauthorized, invalid_token, token_expired, token_revoked"


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema, example={"username": "admin", "password": "correct-horse-42"})
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_credentials")
@blp.alt_response(
    403, schema=ErrorEnvelopeSchema, description="account_inactive (right password, deactivated)"
)
@blp.alt_response(
    429, schema=ErrorEnvelopeSchema, description="login_throttled / login_locked, with Retry-After"
)
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Staff login: username and password for a bearer token.

    Anyone may call it. The token is signed, carries a random id and expires after 8 hours;
    send it as ``Authorization: Bearer <access_token>``. A wrong name or password is 401
    invalid_credentials; a deactivated account with the right password 403 account_inactive.
    Failures are counted per (username, address) and per address: past the limits each try
    must wait (429 login_throttled) and then the pair or address is locked for 15 minutes (429
    login_locked), both with Retry-After. Redis down: 503 (login fails closed)."""
    account, token = services.login(body["username"], body["password"], client_ip())
    db.session.commit()
    return {
        "access_token": token.token,
        "role": account.role,
        "expires_at": token.expires_at,
        "username": account.username,
        "unit_code": account.unit.code if account.unit else None,
    }


@blp.route("/auth/logout", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.response(204)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="csrf_failed (cookie without token)")
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
def logout() -> Any:
    """Log out: revoke the caller's token.

    Any staff. Revokes this token only (other sessions stay); afterwards it answers 401
    token_revoked. A missing or invalid token answers 204 as well. With the page cookie it
    needs the CSRF header (403 csrf_failed) and clears the cookie."""
    from_cookie = services.logout()
    response = make_response("", 204)
    if from_cookie:
        clear_credential(response, STAFF_COOKIE)
    return response


@blp.route("/auth/password", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PasswordChangeSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description=SESSION_REFUSALS)
@blp.alt_response(
    403, schema=ErrorEnvelopeSchema, description="wrong_password (current), csrf_failed"
)
@blp.alt_response(
    422, schema=ErrorEnvelopeSchema, description="validation_error, weak_password (new password)"
)
@blp.alt_response(
    429, schema=ErrorEnvelopeSchema, description="login_throttled / login_locked, with Retry-After"
)
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
@services.staff_required()
def change_password(body: dict[str, Any]) -> Any:
    """Change one's own password.

    Any staff. A wrong current password is 403 wrong_password, counted and throttled like a
    failed login (429). The new one: 10–256 characters, not the username, not the current one
    (422 weak_password). Every other session of the account ends; the answer carries a fresh
    token (with the page cookie, the cookie is renewed). Audited."""
    account = g.account
    token = services.change_own_password(
        account, body["current_password"], body["new_password"], client_ip()
    )
    db.session.commit()
    result = LoginResultSchema().dump(
        {
            "access_token": token.token,
            "role": account.role,
            "expires_at": token.expires_at,
            "username": account.username,
            "unit_code": account.unit.code if account.unit else None,
        }
    )
    response = make_response(result, 200)
    if credential_is_cookie(STAFF_COOKIE):
        set_credential(response, STAFF_COOKIE, token.token, current_app.config["STAFF_TOKEN_TTL"])
    return response


@blp.route("/auth/me", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.doc(security=STAFF_SECURITY)
@services.staff_required()
def me() -> Any:
    """The signed-in staff account.

    Any staff with a valid token (bearer or the page cookie): username, role, unit, state."""

    return g.account


@blp.route("/units")
class Units(MethodView):
    @blp.doc(security=STAFF_SECURITY)
    @blp.response(200, UnitListSchema)
    @services.staff_required("admin", "reviewer", "unit")
    def get(self) -> dict[str, Any]:
        """Units the caller can see.

        Admins: every unit. Reviewers: their unit and everything below it. Unit clerks: their
        own unit. Judges: 403 forbidden."""
        return {"items": services.visible_units(g.account)}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(UnitCreateSchema)
    @blp.response(201, UnitSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="unit_not_found (parent_code)")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="unit_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a unit under its parent.

        Admins only. Levels go province → city → county → institution, each under a unit
        of a higher level (422 invalid_parent otherwise; an unknown parent: 404
        unit_not_found). A code in use: 409 unit_exists. Audited."""
        unit = services.create_unit(**body)
        db.session.commit()
        return unit


@blp.route("/accounts")
class Accounts(MethodView):
    @blp.doc(security=STAFF_SECURITY)
    @blp.response(200, AccountListSchema)
    @services.staff_required("admin")
    def get(self) -> dict[str, Any]:
        """All staff accounts, active or not.

        Admins only. With role, unit, ``is_active`` and ``last_login_at``; never a password
        or its hash."""
        return {"items": services.list_accounts()}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="unit_not_found")
    @blp.alt_response(
        422,
        schema=ErrorEnvelopeSchema,
        description="validation_error, weak_password, unit_required, invalid_unit_level",
    )
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="account_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a staff account.

        Admins only. Reviewers belong to a bureau (province, city or county) and unit clerks
        to an institution (422 unit_required / invalid_unit_level). The password (10–256
        characters, not the username) is hashed with argon2. A username in use: 409
        account_exists. Audited."""
        account = services.create_account(**body)
        db.session.commit()
        return account


def _admin_account_change(view: Any) -> Any:
    """What every admin change of another account documents."""
    for status, codes in (
        (401, SESSION_REFUSALS),
        (403, "forbidden (not an admin), csrf_failed"),
        (404, "account_not_found"),
    ):
        view = blp.alt_response(status, schema=ErrorEnvelopeSchema, description=codes)(view)
    return view


@blp.route("/accounts/<username>/password", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PasswordResetSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="use_password_change (one's own account)"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error, weak_password")
@services.staff_required("admin")
def reset_password(body: dict[str, Any], username: str) -> Any:
    """Set another account's password.

    Admins only. All of that account's sessions end. One's own password goes through
    ``POST /auth/password`` instead (409 use_password_change). Audited with the reason, never
    the password."""
    account = services.reset_password(
        services.get_account(username), body["new_password"], g.account, body["reason"]
    )
    db.session.commit()
    return account


@blp.route("/accounts/<username>/deactivate", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(AccountDeactivateSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="cannot_deactivate_self, already_inactive"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error, reason_required")
@services.staff_required("admin")
def deactivate_account(body: dict[str, Any], username: str) -> Any:
    """Deactivate an account, with a reason.

    Admins only. The account cannot log in and its sessions end. Oneself: 409
    cannot_deactivate_self; twice: 409 already_inactive. Audited."""
    account = services.set_account_active(
        services.get_account(username), False, g.account, body["reason"]
    )
    db.session.commit()
    return account


@blp.route("/accounts/<username>/activate", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(AccountActivateSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="already_active")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error")
@services.staff_required("admin")
def activate_account(body: dict[str, Any], username: str) -> Any:
    """Reactivate a deactivated account.

    Admins only. The account logs in afresh; its old tokens stay dead. Already active: 409
    already_active. Audited."""
    account = services.set_account_active(
        services.get_account(username), True, g.account, body["reason"]
    )
    db.session.commit()
    return account


@blp.route("/campaigns")
class Campaigns(MethodView):
    @blp.response(200, CampaignListSchema)
    def get(self) -> dict[str, Any]:
        """Published campaigns (every phase but draft).

        Public, no token. Each with its windows, phase, public rules and categories."""
        return {"items": services.list_campaigns()}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(
        CampaignCreateSchema,
        example={
            "slug": "zuimei-2026",
            "title": "2026年度「最美医务工作者」评选",
            "organizer": "青山市卫生健康委员会",
            "description": "寻找身边的最美医务工作者。",
            "timezone": "Asia/Shanghai",
            "nomination_start": "2026-03-01T00:00:00+08:00",
            "nomination_end": "2026-03-31T00:00:00+08:00",
            "voting_start": "2026-04-10T08:00:00+08:00",
            "voting_end": "2026-04-20T20:00:00+08:00",
            "rules": {"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
            "weights": {"public": 30, "jury": 70, "organizer": 0},
            "require_recommendation": True,
            "publicity_days": 7,
        },
    )
    @blp.response(201, CampaignAdminSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="campaign_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a campaign in the draft phase.

        Admins only. Give its windows (nomination, then voting; each start before its end),
        voting rules and score weights (summing to 100). The slug is its id in every URL and
        never changes (409 campaign_exists when taken). Add categories, then move it to
        ``nominating`` with ``POST /campaigns/{slug}/phase``. Audited."""
        campaign = services.create_campaign(body)
        db.session.commit()
        return campaign


@blp.route("/campaigns/<slug>")
class CampaignDetail(MethodView):
    @blp.response(200, CampaignSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    def get(self, slug: str) -> Any:
        """A published campaign: categories, phase, windows and public rules.

        Public, no token. Only the rules a voter plans by (quotas, hidden counts, regions,
        phone requirement): never a pressure check or detector threshold. A draft campaign
        is 404 campaign_not_found."""
        return services.get_public_campaign(slug)

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(CampaignUpdateSchema)
    @blp.response(200, CampaignAdminSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="campaign_closed, rules_locked")
    @services.staff_required("admin")
    def patch(self, body: dict[str, Any], slug: str) -> Any:
        """Edit a campaign; every field optional.

        Admins only. While the campaign is in voting, ``rules``, ``voting_start`` and
        ``timezone`` are locked (409 rules_locked, naming them); a closed campaign cannot
        change (409 campaign_closed). The windows are checked again as a whole. Audited with
        before and after."""
        campaign = services.update_campaign(services.get_campaign(slug), body)
        db.session.commit()
        return campaign


@blp.route("/admin/campaigns/<slug>", methods=["GET"])
@blp.doc(
    security=STAFF_SECURITY,
    responses={
        "200": {
            "description": "admin: CampaignAdmin, every rule (pressure checks and detector "
            "thresholds included); reviewer and unit: CampaignClerk (`view: clerk`), without them",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [CampaignAdminSchema, CampaignClerkSchema]}
                }
            },
        }
    },
)
@blp.response(200, description="CampaignAdmin (admin) or CampaignClerk (reviewer, unit)")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@services.staff_required("admin", "reviewer", "unit")
def campaign_for_staff(slug: str) -> Any:
    """A campaign as staff see it, drafts included.

    Admins, reviewers and unit clerks. Admins get ``CampaignAdmin`` with every rule (pressure
    checks and detector thresholds); reviewers and clerks get ``CampaignClerk`` (``view:
    clerk``) without them: knowing them is knowing how to brush unseen."""
    campaign = services.get_campaign(slug)
    if g.account.role == "admin":
        return CampaignAdminSchema().dump(campaign)
    return CampaignClerkSchema().dump(campaign)


@blp.route("/campaigns/<slug>/phase", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PhaseChangeSchema)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="phase_unchanged, no_categories; the awards rules: no_final_result, "
    "not_published, unpublished_result, publicity_running, objections_open",
)
@services.staff_required("admin")
def change_phase(body: dict[str, Any], slug: str) -> Any:
    """Move the campaign to another phase.

    Admins only. Phases: draft → nominating → reviewing → voting → judging → publicity →
    closed. Forward moves are free; a move back needs a ``reason`` (422 reason_required).
    Leaving draft needs a category (409 no_categories); publicity needs a final result (409
    no_final_result); closing needs the publicity window over, every newer result published
    and every objection answered (409 publicity_running, unpublished_result,
    objections_open). Audited."""
    campaign = services.change_phase(services.get_campaign(slug), body["phase"], body["reason"])
    db.session.commit()
    return campaign


@blp.route("/campaigns/<slug>/categories", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(
    CategoryCreateSchema,
    example={
        "code": "doctor",
        "name": "十大最美医生",
        "prefix": "D",
        "max_per_unit": 2,
        "tiers": [
            {"code": "top10", "name": "十佳", "count": 10},
            {"code": "excellent", "name": "优秀", "count": 10},
        ],
    },
)
@blp.response(201, CategorySchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="categories_locked, category_exists")
@services.staff_required("admin")
def add_category(body: dict[str, Any], slug: str) -> Any:
    """Add a category (奖项) to a campaign.

    Admins only, in the draft and nominating phases (409 categories_locked after). A category has a
    code, a name, the prefix of its nominees' public numbers, an award count, a per-unit quota
    and optional award tiers (e.g. 十佳 10, 优秀 10; the award count is then their sum). A
    code in use: 409 category_exists."""
    category = campaign_categories.add_category(services.get_campaign(slug), body)
    db.session.commit()
    return category


@blp.route("/campaigns/<slug>/categories/<code>", methods=["PATCH"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(CategoryUpdateSchema)
@blp.response(200, CategorySchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="awards_locked (publicity or closed)"
)
@services.staff_required("admin")
def update_category(body: dict[str, Any], slug: str, code: str) -> Any:
    """Change a category's award count or award tiers.

    Admins only, until the campaign enters publicity (409 awards_locked). A result version
    already computed keeps the tiers it was computed with until it is recomputed or adjusted.
    Audited as category.update."""
    campaign = services.get_campaign(slug)
    category = campaign_categories.update_category(
        campaign, campaign_categories.get_category(campaign, code), body
    )
    db.session.commit()
    return category
