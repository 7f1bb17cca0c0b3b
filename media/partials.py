"""Partial work folders: a run writes its outputs there, then moves them into place whole.

A job's outputs appear beside the asset's other files only once all of them are complete; until
then they live in a `.partial-*` folder of their own, which a later run removes if the job that
made it was killed.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

PARTIAL_PREFIX = ".partial-"


def partial_folder(out_dir: Path) -> Path:
    """A fresh work folder inside ``out_dir`` for one run."""
    return Path(tempfile.mkdtemp(prefix=PARTIAL_PREFIX, dir=out_dir))


def sweep_partials(out_dir: Path, *, older_than: float) -> None:
    """Remove work folders of jobs that were killed mid-run; a live job's folder is younger."""
    now = time.time()
    for entry in out_dir.glob(f"{PARTIAL_PREFIX}*"):
        try:
            if entry.is_dir() and now - entry.stat().st_mtime > older_than:
                shutil.rmtree(entry, ignore_errors=True)
        except FileNotFoundError:
            continue
