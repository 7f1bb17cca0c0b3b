"""The Zuimei app factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from core import cli, errors, health, http, jobs, logs, metrics, web
from core.auth import configure_hasher
from core.config import load_config
from core.extensions import api, init_db, redis_store


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    instance = (
        (test_config or {}).get("INSTANCE_PATH")
        or os.environ.get("ZUIMEI_INSTANCE_PATH")
        or Path(__file__).resolve().parent.parent / "instance"
    )
    app = Flask(__name__, instance_path=str(Path(instance).resolve()))
    load_config(app, test_config)
    logs.init_app(app)
    jobs.init_app(app)
    configure_hasher(app.config.get("ARGON2_PARAMS"))
    init_db(app)
    redis_store.init_app(app)
    http.init_app(app)
    web.init_app(app)
    api.init_app(app)
    api.register_converter(
        http.IdConverter, lambda _: {"type": "integer", "minimum": 1, "maximum": 2_147_483_647}
    )
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "staff or voter token"}
    )
    errors.init_app(app)  # after api: our error shape replaces flask-smorest's

    import appraisal
    import awards
    import media
    import nominations
    import pages
    import voting
    from appraisal.routes import blp as appraisal_blp
    from awards.routes import blp as awards_blp
    from campaigns.routes import blp as campaigns_blp
    from media.routes import blp as media_blp
    from media.routes import files as media_files_blp
    from nominations.level_publicity_routes import blp as level_publicity_blp
    from nominations.routes import blp as nominations_blp
    from voting import vote_lane
    from voting.cli import votes_cli
    from voting.routes import blp as voting_blp

    api.register_blueprint(campaigns_blp)
    api.register_blueprint(nominations_blp)
    api.register_blueprint(level_publicity_blp)
    api.register_blueprint(voting_blp)
    api.register_blueprint(media_blp)
    api.register_blueprint(awards_blp)
    api.register_blueprint(appraisal_blp)
    app.register_blueprint(media_files_blp)
    app.register_blueprint(health.blp)
    nominations.init_app(app)
    media.init_app(app)
    voting.init_app(app)
    awards.init_app(app)
    appraisal.init_app(app)
    pages.init_app(app)
    metrics.init_app(app)
    cli.init_app(app)
    app.cli.add_command(votes_cli)
    # The vote's lane sits beneath ProxyFix, so both see the address ProxyFix settled on.
    vote_lane.install(app)
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0)  # type: ignore[method-assign]
    return app
