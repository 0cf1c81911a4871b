"""Behaviours of the in-process job runner (app/jobs/memory.py) that planted slips and mutants found unpinned: the
newest result kept whatever its size, byte and time limits at their bounds, anonymous clients uncapped, a job's
status, the log of each queued job, and what health says of dead workers and a closed runner."""

from __future__ import annotations

import logging

import pytest

from app.errors import QueueFullError, TooManyJobsError, UnknownJobError
from app.jobs import JobState
from test_workers import make_backend, request  # noqa: F401  (the fixture)


def test_a_result_larger_than_the_whole_cap_is_kept_until_a_newer_one_finishes(make_backend):
    backend, work, _ = make_backend(1, results_max_MB=0.0005)  # 500 bytes; a result holds 200
    work.png_bytes = 300  # 600 bytes: over the cap on its own
    work.release.set()
    first = backend.wait(backend.submit(request()).id, 30)
    assert first.state is JobState.DONE
    assert backend.output(first.id).nbytes == 600  # kept: its owner can still fetch it
    second = backend.wait(backend.submit(request()).id, 30)
    assert backend.output(second.id).nbytes == 600
    with pytest.raises(UnknownJobError):
        backend.output(first.id)


def test_the_per_client_cap_counts_named_clients_only(make_backend):
    backend, work, _ = make_backend(1, queue_size=8, max_jobs_per_client=1)
    for _ in range(3):
        backend.submit(request())  # "-": a client nobody could name (no address, no key) is not capped
    backend.submit(request("a"))
    with pytest.raises(TooManyJobsError):
        backend.submit(request("a"))


def test_without_a_cap_a_client_may_fill_the_queue(make_backend):
    backend, work, _ = make_backend(1, queue_size=4, max_jobs_per_client=0)
    for _ in range(4):
        backend.submit(request("a"))
    with pytest.raises(QueueFullError):
        backend.submit(request("a"))


def test_a_closed_runner_refuses_new_jobs_saying_why(make_backend):
    backend, _, _ = make_backend(1)
    backend.close()
    with pytest.raises(QueueFullError, match="^the job runner is shutting down$"):
        backend.submit(request())
    assert backend.health().detail == "closed"


def test_a_full_queue_says_how_many_jobs_it_holds(make_backend):
    backend, work, _ = make_backend(1, queue_size=2)
    backend.submit(request())
    backend.submit(request())
    with pytest.raises(QueueFullError, match=r"^the queue is full \(2 jobs\); try again shortly$"):
        backend.submit(request())


def test_a_cap_of_two_lets_a_client_have_two_jobs(make_backend):
    backend, work, _ = make_backend(1, queue_size=8, max_jobs_per_client=2)
    backend.submit(request("a"))
    backend.submit(request("a"))
    with pytest.raises(TooManyJobsError, match="2 jobs"):
        backend.submit(request("a"))


def test_each_queued_job_is_logged_with_its_photo_crop_and_place(make_backend, caplog):
    backend, work, _ = make_backend(1, queue_size=4)
    with caplog.at_level(logging.INFO, logger="app.jobs.memory"):
        first = backend.submit(request())
        second = backend.submit(request())
    lines = [r.getMessage() for r in caplog.records if "queued" in r.getMessage()]
    assert lines[0] == f"job {first.id} queued: photo 40x30, crop 16x16 at (0, 0), position {first.queue_position}"
    assert lines[1] == f"job {second.id} queued: photo 40x30, crop 16x16 at (0, 0), position {second.queue_position}"
    assert second.queue_position >= 1


def test_a_jobs_status_carries_its_times_steps_and_result(make_backend):
    backend, work, _ = make_backend(1, queue_size=4)
    running = backend.submit(request())
    queued = backend.submit(request())
    assert work.started.acquire(timeout=30)
    waiting = backend.status(queued.id)
    assert waiting.progress.steps == 3 and waiting.started_at is None and waiting.finished_at is None
    assert isinstance(waiting.created_at, float) and waiting.result is None
    assert backend.cancel(queued.id).progress.steps == 3  # cancelled before it ran: no tracker, still its steps
    assert backend.status(running.id).started_at >= backend.status(running.id).created_at
    work.release.set()
    done = backend.wait(running.id, 30)
    assert done.created_at <= done.started_at <= done.finished_at
    assert done.result == backend.output(running.id).result and done.result is not None


def test_a_result_is_kept_for_exactly_its_time_to_live(make_backend):
    backend, work, clock = make_backend(1, result_ttl_s=60.0)
    work.release.set()
    job = backend.wait(backend.submit(request()).id, 30)
    clock.now += 60.0
    assert backend.status(job.id).state is JobState.DONE
    clock.now += 0.001
    with pytest.raises(UnknownJobError):
        backend.status(job.id)


def test_results_exactly_filling_the_byte_cap_are_all_kept(make_backend):
    backend, work, _ = make_backend(1, results_max_MB=0.0012)  # 1200 bytes; each result holds 600
    work.png_bytes = 300
    work.release.set()
    ids = [backend.wait(backend.submit(request()).id, 30).id for _ in range(2)]
    assert [backend.output(i).nbytes for i in ids] == [600, 600]


@pytest.mark.parametrize("sizes, kept", [((300, 300, 300), 2), ((300, 300, 600), 1)])
def test_dropping_the_oldest_results_frees_their_bytes(make_backend, sizes, kept):
    backend, work, _ = make_backend(1, results_max_MB=0.0013)  # 1300 bytes
    work.release.set()
    ids = []
    for size in sizes:
        work.png_bytes = size
        ids.append(backend.wait(backend.submit(request()).id, 30).id)
    for i in ids[:-kept]:
        with pytest.raises(UnknownJobError):
            backend.output(i)
    assert [backend.output(i).nbytes for i in ids[-kept:]] == [2 * s for s in sizes[-kept:]]


class DyingWork:
    """Stands in for an engine whose job takes its worker thread down (not an Exception: nothing catches it)."""

    def __call__(self, request, config, tracker, should_stop):
        raise SystemExit


# The dying threads are the point here: pytest reports each as an unhandled thread exception.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_health_names_the_dead_workers_and_a_closed_runner():
    from app.config import ServiceConfig
    from app.jobs import MemoryBackend
    from test_workers import ENGINE

    backend = MemoryBackend(ENGINE, ServiceConfig(workers_per_device=2, queue_size=4), work=DyingWork())
    try:
        health = backend.health()
        assert health.alive and health.detail == "" and health.workers == 2
        jobs = [backend.submit(request()) for _ in range(2)]
        for job in jobs:
            backend.wait(job.id, 30)
        for thread in backend._threads:
            thread.join(30)
        health = backend.health()
        assert not health.alive
        assert health.detail == "dead workers: zssr-worker-0, zssr-worker-1"
    finally:
        backend.close()
    assert backend.health().detail == "closed" and not backend.health().alive
