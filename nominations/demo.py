"""`flask demo seed` and `flask up`: the demo county's four campaigns (see demo_campaigns and
demo_levels), its units, logins and judges, walked through the real services."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import select

from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Unit
from core.extensions import db
from core.types import utcnow
from nominations import demo_campaigns, demo_data, demo_levels, demo_people


def campaign_spec() -> dict[str, str]:
    """This year's demo campaign: slug, title and description carry the campaign-local year."""
    year = utcnow().astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    return demo_data.campaign(year)


# How much the demo seeds: honest voters of the voting campaign (a few thousand votes over three
# days), of the finished one, and how many nominees get a short video.
VOTERS = 650
PUBLICITY_VOTERS = 150
VIDEOS = 4


@dataclass(frozen=True)
class Domains:
    """The services of the domains built on nominations that the full demo drives: votes through
    the vote path, media through the upload services, judging, results and objections.
    Nominations may not import them (docs/architecture.md); the command wiring (core/cli.py,
    ``demo_domains``) hands them in. Without them the demo has its campaigns and nominees only."""

    voting: Any  # voting.services: cast_vote, drain_campaign, verify_chain
    cast: Any  # voting.cast: the vote path's clock seam
    identity: Any  # voting.identity: voter_for, subject_hash
    fraud: Any  # voting.fraud: start_scan
    voting_jobs: Any  # voting.jobs: fraud_scan
    media: Any  # media.services: the upload steps
    media_jobs: Any  # media.jobs: enqueue_processing (the worker transcodes)
    judging: Any  # awards.judging
    results: Any  # awards.results
    publicity: Any  # awards.publicity


def seed(
    password: str | None = None,
    domains: Domains | None = None,
    *,
    people: int = VOTERS,
    publicity_people: int = PUBLICITY_VOTERS,
    videos: int = VIDEOS,
    report: demo_campaigns.Report | None = None,
) -> list[dict[str, str]]:
    """Create the demo campaigns that do not exist yet (their slugs carry the campaign-local
    year); return the logins made (role, name, password). ``report`` is filled with what was
    done. A second run changes nothing."""
    report = report if report is not None else demo_campaigns.Report()
    now = utcnow().replace(microsecond=0)
    year = now.astimezone(ZoneInfo(demo_data.TIMEZONE)).year
    wanted = {
        "voting": demo_data.campaign(year)["slug"],
        "publicity": demo_people.nurses_campaign(year)["slug"],
        "nominating": demo_people.village_campaign(year)["slug"],
        "levels": demo_levels.campaign(year)["slug"],
    }
    present = set(
        db.session.scalars(select(Campaign.slug).where(Campaign.slug.in_(wanted.values())))
    )
    if present == set(wanted.values()):
        return []
    for unit in demo_data.UNITS:
        if db.session.scalar(select(Unit.id).where(Unit.code == unit["code"])) is None:
            campaign_services.create_unit(**unit)

    logins: list[dict[str, str]] = []
    accounts: dict[str, Account] = {}
    for spec in [*demo_data.ACCOUNTS, *demo_people.JUDGES, *demo_levels.ACCOUNTS]:
        existing = db.session.scalar(select(Account).where(Account.username == spec["username"]))
        if existing is not None:  # made by hand before the demo; keep its password
            accounts[spec["username"]] = existing
            continue
        secret = password or secrets.token_urlsafe(9)
        accounts[spec["username"]] = campaign_services.create_account(
            spec["username"], secret, spec["role"], spec["unit_code"], spec["display_name"]
        )
        logins.append({"role": spec["role"], "username": spec["username"], "password": secret})
    db.session.commit()
    if logins:
        _save_logins(logins)

    if wanted["voting"] not in present:
        demo_campaigns.voting(domains, accounts, now, report, people=people, videos=videos)
        accounts = _reloaded(accounts)
    # Judging, results and objections need the domains: without them, no campaign in 公示.
    if wanted["publicity"] not in present and domains is not None:
        demo_campaigns.publicity(domains, accounts, now, report, people=publicity_people)
        accounts = _reloaded(accounts)
    if wanted["nominating"] not in present:
        demo_campaigns.nominating(accounts, now, report)
    if wanted["levels"] not in present:
        demo_levels.seed_campaign(_reloaded(accounts), now, report)
    db.session.commit()
    return logins


def _reloaded(accounts: dict[str, Account]) -> dict[str, Account]:
    """The accounts again (a job run in between may have ended the session they were read in)."""
    names = list(accounts)
    return {
        a.username: a
        for a in db.session.scalars(select(Account).where(Account.username.in_(names)))
    }


# Which login shows what (printed by `flask up` and `flask demo seed`, and in docs/demo.md).
SHOWCASE: list[tuple[str, str]] = [
    (
        "(no login) /c/<slug>",
        "H5：投票中的活动（照片、视频、票数、排行）；“最美护士”活动的公示结果与异议答复",
    ),
    (
        "admin /console",
        "评选办：投票看板、刷票检测（已标记一起刷票）、投票记录与账本、评审与结果、公示与异议；"
        "逐级推荐活动的推荐层级与已推荐至评选办的材料",
    ),
    (
        "qs-bureau /console",
        "县卫健局审核员：“最美乡村医生”待审核的推荐材料；逐级推荐活动的县级待推荐名单"
        "（含市级退回修改的一份）",
    ),
    ("jn-city /console", "市卫健委审核员：逐级推荐活动中各县推荐上报、待市级推荐的名单"),
    ("unit-* /portal", "推荐单位：本单位的推荐材料；可立即在“最美乡村医生”活动中填报新的推荐"),
    ("judge-* /console", "评委：“最美护士”活动已提交的评分表"),
]


def _save_logins(logins: list[dict[str, str]]) -> None:
    path = Path(current_app.instance_path) / "demo_logins.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        for login in logins:
            fh.write(f"{login['role']}\t{login['username']}\t{login['password']}\n")
