"""The job layer: runs enlargement jobs off the request threads, behind one small backend interface."""

from typing import Any

from app.config import Settings
from app.jobs.backend import Health, JobBackend, service_engine_config
from app.jobs.model import Box, JobError, JobOutput, JobRequest, JobResult, JobState, JobStatus, Progress

__all__ = ["Box", "Health", "JobBackend", "JobError", "JobOutput", "JobRequest", "JobResult", "JobState",
           "JobStatus", "MemoryBackend", "Progress", "make_backend", "service_engine_config"]


def make_backend(settings: Settings) -> JobBackend:
    """The backend that config key `job_backend` names: in this process, or a Redis queue shared by workers."""
    if settings.service.job_backend == "redis":
        from app.jobs.redis_backend import RedisBackend  # Redis and RQ are needed only here

        return RedisBackend(service_engine_config(settings), settings.service)
    from app.jobs.memory import MemoryBackend  # runs the engine in this process, so it imports torch

    return MemoryBackend(service_engine_config(settings), settings.service)


def __getattr__(name: str) -> Any:
    # MemoryBackend is loaded on first use: a web process on the Redis backend never imports torch.
    if name == "MemoryBackend":
        from app.jobs.memory import MemoryBackend

        return MemoryBackend
    raise AttributeError(f"module 'app.jobs' has no attribute {name!r}")
