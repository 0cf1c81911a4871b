"""The Redis backend on a real redis-server: several web processes on one queue, cancelling across them, the bound
under concurrent submissions, workers that die (retried or failed), results' time-to-live, Redis going away.

Web processes are RedisBackend instances, workers are worker threads with a stand-in for the engine; the tests with
real processes (gunicorn, workers killed with SIGKILL) are in test_scale.py.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from PIL import Image

from app.config import Settings, load_settings
from app.errors import Cancelled, JobStateError, QueueFullError, UnknownJobError
from app.jobs import Box, JobOutput, JobRequest, JobResult, JobState, service_engine_config
from app.jobs.redis_backend import RedisBackend
from app.jobs.redis_worker import WorkerThread
from app.jobs.worker import parse_args
from app.web import close_app, create_app
from websupport import TINY, RedisServer, jpeg_bytes, redis_overrides, upload, wait_for


class Blocking:
    """Stands in for the engine: reports a step, blocks until released (or stopped), then returns an output whose
    bytes name this stand-in."""

    def __init__(self, tag: str = "w", png_bytes: int = 100):
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.tag = tag.encode()
        self.png_bytes = png_bytes
        self.runs = 0

    def __call__(self, request, config, tracker, should_stop) -> JobOutput:
        self.runs += 1
        tracker.on_phase(1, "training")
        tracker.on_step(1, 3, 0.5, 1e-3)
        self.started.release()
        while not self.release.wait(0.01):
            if should_stop():
                raise Cancelled("stopped")
        crop = request.crop
        result = JobResult(width=crop.width * 8, height=crop.height * 8, scale=8, crop=crop,
                           photo_size=request.photo_size, learned_from_size=request.train_image.size,
                           seconds=0.1, iterations=3, iterations_per_step=(3,), device="fake", budget_exhausted=False)
        sr = (self.tag * self.png_bytes)[:self.png_bytes]
        return JobOutput(result, sr, b"b" * self.png_bytes)


def released(tag: str = "w", png_bytes: int = 100) -> Blocking:
    work = Blocking(tag, png_bytes)
    work.release.set()
    return work


def request() -> JobRequest:
    return JobRequest.from_photo(Image.new("RGB", (40, 30), "teal"), Box(2, 3, 16, 16), train_max_side=32, seed=7)


class Queue:
    """Web processes (RedisBackend) and workers (threads) sharing one queue."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.backends: list[RedisBackend] = []
        self.workers: list[WorkerThread] = []

    def backend(self) -> RedisBackend:
        backend = RedisBackend(service_engine_config(self.settings), self.settings.service)
        self.backends.append(backend)
        return backend

    def worker(self, work) -> WorkerThread:
        worker = WorkerThread(self.settings, work=work)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for worker in self.workers:
            assert worker.join(10), "a worker thread did not stop"
        for backend in self.backends:
            backend.close()


@pytest.fixture
def make_queue(redis_server):
    queues: list[Queue] = []

    def build(**overrides) -> Queue:
        queue = Queue(load_settings(overrides={**TINY, **redis_overrides(redis_server), **overrides}))
        queues.append(queue)
        return queue

    yield build
    for queue in queues:
        queue.close()


def freeze(worker: WorkerThread) -> None:
    """The worker stops reporting, as a hung or killed process would; its job thread carries on unknowing."""
    worker.worker._monitor.stop()


def test_the_bound_counts_queued_and_running_jobs_of_every_web_process(make_queue):
    queue = make_queue(queue_size=3)
    first, second = queue.backend(), queue.backend()
    work = Blocking()
    queue.worker(work)
    running = first.submit(request())
    assert work.started.acquire(timeout=5)
    waiting = [second.submit(request()), first.submit(request())]
    with pytest.raises(QueueFullError) as caught:
        second.submit(request())
    assert caught.value.retry_after_s >= 1
    assert second.status(running.id).state is JobState.RUNNING and second.status(running.id).queue_position == 0
    assert [first.status(job.id).queue_position for job in waiting] == [1, 2]
    work.release.set()
    for job in (running, *waiting):
        assert second.wait(job.id, 10).state is JobState.DONE
    assert first.output(running.id).sr_png == b"w" * 100
    assert first.submit(request()).state is JobState.QUEUED  # places free again


def test_concurrent_submissions_never_pass_the_bound(make_queue):
    queue = make_queue(queue_size=5)
    backends = [queue.backend() for _ in range(4)]
    barrier = threading.Barrier(24)
    accepted, refused = [], []

    def submit(i: int) -> None:
        barrier.wait(5)
        try:
            accepted.append(backends[i % 4].submit(request()))
        except QueueFullError:
            refused.append(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(accepted) == 5 and len(refused) == 19
    assert sorted(backends[0].status(job.id).queue_position for job in accepted) == [1, 2, 3, 4, 5]
    assert backends[0].health().queued == 5


def test_cancel_from_another_web_process(make_queue):
    queue = make_queue(queue_size=4)
    first, second = queue.backend(), queue.backend()
    work = Blocking()
    queue.worker(work)
    running, waiting = first.submit(request()), first.submit(request())
    assert work.started.acquire(timeout=5)
    queued = second.cancel(waiting.id)
    assert queued.state is JobState.CANCELLED and queued.finished_at is not None
    asked = second.cancel(running.id)
    assert asked.state is JobState.RUNNING and asked.cancel_requested
    assert first.wait(running.id, 10).state is JobState.CANCELLED  # stopped at the worker's next report
    assert second.cancel(running.id).state is JobState.CANCELLED  # twice is harmless
    with pytest.raises(JobStateError):
        first.output(running.id)
    work.release.set()
    done = first.wait(first.submit(request()).id, 10)
    assert done.state is JobState.DONE and work.runs == 2  # the cancelled queued job never ran
    with pytest.raises(JobStateError):
        second.cancel(done.id)
    with pytest.raises(UnknownJobError):
        second.cancel("nope")


def test_a_worker_that_stops_reporting_loses_its_job_within_the_bound(make_queue):
    lost_after = 2.0
    queue = make_queue(queue_size=1, worker_lost_after_s=lost_after, job_retries=0)
    backend = queue.backend()
    work = Blocking()
    worker = queue.worker(work)
    job = backend.submit(request())
    assert work.started.acquire(timeout=5)
    wait_for(lambda: backend.status(job.id).progress.iteration == 3, timeout_s=5)
    freeze(worker)
    frozen = time.monotonic()
    failed = wait_for(lambda: (s := backend.status(job.id)).state.finished and s, timeout_s=lost_after + 5)
    assert time.monotonic() - frozen < lost_after + 1.0
    assert failed.state is JobState.FAILED and failed.error.code == "worker_lost"
    assert "worker running this job stopped" in failed.error.message
    backend.submit(request())  # its place in the queue is free
    # The worker was only hung: when its job ends it may no longer record anything.
    work.release.set()
    wait_for(lambda: not worker.runner.busy, timeout_s=5)
    assert backend.status(job.id).state is JobState.FAILED


def test_a_lost_job_is_retried_per_job_retries_and_the_lost_worker_cannot_finish_it(make_queue):
    queue = make_queue(worker_lost_after_s=2.0, job_retries=1)
    backend = queue.backend()
    hung = Blocking("first")
    first = queue.worker(hung)
    job = backend.submit(request())
    assert hung.started.acquire(timeout=5)
    freeze(first)
    queue.worker(released("second"))
    done = backend.wait(job.id, 10)
    assert done.state is JobState.DONE and backend.output(job.id).sr_png.startswith(b"second")
    hung.release.set()  # the first worker finishes too, too late to count
    wait_for(lambda: not first.runner.busy, timeout_s=5)
    assert backend.output(job.id).sr_png.startswith(b"second")
    assert backend.status(job.id).state is JobState.DONE


def test_a_stale_worker_finishing_while_its_retry_runs_changes_nothing(make_queue):
    # The lost worker's late finish comes while the second attempt is still running: it must not be taken as the
    # job's outcome (the finish script checks the attempt, not only the state).
    queue = make_queue(worker_lost_after_s=2.0, job_retries=1)
    backend = queue.backend()
    hung, retry = Blocking("first"), Blocking("second")
    first = queue.worker(hung)
    job = backend.submit(request())
    assert hung.started.acquire(timeout=5)
    freeze(first)
    queue.worker(retry)
    assert retry.started.acquire(timeout=10)  # attempt 2 is running
    hung.release.set()
    wait_for(lambda: not first.runner.busy, timeout_s=5)
    status = backend.status(job.id)
    assert status.state is JobState.RUNNING and status.result is None
    with pytest.raises(JobStateError):
        backend.output(job.id)
    retry.release.set()
    assert backend.wait(job.id, 10).state is JobState.DONE
    assert backend.output(job.id).sr_png.startswith(b"second")


def test_a_job_taken_by_a_worker_that_died_before_starting_it_is_lost(make_queue):
    lost_after = 2.0
    queue = make_queue(worker_lost_after_s=lost_after)
    backend = queue.backend()
    job = backend.submit(request())
    rq_queue = backend.store.queue
    # A worker takes the job off the queue (as RQ does) and dies before it starts it.
    assert backend.store.connection.lmove(rq_queue.key, rq_queue.intermediate_queue_key) is not None
    assert backend.health().queued == 1  # the sweep notes that it was taken

    def lost():
        backend.health()  # sweeps, as each worker does every second
        status = backend.status(job.id)
        return status.state.finished and status

    lost = wait_for(lost, timeout_s=2 * lost_after + 3, interval_s=0.2)
    assert lost.state is JobState.FAILED and "stopped before starting it" in lost.error.message


def test_a_job_over_its_time_is_stopped_and_failed(make_queue):
    queue = make_queue(job_timeout_s=1.0)
    backend = queue.backend()
    queue.worker(Blocking())
    failed = backend.wait(backend.submit(request()).id, 10)
    assert failed.state is JobState.FAILED and failed.error.code == "timeout" and "1 s" in failed.error.message


def test_results_expire_after_their_time_to_live(make_queue):
    queue = make_queue(result_ttl_s=1.0)
    backend = queue.backend()
    queue.worker(released())
    job = backend.wait(backend.submit(request()).id, 10)
    assert job.state is JobState.DONE
    assert backend.store.connection.pttl(backend.store.key("out", job.id)) > 0
    wait_for(lambda: not backend.store.connection.exists(backend.store.key("job", job.id)), timeout_s=3)
    with pytest.raises(UnknownJobError):
        backend.status(job.id)
    with pytest.raises(UnknownJobError):
        backend.output(job.id)


def test_a_job_finished_before_its_status_is_read_is_logged_as_such(make_queue, caplog, monkeypatch):
    """A free worker can finish a job between its enqueueing and the status read that submit logs: the log line
    then has no queue position to print (it raised a TypeError inside logging, failing the submitter's test)."""
    queue = make_queue()
    backend = queue.backend()
    queue.worker(released())
    done = backend.wait(backend.submit(request()).id, 10)
    assert done.state is JobState.DONE and done.queue_position is None
    monkeypatch.setattr(backend.store, "submit", lambda *args: done)
    with caplog.at_level(logging.INFO, logger="app.jobs.redis_backend"):
        assert backend.submit(request()) is done
    assert f"job {done.id} queued: photo 40x30, crop 16x16 at (2, 3), already done" in caplog.messages


def test_kept_results_are_capped_in_number_and_bytes(make_queue):
    queue = make_queue(max_results=2)
    backend = queue.backend()
    queue.worker(released())
    ids = [backend.wait(backend.submit(request()).id, 10).id for _ in range(3)]
    with pytest.raises(UnknownJobError):
        backend.status(ids[0])
    assert [backend.status(i).state for i in ids[1:]] == [JobState.DONE, JobState.DONE]

    queue = make_queue(results_max_MB=1.0)
    backend = queue.backend()
    queue.worker(released(png_bytes=300_000))  # 0.6 MB a job
    ids = [backend.wait(backend.submit(request()).id, 10).id for _ in range(3)]
    with pytest.raises(UnknownJobError):
        backend.output(ids[1])
    assert backend.output(ids[2]).nbytes == 600_000


def test_health_counts_the_live_workers_and_names_their_device(make_queue):
    queue = make_queue()
    backend = queue.backend()
    health = backend.health()
    assert not health.alive and health.workers == 0 and "no worker" in health.detail
    workers = [queue.worker(released()), queue.worker(released())]
    health = backend.health()
    assert health.alive and health.workers == 2 and health.device.startswith("cpu")
    workers[0].stop()
    assert workers[0].join(10)
    assert backend.health().workers == 1
    backend.close()
    assert not backend.health().alive and backend.health().detail == "closed"
    with pytest.raises(QueueFullError):
        backend.submit(request())


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test's own, to stop and start."""
    server = RedisServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


def test_redis_going_away_is_503_and_the_service_recovers_when_it_is_back(own_redis):
    settings = load_settings(overrides={**TINY, **redis_overrides(own_redis)})
    app = create_app(settings)
    worker = WorkerThread(settings)
    client = app.test_client()
    try:
        done = upload(client, data=jpeg_bytes(100, 80), crop=48)
        assert done.status_code == 200
        own_redis.stop()
        started = time.monotonic()
        for response in (upload(client, "/api/jobs", jpeg_bytes(100, 80)), upload(client, data=jpeg_bytes(100, 80)),
                         client.get(f"/api/jobs/{done.get_json()['id']}"), client.delete("/api/jobs/x"),
                         client.get("/readyz")):
            assert response.status_code == 503, response.get_data(as_text=True)
            body = response.get_json()
            assert body["error"] == "unavailable" and "cannot be reached" in body["message"]
            assert "redis://" not in body["message"]
        assert int(response.headers["Retry-After"]) >= 1
        assert time.monotonic() - started < 10  # answered quickly, not after long timeouts
        assert client.get("/healthz").status_code == 200
        own_redis.start()
        # Back, empty: the worker registers again and jobs run.
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout_s=15, interval_s=0.2)
        response = upload(client, data=jpeg_bytes(100, 80), crop=48)
        assert response.status_code == 200 and response.get_json()["width"] == 384
    finally:
        close_app(app)
        worker.stop()
        assert worker.join(10)


def test_worker_command_line():
    args = parse_args([])
    assert (args.config, args.redis_url, args.queue, args.name, args.burst) == (None, None, None, None, False)
    args = parse_args(["--redis-url", "redis://q:6379/1", "--queue", "photos", "--name", "gpu0", "--burst"])
    assert (args.redis_url, args.queue, args.name, args.burst) == ("redis://q:6379/1", "photos", "gpu0", True)


@pytest.mark.parametrize("argv, host", [([], "127.0.0.1"), (["--metrics-host", "10.1.2.3"], "10.1.2.3")])
def test_the_workers_metrics_listen_where_the_operator_says(monkeypatch, argv, host):
    """The worker's metrics have no key: they listen on this machine only unless --metrics-host says otherwise."""
    import prometheus_client

    import app.jobs.worker as worker

    listening = []
    monkeypatch.setattr(prometheus_client, "start_http_server", lambda port, addr="0.0.0.0": listening.append(
        (addr, port)))
    monkeypatch.setattr(worker, "serve", lambda settings, name=None, burst=False: None)
    monkeypatch.setattr(worker, "configure_logging", lambda level: None)
    assert worker.main(["--metrics-port", "9101", *argv]) == 0
    assert listening == [(host, 9101)]
