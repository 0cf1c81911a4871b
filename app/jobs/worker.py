"""Runs a job worker of the Redis backend: parses arguments, loads the config, sets up logging and hands off.

    python -m app.jobs.worker --config config.json --redis-url redis://queue-host:6379/0

Start one per device, on as many machines as you like; they share the queue named by config key redis_queue.
SIGTERM or Ctrl-C: finish the job in hand, then stop; twice: stop now.
"""

from __future__ import annotations

import argparse
import sys

from app.config import load_settings
from app.errors import ConfigError
from app.jobs.redis_worker import serve
from app.logs import configure_logging


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.jobs.worker",
                                     description="A ZSSR job worker: takes enlargement jobs from the Redis queue "
                                                 "that the web processes fill (config job_backend \"redis\").")
    parser.add_argument("--config", default=None, help="config file (default: the repository's config.json)")
    parser.add_argument("--redis-url", default=None, help="Redis URL (default: config key redis_url)")
    parser.add_argument("--queue", default=None, help="queue name (default: config key redis_queue)")
    parser.add_argument("--name", default=None, help="worker name in the registry (default: host.pid)")
    parser.add_argument("--burst", action="store_true", help="stop once the queue is empty")
    parser.add_argument("--metrics-port", type=int, default=None,
                        help="serve this worker's job metrics for Prometheus on this port (default: none); they "
                             "have no key, so they listen on --metrics-host only")
    parser.add_argument("--metrics-host", default="127.0.0.1",
                        help="the address the metrics listen on (default 127.0.0.1, this machine only; 0.0.0.0: "
                             "every interface, for a Prometheus elsewhere on a private network)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {key: value for key, value in (("redis_url", args.redis_url), ("redis_queue", args.queue))
                 if value is not None}
    try:
        settings = load_settings(args.config, overrides)
        configure_logging(settings.service.log_level)
        if args.metrics_port is not None:
            from prometheus_client import start_http_server

            start_http_server(args.metrics_port, addr=args.metrics_host)
        serve(settings, name=args.name, burst=args.burst)
    except ConfigError as exc:  # a config no job could run with: stop before taking any (app.engine.checks)
        sys.stderr.write(f"error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
