"""The in-process job runner: a bounded queue, worker threads, progress, cancelling, and results kept in memory."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from app.config import ServiceConfig
from app.engine import EngineConfig, preflight, warm_up
from app.errors import JobStateError, QueueFullError, TooManyJobsError, UnknownJobError
from app.jobs.backend import Health, JobBackend
from app.jobs.model import JobError, JobOutput, JobRequest, JobState, JobStatus, Progress
from app.jobs.progress import ProgressTracker, final_progress
from app.jobs.work import Work, log_outcome, outcome_of, run_zssr
from app.logs import request_id

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    id: str
    request: JobRequest
    created_at: float = field(default_factory=time.time)
    state: JobState = JobState.QUEUED
    tracker: ProgressTracker | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    started_at: float | None = None
    finished_at: float | None = None
    finished_mono: float = 0.0
    final_progress: Progress | None = None
    output: JobOutput | None = None
    error: JobError | None = None


class MemoryBackend(JobBackend):
    """Jobs live in this process: `workers_per_device` threads take them from a FIFO queue, one job each at a time.

    At most `queue_size` jobs are queued or running at once. Finished jobs are kept for `result_ttl_s`, at most
    `max_results` of them and `results_max_MB` of images, the oldest dropped first.
    """

    def __init__(self, engine: EngineConfig, service: ServiceConfig, work: Work = run_zssr,
                 clock: Callable[[], float] = time.monotonic):
        self._engine = engine
        self._service = service
        self._work = work
        self._clock = clock
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._waiting: collections.deque[_Job] = collections.deque()
        self._finished: collections.OrderedDict[str, _Job] = collections.OrderedDict()  # in order of finishing
        self._running = 0
        self._durations: collections.deque[float] = collections.deque(maxlen=16)
        self._closed = False
        # A config that no job could run with stops the service here, naming the key (ConfigError).
        self._device = preflight(engine)
        self._enlarge_s_per_pixel: float | None = None  # of the last step, measured on the latest job
        self._threads = [threading.Thread(target=self._worker, name=f"zssr-worker-{i}", daemon=True)
                         for i in range(service.workers_per_device)]
        for thread in self._threads:
            thread.start()

    def submit(self, request: JobRequest) -> JobStatus:
        with self._cond:
            self._purge()
            if self._closed:
                raise QueueFullError("the job runner is shutting down")
            if len(self._waiting) + self._running >= self._service.queue_size:
                error = QueueFullError(f"the queue is full ({self._service.queue_size} jobs); try again shortly")
                error.retry_after_s = self._retry_after_s()
                raise error
            cap = self._service.max_jobs_per_client
            if cap and request.client != "-" and self._live_jobs_of(request.client) >= cap:
                error = TooManyJobsError.at(cap)
                error.retry_after_s = self._retry_after_s()
                raise error
            job = _Job(id=uuid.uuid4().hex, request=request)
            self._jobs[job.id] = job
            self._waiting.append(job)
            self._cond.notify()
            status = self._status(job)
        photo, crop = request.photo_size, request.crop
        log.info("job %s queued: photo %dx%d, crop %dx%d at (%d, %d), position %d", job.id, *photo,
                 crop.width, crop.height, crop.x, crop.y, status.queue_position)
        return status

    def status(self, job_id: str) -> JobStatus:
        with self._cond:
            return self._status(self._get(job_id))

    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        with self._cond:
            job = self._get(job_id)
        job.finished.wait(timeout_s)
        with self._cond:
            return self._status(job)

    def output(self, job_id: str) -> JobOutput:
        with self._cond:
            job = self._get(job_id)
            if job.output is None:
                raise JobStateError(f"job {job_id} is {job.state.value}; it has no result")
            return job.output

    def cancel(self, job_id: str) -> JobStatus:
        with self._cond:
            job = self._get(job_id)
            if job.state is JobState.QUEUED:
                self._waiting.remove(job)
                self._finish(job, JobState.CANCELLED)
                log.info("job %s cancelled while queued", job.id)
            elif job.state is JobState.RUNNING:
                job.stop.set()
                log.info("job %s asked to stop", job.id)
            elif job.state in (JobState.DONE, JobState.FAILED):
                raise JobStateError(f"job {job_id} is already {job.state.value}; there is nothing to cancel")
            return self._status(job)

    def _live_jobs_of(self, client: str) -> int:
        """Jobs of `client` queued or running; the caller holds the lock."""
        return sum(1 for job in self._jobs.values() if job.request.client == client and not job.state.finished)

    def health(self) -> Health:
        with self._cond:
            dead = [t.name for t in self._threads if not t.is_alive()]
            alive = not self._closed and not dead
            detail = "closed" if self._closed else (f"dead workers: {', '.join(dead)}" if dead else "")
            return Health(alive=alive, device=self._device, workers=len(self._threads),
                          queued=len(self._waiting), running=self._running, detail=detail)

    def close(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._closed = True
            while self._waiting:
                self._finish(self._waiting.popleft(), JobState.CANCELLED)
            for job in self._jobs.values():
                job.stop.set()
            self._cond.notify_all()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout_s)

    def _worker(self) -> None:
        warm_up()
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.state, job.started_at = JobState.RUNNING, time.time()
                hint = None
                if self._enlarge_s_per_pixel is not None:
                    pixels = job.request.crop.width * job.request.crop.height * job.request.scale ** 2
                    hint = self._enlarge_s_per_pixel * pixels
                job.tracker = ProgressTracker(job.request.steps, self._engine.num_epochs,
                                              self._engine.time_budget_s, self._engine.scale_factor, self._clock,
                                              last_enlarge_hint_s=hint)
                self._running += 1
            self._run(job)

    def _run(self, job: _Job) -> None:
        token = request_id.set(job.request.request_id)
        started = self._clock()
        state, output, error = JobState.FAILED, None, None
        try:
            output = self._work(job.request, self._engine, job.tracker, job.stop.is_set)
            state = JobState.DONE
            self._learn_enlarge_time(job.tracker, output)
        except Exception as exc:
            state, error = outcome_of(exc)
            if error is not None and error.code == "internal":
                log.exception("job %s failed", job.id)
        finally:
            seconds = self._clock() - started
            with self._cond:
                self._running -= 1
                self._durations.append(seconds)
                job.output, job.error = output, error
                self._finish(job, state)
            log_outcome(log, job.id, job.state, job.output, seconds, job.started_at - job.created_at)
            request_id.reset(token)

    def _learn_enlarge_time(self, tracker: ProgressTracker, output: JobOutput) -> None:
        """Remember the last enlargement's time per output pixel: the next job's ETA starts from it."""
        seconds = tracker.last_enlarge_s()
        if seconds is not None:
            with self._cond:
                self._enlarge_s_per_pixel = seconds / (output.result.width * output.result.height)

    def _finish(self, job: _Job, state: JobState) -> None:
        """Mark a job finished; the caller holds the lock."""
        job.state, job.finished_at, job.finished_mono = state, time.time(), self._clock()
        if job.tracker is not None:
            job.final_progress = final_progress(job.tracker, state is JobState.DONE)
        self._finished[job.id] = job
        job.finished.set()
        self._purge()

    def _purge(self) -> None:
        """Drop finished jobs past their time-to-live or beyond the caps, oldest first; the caller holds the lock."""
        now = self._clock()
        cap_bytes = self._service.results_max_MB * 1_000_000
        kept_bytes = sum(j.output.nbytes for j in self._finished.values() if j.output is not None)
        while self._finished:
            oldest = next(iter(self._finished.values()))
            expired = now - oldest.finished_mono > self._service.result_ttl_s
            too_many = len(self._finished) > self._service.max_results
            too_big = kept_bytes > cap_bytes and len(self._finished) > 1
            if not (expired or too_many or too_big):
                break
            del self._finished[oldest.id]
            del self._jobs[oldest.id]
            if oldest.output is not None:
                kept_bytes -= oldest.output.nbytes

    def _get(self, job_id: str) -> _Job:
        self._purge()
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJobError(f"no job {job_id!r} (unknown, or its result has expired)")
        return job

    def _status(self, job: _Job) -> JobStatus:
        if job.state is JobState.QUEUED:
            position, progress = self._waiting.index(job) + 1, Progress(steps=job.request.steps)
        elif job.state is JobState.RUNNING:
            position, progress = 0, job.tracker.snapshot()
        else:
            position, progress = None, job.final_progress or Progress(steps=job.request.steps)
        return JobStatus(id=job.id, state=job.state, created_at=job.created_at, progress=progress,
                         queue_position=position, crop=job.request.crop, photo_size=job.request.photo_size,
                         cancel_requested=job.stop.is_set(), started_at=job.started_at,
                         finished_at=job.finished_at, result=job.output.result if job.output else None,
                         error=job.error)

    def _retry_after_s(self) -> int:
        """A guess at when a place frees up: the mean recent job time over the number of workers."""
        mean = (sum(self._durations) / len(self._durations)) if self._durations else self._engine.time_budget_s or 60
        return max(1, min(600, math.ceil(mean / len(self._threads))))
