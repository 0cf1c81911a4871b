"""The job layer: runs enlargement jobs off the request threads, behind one small backend interface."""

from app.config import Settings
from app.jobs.backend import Health, JobBackend, service_engine_config
from app.jobs.memory import MemoryBackend
from app.jobs.model import Box, JobError, JobOutput, JobRequest, JobResult, JobState, JobStatus, Progress

__all__ = ["Box", "Health", "JobBackend", "JobError", "JobOutput", "JobRequest", "JobResult", "JobState",
           "JobStatus", "MemoryBackend", "Progress", "make_backend", "service_engine_config"]


def make_backend(settings: Settings) -> JobBackend:
    """The backend that config key `job_backend` names: in this process, or a Redis queue shared by workers."""
    if settings.service.job_backend == "redis":
        from app.jobs.redis_backend import RedisBackend  # Redis and RQ are needed only here

        return RedisBackend(service_engine_config(settings), settings.service)
    return MemoryBackend(service_engine_config(settings), settings.service)
