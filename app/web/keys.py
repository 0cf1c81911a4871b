"""Makes an API key and the digest that config key `api_keys` (or `api_keys_file`) holds for it.

    python -m app.web.keys            # a new random key, and its digest
    python -m app.web.keys KEY        # the digest of a key you already have

Give the key to the client; put only the digest in the config: the service never stores or logs a key.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from app.web.access import key_digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.web.keys", description=__doc__.splitlines()[0])
    parser.add_argument("key", nargs="?", help="an existing key (default: make a new one)")
    args = parser.parse_args(argv)
    key = args.key or secrets.token_urlsafe(32)
    if not args.key:
        sys.stdout.write(f"key:    {key}\n")
    sys.stdout.write(f"digest: {key_digest(key)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
