"""Voter identity, the vote script, the ledger, counts, rankings and reconciliation."""

from __future__ import annotations

from flask import Flask

from campaigns import ports as campaign_ports
from core import health
from core.extensions import api, db
from nominations import ports as nomination_ports
from voting import block_routes, counts, fraud, phone_routes, rewinds, schemas, state


def init_app(app: Flask) -> None:
    """Publish campaign changes to the vote script after each commit of the app's session, and
    give campaigns and nominations what they need from voting. Those registrations are
    process-wide and idempotent (many apps in one process register once); the voter-block routes
    are registered with each app."""
    state.publish_after_commit(db.session)
    nomination_ports.register_counts(
        counts_hidden=counts.counts_hidden, vote_counts=counts.vote_counts
    )
    nomination_ports.register_view_counter(fraud.count_view)
    campaign_ports.register_fraud_settings_check(schemas.check_fraud_settings)
    # /readyz names unacknowledged rewinds of the vote Redis (200, status "degraded").
    health.register_alert("ledger_rewinds", rewinds.readiness_alert)
    # The committee's voter blocks have their own blueprint; this app serves and documents it.
    api.register_blueprint(block_routes.blp)
    # Phone voters (the sms provider): codes by text message (voting/phone.py).
    api.register_blueprint(phone_routes.blp)
