"""Vote-brushing (刷票) detectors: pure functions over one campaign's votes in memory.

    findings = scan(rows, views=page_views, settings=overrides, tz_offset_hours=8.0)

Eleven rules (``RULES``), each with thresholds in ``DEFAULTS`` (overridable per rule through
``settings``); every ``Finding`` carries a score in 0..1, a severity, exactly the vote ids it
covers, JSON evidence and a plain Chinese explanation for the committee. Each rule module's
docstring describes its method. No Flask, database or Redis here: the scan job reads the rows
and page views and files the findings."""

from .model import DEFAULTS, RULES, SEVERITIES, TIERS, WATCH, Finding, VoteRow
from .scan import scan

__all__ = ["DEFAULTS", "RULES", "SEVERITIES", "TIERS", "WATCH", "Finding", "VoteRow", "scan"]
