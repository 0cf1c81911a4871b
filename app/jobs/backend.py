"""The job backend interface that the web layer codes against, and the choice of backend from the config."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from app.config import Settings
from app.engine import EngineConfig
from app.jobs.model import JobOutput, JobRequest, JobStatus

# The web service enlarges 8x, in three gradual steps of 2x, as the paper does for its largest factors.
SCALE_FACTOR = 2.0
SCALE_TIMES = 3
# The authors' real-image configuration (X2_REAL_CONF) turns back-projection off: it would force the output to
# reproduce the input's noise and compression artefacts exactly.
REAL_PHOTO_BACK_PROJECTION_ITERS = 0


@dataclass(frozen=True)
class Health:
    """Whether the backend can run jobs now, and on what."""

    alive: bool
    device: str
    workers: int
    queued: int
    running: int
    detail: str = ""


class JobBackend(abc.ABC):
    """Runs enlargement jobs; every method is thread-safe and answers with snapshots, never live objects.

    Unknown or expired ids raise app.errors.UnknownJobError; a full queue raises app.errors.QueueFullError
    carrying `retry_after_s`; a backend that cannot be reached raises app.errors.BackendUnavailableError.
    """

    @abc.abstractmethod
    def submit(self, request: JobRequest) -> JobStatus:
        """Queue a job and return its first status (queued)."""

    @abc.abstractmethod
    def status(self, job_id: str) -> JobStatus:
        """The job's status now."""

    @abc.abstractmethod
    def wait(self, job_id: str, timeout_s: float) -> JobStatus:
        """Block until the job has finished or `timeout_s` has passed, then return its status."""

    @abc.abstractmethod
    def output(self, job_id: str) -> JobOutput:
        """A done job's images; app.errors.JobStateError while it is not done."""

    @abc.abstractmethod
    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued job now or ask a running one to stop; JobStateError once it is done or failed."""

    @abc.abstractmethod
    def health(self) -> Health:
        """Whether the backend and its workers are alive, and the device they run on."""

    @abc.abstractmethod
    def close(self) -> None:
        """Stop the workers; jobs still queued or running are cancelled."""


def service_engine_config(settings: Settings) -> EngineConfig:
    """The engine config for web jobs: 8x, no back-projection, the job budget; the sons' noise and JPEG come
    from config.json (estimate_noise, noise_std, sons_jpeg). A job's steps are its own (x2 each, as many as its
    scale needs), so config.json's gradual_scales, made for one total scale, do not apply. These win over every
    input profile."""
    engine = settings.engine
    return engine.pinned(scale_factor=SCALE_FACTOR, scale_times=SCALE_TIMES, gradual_scales=None,
                          back_projection_iters=REAL_PHOTO_BACK_PROJECTION_ITERS,
                          time_budget_s=settings.service.job_time_budget_s)

