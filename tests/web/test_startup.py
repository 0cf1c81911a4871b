"""Fail at start: a config that no job could run with stops the service or the worker with the key's name, and
/readyz is never ready before; the shipped relative paths work from a config file kept anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from app.config import load_settings
from app.errors import ConfigError
from app.jobs import service_engine_config
from app.web import close_app, create_app
from websupport import ROOT, TINY, Gunicorn, free_port

SHIPPED = "app/engine/weights/zssr_x2_photo.pt"


def config_file(folder, **values):
    path = folder / "config.json"
    path.write_text(json.dumps({**TINY, **values}))
    return path


def test_a_config_file_outside_the_repository_with_the_shipped_weights_serves(tmp_path):
    app = create_app(str(config_file(tmp_path, warm_start=SHIPPED, model_depth=8, model_width=64)))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200 and response.get_json()["status"] == "ready"
    finally:
        close_app(app)


@pytest.mark.parametrize("values, key", [
    ({"warm_start": "weights/none.pt"}, "warm_start"),
    # The shipped later weights see RGB; a luma-only first step could not hand them its planes.
    ({"later_warm_start": SHIPPED, "in_channels": 1}, "later_warm_start"),
    ({"kernel": "kernels/none.npy"}, "kernel"),
    ({"device": "cuda:99"}, "device"),
], ids=["missing-weights", "later-weights-of-other-planes", "missing-kernel", "no-such-device"])
def test_create_app_refuses_a_config_no_job_could_run_with(tmp_path, values, key):
    with pytest.raises(ConfigError) as excinfo:
        create_app(str(config_file(tmp_path, **values)))
    assert excinfo.value.key == key


def test_the_redis_web_side_checks_the_files_without_torch_and_before_connecting(tmp_path):
    from app.jobs.redis_backend import RedisBackend

    settings = load_settings(config_file(tmp_path, kernel="none.npy", job_backend="redis",
                                         redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(ConfigError) as excinfo:
        RedisBackend(service_engine_config(settings), settings.service)
    assert excinfo.value.key == "kernel"


def test_a_worker_refuses_later_weights_of_other_planes_before_taking_a_job(tmp_path):
    from app.jobs.redis_worker import JobRunner

    settings = load_settings(config_file(tmp_path, later_warm_start=SHIPPED, in_channels=1))
    with pytest.raises(ConfigError) as excinfo:
        JobRunner(store=None, engine=service_engine_config(settings))
    assert excinfo.value.key == "later_warm_start"


def test_gunicorn_stops_at_start_naming_the_key_and_is_never_ready(tmp_path):
    server = Gunicorn(tmp_path, {**TINY, "warm_start": str(tmp_path / "none.pt")})
    try:
        deadline = time.monotonic() + 60
        while server.process.poll() is None and time.monotonic() < deadline:
            try:
                assert server.http.request("GET", "/readyz", timeout_s=2)[0] != 200
            except OSError:
                pass
            time.sleep(0.2)
        assert server.process.returncode not in (None, 0)
        log = server.log.read_text()
        assert "warm_start" in log and "none.pt" in log
    finally:
        server.stop()


def test_the_worker_command_stops_at_start_naming_the_key(tmp_path):
    path = config_file(tmp_path, kernel=str(tmp_path / "none.npy"), job_backend="redis",
                       redis_url=f"redis://127.0.0.1:{free_port()}/0")
    done = subprocess.run([sys.executable, "-m", "app.jobs.worker", "--config", str(path), "--burst"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "kernel" in done.stderr and "none.npy" in done.stderr


def test_the_development_server_stops_at_start_with_one_line_naming_the_key(tmp_path):
    path = config_file(tmp_path, warm_start="weights/none.pt")
    done = subprocess.run([sys.executable, "main-flask.py", "--config", str(path), "--port", str(free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: config key 'warm_start': cannot read weights from {tmp_path / 'weights/none.pt'}: "
        f"FileNotFoundError: [Errno 2] No such file or directory: '{tmp_path / 'weights/none.pt'}'"]


def test_a_config_made_for_the_cli_with_its_own_gradual_steps_still_serves_every_scale(tmp_path):
    # gradual_scales are made for one total scale (here the authors' x2); web jobs take their own x2 steps.
    values = {"gradual_mode": "grow", "scale_times": 1, "later_warm_start": None,
              "gradual_scales": [[1, 1.5], [1.5, 1], [1.5, 1.5], [1.5, 2], [2, 1.5], [2, 2]]}
    path = config_file(tmp_path, **values)
    engine = service_engine_config(load_settings(path))
    assert engine.gradual_scales is None
    assert [engine.replace(scale_times=n).steps[-1] for n in (1, 2, 3)] == [(2.0, 2.0), (4.0, 4.0), (8.0, 8.0)]
    app = create_app(str(path))
    try:
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        close_app(app)
