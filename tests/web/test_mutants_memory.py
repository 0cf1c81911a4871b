"""Behaviours of the in-process job runner (app/jobs/memory.py) that planted slips found unpinned: the newest result
is kept whatever its size, anonymous clients are not capped, and a closed runner refuses work."""

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
