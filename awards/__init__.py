"""Judging, combined results, finalisation, publicity, objections and exports."""

from __future__ import annotations

from flask import Flask

from awards.publicity import guard_phases
from core.signals import phase_changing


def init_app(app: Flask) -> None:
    """Connect the awards' receivers. Blinker keys a receiver by identity, so connecting the
    same module-level function again (every ``create_app`` in one process) is a no-op, and
    ``weak=False`` keeps it connected for the life of the process."""
    phase_changing.connect(guard_phases, weak=False)
