"""Runs the development server: parses arguments, loads the config, sets up logging and hands off to the app."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from app.config import load_settings
from app.errors import ConfigError
from app.logs import configure_logging
from app.web import create_app


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="ZSSR web service on Flask's development server. "
                    "In production: gunicorn -c gunicorn.conf.py")
    parser.add_argument("--config", default=None, help="config file (default: the repository's config.json)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    parser.add_argument("--debug", action="store_true",
                        help="development only: Flask debug mode with the interactive debugger (loopback only)")
    args = parser.parse_args(argv)
    if args.debug and not _is_loopback(args.host):
        parser.error("--debug runs an interactive debugger; use it only with a loopback --host")
    return args


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.service.log_level)
        app = create_app(settings)
    except ConfigError as exc:  # a config no job could run with: never start serving
        sys.stderr.write(f"error: {exc}\n")
        return 2
    # The reloader would build a second app (and a second job runner) in a child process.
    app.run(host=args.host, port=args.port, debug=args.debug, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
