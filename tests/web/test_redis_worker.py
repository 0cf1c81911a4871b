"""The Redis worker's job runner on its own, with stand-ins for the store and the engine (no Redis, no training)."""

from __future__ import annotations

import time

from PIL import Image

from app.config import ServiceConfig
from app.engine import EngineConfig
from app.errors import Cancelled
from app.jobs import Box, JobOutput, JobRequest, JobResult, JobState
from app.jobs.redis_worker import JobRunner

ENGINE = EngineConfig(scale_factor=2.0, scale_times=3, num_epochs=100, time_budget_s=10.0, device="cpu")
# How long the stand-in job runs when nothing stops it.
NATURAL_S = 3.0


class Store:
    """Stands in for the Redis store: the job it is asked to start is running, and how it ended is kept."""

    def __init__(self, request: JobRequest):
        self.service = ServiceConfig()
        self.request = request
        self.finished: list[tuple[str, JobState, object]] = []

    def start(self, job_id, attempt, worker):
        return JobState.RUNNING.value, self.request

    def waited_s(self, job_id):
        return None

    def finish(self, job_id, attempt, state, progress, seconds, output=None, error=None) -> bool:
        self.finished.append((job_id, state, error))
        return True


class Long:
    """Stands in for the engine: runs NATURAL_S seconds unless stopped, looking at the stop flag as training does."""

    def __init__(self):
        self.runs = 0

    def __call__(self, request, config, tracker, should_stop) -> JobOutput:
        self.runs += 1
        end = time.monotonic() + NATURAL_S
        while time.monotonic() < end:
            if should_stop():
                raise Cancelled("stopped")
            time.sleep(0.01)
        crop = request.crop
        result = JobResult(width=crop.width * 8, height=crop.height * 8, scale=8, crop=crop,
                           photo_size=request.photo_size, learned_from_size=request.train_image.size,
                           seconds=NATURAL_S, iterations=3, iterations_per_step=(3,), device="fake",
                           budget_exhausted=False)
        return JobOutput(result, b"s", b"b")


def test_a_job_started_after_a_stop_request_is_stopped_at_once():
    # The worker is stopped while RQ has a job in hand that the runner has not started yet: there is no current
    # job to stop then, so the runner must remember the request and stop this job as soon as it starts.
    store = Store(JobRequest.from_photo(Image.new("RGB", (40, 30)), Box(0, 0, 16, 16), train_max_side=32))
    work = Long()
    runner = JobRunner(store, ENGINE, work)
    runner.stop_current()
    began = time.monotonic()
    runner.run("job", 1)
    seconds = time.monotonic() - began
    assert work.runs == 1
    assert store.finished == [("job", JobState.CANCELLED, None)]
    assert seconds < NATURAL_S / 3
    assert not runner.busy
