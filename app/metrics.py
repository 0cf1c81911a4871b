"""Prometheus metrics: what the jobs did (recorded where they run) and what the web side refused.

Multiprocess-safe: when PROMETHEUS_MULTIPROC_DIR is set (gunicorn.conf.py sets it for its workers), each process
writes its values to files there and `render()` sums them, as prometheus_client's multiprocess mode does; without
it the values live in this process. Jobs are counted by the process that runs them: the web process with the
in-process runner, each worker with the Redis backend (`python -m app.jobs.worker --metrics-port N` serves them).
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram,
                               generate_latest, multiprocess)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

JOBS = Counter("zssr_jobs", "Jobs finished, by outcome (done, failed, cancelled)", ["outcome"])
JOB_SECONDS = Histogram("zssr_job_seconds", "Seconds a job ran (training and enlarging)",
                        buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300, 600, 900))
QUEUE_WAIT_SECONDS = Histogram("zssr_queue_wait_seconds", "Seconds a job waited in the queue before it ran",
                               buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600))
ITERATIONS_PER_SECOND = Histogram("zssr_job_iterations_per_second", "Training iterations per second of a done job",
                                  buckets=(1, 2, 5, 10, 20, 30, 50, 75, 100, 200, 500, 1000, 2000))
REJECTED = Counter("zssr_rejected_requests", "Requests answered with an error, by status and error code",
                   ["status", "error"])


def record_job(outcome: str, seconds: float, wait_s: float | None, iterations: int | None) -> None:
    """One finished job: its outcome, how long it ran and waited, and (done jobs) its training speed."""
    JOBS.labels(outcome).inc()
    JOB_SECONDS.observe(seconds)
    if wait_s is not None:
        QUEUE_WAIT_SECONDS.observe(max(0.0, wait_s))
    if iterations and seconds > 0:
        ITERATIONS_PER_SECOND.observe(iterations / seconds)


def record_rejected(status: int, error: str) -> None:
    REJECTED.labels(str(status), error).inc()


class LiveCollector(Collector):
    """Values read when scraped, from the process that answers: the queue's depth, the workers and the device."""

    def __init__(self, health: Callable[[], object]):
        self._health = health

    def collect(self) -> Iterable[Metric]:
        health = self._health()
        depth = GaugeMetricFamily("zssr_queue_depth", "Jobs queued or running now", labels=["state"])
        depth.add_metric(["queued"], health.queued)
        depth.add_metric(["running"], health.running)
        yield depth
        yield GaugeMetricFamily("zssr_workers", "Job workers alive now", value=health.workers if health.alive else 0)
        device = GaugeMetricFamily("zssr_device_info", "The device the jobs run on", labels=["device"])
        device.add_metric([health.device or "unknown"], 1)
        yield device


def render(live: Collector | None = None) -> bytes:
    """The exposition text: this process's values (or every process's, in multiprocess mode), and `live`."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    if live is not None:
        registry.register(live)
    return generate_latest(registry)


class _Forward(Collector):
    """The default registry's metrics, collected into another registry (which then adds the live ones)."""

    def __init__(self, source: CollectorRegistry):
        self._source = source

    def collect(self) -> Iterable[Metric]:
        return self._source.collect()
