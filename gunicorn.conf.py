"""Gunicorn settings for the web service: one worker process with threads, the app built in the worker."""

import os
import shutil
import tempfile

from app.logs import LOG_FORMAT, dict_config


wsgi_app = "app.web:create_app()"
bind = "0.0.0.0:8000"

# One process: the in-process job runner keeps its queue, its workers and its results in the worker process,
# so a second process would hold a second queue that the first cannot see. Scaling out needs the Redis backend.
workers = 1
worker_class = "gthread"
# Each POST /upscale holds a thread while it waits (at most wait_s); status polls and pages are quick.
threads = 16
# Build the app (and import torch, and maybe initialise CUDA) in the worker, never in the master: CUDA does not
# survive a fork.
preload_app = False
# The master restarts a worker that has not checked in for this long; with gthread workers, long requests run
# in threads and do not stop the check-in.
timeout = 60
graceful_timeout = 30
keepalive = 5

accesslog = "-"
# The request id comes from the response header, which the app always sets.
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
logconfig_dict = dict_config("INFO")
logconfig_dict["formatters"]["access"] = {"format": LOG_FORMAT.replace(" [%(request_id)s]", "")}
logconfig_dict["handlers"]["access"] = {"class": "logging.StreamHandler", "formatter": "access",
                                        "stream": "ext://sys.stderr"}
logconfig_dict["loggers"]["gunicorn.access"]["handlers"] = ["access"]

# No runtime control socket: nothing here needs it, and it would be a file in $HOME per server.
control_socket_disable = True


def worker_exit(server, worker):
    """Stop the job workers before the worker process ends: a running job stops at its next iteration."""
    state = getattr(getattr(worker, "wsgi", None), "extensions", {}).get("zssr")
    if state is not None:
        state.backend.close()


# Prometheus multiprocess mode: every worker process writes its metrics to files in one folder, and /metrics sums
# them (a restarted worker's counts are kept). The master sets it before any worker starts, so that
# prometheus_client sees it when a worker imports it; made at start unless the environment names one, and
# removed when gunicorn exits.
_metrics_dir: list[str] = []


def on_starting(server):
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _metrics_dir.append(tempfile.mkdtemp(prefix="zssr-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir[0]


def child_exit(server, worker):
    """A worker process has ended: its live gauges leave the sums (its counters stay)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    for folder in _metrics_dir:
        shutil.rmtree(folder, ignore_errors=True)
