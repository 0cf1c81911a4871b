"""The Redis backend's worker side: an RQ worker that runs enlargement jobs one at a time in its own process.

It never forks: RQ's SimpleWorker runs each job in the worker's thread, so torch is imported and the device
(the CUDA context) set up once, when the worker starts, and lives as long as it (a fork after CUDA initialisation
breaks). A monitor thread reports four times a second: the job's progress and heartbeat, and whether a cancel was
asked for; once a second, the worker's own heartbeat (its entry in RQ's worker registry expires
worker_lost_after_s after the last one) and a sweep for jobs lost by workers that died.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import redis
from rq import SimpleWorker, worker_registration
from rq.exceptions import StopRequested
from rq.timeouts import JobTimeoutException, TimerDeathPenalty

from app.config import Settings
from app.engine import EngineConfig, preflight, warm_up
from app.jobs.backend import service_engine_config
from app.jobs.model import JobError, JobOutput, JobRequest, JobState, Progress
from app.jobs.progress import ProgressTracker, final_progress
from app.jobs.redis_store import (DEVICE_FIELD, JOB_FUNCTION, PRESENCE_EVERY_S, REPORT_EVERY_S, JobStore, connect,
                                  unreachable_errors)
from app.jobs.work import Work, log_outcome, outcome_of, run_zssr
from app.logs import request_id

log = logging.getLogger(__name__)

# The runner of the worker executing a job in this thread (perform() is called by RQ, by name).
_local = threading.local()
# Seconds between tries to record a finished job while Redis is away.
_FINISH_RETRY_S = 0.5
_START_TIMEOUT_S = 10.0


def perform(job_id: str, attempt: int) -> None:
    """The RQ job function: run the job in the ZSSRWorker that took it."""
    runner = getattr(_local, "runner", None)
    if runner is None:
        raise RuntimeError(f"{JOB_FUNCTION} runs only in a ZSSR worker (python -m app.jobs.worker)")
    runner.run(job_id, attempt)


@dataclass(eq=False)
class _Running:
    job_id: str
    attempt: int
    tracker: ProgressTracker
    started: float
    stop: threading.Event = field(default_factory=threading.Event)
    why: str | None = None  # why it was asked to stop: "cancel", "lost", "timeout" or "shutdown"

    def ask_to_stop(self, why: str) -> None:
        if self.why is None:
            self.why = why
        self.stop.set()


class JobRunner:
    """Runs the jobs its worker takes, in the worker's thread; `report()`, from the monitor thread, sends their
    progress and heartbeats and passes on a cancel."""

    def __init__(self, store: JobStore, engine: EngineConfig, work: Work = run_zssr,
                 clock: Callable[[], float] = time.monotonic):
        self.store = store
        self.engine = engine
        self.work = work
        self.clock = clock
        # Sets up the device now, once (the CUDA context lives as long as the worker), and checks that a job can
        # run at all: a config that none could run with stops the worker here, naming the key (ConfigError).
        self.device = preflight(engine)
        self.worker_name = "-"
        self._lock = threading.Lock()
        self._current: _Running | None = None
        self._shutting_down = False  # stop_current() was called: a job that starts later stops at once too
        self._enlarge_s_per_pixel: float | None = None  # of the last step, measured on the latest job

    def run(self, job_id: str, attempt: int) -> None:
        state, request = self.store.start(job_id, attempt, self.worker_name)
        if request is None:
            log.debug("job %s (attempt %d) not started: it is %s", job_id, attempt, state)
            return
        token = request_id.set(request.request_id)
        job = _Running(job_id, attempt, self._tracker(request), self.clock())
        waited = self.store.waited_s(job_id)
        with self._lock:
            self._current = job
            if self._shutting_down:
                # The worker was asked to stop after dequeuing this job but before it became the current one.
                job.ask_to_stop("shutdown")
        output, error = None, None
        try:
            output = self.work(request, self.engine, job.tracker, job.stop.is_set)
            state = JobState.DONE
            self._learn(job.tracker, output)
        except JobTimeoutException:
            state, error = JobState.FAILED, self._timed_out()
        except Exception as exc:
            state, error = outcome_of(exc)
            if job.why == "timeout":
                state, error = JobState.FAILED, self._timed_out()
            elif error is not None and error.code == "internal":
                log.exception("job %s failed", job_id)
        except BaseException:
            # A cold shutdown (SystemExit) or Ctrl-C: the job is lost now, not after worker_lost_after_s.
            with self._lock:
                self._current = None
            self._abandon(job)
            request_id.reset(token)
            raise
        seconds = self.clock() - job.started
        progress = final_progress(job.tracker, state is JobState.DONE)
        recorded = self._finish(job, state, progress, seconds, output, error)
        with self._lock:
            self._current = None
        if recorded:
            log_outcome(log, job_id, state, output, seconds, waited)
        else:
            log.warning("job %s given up after %.1f s: it was taken for lost (no heartbeat for %g s) or is gone",
                        job_id, seconds, self.store.service.worker_lost_after_s)
        request_id.reset(token)

    def report(self) -> None:
        """The running job's heartbeat and progress; stops it when it is cancelled, lost or over its time."""
        with self._lock:
            job = self._current
        if job is None:
            return
        if self.clock() - job.started > self.store.service.job_timeout_s:
            job.ask_to_stop("timeout")
        answer = self.store.beat(job.job_id, job.attempt, job.tracker.snapshot())
        if answer == "cancel":
            job.ask_to_stop("cancel")
        elif answer == "lost":
            job.ask_to_stop("lost")

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._current is not None

    def stop_current(self) -> None:
        """Stop the running job at its next iteration, and any job that starts after this at its first; they end
        cancelled."""
        with self._lock:
            self._shutting_down = True
            if self._current is not None:
                self._current.ask_to_stop("shutdown")

    def _tracker(self, request: JobRequest) -> ProgressTracker:
        hint = None
        if self._enlarge_s_per_pixel is not None:
            pixels = request.crop.width * request.crop.height * request.scale ** 2
            hint = self._enlarge_s_per_pixel * pixels
        return ProgressTracker(request.steps, self.engine.num_epochs, self.engine.time_budget_s,
                               self.engine.scale_factor, self.clock, last_enlarge_hint_s=hint)

    def _learn(self, tracker: ProgressTracker, output: JobOutput) -> None:
        """Remember the last enlargement's time per output pixel (the next job's ETA starts from it), and the
        device as the engine names it."""
        self.device = output.result.device
        seconds = tracker.last_enlarge_s()
        if seconds is not None:
            self._enlarge_s_per_pixel = seconds / (output.result.width * output.result.height)

    def _timed_out(self) -> JobError:
        return JobError("timeout", f"the job ran longer than {self.store.service.job_timeout_s:g} s and was "
                                   "stopped; please try a smaller region")

    def _finish(self, job: _Running, state: JobState, progress: Progress, seconds: float, output: JobOutput | None,
                error: JobError | None) -> bool:
        """Record the outcome, waiting for Redis a while if it is away (the job's place is kept meanwhile)."""
        deadline = self.clock() + max(10.0, 2 * self.store.service.worker_lost_after_s)
        while True:
            try:
                return self.store.finish(job.job_id, job.attempt, state, progress, seconds, output, error)
            except unreachable_errors() as exc:
                if self.clock() > deadline:
                    log.error("job %s: its outcome could not be recorded, Redis is unreachable (%s)",
                              job.job_id, exc)
                    return False
                time.sleep(_FINISH_RETRY_S)

    def _abandon(self, job: _Running) -> None:
        try:
            self.store.abandon(job.job_id, job.attempt)
            log.warning("job %s abandoned: the worker is stopping", job.job_id)
        except unreachable_errors():
            log.warning("job %s abandoned: the worker is stopping and Redis is unreachable", job.job_id)


class ZSSRWorker(SimpleWorker):
    """RQ's SimpleWorker (no fork per job) with the monitor thread, a device in its registry entry, a heartbeat
    that expires after worker_lost_after_s, and quick reconnects. `in_thread` runs it off the main thread (no
    signal handlers; stop it with `stop()`)."""

    # After a lost connection RQ waits 1 s, 2 s, ... between tries; at most this long.
    max_connection_wait_time = 2.0
    # The job's own log line says how it ended; RQ's about keeping its (empty) return value says nothing.
    log_result_lifespan = False

    def __init__(self, runner: JobRunner, connection: redis.Redis, *, name: str | None = None,
                 in_thread: bool = False):
        self.runner = runner
        self.in_thread = in_thread
        self.stopping = False
        self._ttl_s = math.ceil(runner.store.service.worker_lost_after_s)
        if in_thread:
            self.death_penalty_class = TimerDeathPenalty  # RQ's default one uses SIGALRM: main thread only
        super().__init__([runner.store.service.redis_queue], name=name, connection=connection,
                         worker_ttl=self._ttl_s, log_job_description=False)
        runner.worker_name = self.name
        self._monitor: _Monitor | None = None
        self.started = threading.Event()  # registered, and its monitor running

    @property
    def dequeue_timeout(self) -> float:
        """How long one wait for a job blocks: a stop asked for by `stop()` is seen after at most this."""
        return 0.25 if self.in_thread else 5

    def stop(self) -> None:
        """Stop after the job in hand, which is asked to stop now (it ends cancelled)."""
        self.stopping = True
        self._stop_requested = True
        self.runner.stop_current()

    def request_stop(self, signum, frame) -> None:
        """SIGTERM or SIGINT: finish the job in hand, then stop (twice: stop now; the job is lost, or retried)."""
        self.stopping = True
        super().request_stop(signum, frame)

    def execute_job(self, job, queue) -> None:
        _local.runner = self.runner
        try:
            super().execute_job(job, queue)
        finally:
            _local.runner = None

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        """RQ waits for a job for ever; this one returns None once a stop was asked for."""
        while not self._stop_requested:
            result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time=timeout)
            if result is not None:
                return result
        return None

    def heartbeat(self, timeout=None, pipeline=None) -> None:
        """RQ's heartbeat, expiring after worker_lost_after_s whatever RQ asks for (RQ keeps a busy worker's entry
        for the job's whole timeout): a dead worker drops out of the registry that soon."""
        super().heartbeat(self._ttl_s, pipeline)

    def register_birth(self) -> None:
        super().register_birth()
        self.presence()

    def bootstrap(self, *args, **kwargs) -> None:
        super().bootstrap(*args, **kwargs)
        log.info("worker %s takes jobs from queue %r on %s", self.name, self.runner.store.service.redis_queue,
                 self.runner.device)
        self._monitor = _Monitor(self)
        self._monitor.start()
        self.started.set()

    def teardown(self) -> None:
        if self._monitor is not None:
            self._monitor.stop()
        super().teardown()

    def presence(self) -> None:
        """The worker's heartbeat and device; registers it again if Redis lost its data (restarted empty)."""
        with self.connection.pipeline() as pipe:
            self.heartbeat(pipeline=pipe)
            pipe.hset(self.key, DEVICE_FIELD, self.runner.device)
            pipe.sismember(worker_registration.WORKERS_BY_QUEUE_KEY % self.runner.store.service.redis_queue,
                           self.key)
            registered = pipe.execute()[-1]
        if not registered:
            log.warning("worker %s: not in the worker registry (Redis lost its data?); registering again",
                        self.name)
            with self.connection.pipeline() as pipe:
                pipe.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, pipe)
                pipe.expire(self.key, self._ttl_s)
                pipe.execute()

    def _install_signal_handlers(self) -> None:
        if not self.in_thread:
            super()._install_signal_handlers()

    def subscribe(self) -> None:
        """RQ's command channel (rq shutdown, rq kill-horse): not for a worker in a thread."""
        if not self.in_thread:
            super().subscribe()

    def unsubscribe(self) -> None:
        if not self.in_thread:
            super().unsubscribe()

    def procline(self, message) -> None:
        if not self.in_thread:  # the process title is the whole process's
            super().procline(message)


class _Monitor(threading.Thread):
    """The worker's reports: the job's every REPORT_EVERY_S, the worker's and a sweep every PRESENCE_EVERY_S."""

    def __init__(self, worker: ZSSRWorker):
        super().__init__(name=f"zssr-monitor-{worker.name}", daemon=True)
        self._worker = worker
        self._stopped = threading.Event()
        self._unreachable = False

    def stop(self) -> None:
        self._stopped.set()
        if self is not threading.current_thread():
            self.join(5.0)

    def run(self) -> None:
        runner = self._worker.runner
        next_presence = 0.0
        while not self._stopped.wait(REPORT_EVERY_S):
            try:
                runner.report()
                if time.monotonic() >= next_presence:
                    next_presence = time.monotonic() + PRESENCE_EVERY_S
                    self._worker.presence()
                    runner.store.sweep_if_due(self._worker.name)
                if self._unreachable:
                    log.info("worker %s: Redis is reachable again", self._worker.name)
                self._unreachable = False
            except unreachable_errors() as exc:
                if not self._unreachable:
                    log.warning("worker %s: Redis unreachable (%s); still trying", self._worker.name, exc)
                self._unreachable = True
            except Exception:
                log.exception("worker %s: report failed", self._worker.name)


class WorkerThread:
    """A worker in a thread of this process, on its own connection: for tests, and for a single machine that
    wants no second process. `stop()` asks it to stop and returns at once; `join()` waits."""

    def __init__(self, settings: Settings, *, work: Work = run_zssr, name: str | None = None):
        store = JobStore(connect(settings.service.redis_url), settings.service)
        self.runner = JobRunner(store, service_engine_config(settings), work)
        self.worker = ZSSRWorker(self.runner, connect(settings.service.redis_url, None), name=name, in_thread=True)
        self._thread = threading.Thread(target=self._work, name=f"zssr-worker-{self.worker.name}", daemon=True)
        self._thread.start()
        if not self.worker.started.wait(_START_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"the worker thread did not start within {_START_TIMEOUT_S} s")

    def _work(self) -> None:
        try:
            self.worker.work(logging_level=self.runner.store.service.log_level)
        finally:
            self.runner.store.connection.close()
            self.worker.connection.close()

    def stop(self) -> None:
        self.worker.stop()

    def join(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()


def serve(settings: Settings, *, name: str | None = None, burst: bool = False) -> None:
    """Run a worker in this process until SIGTERM or SIGINT (or, with `burst`, until the queue is empty).

    Redis going away does not end it: RQ reconnects while it waits for jobs, and should RQ's loop end anyway
    it starts again on a new name (RQ refuses a name whose registry entry has not yet expired).
    """
    service = settings.service
    warm_up()
    store = JobStore(connect(service.redis_url), service)
    runner = JobRunner(store, service_engine_config(settings))
    base = name or f"{socket.gethostname()}.{os.getpid()}"
    worker: ZSSRWorker | None = None
    try:
        for restart in itertools.count():
            try:
                worker = ZSSRWorker(runner, connect(service.redis_url, None),
                                    name=base if restart == 0 else f"{base}.{restart}")
                worker.work(burst=burst, logging_level=service.log_level)
            except unreachable_errors() as exc:
                log.warning("worker %s: Redis unreachable (%s); starting again in 2 s", base, exc)
            if burst or (worker is not None and worker.stopping):
                return
            time.sleep(2.0)
    except StopRequested:  # a signal between two runs of RQ's loop
        return
