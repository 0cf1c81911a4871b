"""Fixtures of the web and job tests: apps built by create_app on the tiny config, and a real gunicorn."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from app.config import load_settings
from app.web import close_app, create_app
from websupport import TINY, Gunicorn


@pytest.fixture
def make_app() -> Callable[..., Any]:
    """Build apps on the tiny config with flat overrides; their job workers stop at the end of the test."""
    apps = []

    def build(**overrides: Any):
        app = create_app(load_settings(overrides={**TINY, **overrides}))
        apps.append(app)
        return app

    yield build
    for app in apps:
        close_app(app)


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Gunicorn:
    """A real gunicorn on the tiny config, shared by the HTTP and browser tests."""
    server = Gunicorn(tmp_path_factory.mktemp("gunicorn"), {**TINY})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
