"""Satisfaction programmes 群众评议: encounters in, invitations out, patients' answers
(docs/appraisal.md)."""

from __future__ import annotations

from flask import Flask

from appraisal.selection import satisfaction_counts
from nominations import ports


def init_app(app: Flask) -> None:
    """Tell awards (through nominations' ports) how many answers name each nominee."""
    ports.register_satisfaction(satisfaction_counts)
