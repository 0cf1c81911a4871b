"""What the in-process backend says that depends on how many workers it has: Retry-After on a full queue or a
client over its cap (the mean job time shared among the workers), queue positions, and the worker count that
/readyz and /metrics report. Jobs are stand-ins on a fake clock, so their times are exact."""

from __future__ import annotations

import math

import pytest
from PIL import Image

from app.config import ServiceConfig
from app.engine import EngineConfig
from app.errors import QueueFullError, TooManyJobsError
from app.jobs import Box, JobRequest, JobState, MemoryBackend
from app.web import close_app, create_app
from app.web.state import WebState
from test_jobs import Clock, FakeWork
from test_prometheus import scrape, value
from websupport import TINY, jpeg_bytes, upload

ENGINE = EngineConfig(scale_factor=2.0, scale_times=1, num_epochs=100, time_budget_s=10.0, device="cpu")


def request(client: str = "-") -> JobRequest:
    return JobRequest.from_photo(Image.new("RGB", (40, 30)), Box(0, 0, 16, 16), train_max_side=32, client=client)


@pytest.fixture
def make_backend():
    backends = []

    def build(workers: int, engine: EngineConfig = ENGINE, **service) -> tuple[MemoryBackend, FakeWork, Clock]:
        work, clock = FakeWork(), Clock()
        backend = MemoryBackend(engine, ServiceConfig(workers_per_device=workers, **service), work=work, clock=clock)
        backends.append((backend, work))
        return backend, work, clock

    yield build
    for backend, work in backends:
        work.release.set()
        backend.close()


def run_together(backend: MemoryBackend, work: FakeWork, clock: Clock, jobs: int, seconds: float) -> None:
    """`jobs` jobs started at once and finished `seconds` later on the backend's clock."""
    submitted = [backend.submit(request()) for _ in range(jobs)]
    for _ in submitted:
        assert work.started.acquire(timeout=30)
    clock.now += seconds
    work.release.set()
    assert {backend.wait(job.id, 10).state for job in submitted} == {JobState.DONE}
    work.release.clear()


def occupy(backend: MemoryBackend, work: FakeWork, jobs: int) -> None:
    """`jobs` jobs running (each worker busy) until the test ends."""
    for _ in range(jobs):
        backend.submit(request())
    for _ in range(jobs):
        assert work.started.acquire(timeout=30)


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 7])
def test_a_full_queue_says_when_a_place_frees_up_the_mean_job_time_shared_among_the_workers(make_backend, workers):
    backend, work, clock = make_backend(workers, queue_size=workers)
    run_together(backend, work, clock, workers, 30.0)
    run_together(backend, work, clock, workers, 90.0)  # a mean of 60 s a job
    occupy(backend, work, workers)
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s == math.ceil(60 / workers)


@pytest.mark.parametrize("workers, expected", [(1, 10), (2, 5), (3, 4), (4, 3)])
def test_before_any_job_has_finished_the_time_budget_is_shared_among_the_workers(make_backend, workers, expected):
    backend, work, _ = make_backend(workers, queue_size=workers)  # ENGINE's budget: 10 s
    occupy(backend, work, workers)
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s == expected


def test_without_a_budget_a_minute_a_job_is_assumed(make_backend):
    backend, work, _ = make_backend(4, EngineConfig(time_budget_s=None, device="cpu"), queue_size=4)
    occupy(backend, work, 4)
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s == 15


@pytest.mark.parametrize("workers, seconds, expected", [(1, 0.2, 1), (8, 3.0, 1), (1, 5000.0, 600), (2, 1500.0, 600),
                                                         (4, 2400.0, 600), (4, 2000.0, 500)])
def test_retry_after_is_at_least_a_second_and_at_most_ten_minutes(make_backend, workers, seconds, expected):
    backend, work, clock = make_backend(workers, queue_size=workers)
    run_together(backend, work, clock, workers, seconds)
    occupy(backend, work, workers)
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s == expected


def test_only_the_last_sixteen_jobs_make_the_mean(make_backend):
    backend, work, clock = make_backend(2, queue_size=2)
    run_together(backend, work, clock, 2, 400.0)
    for _ in range(8):
        run_together(backend, work, clock, 2, 20.0)  # sixteen jobs of 20 s push out the two of 400 s
    occupy(backend, work, 2)
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s == 10


@pytest.mark.parametrize("workers", [1, 3])
def test_a_client_over_its_cap_is_told_the_same(make_backend, workers):
    backend, work, clock = make_backend(workers, queue_size=8, max_jobs_per_client=1)
    run_together(backend, work, clock, workers, 45.0)
    backend.submit(request("someone"))
    with pytest.raises(TooManyJobsError) as caught:
        backend.submit(request("someone"))
    assert caught.value.retry_after_s == math.ceil(45 / workers)
    backend.submit(request("someone else"))  # the cap is per client


def test_queue_positions_count_the_jobs_waiting_not_the_workers(make_backend):
    backend, work, _ = make_backend(2, queue_size=5)
    jobs = [backend.submit(request()) for _ in range(5)]
    assert work.started.acquire(timeout=30) and work.started.acquire(timeout=30)
    statuses = [backend.status(job.id) for job in jobs]
    assert [s.state for s in statuses] == [JobState.RUNNING] * 2 + [JobState.QUEUED] * 3
    assert [s.queue_position for s in statuses] == [0, 0, 1, 2, 3]
    health = backend.health()
    assert (health.workers, health.running, health.queued) == (2, 2, 3)


@pytest.fixture
def web_app():
    """An app on the in-process backend with three workers, whose jobs are stand-ins on a fake clock."""
    made = []

    def build(**overrides):
        made_app = create_app({**TINY, "workers_per_device": 3, "queue_size": 3, **overrides})
        close_app(made_app)  # its real workers; stand-ins take their place
        state = made_app.extensions["zssr"]
        work, clock = FakeWork(), Clock()
        backend = MemoryBackend(ENGINE, state.settings.service, work=work, clock=clock)
        made_app.extensions["zssr"] = WebState(settings=state.settings, backend=backend)
        made.append((backend, work))
        return made_app.test_client(), backend, work, clock

    yield build
    for backend, work in made:
        work.release.set()
        backend.close()


def test_the_503_retry_after_header_shares_the_mean_job_time_among_the_workers(web_app):
    client, backend, work, clock = web_app()
    run_together(backend, work, clock, 3, 50.0)
    occupy(backend, work, 3)
    for path in ("/upscale", "/api/jobs"):
        response = upload(client, path, jpeg_bytes(120, 90))
        assert response.status_code == 503 and response.get_json()["error"] == "queue_full"
        assert response.headers["Retry-After"] == "17"  # 50 s over 3 workers, rounded up


def test_the_429_retry_after_header_of_a_client_over_its_cap_does_too(web_app):
    client, backend, work, clock = web_app(max_jobs_per_client=1, queue_size=8)
    run_together(backend, work, clock, 3, 50.0)
    assert upload(client, "/api/jobs", jpeg_bytes(120, 90)).status_code == 202
    response = upload(client, "/api/jobs", jpeg_bytes(120, 90))
    assert response.status_code == 429 and response.get_json()["error"] == "too_many_jobs"
    assert response.headers["Retry-After"] == "17"


def test_readiness_and_metrics_report_every_worker():
    app = create_app({**TINY, "workers_per_device": 3})
    try:
        client = app.test_client()
        ready = client.get("/readyz").get_json()
        assert ready["status"] == "ready" and ready["workers"] == 3
        assert value(scrape(client), "zssr_workers") == 3
    finally:
        close_app(app)


class DurationsOnly:
    """Stands in for a Redis connection that holds only the queue's recent job times (no server needed)."""

    def __init__(self, seconds: list[float]):
        self.seconds = seconds

    def register_script(self, source):
        return None

    def lrange(self, key, start, end):
        return [str(s).encode() for s in self.seconds] if key.endswith("durations") else []


@pytest.mark.parametrize("workers, expected", [(1, 60), (2, 30), (3, 20), (7, 9), (0, 60)])
def test_the_redis_store_shares_the_mean_job_time_among_its_live_workers_too(workers, expected):
    from app.jobs.redis_store import JobStore

    store = JobStore(DurationsOnly([30.0, 90.0]), ServiceConfig())
    assert store.retry_after_s(workers, fallback_s=10.0) == expected  # no live worker counts as one
    assert JobStore(DurationsOnly([]), ServiceConfig()).retry_after_s(4, fallback_s=10.0) == 3
    assert JobStore(DurationsOnly([5000.0]), ServiceConfig()).retry_after_s(2, fallback_s=10.0) == 600
