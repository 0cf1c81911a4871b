"""Fixtures of the web and job tests: apps built by create_app on the tiny config (on each job backend), a real
redis-server and a real gunicorn."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from app.config import load_settings
from app.web import close_app, create_app
from websupport import TINY, Gunicorn, RedisServer, redis_overrides


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory) -> RedisServer:
    """One redis-server for the session; each app gets a queue (and key prefix) of its own on it."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["memory", "redis"])
def backend(request) -> str:
    """The job backend under test: the in-process runner, or a Redis queue with worker threads in this process."""
    return request.param


@pytest.fixture
def make_app(request, backend) -> Callable[..., Any]:
    """Build apps on the tiny config with flat overrides; their job workers stop at the end of the test.

    On the redis backend each app has `workers_per_device` workers of its own (threads, as RQ workers in their
    own processes would be), on a queue of its own.
    """
    from app.jobs.redis_worker import WorkerThread

    apps, workers = [], []

    def build(**overrides: Any):
        values = {**TINY, **overrides}
        if backend == "redis":
            values.update(redis_overrides(request.getfixturevalue("redis_server")))
        settings = load_settings(overrides=values)
        app = create_app(settings)
        apps.append(app)
        if backend == "redis":
            workers.extend(WorkerThread(settings) for _ in range(settings.service.workers_per_device))
        return app

    yield build
    for app in apps:
        close_app(app)
    for worker in workers:
        worker.stop()
    for worker in workers:
        assert worker.join(10), "a worker thread did not stop"


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
