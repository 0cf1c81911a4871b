"""The Flask web service: `create_app` builds the app, its job backend, its blueprints and its error handlers."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from app.config import Settings, load_settings
from app.jobs import make_backend
from app.web import access, api, errors, hooks, openapi, pages
from app.web.state import WebState
from app.web.uploads import FORM_OVERHEAD_BYTES, InMemoryRequest, max_upload_bytes

ROOT = Path(__file__).resolve().parent.parent.parent


def create_app(config: Settings | Mapping[str, Any] | str | os.PathLike | None = None) -> Flask:
    """Build the app. `config`: a Settings, a mapping of flat config overrides, a config file path, or None
    (the repository's config.json). Starts the job backend's workers; stop them with `close_app(app)`."""
    settings = _settings(config)
    digests = access.load_key_digests(settings.service)  # a bad keys file stops us before any worker starts
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"))
    app.request_class = InMemoryRequest
    # Never debug here (FLASK_DEBUG is ignored); main-flask.py turns it on for development only.
    app.config.update(DEBUG=False, PROPAGATE_EXCEPTIONS=False,
                      MAX_CONTENT_LENGTH=max_upload_bytes(settings.service) + FORM_OVERHEAD_BYTES)
    app.json.sort_keys = False
    logging.getLogger("app").setLevel(settings.service.log_level)
    app.extensions["zssr"] = WebState(settings=settings, backend=make_backend(settings))
    hooks.install(app)
    errors.install(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(openapi.bp)
    service = settings.service
    access.install(app, service, service.redis_url if service.job_backend == "redis" else "memory://", digests)
    return app


def close_app(app: Flask) -> None:
    """Stop the app's job workers (queued and running jobs are cancelled)."""
    app.extensions["zssr"].backend.close()


def _settings(config: Settings | Mapping[str, Any] | str | os.PathLike | None) -> Settings:
    if isinstance(config, Settings):
        return config
    if isinstance(config, Mapping):
        return load_settings(overrides=config)
    return load_settings(config)
