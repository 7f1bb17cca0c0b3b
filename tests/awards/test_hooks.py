"""The awards' signal receivers are connected by the app factory, once, never at import."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from awards.publicity import guard_phases
from core.signals import phase_changing

ROOT = Path(__file__).resolve().parents[2]


def _guards() -> int:
    return sum(1 for receiver in phase_changing.receivers_for(object()) if receiver is guard_phases)


def test_the_phase_guard_is_connected_once_however_many_apps(
    app: Flask, make_app: Callable[..., Flask]
) -> None:
    assert _guards() == 1
    make_app()
    make_app()
    assert _guards() == 1


def test_importing_awards_connects_nothing() -> None:
    code = (
        "import awards, awards.services, awards.routes, awards.jobs\n"
        "from core.signals import phase_changing\n"
        "print(len(phase_changing.receivers))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "0"
