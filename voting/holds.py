"""Held votes: what the vote script set aside per nominee, and why any vote has its status.

Read from the votes table only (no Redis), so the fraud desk and the vote browser can show them
even when the counters are down."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select

from campaigns.models import Campaign
from core.extensions import db
from voting.labels import HELD_REASON_LABELS, VOTE_REASON_LABELS
from voting.models import Vote


def held_votes(campaign: Campaign, directory: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Nominees with held ("pending") votes in the ledger, most held first: how many, the first
    and last, why the vote script held them, and the nominee's valid count beside them.
    ``directory`` gives each nominee's name by number."""
    rows = db.session.execute(
        select(
            Vote.nominee_number,
            Vote.category_code,
            Vote.status_reason,
            func.count(Vote.id),
            func.min(Vote.at),
            func.max(Vote.at),
        )
        .where(Vote.campaign_id == campaign.id, Vote.status == "pending")
        .group_by(Vote.nominee_number, Vote.category_code, Vote.status_reason)
    ).all()
    per: dict[str, dict[str, Any]] = {}
    for number, category, reason, count, first, last in rows:
        entry = per.setdefault(
            number,
            {
                "nominee": number,
                "category": category,
                "pending": 0,
                "first_at": first,
                "last_at": last,
                "reasons": defaultdict(int),
            },
        )
        entry["pending"] += count
        entry["first_at"] = min(entry["first_at"], first)
        entry["last_at"] = max(entry["last_at"], last)
        entry["reasons"][reason or ""] += count
    if not per:
        return []
    valid = dict(
        db.session.execute(
            select(Vote.nominee_number, func.count(Vote.id))
            .where(
                Vote.campaign_id == campaign.id,
                Vote.status == "valid",
                Vote.nominee_number.in_(list(per)),
            )
            .group_by(Vote.nominee_number)
        ).all()
    )
    categories = {c.code: c.name for c in campaign.categories}
    out = []
    for number, entry in per.items():
        known = directory.get(number, {})
        entry["name"] = known.get("name", "")
        entry["category_name"] = categories.get(entry["category"], entry["category"])
        entry["valid"] = valid.get(number, 0)
        entry["reasons"] = [
            {"code": code, "label": HELD_REASON_LABELS.get(code, code), "count": count}
            for code, count in sorted(entry["reasons"].items(), key=lambda item: -item[1])
        ]
        out.append(entry)
    out.sort(key=lambda e: (-e["pending"], e["nominee"]))
    return out


def describe_vote_reason(reason: str | None) -> str:
    """Vote.status_reason in Chinese: why it was held, or which decision set its status (the
    reasons the vote script and voting.fraud write; anything else shows as itself)."""
    if not reason:
        return ""
    kind, _, rest = reason.partition(":")
    label = VOTE_REASON_LABELS.get(kind)
    if label is None:
        return reason
    if "{}" in label:
        return label.format(rest)
    return label if reason == kind else reason
