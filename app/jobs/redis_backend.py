"""The Redis backend's web side: jobs go on an RQ queue that workers on any machine share (app.jobs.worker).

Any number of web processes may use one Redis: everything a job is lives there (app.jobs.redis_store), nothing
in the process. When Redis cannot be reached every call raises BackendUnavailableError (503), and the next call
after it is back works again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Iterator

import redis

from app.config import ServiceConfig, check_paths
from app.engine import EngineConfig
from app.errors import BackendUnavailableError, QueueFullError, TooManyJobsError
from app.jobs.backend import Health, JobBackend
from app.jobs.model import JobOutput, JobRequest, JobState, JobStatus
from app.jobs.redis_store import JobStore, connect, unreachable_errors

log = logging.getLogger(__name__)

# wait() polls the job's state: often at first (short jobs), then less often.
_POLL_FIRST_S = 0.05
_POLL_MOST_S = 0.25
# What a client is told to wait when Redis is away.
UNAVAILABLE_RETRY_AFTER_S = 5


class RedisBackend(JobBackend):
    """Submits to, reads from and cancels in the shared queue; runs no jobs itself."""

    def __init__(self, engine: EngineConfig, service: ServiceConfig, connection: redis.Redis | None = None):
        # The files the workers will read must at least be there (workers check the rest when they start).
        check_paths(engine)
        self._engine = engine
        self._service = service
        self._store = JobStore(connection if connection is not None else connect(service.redis_url), service)
        self._closed = False

    @property
    def store(self) -> JobStore:
        return self._store

    def submit(self, request: JobRequest) -> JobStatus:
        if self._closed:
            raise QueueFullError("the job runner is shutting down")
        with self._reachable():
            try:
                status = self._store.submit(request, request.steps)
            except (QueueFullError, TooManyJobsError) as error:
                workers = len(self._store.worker_devices())
                error.retry_after_s = self._store.retry_after_s(workers, self._engine.time_budget_s or 60.0)
                raise
        photo, crop = request.photo_size, request.crop
        # A free worker may have taken the job, or finished it, before its status was read: then no position.
        where = (f"position {status.queue_position}" if status.state is JobState.QUEUED
                 else f"already {status.state.value}")
        log.info("job %s queued: photo %dx%d, crop %dx%d at (%d, %d), %s", status.id, *photo,
                 crop.width, crop.height, crop.x, crop.y, where)
        return status

    def status(self, job_id: str) -> JobStatus:
        with self._reachable():
            return self._store.status(job_id)

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        deadline = time.monotonic() + timeout_s
        pause = _POLL_FIRST_S
        while True:
            status = self.status(job_id)
            left = deadline - time.monotonic()
            if status.state.finished or left <= 0:
                return status
            time.sleep(min(pause, left))
            pause = min(pause * 1.5, _POLL_MOST_S)

    def output(self, job_id: str) -> JobOutput:
        with self._reachable():
            return self._store.output(job_id)

    def cancel(self, job_id: str) -> JobStatus:
        with self._reachable():
            status = self._store.cancel(job_id)
        log.info("job %s %s", job_id, "cancelled while queued" if status.state.finished else "asked to stop")
        return status

    def health(self) -> Health:
        if self._closed:
            return Health(alive=False, device="", workers=0, queued=0, running=0, detail="closed")
        with self._reachable():
            counts = self._store.sweep()
            devices = self._store.worker_devices()
        if not devices:
            return Health(alive=False, device="", workers=0, queued=counts.queued, running=counts.running,
                          detail=f"no worker has reported in the last {self._service.worker_lost_after_s:g} s")
        return Health(alive=True, device=", ".join(sorted(set(devices))), workers=len(devices),
                      queued=counts.queued, running=counts.running)

    def close(self) -> None:
        """Stop taking jobs in this process; the queue and its workers carry on for the other web processes."""
        self._closed = True
        self._store.connection.close()

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        try:
            yield
        except unreachable_errors() as exc:
            log.warning("Redis unreachable: %s", exc)
            error = BackendUnavailableError("the job queue cannot be reached right now; please try again shortly")
            error.retry_after_s = UNAVAILABLE_RETRY_AFTER_S
            raise error from None
