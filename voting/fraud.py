"""The committee's side of the vote: tallies, fraud scans and flags, and every decision that
moves votes between valid, pending and invalid — applied to the ledger and the live counters at
once, reversible, audited, and chained by hash."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import func, or_, select, update

from campaigns.models import Account, Campaign
from core import audit
from core.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from core.extensions import VOTE_REDIS_ERRORS, db, redis_store
from core.types import utcnow
from voting import cast, detectors, script_call
from voting.keys import CampaignKeys
from voting.ledger import GENESIS
from voting.models import (
    CommitteeDecision,
    FlagVote,
    FraudFlag,
    FraudScan,
    NomineeFreeze,
    TallySnapshot,
    Vote,
)

log = logging.getLogger("zuimei.fraud")


# --- tallies ----------------------------------------------------------------------------------


def snapshot_tallies(campaign: Campaign, at: datetime | None = None) -> int:
    """Record every nominee's live valid and pending counts for this minute."""
    keys = CampaignKeys.of(campaign.slug)
    # Both hashes share the campaign's slot: one MULTI/EXEC on one node, even on a cluster.
    pipe = redis_store.votes.pipeline(transaction=True)
    pipe.hgetall(keys.counts)
    pipe.hgetall(keys.pending)
    counts, pending = pipe.execute()
    minute = (at or utcnow()).replace(second=0, microsecond=0)
    numbers = {k.decode() for k in counts} | {k.decode() for k in pending}
    existing = set(
        db.session.scalars(
            select(TallySnapshot.nominee_number).where(
                TallySnapshot.campaign_id == campaign.id, TallySnapshot.at == minute
            )
        )
    )
    for number in sorted(numbers - existing):
        db.session.add(
            TallySnapshot(
                campaign_id=campaign.id,
                at=minute,
                nominee_number=number,
                valid=int(counts.get(number.encode(), 0)),
                pending=int(pending.get(number.encode(), 0)),
            )
        )
    db.session.flush()
    return len(numbers - existing)


def trend(
    campaign: Campaign, nominee: str | None = None, since: datetime | None = None
) -> list[TallySnapshot]:
    """Per-minute snapshots, oldest first; ``since`` keeps a dashboard's window small (a whole
    campaign is hundreds of thousands of rows)."""
    query = select(TallySnapshot).where(TallySnapshot.campaign_id == campaign.id)
    if nominee:
        query = query.where(TallySnapshot.nominee_number == nominee.upper())
    if since is not None:
        query = query.where(TallySnapshot.at >= since)
    return list(db.session.scalars(query.order_by(TallySnapshot.at, TallySnapshot.nominee_number)))


def full_tally(campaign: Campaign) -> dict[str, Any]:
    """Valid, pending and invalid votes per nominee from the votes table, compared with the
    live counters (undrained votes are reported, not guessed)."""
    rows = db.session.execute(
        select(Vote.nominee_number, Vote.category_code, Vote.status, func.count(Vote.id))
        .where(Vote.campaign_id == campaign.id)
        .group_by(Vote.nominee_number, Vote.category_code, Vote.status)
    ).all()
    per: dict[str, dict[str, Any]] = {}
    for number, category, status, count in rows:
        entry = per.setdefault(
            number,
            {"nominee": number, "category": category, "valid": 0, "pending": 0, "invalid": 0},
        )
        entry[status] = count
    keys = CampaignKeys.of(campaign.slug)
    try:
        live = {k.decode(): int(v) for k, v in redis_store.votes.hgetall(keys.counts).items()}
        undrained = redis_store.votes.xlen(keys.ledger)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    differences = []
    for number in sorted(set(per) | set(live)):
        entry = per.setdefault(
            number, {"nominee": number, "category": None, "valid": 0, "pending": 0, "invalid": 0}
        )
        entry["live_valid"] = live.get(number, 0)
        if entry["live_valid"] != entry["valid"]:
            differences.append(number)
    return {
        "campaign": campaign.slug,
        "nominees": [per[n] for n in sorted(per)],
        "totals": {s: sum(e[s] for e in per.values()) for s in ("valid", "pending", "invalid")},
        "undrained": undrained,
        "differences": differences,
    }


# --- the decision chain -----------------------------------------------------------------------


def _decision_hash(prev: str, d: CommitteeDecision) -> str:
    material = json.dumps(
        [
            prev,
            d.chain_index,
            d.action,
            d.flag_id,
            d.undoes_id,
            sorted(d.vote_ids),
            d.from_status,
            d.to_status,
            d.actor,
            d.reason,
            d.at.astimezone(UTC).isoformat(),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _record_decision(campaign: Campaign, actor: Account, **fields: Any) -> CommitteeDecision:
    # The campaign row lock orders decisions, so the chain stays linear (SQLite serialises
    # writers already).
    db.session.execute(select(Campaign.id).where(Campaign.id == campaign.id).with_for_update())
    last = db.session.scalar(
        select(CommitteeDecision)
        .where(CommitteeDecision.campaign_id == campaign.id)
        .order_by(CommitteeDecision.chain_index.desc())
        .limit(1)
    )
    decision = CommitteeDecision(
        campaign_id=campaign.id,
        chain_index=(last.chain_index if last else 0) + 1,
        actor=actor.username,
        at=utcnow().replace(microsecond=0),
        prev_hash=last.hash if last else GENESIS,
        **fields,
    )
    decision.hash = _decision_hash(decision.prev_hash, decision)
    db.session.add(decision)
    db.session.flush()
    audit.record(
        f"votes.{fields['action']}",
        "committee_decision",
        decision.id,
        campaign_id=campaign.id,
        after={
            "votes": len(fields.get("vote_ids", [])),
            "to": fields.get("to_status"),
            "flag": fields.get("flag_id"),
            "hash": decision.hash,
        },
        reason=fields.get("reason"),
    )
    return decision


def list_decisions(campaign: Campaign) -> list[CommitteeDecision]:
    """Every committee decision on votes, in chain order."""
    return list(
        db.session.scalars(
            select(CommitteeDecision)
            .where(CommitteeDecision.campaign_id == campaign.id)
            .order_by(CommitteeDecision.chain_index)
        )
    )


def verify_decisions(campaign: Campaign) -> dict[str, Any]:
    prev = GENESIS
    checked = 0
    for d in db.session.scalars(
        select(CommitteeDecision)
        .where(CommitteeDecision.campaign_id == campaign.id)
        .order_by(CommitteeDecision.chain_index)
    ):
        checked += 1
        if d.chain_index != checked or d.prev_hash != prev or _decision_hash(prev, d) != d.hash:
            return {"ok": False, "checked": checked, "broken_at": d.id}
        prev = d.hash
    return {"ok": True, "checked": checked, "head": prev}


# --- moving votes -----------------------------------------------------------------------------


def _apply(campaign: Campaign, moves: list[tuple[Vote, str]]) -> None:
    """Set each vote's status and shift the live counters by the same amounts, in one step."""
    keys = CampaignKeys.of(campaign.slug)
    # The counter each status is kept in (the valid counters are the standings too).
    counters = {"valid": keys.counts, "pending": keys.pending}
    delta: Counter[tuple[str, str]] = Counter()
    for vote, new in moves:
        old = vote.status
        if old == new:
            continue
        for status, sign in ((old, -1), (new, 1)):
            if status in counters:
                delta[(counters[status], vote.nominee_number)] += sign
        vote.status = new
    db.session.flush()
    # Both counters of one campaign share its slot (one node).
    pipe = redis_store.votes.pipeline(transaction=True)
    for (key, number), change in delta.items():
        if change:
            pipe.hincrby(key, number, change)
    try:
        pipe.execute()
    except VOTE_REDIS_ERRORS as exc:
        # The database change rolls back with the request; reconciliation covers the rest.
        raise ServiceUnavailable() from exc


def _flag(campaign: Campaign, flag_id: int) -> FraudFlag:
    flag = db.session.scalar(
        select(FraudFlag)
        .where(FraudFlag.id == flag_id, FraudFlag.campaign_id == campaign.id)
        .with_for_update()
    )
    if flag is None:
        raise NotFound("线索不存在", code="flag_not_found")
    return flag


def _reason(reason: str | None) -> str:
    if not reason or not reason.strip():
        raise ValidationFailed("处理决定必须填写理由", code="reason_required")
    return reason.strip()


def confirm_flag(campaign: Campaign, flag_id: int, actor: Account, reason: str | None) -> FraudFlag:
    """The covered votes become invalid, with the flag and the decider recorded."""
    reason = _reason(reason)
    flag = _flag(campaign, flag_id)
    if flag.severity == detectors.WATCH:
        raise Conflict(
            "观察记录只是较弱的迹象，不能据此作废投票；如有更多证据，请在投票浏览中核实",
            code="watch_not_actionable",
        )
    if flag.status != "open":
        raise Conflict("该线索已处理", code="flag_decided", details={"status": flag.status})
    links = {
        fv.vote_id: fv
        for fv in db.session.scalars(select(FlagVote).where(FlagVote.flag_id == flag.id))
    }
    votes = list(db.session.scalars(select(Vote).where(Vote.id.in_(links)).with_for_update()))
    moves = []
    for vote in votes:
        if vote.status != "invalid":
            links[vote.id].prior_status = vote.status
            moves.append((vote, "invalid"))
            vote.status_reason = f"flag:{flag.id}"
    _apply(campaign, moves)
    flag.status = "confirmed"
    flag.decided_by, flag.decided_at, flag.decision_reason = actor.username, utcnow(), reason
    _record_decision(
        campaign,
        actor,
        action="confirm",
        flag_id=flag.id,
        vote_ids=[v.id for v, _ in moves],
        to_status="invalid",
        reason=reason,
    )
    return flag


def dismiss_flag(campaign: Campaign, flag_id: int, actor: Account, reason: str | None) -> FraudFlag:
    reason = _reason(reason)
    flag = _flag(campaign, flag_id)
    if flag.status != "open":
        raise Conflict("该线索已处理", code="flag_decided", details={"status": flag.status})
    flag.status = "dismissed"
    flag.decided_by, flag.decided_at, flag.decision_reason = actor.username, utcnow(), reason
    _record_decision(campaign, actor, action="dismiss", flag_id=flag.id, vote_ids=[], reason=reason)
    return flag


def undo_flag(campaign: Campaign, flag_id: int, actor: Account, reason: str | None) -> FraudFlag:
    """Undo a confirmation: votes this flag invalidated get their earlier status back."""
    reason = _reason(reason)
    flag = _flag(campaign, flag_id)
    if flag.status not in ("confirmed", "dismissed"):
        raise Conflict("该线索尚未处理", code="flag_open")
    moves = []
    if flag.status == "confirmed":
        links = {
            fv.vote_id: fv
            for fv in db.session.scalars(select(FlagVote).where(FlagVote.flag_id == flag.id))
        }
        for vote in db.session.scalars(select(Vote).where(Vote.id.in_(links)).with_for_update()):
            # Only what this flag did is undone; a vote since invalidated otherwise stays so.
            if vote.status == "invalid" and vote.status_reason == f"flag:{flag.id}":
                moves.append((vote, links[vote.id].prior_status or "valid"))
                vote.status_reason = None
        _apply(campaign, moves)
    previous = flag.status
    flag.status = "open"
    flag.decided_by, flag.decided_at, flag.decision_reason = None, None, None
    _record_decision(
        campaign,
        actor,
        action="undo",
        flag_id=flag.id,
        vote_ids=[v.id for v, _ in moves],
        from_status=previous,
        reason=reason,
    )
    return flag


def decide_pending(
    campaign: Campaign,
    actor: Account,
    decision: str,
    reason: str | None,
    *,
    vote_ids: list[str] | None = None,
    nominee: str | None = None,
) -> CommitteeDecision:
    """Release (→ valid) or void (→ invalid) held votes, by id or all of a nominee's."""
    reason = _reason(reason)
    query = select(Vote).where(Vote.campaign_id == campaign.id, Vote.status == "pending")
    if vote_ids:
        query = query.where(Vote.id.in_(vote_ids))
    elif nominee:
        query = query.where(Vote.nominee_number == nominee.strip().upper())
    else:
        raise ValidationFailed("请指定票号或候选人", code="selection_required")
    votes = list(db.session.scalars(query.with_for_update()))
    if not votes:
        raise Conflict("没有符合条件的待审票", code="nothing_pending")
    target = "valid" if decision == "release" else "invalid"
    for vote in votes:
        vote.status_reason = f"{decision}:{actor.username}"
    _apply(campaign, [(v, target) for v in votes])
    return _record_decision(
        campaign,
        actor,
        action=decision,
        vote_ids=[v.id for v in votes],
        from_status="pending",
        to_status=target,
        reason=reason,
    )


def list_freezes(campaign: Campaign) -> list[NomineeFreeze]:
    """Nominees the vote script froze, newest first."""
    return list(
        db.session.scalars(
            select(NomineeFreeze)
            .where(NomineeFreeze.campaign_id == campaign.id)
            .order_by(NomineeFreeze.frozen_at.desc())
        )
    )


def lift_freeze(campaign: Campaign, number: str, actor: Account, reason: str | None) -> None:
    reason = _reason(reason)
    number = number.strip().upper()
    keys = CampaignKeys.of(campaign.slug)
    try:
        lifted = redis_store.votes.hdel(keys.frozen, number)
    except VOTE_REDIS_ERRORS as exc:
        raise ServiceUnavailable() from exc
    freeze = db.session.scalar(
        select(NomineeFreeze)
        .where(
            NomineeFreeze.campaign_id == campaign.id,
            NomineeFreeze.nominee_number == number,
            NomineeFreeze.lifted_at.is_(None),
        )
        .order_by(NomineeFreeze.frozen_at.desc())
        .limit(1)
    )
    if not lifted and freeze is None:
        raise NotFound("该候选人没有被冻结", code="not_frozen")
    if freeze is not None:
        freeze.lifted_at, freeze.lifted_by, freeze.lift_reason = utcnow(), actor.username, reason
    _record_decision(
        campaign, actor, action="lift_freeze", vote_ids=[], reason=f"{number}：{reason}"
    )


# --- scans and flags --------------------------------------------------------------------------


def start_scan(campaign: Campaign, requested_by: str | None, trigger: str = "manual") -> FraudScan:
    scan = FraudScan(
        campaign_id=campaign.id, status="queued", trigger=trigger, requested_by=requested_by
    )
    db.session.add(scan)
    db.session.flush()
    return scan


def _rows(campaign: Campaign) -> Iterator[Any]:
    result = db.session.execute(
        select(
            Vote.id,
            Vote.voter_id,
            Vote.nominee_number,
            Vote.category_code,
            Vote.at,
            Vote.ip,
            Vote.device,
            Vote.user_agent,
            Vote.voter_created_at,
            Vote.status,
        )
        .where(Vote.campaign_id == campaign.id)
        .execution_options(yield_per=20000)
    )
    try:
        for row in result:
            yield detectors.VoteRow(
                id=row[0],
                voter_id=row[1],
                nominee=row[2],
                category=row[3],
                at=row[4].timestamp(),
                ip=row[5],
                device=row[6],
                user_agent=row[7],
                voter_created_at=row[8].timestamp() if row[8] else None,
                status=row[9],
            )
    finally:
        result.close()


def page_views(campaign: Campaign) -> dict[tuple[str, int], int]:
    keys = CampaignKeys.of(campaign.slug)
    views: dict[tuple[str, int], int] = {}
    for field, value in redis_store.votes.hscan_iter(keys.views, count=5000):
        number, _, minute = field.decode().partition(":")
        views[(number, int(minute))] = int(value)
    return views


def count_view(slug: str, number: str) -> None:
    """A public nominee page view, per minute: the organic spread the share-jump rule needs."""
    keys = CampaignKeys.of(slug)
    minute = int(cast.clock().timestamp() // 60)  # the vote path's clock
    field, ttl = f"{number}:{minute}", 45 * 86400
    try:
        client = redis_store.votes
        commands = (("HINCRBY", keys.views, field, 1), ("EXPIRE", keys.views, ttl))
        # Not waited for outside tests (PAGE_VIEWS_UNANSWERED): a read must not wait for the
        # vote Redis's disk sync; the server has the count as soon as it is sent.
        quiet = current_app.config.get("PAGE_VIEWS_UNANSWERED", not current_app.testing)
        if quiet and script_call.send_unanswered(client, *commands):
            return
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()
    except VOTE_REDIS_ERRORS:
        log.debug("page view not counted for %s %s", slug, number)


def get_scan(campaign: Campaign, scan_id: int) -> FraudScan:
    scan = db.session.get(FraudScan, scan_id)
    if scan is None or scan.campaign_id != campaign.id:
        raise NotFound("扫描任务不存在", code="scan_not_found")
    return scan


def latest_scan(campaign: Campaign) -> FraudScan | None:
    """The campaign's most recent fraud scan, if any."""
    query = select(FraudScan).where(FraudScan.campaign_id == campaign.id)
    return db.session.scalar(query.order_by(FraudScan.id.desc()).limit(1))


def begin_scan(scan_id: int) -> FraudScan:
    """Mark a queued scan as running (the scan job commits this before the long part). A scan
    run again after its database connection was lost starts afresh: the error the lost attempt
    recorded goes."""
    scan = db.session.get(FraudScan, scan_id)
    if scan is None:
        raise NotFound("扫描任务不存在", code="scan_not_found")
    scan.status, scan.started_at = "running", utcnow()
    scan.error = scan.finished_at = None
    db.session.flush()
    return scan


def scan_votes(scan: FraudScan) -> FraudScan:
    """Run every detector over the campaign's stored votes and file new flags."""
    campaign = db.session.get(Campaign, scan.campaign_id)
    assert campaign is not None
    rows = list(_rows(campaign))
    settings = (campaign.rules or {}).get("fraud") or None
    findings = detectors.scan(
        rows,
        views=page_views(campaign),
        settings=settings,
        tz_offset_hours=_tz_offset_hours(campaign),
    )
    created = 0
    for finding in findings:
        if _file_flag(campaign, scan, finding):
            created += 1
    scan.votes_scanned, scan.flags_created = len(rows), created
    scan.status, scan.finished_at = "done", utcnow()
    db.session.flush()
    return scan


def fail_scan(scan_id: int, error: BaseException) -> FraudScan:
    """Record why a scan failed (after the scan's own changes were rolled back)."""
    scan = db.session.get(FraudScan, scan_id)
    assert scan is not None
    scan.status, scan.error, scan.finished_at = "failed", str(error)[:500], utcnow()
    db.session.flush()
    return scan


# What a committee member reads on a scan whose worker died under it.
LOST_SCAN_ERROR = "扫描中断：执行扫描的进程已退出，本次扫描未完成；下一次定时扫描会重新检查全部投票"


def fail_lost_scans(older_than: timedelta) -> list[int]:
    """Scans still queued or running ``older_than`` after they were queued or began: a scan job
    runs at most its timeout (RQ ends it there), so these lost their worker (killed, out of
    memory) and will never finish. Marked failed, so the console stops showing them as running;
    a lost scan's job run late after all starts it afresh (``begin_scan``). Their ids."""
    cutoff = utcnow() - older_than
    stale = or_(
        (FraudScan.status == "running") & (FraudScan.started_at < cutoff),
        (FraudScan.status == "queued") & (FraudScan.created_at < cutoff),
    )
    lost = list(db.session.scalars(select(FraudScan.id).where(stale)))
    if lost:
        # One statement with the same test: a scan that began or ended since the read is kept.
        db.session.execute(
            update(FraudScan)
            .where(FraudScan.id.in_(lost), stale)
            .values(status="failed", error=LOST_SCAN_ERROR, finished_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
        db.session.expire_all()
    return lost


def _tz_offset_hours(campaign: Campaign) -> float:
    offset = utcnow().astimezone(ZoneInfo(campaign.timezone)).utcoffset()
    return offset.total_seconds() / 3600 if offset else 0.0


def _file_flag(campaign: Campaign, scan: FraudScan, finding: Any) -> bool:
    fingerprint = hashlib.sha256(
        "|".join([finding.rule, finding.nominee or "", *sorted(finding.vote_ids)]).encode()
    ).hexdigest()
    if db.session.scalar(
        select(FraudFlag.id).where(
            FraudFlag.campaign_id == campaign.id, FraudFlag.fingerprint == fingerprint
        )
    ):
        return False
    flag = FraudFlag(
        campaign_id=campaign.id,
        scan_id=scan.id,
        rule=finding.rule,
        nominee_number=finding.nominee,
        score=float(finding.score),
        severity=finding.severity,
        vote_count=len(finding.vote_ids),
        evidence=json.loads(json.dumps(finding.evidence, default=str)),
        explanation=finding.explanation,
        fingerprint=fingerprint,
        status="open",
    )
    db.session.add(flag)
    db.session.flush()
    db.session.add_all(FlagVote(flag_id=flag.id, vote_id=vid) for vid in set(finding.vote_ids))
    db.session.flush()
    return True


_SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, detectors.WATCH: 3}


def list_flags(
    campaign: Campaign, status: str | None = None, severity: str | None = None
) -> list[FraudFlag]:
    """Flags by severity, most certain first. Without ``severity`` the 观察 (watch) notes are
    left out: they are listed apart (``severity="watch"``) and are not flags to act on."""
    query = select(FraudFlag).where(FraudFlag.campaign_id == campaign.id)
    if status:
        query = query.where(FraudFlag.status == status)
    if severity:
        query = query.where(FraudFlag.severity == severity)
    else:
        query = query.where(FraudFlag.severity != detectors.WATCH)
    flags = list(db.session.scalars(query))
    flags.sort(key=lambda f: (_SEVERITY_ORDER.get(f.severity, 4), -f.score, f.id))
    return flags


def flag_counts(campaign: Campaign, watch: bool = False) -> dict[str, int]:
    """The campaign's fraud flags per status (open, confirmed, dismissed); the 观察 (watch)
    notes are counted apart (``watch=True`` counts only them)."""
    query = (
        select(FraudFlag.status, func.count(FraudFlag.id))
        .where(FraudFlag.campaign_id == campaign.id)
        .where(
            FraudFlag.severity == detectors.WATCH
            if watch
            else FraudFlag.severity != detectors.WATCH
        )
        .group_by(FraudFlag.status)
    )
    return dict(db.session.execute(query).all())


def get_flag(campaign: Campaign, flag_id: int) -> FraudFlag:
    flag = db.session.get(FraudFlag, flag_id)
    if flag is None or flag.campaign_id != campaign.id:
        raise NotFound("线索不存在", code="flag_not_found")
    return flag


# --- the vote browser -------------------------------------------------------------------------


def votes_query(campaign: Campaign, filters: dict[str, Any]) -> Any:
    query = select(Vote).where(Vote.campaign_id == campaign.id)
    if filters.get("status"):
        query = query.where(Vote.status == filters["status"])
    if filters.get("nominee"):
        query = query.where(Vote.nominee_number == filters["nominee"].strip().upper())
    if filters.get("voter"):
        query = query.where(Vote.voter_id == filters["voter"])
    if filters.get("prefix"):
        escaped = filters["prefix"].replace("%", "\\%").replace("_", "\\_")
        query = query.where(Vote.ip.like(f"{escaped}%", escape="\\"))
    if filters.get("flag"):
        query = query.where(
            Vote.id.in_(select(FlagVote.vote_id).where(FlagVote.flag_id == filters["flag"]))
        )
    if filters.get("start"):
        query = query.where(Vote.at >= filters["start"])
    if filters.get("end"):
        query = query.where(Vote.at < filters["end"])
    return query


def browse_votes(
    campaign: Campaign, filters: dict[str, Any], page: int, per_page: int
) -> tuple[list[Vote], int]:
    query = votes_query(campaign, filters)
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(Vote.chain_index).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return list(rows), total
