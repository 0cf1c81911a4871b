"""Import boundaries: the engine is torch-only and loaded on use; the web side on Redis never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_web_and_redis_backend_do_not_import_torch():
    proc = run("import sys, app.web, app.jobs, app.jobs.redis_backend, app.config\n"
               "from app.engine import EngineConfig\n"
               "assert 'torch' not in sys.modules, 'torch imported'")
    assert proc.returncode == 0, proc.stderr


def test_engine_names_load_torch_on_first_use():
    proc = run("import sys, app.engine\n"
               "assert 'torch' not in sys.modules\n"
               "assert callable(app.engine.super_resolve)\n"
               "assert 'torch' in sys.modules\n"
               "from app.jobs import MemoryBackend\n"
               "assert MemoryBackend.__name__ == 'MemoryBackend'")
    assert proc.returncode == 0, proc.stderr


def test_the_engine_never_imports_flask():
    proc = run("import sys, app.engine.zssr, app.bench\n"
               "assert not any(m == 'flask' or m.startswith('flask.') for m in sys.modules)")
    assert proc.returncode == 0, proc.stderr
