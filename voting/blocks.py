"""Voters the committee blocked in a campaign: who is refused at vote time, and why.

A block is a row (``VoterBlock``) with its reason, author and source (the vote browser or a fraud
flag); lifting it keeps the row and records who lifted it and why. Every block and lift is
audited. The vote script refuses the voters of the campaign's Redis set ``…blocked``: the state
write rebuilds that set from ``blocked_voter_ids``, and ``publish_blocks`` updates it at once
after the committing request (routes and pages call it after their commit). When the vote Redis
does not answer then, the block is stored all the same and ``publish_blocks`` says so: the next
state write (at the latest when the campaign's state expires, ``state.META_TTL``) applies it."""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

from sqlalchemy import func, select

from campaigns.models import Account, Campaign
from core import audit
from core.errors import Conflict, NotFound, ValidationFailed
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.types import utcnow
from voting.keys import CampaignKeys
from voting.models import FlagVote, FraudFlag, Vote, Voter, VoterBlock

log = logging.getLogger("zuimei.voting")

REASON_MIN, REASON_MAX = 2, 500
SOURCES = ("browser", "flag")
# What a caller is told when the block is stored but the vote script could not be told yet.
NOT_PUBLISHED = {
    "code": "vote_service_unavailable",
    "message": "已保存，但投票服务暂时无法更新屏蔽名单；投票服务恢复后重新载入活动状态时生效"
    "（最迟约 5 分钟）",
}


def blocked_voter_ids(campaign_id: int) -> list[int]:
    """Every voter refused in this campaign: blocked by its committee (and not lifted), or
    blocked everywhere (``Voter.blocked``, a short list). The vote script's blocked set is
    rebuilt from this list whenever the campaign state is written."""
    by_committee = select(VoterBlock.voter_id).where(
        VoterBlock.campaign_id == campaign_id, VoterBlock.lifted_at.is_(None)
    )
    everywhere = select(Voter.id).where(Voter.blocked.is_(True))
    ids = set(db.session.scalars(by_committee)) | set(db.session.scalars(everywhere))
    return sorted(ids)


def check_reason(reason: str | None) -> str:
    """A block's or a lift's reason: required, 2 to 500 characters once trimmed."""
    text = (reason or "").strip()
    if not text:
        raise ValidationFailed("请填写屏蔽或解除屏蔽的理由", code="reason_required")
    if not REASON_MIN <= len(text) <= REASON_MAX:
        raise ValidationFailed(
            f"理由应为 {REASON_MIN}–{REASON_MAX} 个字",
            code="reason_length",
            details={"min": REASON_MIN, "max": REASON_MAX, "length": len(text)},
        )
    return text


def _chunks(ids: list[int], size: int = 1000) -> list[list[int]]:
    """Long id lists in pieces: a flag can name thousands of voters, more than a database
    takes as parameters of one statement."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def _active_block(campaign: Campaign, voter_id: int) -> VoterBlock | None:
    return db.session.scalar(
        select(VoterBlock)
        .where(
            VoterBlock.campaign_id == campaign.id,
            VoterBlock.voter_id == voter_id,
            VoterBlock.lifted_at.is_(None),
        )
        .order_by(VoterBlock.id.desc())
        .limit(1)
    )


def _lock_voters(voter_ids: list[int]) -> dict[int, Voter]:
    """The voters' rows, locked in id order: two committee members blocking the same voter at
    once queue here, so a voter never gets two active blocks (SQLite serialises writers)."""
    voters: dict[int, Voter] = {}
    for chunk in _chunks(sorted(set(voter_ids))):
        rows = db.session.scalars(
            select(Voter).where(Voter.id.in_(chunk)).order_by(Voter.id).with_for_update()
        )
        voters.update((voter.id, voter) for voter in rows)
    return voters


def _flag(campaign: Campaign, flag_id: int) -> FraudFlag:
    flag = db.session.get(FraudFlag, flag_id)
    if flag is None or flag.campaign_id != campaign.id:
        raise NotFound("线索不存在", code="flag_not_found", details={"flag_id": flag_id})
    return flag


def flag_voter_ids(campaign: Campaign, flag_id: int) -> list[int]:
    """The voters a flag names: the voters of the votes it covers."""
    _flag(campaign, flag_id)
    return sorted(
        db.session.scalars(
            select(Vote.voter_id)
            .join(FlagVote, FlagVote.vote_id == Vote.id)
            .where(FlagVote.flag_id == flag_id, Vote.campaign_id == campaign.id)
            .distinct()
        )
    )


def _voted_in(campaign: Campaign, voter_id: int) -> bool:
    return (
        db.session.scalar(
            select(Vote.id)
            .where(Vote.campaign_id == campaign.id, Vote.voter_id == voter_id)
            .limit(1)
        )
        is not None
    )


def _new_blocks(
    campaign: Campaign,
    voters: list[Voter],
    actor: Account,
    reason: str,
    source: str,
    flag_id: int | None,
) -> list[VoterBlock]:
    """The blocks, one per voter, each audited (one flush for all of them)."""
    now = utcnow()
    made = [
        VoterBlock(
            campaign_id=campaign.id,
            voter_id=voter.id,
            reason=reason,
            source=source,
            flag_id=flag_id,
            blocked_by=actor.username,
            blocked_at=now,
        )
        for voter in voters
    ]
    db.session.add_all(made)
    db.session.flush()
    for voter, block in zip(voters, made, strict=True):
        audit.record(
            "voter.block",
            "voter",
            voter.id,
            campaign_id=campaign.id,
            after={
                "block": block.id,
                "source": source,
                "flag": flag_id,
                "provider": voter.provider,
            },
            reason=reason,
            actor=actor,
        )
    return made


def block_voter(
    campaign: Campaign,
    voter_id: int,
    actor: Account,
    reason: str | None,
    source: str,
    flag_id: int | None = None,
) -> VoterBlock:
    """Block one voter in this campaign. The voter must exist and have a stored vote in the
    campaign, or be named by the flag given. Already blocked: 409 ``already_blocked``."""
    reason = check_reason(reason)
    if source not in SOURCES:
        raise ValidationFailed("屏蔽来源不正确", code="invalid_source", details={"source": source})
    if source == "flag" and flag_id is None:
        raise ValidationFailed("从线索屏蔽须指明线索", code="flag_required")
    voter = _lock_voters([voter_id]).get(voter_id)
    if voter is None:
        raise NotFound("投票人不存在", code="voter_not_found", details={"voter_id": voter_id})
    if flag_id is not None:
        if voter_id not in flag_voter_ids(campaign, flag_id):
            raise NotFound(
                "该线索没有涉及这位投票人",
                code="voter_not_in_flag",
                details={"voter_id": voter_id, "flag_id": flag_id},
            )
    elif not _voted_in(campaign, voter_id):
        raise NotFound(
            "该投票人在本活动中没有已入库的投票",
            code="voter_not_in_campaign",
            details={"voter_id": voter_id},
        )
    existing = _active_block(campaign, voter_id)
    if existing is not None:
        raise Conflict(
            "该投票人已被屏蔽",
            code="already_blocked",
            details={
                "voter_id": voter_id,
                "blocked_by": existing.blocked_by,
                "blocked_at": existing.blocked_at.isoformat(),
            },
        )
    return _new_blocks(campaign, [voter], actor, reason, source, flag_id)[0]


def block_flag_voters(
    campaign: Campaign, flag_id: int, actor: Account, reason: str | None
) -> dict[str, Any]:
    """Block every voter a flag names; those already blocked are left as they are. Nothing new
    to block: 409 ``already_blocked``."""
    reason = check_reason(reason)
    named = flag_voter_ids(campaign, flag_id)
    if not named:
        raise ValidationFailed("该线索没有涉及任何投票人", code="flag_has_no_voters")
    voters = _lock_voters(named)
    already = {
        voter_id
        for chunk in _chunks(named)
        for voter_id in db.session.scalars(
            select(VoterBlock.voter_id).where(
                VoterBlock.campaign_id == campaign.id,
                VoterBlock.voter_id.in_(chunk),
                VoterBlock.lifted_at.is_(None),
            )
        )
    }
    fresh = [voter_id for voter_id in named if voter_id not in already and voter_id in voters]
    if not fresh:
        raise Conflict(
            "该线索涉及的投票人均已被屏蔽",
            code="already_blocked",
            details={"flag_id": flag_id, "voters": len(named)},
        )
    blocks = _new_blocks(campaign, [voters[v] for v in fresh], actor, reason, "flag", flag_id)
    return {
        "flag_id": flag_id,
        "blocked": [b.voter_id for b in blocks],
        "already_blocked": sorted(already),
        "items": blocks,
    }


def unblock_voter(
    campaign: Campaign, voter_id: int, actor: Account, reason: str | None
) -> VoterBlock:
    """Lift the voter's active block in this campaign (the row stays, with who lifted it and
    why). Not blocked: 404 ``not_blocked``."""
    reason = check_reason(reason)
    _lock_voters([voter_id])
    block = _active_block(campaign, voter_id)
    if block is None:
        raise NotFound("该投票人没有被屏蔽", code="not_blocked", details={"voter_id": voter_id})
    block.lifted_at, block.lifted_by, block.lift_reason = utcnow(), actor.username, reason
    db.session.flush()
    audit.record(
        "voter.unblock",
        "voter",
        voter_id,
        campaign_id=campaign.id,
        before={"block": block.id, "reason": block.reason, "blocked_by": block.blocked_by},
        after={"lifted": True},
        reason=reason,
        actor=actor,
    )
    return block


def _filtered(campaign: Campaign, active: bool | None) -> Any:
    query = select(VoterBlock).where(VoterBlock.campaign_id == campaign.id)
    if active is True:
        query = query.where(VoterBlock.lifted_at.is_(None))
    elif active is False:
        query = query.where(VoterBlock.lifted_at.is_not(None))
    return query


def list_blocks(
    campaign: Campaign,
    active: bool | None = True,
    *,
    page: int = 1,
    per_page: int | None = None,
) -> list[VoterBlock]:
    """The campaign's blocks, newest first: active ones (default), lifted ones (False) or all
    (None); a page of them when ``per_page`` is given."""
    query = _filtered(campaign, active).order_by(VoterBlock.blocked_at.desc(), VoterBlock.id.desc())
    if per_page:
        query = query.limit(per_page).offset((page - 1) * per_page)
    return list(db.session.scalars(query))


def count_blocks(campaign: Campaign, active: bool | None = True) -> int:
    query = _filtered(campaign, active)
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def votes_by_voter(campaign: Campaign, voter_ids: list[int]) -> dict[int, int]:
    """Each voter's stored votes in this campaign (the console shows them beside a block)."""
    counts: dict[int, int] = {}
    for chunk in _chunks(sorted(set(voter_ids))):
        rows = db.session.execute(
            select(Vote.voter_id, func.count(Vote.id))
            .where(Vote.campaign_id == campaign.id, Vote.voter_id.in_(chunk))
            .group_by(Vote.voter_id)
        ).all()
        counts.update((int(voter_id), int(n)) for voter_id, n in rows)
    return counts


def refused_among(campaign: Campaign, voter_ids: list[int]) -> set[int]:
    """Which of these voters ``blocked_voter_ids`` names, without reading the whole list."""
    refused: set[int] = set()
    for chunk in _chunks(sorted(set(voter_ids))):
        by_committee = select(VoterBlock.voter_id).where(
            VoterBlock.campaign_id == campaign.id,
            VoterBlock.voter_id.in_(chunk),
            VoterBlock.lifted_at.is_(None),
        )
        everywhere = select(Voter.id).where(Voter.id.in_(chunk), Voter.blocked.is_(True))
        refused |= set(db.session.scalars(by_committee)) | set(db.session.scalars(everywhere))
    return refused


def _update_blocked_set(campaign: Campaign, add: Collection[Any], remove: Collection[Any]) -> None:
    """Add and remove members of the vote script's blocked set in one transaction."""
    key = CampaignKeys.of(campaign.slug).blocked
    pipe = redis_store.votes.pipeline(transaction=True)
    if add:
        pipe.sadd(key, *add)
    if remove:
        pipe.srem(key, *remove)
    pipe.execute()


def publish_blocks(campaign: Campaign, voter_ids: list[int]) -> dict[str, str] | None:
    """After the commit: put the voters into the vote script's blocked set or take them out, as
    the database now says (a block and a lift racing each other end as the last commit says).
    None when done; the warning to show when the vote Redis did not answer (the block is stored
    and the next state write applies it)."""
    if not voter_ids:
        return None
    refused = refused_among(campaign, voter_ids)
    add = [v for v in voter_ids if v in refused]
    remove = [v for v in voter_ids if v not in refused]
    try:
        _update_blocked_set(campaign, add, remove)
    except VOTE_REDIS_ERRORS as exc:
        log.warning(
            "voter blocks of campaign %s stored but not published to redis (%s); "
            "the next state write applies them",
            campaign.slug,
            exc,
        )
        return dict(NOT_PUBLISHED)
    return None


def sync_blocked_set(campaign: Campaign) -> int:
    """Make the vote script's blocked set say what the database says (the watch job, every
    second): a state write that read the blocks just before a block or a lift committed may
    have put back the old set; this bounds that window to about a second. Returns the number
    of voters added or removed."""
    wanted = {str(v) for v in blocked_voter_ids(campaign.id)}
    key = CampaignKeys.of(campaign.slug).blocked
    present = {member.decode() for member in redis_store.votes.smembers(key)}
    add, remove = wanted - present, present - wanted
    if add or remove:
        _update_blocked_set(campaign, add, remove)
        log.warning(
            "blocked set of %s corrected: %d added, %d removed",
            campaign.slug,
            len(add),
            len(remove),
        )
    return len(add) + len(remove)
