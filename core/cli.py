"""Commands: up, worker, accounts create, demo seed, embedded stop (plus Flask-Migrate's db)."""

from __future__ import annotations

import os
import signal
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from core import embedded
from core.metrics import MULTIPROCESS_ENV
from core.supervisor import Child, EmbeddedRedisWatch, supervise

ROOT = Path(__file__).resolve().parent.parent

accounts_cli = AppGroup("accounts", help="Staff accounts.")
demo_cli = AppGroup("demo", help="Demo data.")
embedded_cli = AppGroup("embedded", help="The embedded Redis.")


@accounts_cli.command("create")
@click.option("--username", required=True)
@click.option("--password", required=True, help="at least 10 characters")
@click.option("--role", required=True, type=click.Choice(["admin", "reviewer", "unit", "judge"]))
@click.option("--unit", "unit_code", default=None, help="unit code (unit and reviewer roles)")
@click.option("--display-name", default=None)
def create_account(
    username: str, password: str, role: str, unit_code: str | None, display_name: str | None
) -> None:
    """Create a staff account."""
    from campaigns import services
    from core.errors import AppError
    from core.extensions import db

    if len(password) < 10:
        raise click.BadParameter("at least 10 characters", param_hint="--password")
    try:
        account = services.create_account(username, password, role, unit_code, display_name)
        db.session.commit()
    except AppError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.code}: {exc.message}") from exc
    click.echo(f"created {account.role} account {account.username} (id {account.id})")


@demo_cli.command("seed")
@click.option("--password", default=None, help="one password for every demo login (else random)")
@click.option(
    "--voters",
    default=None,
    type=click.IntRange(min=10),
    help="honest voters of the voting campaign (default 650: a few thousand votes)",
)
def seed_demo(password: str | None, voters: int | None) -> None:
    """Load the demo county: four campaigns (voting with photos, videos and past votes; 公示;
    open for nominations; a provincial one recommended level by level), its units, logins and
    judges."""
    from nominations.demo import seed
    from nominations.demo_campaigns import Report

    report = Report()
    started = time.monotonic()
    size = {} if voters is None else {"people": voters, "publicity_people": max(10, voters // 4)}
    logins = seed(password, demo_domains(), report=report, **size)
    if not report.campaigns:
        click.echo("demo campaigns already present; nothing changed")
        return
    _print_demo(report, time.monotonic() - started)
    if logins:
        _print_logins(logins)


def demo_domains() -> Any:
    """The domains' services the demo drives, handed to nominations.demo (which may not import
    them: docs/architecture.md)."""
    from awards import judging, publicity, results
    from media import jobs as media_jobs
    from media import services as media_services
    from nominations.demo import Domains
    from voting import cast, fraud, identity
    from voting import jobs as voting_jobs
    from voting import services as voting_services

    return Domains(
        voting=voting_services,
        cast=cast,
        identity=identity,
        fraud=fraud,
        voting_jobs=voting_jobs,
        media=media_services,
        media_jobs=media_jobs,
        judging=judging,
        results=results,
        publicity=publicity,
    )


def _print_demo(report: Any, seconds: float) -> None:
    click.echo(f"demo loaded in {seconds:.1f} s:")
    for slug, phase in report.campaigns.items():
        tally = report.votes.get(slug)
        votes = f", {tally.votes} past votes from {tally.voters} voters" if tally else ""
        click.echo(f"  {slug:<26} {phase}{votes}")
    if report.videos:
        click.echo(f"  {len(report.videos)} demo videos made and transcoded")
    if report.flags:
        click.echo(
            f"  fraud scan: {report.flags} flags filed "
            f"(the seeded brushing attack on {report.attack})"
        )


@embedded_cli.command("stop")
def stop_embedded() -> None:
    """Stop the embedded Redis of this instance folder."""
    stopped = embedded.stop(current_app.instance_path)
    click.echo("embedded redis stopped" if stopped else "embedded redis was not running")


@click.command("worker")
@click.option("--burst", is_flag=True, help="exit when the queues are empty")
def worker(burst: bool) -> None:
    """Run an RQ worker (with its scheduler) on every queue of this app."""
    from core.jobs import run_worker

    run_worker(current_app._get_current_object(), burst=burst)  # type: ignore[attr-defined]


def _print_logins(logins: list[dict[str, str]]) -> None:
    from nominations.demo import SHOWCASE

    click.echo("demo logins (saved in instance/demo_logins.txt):")
    for login in logins:
        click.echo(f"  {login['role']:<9} {login['username']:<14} {login['password']}")
    click.echo("which login shows what (docs/demo.md):")
    for who, what in SHOWCASE:
        click.echo(f"  {who}: {what}")


def _read_saved_logins(app: Flask) -> list[dict[str, str]]:
    path = Path(app.instance_path) / "demo_logins.txt"
    if not path.exists():
        return []
    logins = []
    for line in path.read_text().splitlines():
        role, username, password = line.split("\t")
        logins.append({"role": role, "username": username, "password": password})
    return logins


@click.command("up")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@click.option(
    "--no-demo", is_flag=True, help="do not load the demo campaign into an empty database"
)
def up(host: str, port: int, web_workers: int, no_demo: bool) -> None:
    """Start everything on this machine: migrations, embedded services, API, worker, demo data."""
    from flask_migrate import upgrade

    from campaigns.models import Campaign
    from core.extensions import db

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    started_redis = False
    if app.config["EMBEDDED_REDIS"]:
        started_redis = embedded.pid(app.instance_path) is None
        embedded.ensure_running(app.instance_path)
        click.echo(f"redis      embedded, {app.config['REDIS_URL']}")
    else:
        click.echo(f"redis      {app.config['REDIS_URL']}")
    click.echo(f"database   {db.engine.url.render_as_string(hide_password=True)}")

    upgrade(directory=str(ROOT / "migrations"))
    click.echo("migrations up to date")
    if not no_demo and db.session.query(Campaign.id).first() is None:
        from nominations.demo import seed
        from nominations.demo_campaigns import Report

        report = Report()
        started = time.monotonic()
        seed(None, demo_domains(), report=report)
        _print_demo(report, time.monotonic() - started)
    # The H5 link goes to the newest campaign in public voting (else the newest one; the demo's
    # slugs carry the year they were seeded).
    newest = (
        db.session.query(Campaign.slug)
        .order_by((Campaign.phase == "voting").desc(), Campaign.id.desc())
        .first()
    )
    db.session.remove()

    env = dict(os.environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # The web processes share their metrics through files in a fresh directory; the worker
    # keeps its numbers in Redis (core.metrics) and gets no directory.
    web_env = {**env, MULTIPROCESS_ENV: str(_fresh_metrics_dir(app))}
    env.pop(MULTIPROCESS_ENV, None)
    # In json mode the app writes one access line per request itself.
    access_log = [] if app.config.get("ACCESS_LOG") else ["--access-logfile", "-"]
    web = Child(
        "web (gunicorn)",
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wsgi:app",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(web_workers),
            *access_log,
            "--graceful-timeout",
            "10",
        ],
        web_env,
        ROOT,
    )
    worker_child = Child(
        "worker", [sys.executable, "-m", "flask", "--app", "wsgi", "worker"], env, ROOT
    )
    children = [web, worker_child]
    watch = EmbeddedRedisWatch(Path(app.instance_path)) if app.config["EMBEDDED_REDIS"] else None
    # Ctrl-C reaches the whole process group; SIGTERM comes from a process manager. Either way,
    # stop the children in order (even when a shell started us with SIGINT ignored; installing a
    # handler before the children start also gives them the default action back).
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    try:
        for child in children:
            child.start()
        base = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"  # noqa: S104
        if not _wait_for(f"{base}/healthz", children, timeout=30):
            raise click.ClickException("the web server did not start; see the log above")
        click.echo("")
        if newest is not None:
            click.echo(f"Zuimei is up: {base}/c/{newest.slug} (the H5 voting page)")
        else:
            click.echo(f"Zuimei is up: {base}/console (no campaign yet: create one here)")
        click.echo(f"  unit portal  {base}/portal")
        click.echo(f"  console      {base}/console")
        click.echo(f"  API docs     {base}/api/docs (OpenAPI: {base}/api/openapi.json)")
        click.echo(f"  readiness    {base}/readyz")
        click.echo(f"  metrics      {base}/metrics")
        logins = _read_saved_logins(app)
        if logins:
            _print_logins(logins)
        click.echo("Press Ctrl-C to stop everything.")
        supervise(children, watch, _say)
    except KeyboardInterrupt:
        click.echo("\nstopping…")
    finally:
        # A second signal while stopping (a process manager or `timeout` signals the whole
        # group) must not abort the clean-up half way and leave Redis running.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in children:
            if child.alive():
                child.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        for child in children:
            child.stop()
        if started_redis or (watch is not None and watch.saw_it_die):
            embedded.stop(app.instance_path)
            click.echo("embedded redis stopped")


def _say(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    click.echo(f"[{stamp}] up: {message}", err=True)


def _fresh_metrics_dir(app: Flask) -> Path:
    """PROMETHEUS_MULTIPROC_DIR for the web processes: the one given, else
    ``instance/prometheus``; emptied of the samples of a previous run."""
    given = os.environ.get(MULTIPROCESS_ENV)
    folder = Path(given) if given else Path(app.instance_path) / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink(missing_ok=True)
    return folder


def _interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def _wait_for(url: str, children: list[Child], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not all(child.alive() for child in children):
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.2)
    return False


def init_app(app: Flask) -> None:
    app.cli.add_command(accounts_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(embedded_cli)
    app.cli.add_command(worker)
    app.cli.add_command(up)
