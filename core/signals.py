"""Signals between domains that must not import each other."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# Sent with the Campaign whenever what the vote path needs to know about it changed: phase,
# windows, rules, or the set of approved nominees. Sent inside the transaction, before commit.
campaign_changed = _signals.signal("campaign-changed")

# Sent with the Campaign and ``phase=<new phase>`` before a phase change is applied; a receiver
# refuses the change by raising an AppError (e.g. publicity without a final result).
phase_changing = _signals.signal("phase-changing")
