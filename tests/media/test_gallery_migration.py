"""Migration 9cabcdef0f38 on a database of its own (SQLite, whatever the suite runs on): each
nomination's current photo becomes its cover; downgrading keeps the cover as the one photo."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import downgrade, upgrade

from core.extensions import db
from core.types import utcnow

MIGRATIONS = str(Path(__file__).resolve().parents[2] / "migrations")
BEFORE, REVISION = "8b9cabcdde27", "9cabcdef0f38"
COLUMNS = (
    "id, nomination_id, kind, status, storage_key, declared_size, received, renditions, "
    "attempts, is_current, created_at, updated_at"
)


def _dummy_nominations(path: Path, ids: list[int]) -> None:
    """Nomination rows for the assets to point at (SQLite's batch migrations copy the assets'
    table with foreign keys enforced): every required column a placeholder, the rows they
    point at left out (a plain sqlite3 connection does not enforce foreign keys)."""
    with sqlite3.connect(path) as conn:
        columns = [
            (name, kind.upper())
            for _cid, name, kind, notnull, default, pk in conn.execute(
                "PRAGMA table_info(nominations)"
            )
            if notnull and default is None and not pk
        ]
        for nid in ids:
            values = [
                nid
                if "INT" in kind
                else 0
                if "BOOL" in kind or "NUM" in kind or "FLOAT" in kind
                else "{}"
                if "JSON" in kind
                else f"{name}-{nid}"
                for name, kind in columns
            ]
            names = ", ".join(["id", *(name for name, _ in columns)])
            marks = ", ".join("?" * (len(columns) + 1))
            conn.execute(f"INSERT INTO nominations ({names}) VALUES ({marks})", [nid, *values])  # noqa: S608


def _insert(path: Path, rows: list[tuple[int, int, str, str, int]]) -> None:
    """Asset rows (id, nomination, kind, status, is_current), made a day ago."""
    made = (utcnow() - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(path) as conn:
        conn.executemany(
            f"INSERT INTO media_assets ({COLUMNS}) VALUES "  # noqa: S608 (constant columns)
            "(?, ?, ?, ?, ?, 10, 10, '[]', 0, ?, ?, ?)",
            [
                (i, n, kind, status, f"k-{i}", current, made, made)
                for i, n, kind, status, current in rows
            ],
        )


def _rows(path: Path, columns: str = "status, is_current, is_cover") -> dict[int, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        found = conn.execute(f"SELECT id, {columns} FROM media_assets ORDER BY id").fetchall()  # noqa: S608
    return {row[0]: tuple(row[1:]) for row in found}


def test_the_current_photo_becomes_the_cover_and_back(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    path = tmp_path / "migration.db"
    app = make_app(SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision=BEFORE)
        db.engine.dispose()
    _dummy_nominations(path, [1, 2, 3])
    _insert(
        path,
        [
            (1, 1, "photo", "replaced", 0),
            (2, 1, "photo", "ready", 1),  # nomination 1's photo
            (3, 2, "photo", "ready", 1),  # nomination 2 somehow holds two current photos
            (4, 2, "photo", "ready", 1),
            (5, 3, "video", "ready", 1),  # a video is never a cover
            (6, 3, "photo", "failed", 0),
        ],
    )
    with app.app_context():
        upgrade(directory=MIGRATIONS, revision=REVISION)
        db.engine.dispose()
    assert _rows(path) == {
        1: ("replaced", 0, 0),
        2: ("ready", 1, 1),
        3: ("replaced", 0, 0),
        4: ("ready", 1, 1),
        5: ("ready", 1, 0),
        6: ("failed", 0, 0),
    }
    # One cover per nomination, by the index.
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE media_assets SET is_cover = 1 WHERE id = 3")

    # A gallery grows, one photo is removed; then back to one photo per nomination.
    _insert(path, [(7, 1, "photo", "ready", 1), (8, 1, "photo", "removed", 0)])
    with app.app_context():
        downgrade(directory=MIGRATIONS, revision=BEFORE)
        db.engine.dispose()
    assert _rows(path, "status, is_current") == {
        1: ("replaced", 0),
        2: ("ready", 1),
        3: ("replaced", 0),
        4: ("ready", 1),
        5: ("ready", 1),
        6: ("failed", 0),
        7: ("replaced", 0),
        8: ("replaced", 0),
    }
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(media_assets)")}
    assert "is_cover" not in columns
