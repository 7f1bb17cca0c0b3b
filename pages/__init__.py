"""The pages people touch: the H5 voting page, the unit portal and the committee console.

Server-rendered shells in Chinese with small hand-written scripts; every read and write goes
through the same services or the same /api/v1 endpoints as any other client."""

from __future__ import annotations

from flask import Flask

from pages import (
    appraisal_unit,
    console,
    console_accounts,
    console_appraisal,
    console_awards,
    console_ledger,
    console_levels,
    dossier,
    h5,
    h5_level_publicity,
    h5_myvotes,
    h5_phone,
    h5_publicity,
    portal,
    rating,
)
from pages.common import assets, auth
from pages.poster import bp as poster_bp


def init_app(app: Flask) -> None:
    app.register_blueprint(assets)
    app.register_blueprint(auth)
    app.register_blueprint(h5.bp)
    app.register_blueprint(h5_phone.bp)
    app.register_blueprint(h5_publicity.bp)
    app.register_blueprint(h5_level_publicity.bp)
    app.register_blueprint(h5_myvotes.bp)
    app.register_blueprint(rating.bp)
    app.register_blueprint(poster_bp)
    app.register_blueprint(portal.bp)
    app.register_blueprint(appraisal_unit.bp)
    app.register_blueprint(console.bp)
    app.register_blueprint(console_awards.bp)
    app.register_blueprint(console_accounts.bp)
    app.register_blueprint(console_appraisal.bp)
    app.register_blueprint(console_ledger.bp)
    app.register_blueprint(console_levels.bp)
    app.register_blueprint(dossier.bp)
