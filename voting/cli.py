"""`flask votes drain|reconcile|verify --campaign SLUG`, `flask votes forget-rankings`, and
`flask votes receipts …`."""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup

from campaigns import services as campaign_services
from campaigns.models import Campaign, Category
from core.errors import AppError
from core.extensions import db, redis_store, sqlite_write_intent
from voting import ledger, receipt_check, receipts, rewinds, services
from voting.keys import CampaignKeys
from voting.reconciliation import quarantined_entries

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
    sqlite_write_intent.set(True)  # a command that writes takes the lock as a request does
    click.echo(f"drained {services.drain_campaign(slug)} entries")


@votes_cli.command("reconcile")
@click.option("--campaign", "slug", required=True)
def reconcile(slug: str) -> None:
    """Rebuild counters and rankings from the database plus the undrained stream.

    Exit 3 when numbered votes are in neither the database, the stream nor the quarantine (lost
    by the vote Redis); otherwise exit 5 while a rewind of the vote Redis is unacknowledged;
    otherwise exit 4 while ledger entries are quarantined and unresolved."""
    campaign = _campaign(slug)
    services.sync_campaign(campaign)
    report = services.reconcile(campaign)
    db.session.commit()  # the rewinds found on the way are recorded
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
    if report["rewinds"]["unacknowledged"]:
        _rewind_alarm(report["rewinds"]["unacknowledged"], slug)
        raise SystemExit(5)
    if quarantined["count"]:
        raise SystemExit(4)


def _rewind_alarm(count: int, slug: str) -> None:
    click.echo(
        f"REWOUND: the vote Redis came back behind acknowledged votes {count} time(s) and "
        f"nobody acknowledged it yet; review `flask votes rewinds --campaign {slug}`, then "
        '--ack ID --note "...". See docs/voting.md, "Durability: rewinds".',
        err=True,
    )


@votes_cli.command("forget-rankings")
@click.option("--campaign", "slug", help="One campaign (every campaign when left out).")
def forget_rankings(slug: str | None) -> None:
    """Delete the sorted sets versions before stop 28 kept beside the counters (one per
    category). Run once every process runs this version: until then an older web process still
    reads them."""
    query = db.select(Campaign.slug, Category.code).join(
        Category, Category.campaign_id == Campaign.id
    )
    if slug:
        query = query.where(Campaign.slug == _campaign(slug).slug)
    by_campaign: dict[str, list[str]] = {}
    for campaign_slug, code in db.session.execute(query):
        by_campaign.setdefault(campaign_slug, []).append(CampaignKeys.of(campaign_slug).rank(code))
    # One DEL per campaign: its keys share one slot (one node of a cluster).
    deleted = sum(int(redis_store.votes.delete(*keys)) for keys in by_campaign.values())
    looked = sum(len(keys) for keys in by_campaign.values())
    click.echo(f"{deleted} old ranking(s) deleted of {looked} looked for")


@votes_cli.command("verify")
@click.option("--campaign", "slug", required=True)
def verify(slug: str) -> None:
    """Recompute the campaign's vote hash chain; exit 1 if it is broken.

    Quarantined entries never got a link, so they do not break the chain; they are named on
    stderr (reconcile accounts for them, and exits 4 while any is unresolved). Exit 5 while a
    rewind of the vote Redis is unacknowledged: the chain is whole over what reached the
    database, and votes the rewind lost cannot be in it."""
    campaign = _campaign(slug)
    report = services.verify_chain(campaign)
    unacknowledged = rewinds.unacknowledged_count(campaign)
    if report.get("quarantined"):
        click.echo(
            f"note: {report['quarantined']} ledger entry(ies) quarantined, outside the chain and "
            "the counts; run votes reconcile",
            err=True,
        )
    if report["ok"]:
        click.echo(f"chain ok: {report['checked']} votes, head {report['head']}")
        if unacknowledged:
            _rewind_alarm(unacknowledged, slug)
            raise SystemExit(5)
        return
    click.echo(f"chain BROKEN at {report['broken_at']} after {report['checked']} votes", err=True)
    raise SystemExit(1)


@votes_cli.command("rewinds")
@click.option("--campaign", "slug", required=True)
@click.option("--ack", "ack_id", type=int, help="Acknowledge this rewind after review.")
@click.option("--note", default="", help="What was reviewed (required with --ack).")
@click.option("--by", "actor", default="cli", help="Who acknowledges.")
def rewinds_command(slug: str, ack_id: int | None, note: str, actor: str) -> None:
    """List the campaign's rewinds of the vote Redis, or acknowledge one (--ack ID --note)."""
    campaign = _campaign(slug)
    if ack_id is not None:
        try:
            rewinds.acknowledge(campaign, ack_id, actor=actor, note=note)
        except AppError as exc:
            raise click.ClickException(f"{exc.code}: {exc.message}") from exc
        db.session.commit()
        click.echo(f"rewind {ack_id} acknowledged")
        return
    click.echo(json.dumps(rewinds.list_rewinds(campaign), ensure_ascii=False, indent=2))


@votes_cli.group("quarantine")
def quarantine() -> None:
    """Ledger entries the database could not store, set aside."""


@quarantine.command("list")
@click.option("--campaign", "slug", required=True)
def quarantine_list(slug: str) -> None:
    """The unresolved quarantined entries (stream id, vote id, number, reason)."""
    report = quarantined_entries(_campaign(slug))
    report.pop("sequences")
    click.echo(json.dumps(report, ensure_ascii=False, indent=2))


@quarantine.command("resolve")
@click.argument("stream_id")
@click.option("--campaign", "slug", required=True)
@click.option("--note", required=True, help="What was done: a corrected copy put back, or void.")
@click.option("--by", "actor", default="cli", help="Who resolves.")
def quarantine_resolve(stream_id: str, slug: str, note: str, actor: str) -> None:
    """Mark a quarantined entry (by its stream id) resolved, with who and why."""
    if not note.strip():
        raise click.ClickException("note_required: --note must say what was done")
    try:
        ledger.resolve_quarantined(_campaign(slug), stream_id, actor=actor, resolution=note)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {stream_id}") from exc
    db.session.commit()
    click.echo(f"quarantined entry {stream_id} resolved")


@votes_cli.group("receipts")
def receipts_group() -> None:
    """Vote receipts after 公示: publish, export, check one (docs/receipts.md)."""


@receipts_group.command("publish")
@click.option("--campaign", "slug", required=True)
def receipts_publish(slug: str) -> None:
    """Compute the campaign's receipt publication now (once; in publicity, ledger drained)."""
    campaign = _campaign(slug)
    try:
        pub = receipts.publication(campaign)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"published: {pub.leaf_count} counted votes, root {pub.root}")


@receipts_group.command("export")
@click.option("--campaign", "slug", required=True)
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, writable=True))
def receipts_export(slug: str, out: str) -> None:
    """Write the publication (summary and every leaf) to a file, as the API serves it (computed
    first if it is not yet)."""
    campaign = _campaign(slug)
    try:
        pub = receipts.publication(campaign)
    except AppError as exc:
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    with open(out, "wb") as handle:
        for chunk in receipts.stream_publication(campaign, pub):
            handle.write(chunk)
    click.echo(f"wrote {out}")


@receipts_group.command("verify")
@click.option("--receipt", "receipt_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--published", required=True, help="the publication: a file, or its URL")
def receipts_verify(receipt_file: str | None, published: str) -> None:
    """Check the publication (every root, every count) and a receipt in it; exit 1 if not.

    The same as `python -m voting.receipt_check`, which needs nothing of the app."""
    argv = ["--published", published] + (["--receipt", receipt_file] if receipt_file else [])
    code = receipt_check.main(argv)
    if code:
        raise SystemExit(code)
