"""`flask votes drain|reconcile|verify --campaign SLUG`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from campaigns import services as campaign_services
from core.errors import AppError
from voting import services

votes_cli = AppGroup("votes", help="The vote ledger.")


def _campaign(slug: str):  # type: ignore[no-untyped-def]
    try:
        return campaign_services.get_campaign(slug)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {slug}") from exc


@votes_cli.command("drain")
@click.option("--campaign", "slug", required=True)
def drain(slug: str) -> None:
    """Move the campaign's undrained ledger entries into the votes table now."""
    _campaign(slug)
    click.echo(f"drained {services.drain_campaign(slug)} entries")


@votes_cli.command("reconcile")
@click.option("--campaign", "slug", required=True)
def reconcile(slug: str) -> None:
    """Rebuild counters and rankings from the database plus the undrained stream.

    Exit 3 when numbered votes are in neither the database, the stream nor the quarantine (lost
    by the vote Redis); otherwise exit 4 while ledger entries are quarantined and unresolved."""
    campaign = _campaign(slug)
    services.sync_campaign(campaign)
    report = services.reconcile(campaign)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    click.echo(f"{len(report['repairs'])} counter(s) repaired")
    missing = report["missing"]
    quarantined = report["quarantined"]
    if quarantined["count"]:
        shown = ", ".join(entry["stream_id"] for entry in quarantined["entries"])
        click.echo(
            f"QUARANTINED: {quarantined['count']} ledger entry(ies) the database could not store "
            f"are set aside, not counted, and unresolved (stream ids {shown}). "
            'See docs/voting.md, "Quarantine".',
            err=True,
        )
    if missing["count"]:
        ranges = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in missing["ranges"])
        click.echo(
            f"LOST: {missing['count']} numbered vote(s) are in neither the database nor the "
            f"ledger stream (sequence {ranges}); the vote Redis lost them (failover or restore). "
            "See docs/scaling.md.",
            err=True,
        )
        raise SystemExit(3)
    if quarantined["count"]:
        raise SystemExit(4)


@votes_cli.command("verify")
@click.option("--campaign", "slug", required=True)
def verify(slug: str) -> None:
    """Recompute the campaign's vote hash chain; exit 1 if it is broken.

    Quarantined entries never got a link, so they do not break the chain; they are named on
    stderr (reconcile accounts for them, and exits 4 while any is unresolved)."""
    report = services.verify_chain(_campaign(slug))
    if report.get("quarantined"):
        click.echo(
            f"note: {report['quarantined']} ledger entry(ies) quarantined, outside the chain and "
            "the counts; run votes reconcile",
            err=True,
        )
    if report["ok"]:
        click.echo(f"chain ok: {report['checked']} votes, head {report['head']}")
        return
    click.echo(f"chain BROKEN at {report['broken_at']} after {report['checked']} votes", err=True)
    raise SystemExit(1)
