"""The demo's three campaigns, each walked through the real services to the phase it shows:

- ``qingshan-<year>``: public voting, three days old, every nominee with a photo and some with a
  short video, days of past votes with one brushing attack the fraud scan has flagged;
- ``qingshan-nurses-<year>``: voted, judged, its result computed, finalised and published, now in
  公示 with one objection filed and answered;
- ``qingshan-village-<year>``: open for nominations now; two nominations wait for review.

Windows are derived from now (the campaign-local day), so the demo reads right on any date."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from campaigns import categories as campaign_categories
from campaigns import services as campaign_services
from campaigns.models import Account, Campaign
from core.extensions import db
from nominations import demo_data, demo_media, demo_people, demo_votes, services
from nominations.models import Nomination


@dataclass
class Report:
    """What the seed did, for the command's summary and the tests."""

    campaigns: dict[str, str] = field(default_factory=dict)  # slug: phase
    votes: dict[str, demo_votes.Tally] = field(default_factory=dict)
    videos: list[int] = field(default_factory=list)  # video assets made and transcoded
    flags: int = 0  # flags the scan filed
    attack: str | None = None  # the nominee the seeded brushing attack voted for


def local_midnight(now: datetime, days_ago: int) -> datetime:
    zone = ZoneInfo(demo_data.TIMEZONE)
    today = now.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def _create(spec: dict[str, str], windows: dict[str, datetime], **extra: Any) -> Campaign:
    return campaign_services.create_campaign({**spec, **windows, **extra})


def _clerks(accounts: dict[str, Account]) -> dict[str, Account]:
    return {a.unit.code: a for a in accounts.values() if a.role == "unit" and a.unit}


def _nominate(
    campaign: Campaign,
    accounts: dict[str, Account],
    specs: list[dict[str, Any]],
    *,
    attach: Callable[[Account, Nomination, str, int], None] | None = None,
    transcode: Callable[[], None] | None = None,
    approve: bool = True,
) -> list[Nomination]:
    """Each nomination created by its unit's clerk with its media (while still a draft; a video
    must be transcoded before the nomination is decided, as media requires), then submitted,
    recommended by the bureau and, when ``approve``, approved by the office."""
    admin = accounts["admin"]
    reviewer = next(a for a in accounts.values() if a.role == "reviewer")
    clerks = _clerks(accounts)
    prefixes = {c.code: c.prefix for c in campaign.categories}
    made: dict[str, int] = {}
    drafts = []
    for seed, spec in enumerate(specs):
        clerk = clerks[spec["unit_code"]]
        fields = {k: v for k, v in spec.items() if k != "unit_code"}
        nomination = services.create(clerk, campaign, fields)
        made[spec["category"]] = made.get(spec["category"], 0) + 1
        # Numbers are given on approval, in this order: the picture can show it already.
        label = f"{prefixes[spec['category']]}{made[spec['category']]:03d}"
        if attach is not None:
            attach(clerk, nomination, label, seed)
        drafts.append((clerk, nomination.id))
    if transcode is not None:
        db.session.commit()
        transcode()
    nominations = []
    for clerk_account, nomination_id in drafts:
        nomination = db.session.get(Nomination, nomination_id)
        clerk = db.session.get(Account, clerk_account.id)
        assert nomination is not None and clerk is not None
        services.submit(clerk, nomination)
        services.review(_fresh(reviewer), nomination, "approve", "同意推荐")
        if approve:
            services.review(_fresh(admin), nomination, "approve", "经评选办审核，同意列为候选人")
        nominations.append(nomination)
    return nominations


def _fresh(account: Account) -> Account:
    found = db.session.get(Account, account.id)
    assert found is not None
    return found


def _media(domains: Any, videos: int, queued: list[int]) -> Callable[..., None]:
    def attach(clerk: Account, nomination: Nomination, label: str, seed: int) -> None:
        demo_media.attach_photo(domains.media, clerk, nomination, label, seed)
        # A short video for some nominees (one in five, up to ``videos``).
        if len(queued) < videos and seed % 5 == 0:
            queued.append(demo_media.attach_video(domains.media, clerk, nomination, label, seed))

    return attach


def _transcoder(domains: Any, queued: list[int]) -> Callable[[], None]:
    """The worker's transcoding job (media.jobs.process_video: probe, transcode under the
    ffmpeg limits, renditions), run here in process: media keeps a video only when it is ready
    before its nomination is decided, and the worker is not running yet at first start."""

    def transcode() -> None:
        for asset_id in queued:
            domains.media_jobs.process_video(asset_id)

    return transcode


def _numbers(campaign: Campaign) -> list[str]:
    return list(
        db.session.scalars(
            select(Nomination.number)
            .where(Nomination.campaign_id == campaign.id, Nomination.status == "approved")
            .order_by(Nomination.number)
        )
    )


# --- 1. public voting ---------------------------------------------------------------------


def voting(
    domains: Any,
    accounts: dict[str, Account],
    now: datetime,
    report: Report,
    *,
    people: int,
    videos: int,
) -> Campaign:
    year = now.astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    spec = demo_data.campaign(year)
    start = local_midnight(now, 3)  # voting began three local days ago
    campaign = _create(
        spec,
        {
            "nomination_start": start - timedelta(days=30),
            "nomination_end": now + timedelta(days=1),
            "voting_start": start,
            "voting_end": now + timedelta(days=14),
        },
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
        weights={"public": 30, "jury": 70, "organizer": 0},
        require_recommendation=True,
    )
    for category in demo_data.CATEGORIES:
        campaign_categories.add_category(campaign, dict(category))
    campaign_services.change_phase(campaign, "nominating", None)
    attach = transcode = None
    if domains is not None:
        attach = _media(domains, videos, report.videos)
        transcode = _transcoder(domains, report.videos)
    _nominate(campaign, accounts, demo_data.NOMINEES, attach=attach, transcode=transcode)
    campaign = _reload(campaign.slug)
    # Nominations closed the day before voting began.
    campaign_services.update_campaign(campaign, {"nomination_end": start - timedelta(days=1)})
    campaign_services.change_phase(campaign, "voting", None)
    db.session.commit()
    report.campaigns[campaign.slug] = "voting"
    if domains is None:
        return campaign
    rng = random.Random(f"{campaign.slug}-votes")  # noqa: S311 - invented demo traffic
    numbers = _numbers(campaign)
    zone = ZoneInfo(campaign.timezone)
    until = now - timedelta(minutes=2)
    visits = demo_votes.organic(rng, numbers, start, until, zone, people, per_day=4)
    # The attack: yesterday afternoon, for a nominee in the middle of the ranking.
    target = report.attack = numbers[len(numbers) // 2 + 1]
    visits += demo_votes.phone_farm(rng, target, local_midnight(now, 1) + timedelta(hours=15))
    report.votes[campaign.slug] = demo_votes.cast(domains, campaign.slug, visits)
    scan = demo_votes.drain_and_scan(domains, campaign)
    report.flags = int(scan.flags_created or 0)
    return campaign


# --- 2. finished, in 公示 ----------------------------------------------------------------------


def publicity(
    domains: Any, accounts: dict[str, Account], now: datetime, report: Report, *, people: int
) -> Campaign:
    year = now.astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    spec = demo_people.nurses_campaign(year)
    start, end = local_midnight(now, 24), local_midnight(now, 10)
    campaign = _create(
        spec,
        {
            "nomination_start": start - timedelta(days=30),
            "nomination_end": now + timedelta(days=1),
            "voting_start": start,
            "voting_end": end,
        },
        rules={"votes_per_day": 3, "votes_per_nominee_per_day": 1, "hide_counts": False},
        weights={"public": 30, "jury": 70, "organizer": 0},
        require_recommendation=True,
        publicity_days=7,
    )
    campaign_categories.add_category(campaign, dict(demo_people.NURSE_CATEGORY))
    campaign_services.change_phase(campaign, "nominating", None)

    def attach(clerk: Account, nomination: Nomination, label: str, seed: int) -> None:
        demo_media.attach_photo(domains.media, clerk, nomination, label, seed + 40)

    _nominate(campaign, accounts, demo_people.NURSES, attach=attach)
    campaign_services.update_campaign(campaign, {"nomination_end": start - timedelta(days=1)})
    campaign_services.change_phase(campaign, "voting", None)
    db.session.commit()
    numbers = _numbers(campaign)
    rng = random.Random(f"{campaign.slug}-votes")  # noqa: S311 - invented demo traffic
    zone = ZoneInfo(campaign.timezone)
    visits = demo_votes.organic(rng, numbers, start, end, zone, people, per_day=3)
    report.votes[campaign.slug] = demo_votes.cast(domains, campaign.slug, visits)
    domains.voting.drain_campaign(campaign.slug)
    campaign = _reload(campaign.slug)
    campaign_services.change_phase(campaign, "judging", None)
    _judge(domains, campaign, numbers, rng)
    admin = _account("admin")
    version = domains.results.compute(campaign, admin, reason="评审结束，计算结果")
    domains.results.finalize(campaign, version)
    campaign_services.change_phase(campaign, "publicity", None)  # publishes the final version
    db.session.commit()
    objection = domains.publicity.file_objection(
        campaign, {**demo_people.OBJECTION, "nominee": _number_of(campaign, "蒋春兰")}, "127.0.0.1"
    )
    domains.publicity.answer_objection(
        campaign, objection.id, "dismissed", demo_people.OBJECTION_ANSWER, admin
    )
    db.session.commit()
    report.campaigns[campaign.slug] = "publicity"
    return campaign


def _judge(domains: Any, campaign: Campaign, numbers: list[str], rng: random.Random) -> None:
    """Criteria, the three demo judges assigned, every sheet scored and submitted."""
    judging = domains.judging
    judging.set_criteria(campaign, [dict(c) for c in demo_people.CRITERIA])
    merit = {number: rng.uniform(0.7, 0.95) for number in numbers}
    for spec in demo_people.JUDGES:
        judging.assign_judge(campaign, str(spec["username"]), [demo_people.NURSE_CATEGORY["code"]])
        judge = _account(str(spec["username"]))
        for number in numbers:
            scores = {
                c["code"]: round(
                    min(
                        c["max_points"],
                        c["max_points"] * (merit[number] + rng.uniform(-0.06, 0.06)),
                    ),
                    1,
                )
                for c in demo_people.CRITERIA
            }
            judging.save_sheet(judge, campaign, number, scores, "材料翔实，事迹感人。", True)
    db.session.flush()


# --- 3. open for nominations --------------------------------------------------------------


def nominating(accounts: dict[str, Account], now: datetime, report: Report) -> Campaign:
    year = now.astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    spec = demo_people.village_campaign(year)
    start = local_midnight(now, 2)
    campaign = _create(
        spec,
        {
            "nomination_start": start,
            "nomination_end": local_midnight(now, -21),
            "voting_start": local_midnight(now, -28),
            "voting_end": local_midnight(now, -42),
        },
        rules={"votes_per_day": 5, "votes_per_nominee_per_day": 1, "hide_counts": False},
        weights={"public": 30, "jury": 70, "organizer": 0},
        require_recommendation=True,
    )
    campaign_categories.add_category(campaign, dict(demo_people.VILLAGE_CATEGORY))
    campaign_services.change_phase(campaign, "nominating", None)
    _nominate(campaign, accounts, demo_people.VILLAGE_NOMINEES[:1], approve=False)
    clerk = _clerks(accounts)[demo_people.VILLAGE_NOMINEES[1]["unit_code"]]
    spec_two = {k: v for k, v in demo_people.VILLAGE_NOMINEES[1].items() if k != "unit_code"}
    services.submit(clerk, services.create(clerk, campaign, spec_two))  # waits for the bureau
    db.session.commit()
    report.campaigns[campaign.slug] = "nominating"
    return campaign


# --- helpers ------------------------------------------------------------------------------


def _reload(slug: str) -> Campaign:
    campaign = db.session.scalar(select(Campaign).where(Campaign.slug == slug))
    assert campaign is not None
    return campaign


def _account(username: str) -> Account:
    account = db.session.scalar(select(Account).where(Account.username == username))
    assert account is not None
    return account


def _number_of(campaign: Campaign, name: str) -> str | None:
    return db.session.scalar(
        select(Nomination.number).where(
            Nomination.campaign_id == campaign.id, Nomination.name == name
        )
    )
