"""HTTP routes of 我的投票 and vote receipts, attached to the voting API blueprint.

``attach(blp)`` is called by voting/routes.py; the algorithm and formats are docs/receipts.md."""

from __future__ import annotations

from typing import Any

from flask import Response, stream_with_context
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from campaigns import services as campaign_services
from core.http import client_address
from core.ratelimit import limit
from core.schemas import ErrorEnvelopeSchema
from nominations import public_view
from voting import receipts
from voting.identity import current_voter

BEARER = [{"bearerAuth": []}]
PUBLISHED_MAX_AGE = 300


class MyVoteSchema(Schema):
    vote_id = fields.String(metadata={"description": "the vote's id in the ledger"})
    nominee = fields.String(metadata={"description": "the nominee's number"})
    nominee_name = fields.String(metadata={"description": "the nominee's name"})
    category = fields.String(metadata={"description": "the category's code"})
    at = fields.AwareDateTime(
        metadata={"description": "when the vote was cast, with the campaign time zone's offset"}
    )
    at_local = fields.String(
        metadata={"description": "the same moment as the campaign's people read it"}
    )
    state = fields.String(
        metadata={
            "description": "counted, held (for review), invalidated, or recording (acknowledged, "
            "still in the ledger stream, not yet in the database)"
        }
    )
    state_label = fields.String(
        metadata={"description": "the state in Chinese: 已计入 / 待审核 / 已核减 / 正在计入"}
    )
    reason = fields.String(metadata={"description": "why, in Chinese (empty when nothing to say)"})
    receipt = fields.Boolean(
        metadata={"description": "a receipt is published for this vote (counted, after 公示)"}
    )


class MyVotesSchema(Schema):
    campaign = fields.String(metadata={"description": "the campaign's slug"})
    time_zone = fields.String(metadata={"description": "the campaign's time zone"})
    publicity = fields.Boolean(metadata={"description": "公示 has begun (receipts exist)"})
    receipts_ready = fields.Boolean(
        metadata={"description": "the receipt publication is computed and can be checked"}
    )
    stream_unavailable = fields.Boolean(
        metadata={
            "description": "the vote Redis could not be read: votes not yet drained are "
            "missing from the list"
        }
    )
    truncated = fields.Boolean(
        metadata={
            "description": f"more than {receipts.MY_VOTES_MAX} votes: the oldest are left out"
        }
    )
    items = fields.List(
        fields.Nested(MyVoteSchema), metadata={"description": "the caller's votes, newest first"}
    )


class PathStepSchema(Schema):
    side = fields.String(
        metadata={"description": "left or right: where the sibling sits beside the running hash"}
    )
    hash = fields.String(metadata={"description": "the sibling node, 64 hex digits"})


class ReceiptSchema(Schema):
    format = fields.String(metadata={"description": "zuimei-receipt-v1"})
    campaign = fields.String(metadata={"description": "the campaign's slug"})
    vote_id = fields.String(metadata={"description": "the vote's id"})
    nominee = fields.String(metadata={"description": "the nominee's number"})
    secret = fields.String(
        metadata={"description": "the per-vote secret (64 hex digits), shown only to this voter"}
    )
    leaf = fields.String(
        metadata={"description": "SHA-256 over the campaign, vote id, nominee and secret"}
    )
    path = fields.List(
        fields.Nested(PathStepSchema),
        metadata={"description": "the Merkle path from the leaf to the nominee's root"},
    )
    nominee_root = fields.String(metadata={"description": "the nominee's published Merkle root"})
    nominee_count = fields.Integer(metadata={"description": "the nominee's counted votes"})
    root = fields.String(metadata={"description": "the campaign root"})
    chain_index = fields.Integer(
        metadata={"description": "votes in the ledger chain when published"}
    )
    chain_head = fields.String(metadata={"description": "the ledger chain's head when published"})
    published_at = fields.AwareDateTime(metadata={"description": "when it was published (UTC)"})


class NomineeRootSchema(Schema):
    number = fields.String(metadata={"description": "the nominee's number"})
    count = fields.Integer(metadata={"description": "counted votes (published leaves)"})
    root = fields.String(metadata={"description": "the Merkle root over the sorted leaves"})


class PublicationSchema(Schema):
    format = fields.String(metadata={"description": "zuimei-receipts-v1"})
    campaign = fields.String(metadata={"description": "the campaign's slug"})
    published_at = fields.AwareDateTime(metadata={"description": "when it was computed (UTC)"})
    chain_index = fields.Integer(metadata={"description": "votes in the ledger chain then"})
    chain_head = fields.String(metadata={"description": "the ledger chain's head then"})
    root = fields.String(
        metadata={"description": "the campaign root over the nominee roots and the chain head"}
    )
    leaf_count = fields.Integer(metadata={"description": "counted votes in all"})
    nominees = fields.List(
        fields.Nested(NomineeRootSchema),
        metadata={"description": "each nominee with counted votes, sorted by number"},
    )


def _voter_limited(slug: str) -> int:
    """The caller's voter id, after counting the hit against RECEIPT_VOTER_LIMIT."""
    voter_id = int(current_voter()["sub"])
    limit("RECEIPT_VOTER_LIMIT", "receipts-voter", f"{slug}:{voter_id}")
    return voter_id


def _public_limited() -> None:
    limit("RECEIPT_PUBLIC_IP_LIMIT", "receipts-public", client_address())


def attach(blp: Blueprint) -> None:
    """Register the routes on the voting API blueprint."""

    @blp.route("/campaigns/<slug>/votes/mine", methods=["GET"])
    @blp.doc(security=BEARER)
    @blp.response(200, MyVotesSchema)
    @blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_voter")
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
    def my_votes(slug: str) -> dict[str, Any]:
        """我的投票: every vote the caller cast in the campaign, newest first.

        Voters only (a voter token: bearer, or the H5 page's cookie; 401 invalid_voter). Each
        vote has its time in the campaign's time zone, the nominee, and its state in Chinese:
        已计入 (counted), 待审核 (held for the committee's review, and why), 已核减 (invalidated,
        and why) or 正在计入 (acknowledged and still in the ledger stream). After 公示 a counted
        vote has a receipt (``receipt`` true once the publication is computed). Limited per
        voter (``RECEIPT_VOTER_LIMIT``)."""
        voter_id = _voter_limited(slug)
        view = public_view.campaign_view(slug)
        campaign = campaign_services.get_public_campaign(slug)
        names = {number: card.get("name", "") for number, card in view.by_number.items()}
        return receipts.my_votes(campaign, voter_id, names)

    @blp.route("/campaigns/<slug>/votes/mine/<vote_id>/receipt", methods=["GET"])
    @blp.doc(security=BEARER)
    @blp.response(200, ReceiptSchema)
    @blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_voter")
    @blp.alt_response(
        404, schema=ErrorEnvelopeSchema, description="campaign_not_found, receipt_not_found"
    )
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="receipts_not_published, receipts_not_ready, receipts_building",
    )
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
    def my_receipt(slug: str, vote_id: str) -> dict[str, Any]:
        """The receipt of one of the caller's counted votes, to check against the publication.

        Voters only, for their own votes: another voter's vote, a held or invalidated one is
        404 receipt_not_found. Before 公示 409 receipts_not_published; while ledger entries are
        still being drained 409 receipts_not_ready. The receipt holds the vote's secret: the
        leaf is SHA-256 over the campaign, vote id, nominee and secret, and the path leads to
        the nominee's published root (docs/receipts.md)."""
        voter_id = _voter_limited(slug)
        campaign = campaign_services.get_public_campaign(slug)
        return receipts.receipt(campaign, voter_id, vote_id)

    @blp.route("/campaigns/<slug>/receipts", methods=["GET"])
    @blp.response(200, PublicationSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="receipts_not_published, receipts_not_ready, receipts_building",
    )
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
    def published_roots(slug: str) -> Any:
        """The receipt publication without its leaves: nominee counts and roots, campaign root.

        Each nominee's Merkle root and count, and the campaign root tied to the ledger chain's
        head (docs/receipts.md).
        Public, no token, from 公示 on (409 receipts_not_published before). Computed once, at
        the first ask in publicity (or by ``flask votes receipts publish``), then served as
        stored. Limited per address (``RECEIPT_PUBLIC_IP_LIMIT``)."""
        _public_limited()
        campaign = campaign_services.get_public_campaign(slug)
        pub = receipts.publication(campaign)
        return receipts.summary(campaign, pub)

    @blp.route("/campaigns/<slug>/receipts/leaves", methods=["GET"])
    @blp.response(
        200,
        description="the whole publication as one JSON document (docs/receipts.md): the summary "
        "and, per nominee, its sorted leaves",
    )
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @blp.alt_response(
        409,
        schema=ErrorEnvelopeSchema,
        description="receipts_not_published, receipts_not_ready, receipts_building",
    )
    @blp.alt_response(429, schema=ErrorEnvelopeSchema, description="rate_limited, with Retry-After")
    def published_leaves(slug: str) -> Response:
        """Every counted vote's leaf, grouped by nominee and sorted: the whole publication.

        Anyone recounts each nominee's total and recomputes every root from it.
        Public, no token, from 公示 on. Streamed from the stored publication (memory stays flat
        however many votes there are); a public cache may keep it for five minutes. This is
        what ``python -m voting.receipt_check --published URL`` reads."""
        _public_limited()
        campaign = campaign_services.get_public_campaign(slug)
        pub = receipts.publication(campaign)
        body = stream_with_context(receipts.stream_publication(campaign, pub))
        response = Response(body, mimetype="application/json")
        response.headers["Cache-Control"] = f"public, max-age={PUBLISHED_MAX_AGE}"
        response.headers["Content-Disposition"] = (
            f'inline; filename="{campaign.slug}-receipts.json"'
        )
        return response
