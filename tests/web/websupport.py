"""Helpers of the web and job tests: the tiny engine config, test JPEGs, an HTTP client and a gunicorn runner."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent.parent
# config.json's input profiles without their weights and schedules (the tiny network starts from scratch and
# trains a few iterations): what they decide for each kind of input is what the web tests see.
SHIPPED_PROFILES = {name: {k: v for k, v in keys.items() if k not in ("warm_start", "num_epochs")}
                    for name, keys in json.loads((ROOT / "config.json").read_text())["profiles"].items()}
CHROMIUM = Path("/usr/bin/chromium")

# Each job well under 2 s on a loaded 2-core CPU. One torch thread: two threads slow a tiny network down
# badly when the other core is busy.
TINY: dict[str, Any] = {
    "model_depth": 2, "model_width": 8, "num_epochs": 5, "min_iters": 0, "crop_size": 16,
    "back_projection_iters": 1, "num_threads": 1, "seed": 0, "device": "cpu",
    # JPEG jobs take config.json's photo profile (its sons compressed and noised as the photo is, its blur read,
    # 0.7 of each step's learning kept, step 1 ensembled): only the weights and the schedule are the tests'.
    "warm_start": None, "later_warm_start": None, "profiles": SHIPPED_PROFILES,
    "job_time_budget_s": 30.0, "max_MB": 10.0, "max_pixels": 40_000_000, "min_side": 16,
    "crop_sizes": [48, 64, 96, 128], "default_crop": 64, "train_max_side": 512, "wait_s": 30.0,
    "queue_size": 8, "workers_per_device": 1, "result_ttl_s": 600.0, "max_results": 64, "base64": True,
    "job_backend": "memory", "log_level": "INFO",
    # Off here (the tests submit many jobs from one address); tests/web/test_access.py turns them on.
    "rate_limit": None, "max_jobs_per_client": 0,
    # A tiny network rarely beats bicubic: keep its image, so that the tests see the network's work.
    "self_check_fallback": False,
    "self_ensemble": True,
    "context_px": 8,  # config.json's: the crop is enlarged inside 8 px of the photo around it
}
# A job that trains until it is cancelled (or its 60 s budget is spent): for cancelling and full queues.
SLOW: dict[str, Any] = {**TINY, "num_epochs": 1_000_000, "min_iters": 1_000_000, "job_time_budget_s": 60.0}


def make_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: smooth gradients, a few edges and some texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 23.0)
    g = 128 + 90 * np.cos((x + y) / 29.0)
    b = np.where((x // 24 + y // 24) % 2 == 0, 60.0, 190.0)
    rgb = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(width: int = 160, height: int = 120, *, mode: str = "RGB", quality: int = 85, seed: int = 0,
               orientation: int | None = None, image: Image.Image | None = None) -> bytes:
    """A JPEG file made with Pillow (no binary fixtures in the repository)."""
    image = image if image is not None else make_photo(width, height, seed)
    if mode != "RGB":
        image = image.convert(mode)
    buffer = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(buffer, format="JPEG", **kwargs)
    return buffer.getvalue()


def png_of(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def upload(client, path: str = "/upscale", data: bytes | None = None, filename: str = "photo.jpg",
           **fields: Any):
    """POST a multipart upload through Flask's test client."""
    form: dict[str, Any] = {k: str(v) for k, v in fields.items()}
    if data is not None:
        form["image"] = (io.BytesIO(data), filename, "image/jpeg")
    return client.post(path, data=form, content_type="multipart/form-data")


def wait_for(predicate: Callable[[], Any], timeout_s: float = 30.0, interval_s: float = 0.05) -> Any:
    """Poll until `predicate()` is truthy and return it; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout_s} s")
        time.sleep(interval_s)


def multipart(data: bytes, **fields: Any) -> tuple[bytes, str]:
    """A multipart/form-data body with the photo as field "image", and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
                 f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Http:
    """A minimal HTTP client on http.client (one connection per call), with multipart uploads."""

    def __init__(self, base: str):
        self.base = base
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout_s: float = 60.0) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout_s)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    def upload(self, path: str, data: bytes, **fields: Any) -> tuple[int, dict, Any]:
        body, content_type = multipart(data, **fields)
        status, headers, body = self.request("POST", path, body, {"Content-Type": content_type})
        return status, headers, _json_or_bytes(headers, body)

    def get_json(self, path: str) -> tuple[int, dict, Any]:
        status, headers, body = self.request("GET", path)
        return status, headers, _json_or_bytes(headers, body)


def _json_or_bytes(headers: dict, body: bytes) -> Any:
    return json.loads(body) if headers.get("content-type", "").startswith("application/json") else body


class Gunicorn:
    """gunicorn -c gunicorn.conf.py on a free loopback port, with a config file of its own."""

    def __init__(self, workdir: Path, overrides: dict[str, Any]):
        self.config = workdir / "config.json"
        self.config.write_text(json.dumps(overrides))
        self.log = workdir / "gunicorn.log"
        self.port = free_port()
        self.http = Http(f"http://127.0.0.1:{self.port}")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
                 f"app.web:create_app({str(self.config)!r})"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if self.http.request("GET", "/readyz", timeout_s=5)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        pytest.fail(f"gunicorn not ready within {timeout_s} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class RedisServer:
    """Debian's redis-server on a free loopback port, keeping nothing on disk; `stop()` and `start()` again on the
    same port (it comes back empty)."""

    def __init__(self, workdir: Path):
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (.ci/run installs it)")
        self.workdir = workdir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = workdir / "redis.log"
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self, timeout_s: float = 10.0) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                 "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT)
        wait_for(self.ping, timeout_s=timeout_s, interval_s=0.02)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def redis_overrides(redis_server: RedisServer) -> dict[str, Any]:
    """Config keys for the redis backend on `redis_server`, on a queue (and key prefix) of its own."""
    return {"job_backend": "redis", "redis_url": redis_server.url, "redis_queue": f"t-{uuid.uuid4().hex[:12]}",
            "worker_lost_after_s": 3.0}


class JobWorker:
    """python -m app.jobs.worker on a config file, as a process of its own (the redis backend's worker)."""

    def __init__(self, workdir: Path, config: Path, name: str):
        self.name = name
        self.log = workdir / f"{name}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.jobs.worker", "--config", str(config), "--name", name],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        """SIGKILL: no chance to tell anyone."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # after the job in hand
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
