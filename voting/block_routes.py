"""HTTP routes of the committee's voter blocks: block a voter (from the vote browser or a flag),
lift a block, list them. Each write commits, then tells the vote script (voting.blocks)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema
from voting import blocks
from voting.block_schemas import (
    BlockCreateSchema,
    BlockListArgsSchema,
    BlockPageSchema,
    BlockResultSchema,
    FlagBlockResultSchema,
    FlagBlockSchema,
    LiftBlockSchema,
)
from voting.models import VoterBlock

blp = Blueprint(
    "voting_blocks",
    __name__,
    url_prefix="/api/v1",
    description="屏蔽投票人：委员会屏蔽与解除屏蔽，均须填写理由 (voter blocks, with reasons)",
)

BEARER = [{"bearerAuth": []}]
# The roles that decide on fraud flags (voting.routes: flag_confirm) decide on blocks too.
COMMITTEE = ("admin",)
_STATES = {"active": True, "lifted": False, "all": None}
_REASON_CODES = "validation_error, reason_required, reason_length"


_FIELDS = (
    "id",
    "voter_id",
    "reason",
    "source",
    "flag_id",
    "blocked_by",
    "blocked_at",
    "lifted_at",
    "lifted_by",
    "lift_reason",
)


def _row(block: VoterBlock) -> dict[str, Any]:
    """The block's values, read before the commit expires them (no reload per row after)."""
    return {name: getattr(block, name) for name in _FIELDS}


@blp.route("/admin/campaigns/<slug>/blocks")
class Blocks(MethodView):
    @blp.doc(security=BEARER)
    @blp.arguments(BlockListArgsSchema, location="query")
    @blp.response(200, BlockPageSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @campaign_services.staff_required(*COMMITTEE)
    def get(self, args: dict[str, Any], slug: str) -> dict[str, Any]:
        """屏蔽名单 (the campaign's blocked voters), newest first.

        Admins only (403 forbidden for other roles). ``status`` chooses the active blocks
        (default), the lifted ones or all; each row says who blocked, when and why, and who
        lifted it. Paginated with ``page`` / ``per_page`` (at most 500)."""
        campaign = campaign_services.get_campaign(slug)
        active = _STATES[args["status"]]
        items = blocks.list_blocks(campaign, active, page=args["page"], per_page=args["per_page"])
        return {
            "items": items,
            "page": args["page"],
            "per_page": args["per_page"],
            "total": blocks.count_blocks(campaign, active),
        }

    @blp.doc(security=BEARER)
    @blp.arguments(BlockCreateSchema)
    @blp.response(201, BlockResultSchema)
    @blp.alt_response(
        404,
        schema=ErrorEnvelopeSchema,
        description="campaign_not_found, voter_not_found, voter_not_in_campaign, flag_not_found, "
        "voter_not_in_flag",
    )
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="already_blocked")
    @blp.alt_response(422, schema=ErrorEnvelopeSchema, description=_REASON_CODES)
    @campaign_services.staff_required(*COMMITTEE)
    def post(self, body: dict[str, Any], slug: str) -> Any:
        """屏蔽一位投票人 (block a voter in this campaign, with a reason).

        Admins only. From then on the vote script refuses the voter (403 voter_blocked). The
        voter must have a stored vote in the campaign (404 voter_not_in_campaign), or be named
        by ``flag_id`` (404 voter_not_in_flag); a voter blocked already: 409 already_blocked.
        The reason is 2–500 characters (422 reason_required / reason_length). Audited. When
        the vote service cannot be told at once, the block is stored all the same and
        ``warning`` says so (the next state write applies it)."""
        campaign = campaign_services.get_campaign(slug)
        source = "flag" if body["flag_id"] is not None else "browser"
        block = blocks.block_voter(
            campaign, body["voter_id"], g.account, body["reason"], source, body["flag_id"]
        )
        row = _row(block)
        db.session.commit()
        return row | {"warning": blocks.publish_blocks(campaign, [row["voter_id"]])}


@blp.route("/admin/campaigns/<slug>/blocks/<id:voter_id>/lift", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(LiftBlockSchema)
@blp.response(200, BlockResultSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, not_blocked")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description=_REASON_CODES)
@campaign_services.staff_required(*COMMITTEE)
def lift(body: dict[str, Any], slug: str, voter_id: int) -> Any:
    """解除屏蔽 (lift a voter's block, with a reason).

    Admins only. The voter may vote again; the block stays on record with who lifted it and
    why. A voter without an active block: 404 not_blocked. Audited; ``warning`` as for a new
    block."""
    campaign = campaign_services.get_campaign(slug)
    block = blocks.unblock_voter(campaign, voter_id, g.account, body["reason"])
    row = _row(block)
    db.session.commit()
    return row | {"warning": blocks.publish_blocks(campaign, [voter_id])}


@blp.route("/admin/campaigns/<slug>/fraud/flags/<id:flag_id>/block-voters", methods=["POST"])
@blp.doc(security=BEARER)
@blp.arguments(FlagBlockSchema)
@blp.response(200, FlagBlockResultSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found, flag_not_found")
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="already_blocked (every voter it names)"
)
@blp.alt_response(
    422, schema=ErrorEnvelopeSchema, description=f"{_REASON_CODES}, flag_has_no_voters"
)
@campaign_services.staff_required(*COMMITTEE)
def block_flag_voters(body: dict[str, Any], slug: str, flag_id: int) -> Any:
    """屏蔽线索涉及的全部投票人 (block every voter a fraud flag names, with one reason).

    Admins only. Voters already blocked stay as they are (listed in ``already_blocked``); when
    every voter the flag names is blocked already: 409 already_blocked; a flag naming no
    voter: 422 flag_has_no_voters. Each new block is audited with the flag."""
    campaign = campaign_services.get_campaign(slug)
    result = blocks.block_flag_voters(campaign, flag_id, g.account, body["reason"])
    result["items"] = [_row(block) for block in result["items"]]
    db.session.commit()
    return result | {"warning": blocks.publish_blocks(campaign, result["blocked"])}
