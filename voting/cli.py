"""`flask votes drain|reconcile|verify --campaign SLUG`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

votes_cli = AppGroup("votes", help="The vote ledger.")


def _campaign(slug: str):  # type: ignore[no-untyped-def]
    from campaigns import services as campaign_services
    from core.errors import AppError

    try:
        return campaign_services.get_campaign(slug)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {slug}") from exc


@votes_cli.command("drain")
@click.option("--campaign", "slug", required=True)
def drain(slug: str) -> None:
    """Move the campaign's undrained ledger entries into the votes table now."""
    from voting import services

    _campaign(slug)
    click.echo(f"drained {services.drain_campaign(slug)} entries")


@votes_cli.command("reconcile")
@click.option("--campaign", "slug", required=True)
def reconcile(slug: str) -> None:
    """Rebuild counters and rankings from the database plus the undrained stream."""
    from voting import services

    campaign = _campaign(slug)
    services.sync_campaign(campaign)
    report = services.reconcile(campaign)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))
    click.echo(f"{len(report['repairs'])} counter(s) repaired")


@votes_cli.command("verify")
@click.option("--campaign", "slug", required=True)
def verify(slug: str) -> None:
    """Recompute the campaign's vote hash chain; exit 1 if it is broken."""
    from voting import services

    report = services.verify_chain(_campaign(slug))
    if report["ok"]:
        click.echo(f"chain ok: {report['checked']} votes, head {report['head']}")
        return
    click.echo(f"chain BROKEN at {report['broken_at']} after {report['checked']} votes", err=True)
    raise SystemExit(1)
