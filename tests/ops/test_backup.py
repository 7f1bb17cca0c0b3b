"""Backups are proved by restoring them (docs/backups.md).

Real votes are cast through the API and drained into the ledger; the test database is backed up
the documented way (``pg_dump -Fc`` and ``pg_restore`` into a fresh database on PostgreSQL,
``VACUUM INTO`` for the embedded SQLite setup), and a new app on the restored copy runs
``flask votes verify`` and ``flask votes reconcile``:

- with an empty Redis namespace, the chain verifies to the same head, the rebuilt counters and
  rankings equal the database's counts, a vote still in the ledger stream at backup time is
  exactly what the restore lacks, and one quietly edited vote row breaks the chain;
- beside the live Redis (only the database was lost), reconcile names the vote drained after the
  backup as lost, and a vote still waiting in the stream is drained into the restored chain.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from campaigns.models import Campaign
from core.extensions import db
from tests.factories import Org
from voting import services
from voting.models import LedgerHead, Vote

# Doctors D001, D002, D003 get 5, 3 and 1 drained votes (vote numbers 1 to 9).
DRAINED = (5, 3, 1)


def _libpq(url: str) -> str:
    """The SQLAlchemy URL as the PostgreSQL client programs take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def _scratch_postgres(source_url: str) -> Iterator[str]:
    """A fresh, empty database beside the test database; dropped afterwards, whatever happens."""
    name = f"{make_url(source_url).database}_restore_{secrets.token_hex(3)}"
    with psycopg.connect(_libpq(source_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(source_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(source_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def backup(app_config: dict[str, Any], tmp_path: Path) -> Iterator[Callable[[], str]]:
    """``backup()`` backs the test database up the documented way and restores the copy into a
    fresh database; it returns the copy's URL (the copy is removed after the test)."""
    source = app_config["SQLALCHEMY_DATABASE_URI"]
    with contextlib.ExitStack() as stack:

        def pg_dump_and_restore() -> str:
            dump = tmp_path / "zuimei.dump"
            subprocess.run(
                ["pg_dump", "--format=custom", "--no-owner", "--file", str(dump), _libpq(source)],
                check=True,
                timeout=120,
            )
            target = stack.enter_context(_scratch_postgres(source))
            subprocess.run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--exit-on-error",
                    "--single-transaction",
                    "--dbname",
                    _libpq(target),
                    str(dump),
                ],
                check=True,
                timeout=120,
            )
            return target

        def vacuum_into() -> str:
            copy = tmp_path / "zuimei-backup.db"
            with contextlib.closing(sqlite3.connect(make_url(source).database)) as conn:
                conn.execute("VACUUM INTO ?", (str(copy),))
            return f"sqlite:///{copy}"

        if make_url(source).get_backend_name() != "postgresql":
            yield vacuum_into
            return
        for program in ("pg_dump", "pg_restore"):
            if shutil.which(program) is None:
                pytest.skip(f"{program} (the PostgreSQL client programs) is not installed")
        yield pg_dump_and_restore


def _vote(client: Any, org: Org, voter: int, number: str) -> None:
    answer = client.post(
        "/api/v1/campaigns/v1/votes", json={"nominee": number}, headers=org.voter(voter)
    )
    assert answer.status_code == 201, answer.get_json()


def _drain(app: Flask) -> int:
    with app.app_context():
        drained = services.drain_campaign("v1")
        db.session.remove()
    return drained


def _cast(app: Flask, org: Org) -> tuple[list[str], str]:
    """The drained votes of DRAINED, then vote number 10 (for D003), acknowledged but left in
    the ledger stream. Returns the numbers and the chain head after the drain."""
    numbers = org.voting_campaign(nominees=3)
    client = app.test_client()
    for number, count in zip(numbers, DRAINED, strict=True):
        for voter in range(1, count + 1):
            _vote(client, org, voter, number)
    assert _drain(app) == sum(DRAINED)
    with app.app_context():
        head = db.session.scalar(select(LedgerHead.head_hash))
        db.session.remove()
    _vote(client, org, 99, numbers[2])
    return numbers, head


def _campaign() -> Campaign:
    return db.session.scalar(select(Campaign).where(Campaign.slug == "v1"))


def _stored(campaign: Campaign) -> Counter[str]:
    return Counter(
        dict(
            db.session.execute(
                select(Vote.nominee_number, func.count(Vote.id))
                .where(Vote.campaign_id == campaign.id, Vote.status == "valid")
                .group_by(Vote.nominee_number)
            ).all()
        )
    )


def test_restore_with_an_empty_redis_verifies_and_rebuilds_the_counts(
    app: Flask, org: Org, make_app: Callable[..., Flask], backup: Callable[[], str]
) -> None:
    numbers, head = _cast(app, org)
    copy = backup()
    # A new Redis namespace: the old counters, stream and quotas are not part of a backup. It
    # extends the run's prefix, so the suite's clean-up removes it.
    restored = make_app(SQLALCHEMY_DATABASE_URI=copy, REDIS_PREFIX=app.config["REDIS_PREFIX"] + "r")
    runner = restored.test_cli_runner()

    verified = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert verified.exit_code == 0, verified.output
    assert f"chain ok: {sum(DRAINED)} votes, head {head}" in verified.output
    reconciled = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    # An empty Redis behind the restored floor is a rewind: reported until acknowledged.
    assert reconciled.exit_code == 5, reconciled.output
    assert "REWOUND" in reconciled.output
    assert "3 counter(s) repaired" in reconciled.output  # from nothing to the ledger's counts

    with restored.app_context():
        campaign = _campaign()
        stored = _stored(campaign)
        live = services.vote_counts(campaign, [(n, "doctor") for n in numbers])
        # Exactly the drained votes: number 10, still in the stream at backup time, is not here.
        assert stored == Counter(dict(zip(numbers, DRAINED, strict=True)))
        assert {n: live[n]["votes"] for n in numbers} == dict(stored)
        assert [live[n]["rank"] for n in numbers] == [1, 2, 3]
        again = services.reconcile(campaign)
        assert again["repairs"] == []
        db.session.remove()
    standings = restored.test_client().get("/api/v1/campaigns/v1/ranking?category=doctor")
    assert [(i["number"], i["votes"]) for i in standings.get_json()["items"]] == list(
        zip(numbers, DRAINED, strict=True)
    )

    # Quietly moving one restored vote to another nominee is caught.
    with restored.app_context():
        second = db.session.scalar(select(Vote.id).where(Vote.chain_index == 2))
        db.session.execute(update(Vote).where(Vote.id == second).values(nominee_number=numbers[1]))
        db.session.commit()
        db.session.remove()
    broken = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert broken.exit_code == 1
    assert f"chain BROKEN at {second}" in broken.output
    with restored.app_context():
        db.engine.dispose()  # let the restored database go


def test_restore_beside_the_live_redis_names_the_votes_it_lost(
    app: Flask, org: Org, make_app: Callable[..., Flask], backup: Callable[[], str]
) -> None:
    numbers, _ = _cast(app, org)
    copy = backup()
    assert _drain(app) == 1  # vote 10 reaches the old database after the backup, then it is lost
    _vote(app.test_client(), org, 98, numbers[1])  # vote 11 is still in the stream at restore
    restored = make_app(SQLALCHEMY_DATABASE_URI=copy)  # same Redis namespace: Redis survived
    runner = restored.test_cli_runner()

    assert runner.invoke(args=["votes", "verify", "--campaign", "v1"]).exit_code == 0
    reconciled = runner.invoke(args=["votes", "reconcile", "--campaign", "v1"])
    assert reconciled.exit_code == 3, reconciled.output  # votes were lost: said, not hidden
    with restored.app_context():
        report = services.reconcile(_campaign())
        assert report["missing"] == {"count": 1, "ranges": [[10, 10]]}
        db.session.remove()
    assert _drain(restored) == 1  # vote 11 continues the restored chain
    verified = runner.invoke(args=["votes", "verify", "--campaign", "v1"])
    assert verified.exit_code == 0 and f"chain ok: {sum(DRAINED) + 1} votes" in verified.output
    with restored.app_context():
        campaign = _campaign()
        live = services.vote_counts(campaign, [(n, "doctor") for n in numbers])
        expected = Counter(dict(zip(numbers, DRAINED, strict=True))) + Counter({numbers[1]: 1})
        assert _stored(campaign) == expected
        assert {n: live[n]["votes"] for n in numbers} == dict(expected)
        db.session.remove()
        db.engine.dispose()
