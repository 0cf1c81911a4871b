"""The benchmark command: `python -m app.bench [PROTOCOL] ...`, the ideal protocol when no protocol is named.

    python -m app.bench --data ../shared/data/Set5 --scale 2 --preset paper fast
    python -m app.bench photo8x --photos 3 --regions 2
    python -m app.bench soak --backend memory redis --seconds 300
    python -m app.bench gate                      # the quality gate: every protocol's slice against its floor
"""

from __future__ import annotations

import importlib
import sys

# Loaded on use: photo8x runs the web job path (Flask, the job layer), which the ideal protocol never needs.
PROTOCOLS = {"ideal": "app.bench.ideal", "photo8x": "app.bench.photo8x", "soak": "app.bench.soak",
             "gate": "app.bench.gate"}
DEFAULT_PROTOCOL = "ideal"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    name = DEFAULT_PROTOCOL
    if argv and argv[0] in PROTOCOLS:
        name, argv = argv[0], argv[1:]
    return importlib.import_module(PROTOCOLS[name]).main(argv)


if __name__ == "__main__":
    sys.exit(main())
