"""Import boundaries: the engine is torch-only and loaded on use; the web side on Redis never imports torch."""

from __future__ import annotations

import ast
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


def test_the_web_imports_nothing_from_the_engine():
    """The web reads an upload's JPEG profile through app.jpeg_profile, never through the engine package."""
    reached = []
    for path in sorted((ROOT / "app" / "web").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            reached += [f"{path.name}: {name}" for name in names if name.split(".")[:2] == ["app", "engine"]]
    assert reached == []


def test_the_jpeg_profile_reader_works_without_torch():
    proc = run("import io, sys\n"
               "sys.modules['torch'] = None  # any import of torch now raises ImportError\n"
               "from PIL import Image\n"
               "from app.jpeg_profile import JpegProfile\n"
               "buffer = io.BytesIO()\n"
               "Image.new('RGB', (16, 16), (200, 40, 90)).save(buffer, format='JPEG', quality=75)\n"
               "profile = JpegProfile.read(buffer.getvalue())\n"
               "assert profile is not None and profile.quality == 75, profile\n"
               "assert not any(m.startswith('app.engine') for m in sys.modules), 'the engine was imported'\n"
               "import app.engine.jpeg\n"
               "assert app.engine.jpeg.JpegProfile is JpegProfile")
    assert proc.returncode == 0, proc.stderr


def test_no_two_modules_of_the_app_import_each_other():
    """Imports stand in order (deferred ones inside functions count too): no module reaches itself again.
    Packages' __init__ are left out: they are lazy façades over their own modules."""
    modules = {".".join(path.relative_to(ROOT).with_suffix("").parts): path
               for path in (ROOT / "app").rglob("*.py") if path.name != "__init__.py"}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = sorted(targets & modules.keys())

    def cycle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for target in graph[node]:
                if target == start:
                    return path + [start]
                if target not in seen:
                    seen.add(target)
                    stack.append((target, path + [target]))
        return None

    assert [cycle for cycle in map(cycle_from, sorted(graph)) if cycle] == []


def test_every_runtime_requirement_is_imported():
    """requirements.txt names nothing the code does not use (gunicorn is the server that runs the app)."""
    import_names = {"pillow": "PIL", "flask-limiter": "flask_limiter", "prometheus-client": "prometheus_client"}
    lines = (ROOT / "requirements.txt").read_text().split("# Tests")[0].splitlines()
    wanted = {import_names.get(name, name) for name in
              (line.split("==")[0].strip().lower() for line in lines if line.strip() and not line.startswith("#"))}
    imported = set()
    for path in [*(ROOT / "app").rglob("*.py"), ROOT / "main.py", ROOT / "main-flask.py"]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
    assert sorted(wanted - imported - {"gunicorn"}) == []


def test_main_parses_the_arguments_and_hands_off():
    """The enlarging, the writing and the bars live in app/batch.py: main.py touches no image, engine or bar."""
    tree = ast.parse((ROOT / "main.py").read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not {m for m in modules if m.split(".")[0] in ("PIL", "tqdm", "torch", "numpy")}
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) for alias in node.names}
    assert not names & {"super_resolve", "load_image", "save", "with_profile", "JpegProfile"}
    assert {node.name for node in tree.body if isinstance(node, ast.FunctionDef)} == \
        {"parse_quality", "build_parser", "main"}
