"""The soak protocol: a bounded load test of the web layer through a real gunicorn on loopback, on either backend.

Polite clients submit at a pace inside the rate limit, poll their jobs to the end and fetch the results; one
abusive client submits as fast as it can. Every client is told apart by X-Forwarded-For from loopback, a
trusted proxy here. The engine runs a tiny network (jobs of about a second), so what is measured is the service:
latencies of submissions and status calls (p50/p95), the web processes' memory at start and end, the abusive
client limited (429), every polite job served, no job lost, no 500, nothing left on disk.

    python -m app.bench soak --backend memory --seconds 300
    python -m app.bench soak --backend redis --seconds 300
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from app.bench.scoring import table, write_report

ROOT = Path(__file__).resolve().parent.parent.parent
# A network and schedule that make a job last about a second on a loaded 2-core CPU: the soak measures the web
# layer, not the engine.
TINY_ENGINE = {"model_depth": 2, "model_width": 8, "num_epochs": 20, "min_iters": 0, "crop_size": 16,
               "self_ensemble": False, "back_projection_iters": 0, "num_threads": 1, "seed": 0, "device": "cpu",
               "warm_start": None, "later_warm_start": None, "job_time_budget_s": 5.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def photo_jpeg(seed: int, width: int = 200, height: int = 150) -> bytes:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([128 + 100 * np.sin(x / (11 + seed)), 128 + 90 * np.cos((x + y) / 29.0),
                    np.where((x // 24 + y // 24) % 2 == 0, 60.0, 190.0)], axis=-1)
    rgb += rng.normal(0, 6, rgb.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def multipart(data: bytes, **fields: str) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="p.jpg"\r\n'
                 "Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@dataclass
class Client:
    """One simulated client: its address, its calls' latencies and statuses, and its jobs."""

    name: str
    address: str
    abusive: bool
    submit_ms: list[float] = field(default_factory=list)
    status_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)  # job id -> final state ("lost" if never seen ending)

    def call(self, port: int, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict, bytes, float]:
        headers = {"X-Forwarded-For": self.address, **(headers or {})}
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            status, response_headers = response.status, dict(response.getheaders())
        finally:
            connection.close()
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status, response_headers, data, (time.perf_counter() - started) * 1000


def run_client(client: Client, port: int, until: float, pace_s: float, seed: int) -> None:
    """Submit (with Prefer: respond-async), follow each job to its end, fetch the result; `pace_s` between
    submissions (the abusive client: as fast as it can, and it never waits for its jobs)."""
    photo = photo_jpeg(seed)
    while time.monotonic() < until:
        body, content_type = multipart(photo, crop="48", seed=str(seed))
        status, headers, data, ms = client.call(port, "POST", "/upscale", body,
                                                {"Content-Type": content_type, "Prefer": "respond-async"})
        client.submit_ms.append(ms)
        if status == 202:
            job = json.loads(data)["id"]
            client.accepted.append(job)
            if not client.abusive:
                client.outcomes[job] = follow(client, port, job)
        time.sleep(pace_s)


def follow(client: Client, port: int, job: str, timeout_s: float = 120.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, _, data, ms = client.call(port, "GET", f"/api/jobs/{job}")
        client.status_ms.append(ms)
        if status != 200:
            return f"http {status}"
        state = json.loads(data)["status"]
        if state in ("done", "failed", "cancelled"):
            if state == "done":
                png_status, _, png, _ = client.call(port, "GET", f"/api/jobs/{job}/result.png")
                if png_status != 200 or not png.startswith(b"\x89PNG"):
                    return "done without its image"
            return state
        time.sleep(0.25)
    return "lost"


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def wait_ready(port: int, process: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.2)
    raise RuntimeError("gunicorn not ready in time")


def soak(backend: str, seconds: float, polite: int, pace_s: float, workdir: Path) -> dict[str, Any]:
    port = free_port()
    # Finished jobs are kept for the whole run (the caps would otherwise drop early results before the end's
    # check that every accepted job ended, and count them as lost).
    config: dict[str, Any] = {**TINY_ENGINE, "trusted_proxies": ["127.0.0.1"], "rate_limit": "10/minute",
                              "max_jobs_per_client": 2, "queue_size": 16, "job_backend": backend, "wait_s": 30.0,
                              "result_ttl_s": seconds + 600.0, "max_results": 100000, "results_max_MB": 100000.0}
    processes: list[subprocess.Popen] = []
    logs = []

    def start(args: list[str], name: str) -> subprocess.Popen:
        log = open(workdir / f"{name}.log", "wb")
        logs.append(log)
        process = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    web_processes = 1
    if backend == "redis":
        redis_port = free_port()
        start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
               "--dir", str(workdir)], "redis")
        config.update(redis_url=f"redis://127.0.0.1:{redis_port}/0", redis_queue="soak")
        web_processes = 2  # the limits must hold across web processes
    path = workdir / "config.json"
    path.write_text(json.dumps(config))
    if backend == "redis":
        time.sleep(0.5)
        start([sys.executable, "-m", "app.jobs.worker", "--config", str(path), "--name", "soak-worker"], "worker")
    web = start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                 "--workers", str(web_processes), f"app.web:create_app({str(path)!r})"], "gunicorn")
    try:
        wait_ready(port, web)
        clients = [Client(f"polite-{i}", f"198.51.100.{i + 1}", False) for i in range(polite)]
        abusive = Client("abusive", "203.0.113.66", True)
        # Warm up (first requests import and allocate), then measure the web processes' memory.
        warm = Client("warm-up", "192.0.2.1", False)
        body, content_type = multipart(photo_jpeg(7), crop="48")
        first = json.loads(warm.call(port, "POST", "/api/jobs", body, {"Content-Type": content_type})[2])
        follow(warm, port, first["id"])
        rss_start = sum(rss_kb(pid) for pid in children(web.pid))
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=run_client, args=(c, port, until, pace_s, i)) for i, c in enumerate(clients)]
        threads.append(threading.Thread(target=run_client, args=(abusive, port, until, 0.05, 99)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # The abusive client's accepted jobs must end too (none lost).
        for job in abusive.accepted:
            abusive.outcomes[job] = follow(abusive, port, job)
        rss_end = sum(rss_kb(pid) for pid in children(web.pid))
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for log in logs:
            log.close()
    everyone = clients + [abusive]
    polite_jobs = [o for c in clients for o in c.outcomes.values()]
    return {
        "backend": backend, "seconds": seconds, "web_processes": web_processes, "polite_clients": polite,
        "pace_s": pace_s, "rss_start_kb": rss_start, "rss_end_kb": rss_end,
        "clients": [{"name": c.name, "abusive": c.abusive, "submissions": len(c.submit_ms),
                     "statuses": dict(sorted(c.statuses.items())), "accepted": len(c.accepted),
                     "outcomes": _count(c.outcomes.values()),
                     "submit_p50_ms": percentile(c.submit_ms, 50), "submit_p95_ms": percentile(c.submit_ms, 95),
                     "status_p50_ms": percentile(c.status_ms, 50), "status_p95_ms": percentile(c.status_ms, 95)}
                    for c in everyone],
        "polite_submit_p50_ms": percentile([m for c in clients for m in c.submit_ms], 50),
        "polite_submit_p95_ms": percentile([m for c in clients for m in c.submit_ms], 95),
        "status_p50_ms": percentile([m for c in everyone for m in c.status_ms], 50),
        "status_p95_ms": percentile([m for c in everyone for m in c.status_ms], 95),
        "server_errors": sum(n for c in everyone for s, n in c.statuses.items() if s >= 500 and s != 503),
        "abusive_429": abusive.statuses.get(429, 0),
        "polite_429": sum(c.statuses.get(429, 0) for c in clients),
        "polite_jobs": len(polite_jobs), "polite_done": sum(o == "done" for o in polite_jobs),
        "lost": sum(o not in ("done", "failed", "cancelled") for c in everyone for o in c.outcomes.values()),
    }


def _count(values) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts


def markdown(runs: list[dict]) -> str:
    lines = ["# Soak: gunicorn on loopback, polite clients and one abusive client", ""]
    rows = [[r["backend"], f"{r['seconds']:.0f}", str(r["web_processes"]), str(r["polite_clients"]),
             f"{r['polite_submit_p50_ms']:.0f} / {r['polite_submit_p95_ms']:.0f}",
             f"{r['status_p50_ms']:.0f} / {r['status_p95_ms']:.0f}",
             f"{r['rss_start_kb'] / 1024:.0f} -> {r['rss_end_kb'] / 1024:.0f}",
             f"{r['polite_done']} of {r['polite_jobs']}", str(r["polite_429"]), str(r["abusive_429"]),
             str(r["server_errors"]), str(r["lost"]), "yes" if r["clean_disk"] else "NO"] for r in runs]
    lines += table(["backend", "s", "web processes", "polite clients", "polite submit p50 / p95 ms",
                    "status p50 / p95 ms", "web RSS MB start -> end", "polite jobs done", "polite 429s",
                    "abusive 429s", "5xx (not 503)", "jobs lost", "nothing left on disk"], rows)
    return "\n".join(lines) + "\n"


# What the service could leave in the temp folder: gunicorn's worker heartbeat files, the metrics folders, and
# anything of ours. (Other programs' files are not counted: the machine may be busy with them.)
_OURS = ("wgunicorn-", "zssr-", "prometheus")


def _temp_entries() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith(_OURS)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench soak", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["memory", "redis"], choices=["memory", "redis"])
    parser.add_argument("--seconds", type=float, default=300.0, help="how long the clients run, per backend")
    parser.add_argument("--clients", type=int, default=4, help="polite clients")
    parser.add_argument("--pace", type=float, default=7.0, help="polite clients' seconds between submissions")
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args(argv)
    if "redis" in args.backend and shutil.which("redis-server") is None:
        parser.error("the redis backend needs redis-server (apt-get install redis-server)")
    runs = []
    for backend in args.backend:
        before = _temp_entries()
        workdir = Path(tempfile.mkdtemp(prefix="zssr-soak-"))
        try:
            run = soak(backend, args.seconds, args.clients, args.pace, workdir)
            # In the work folder only the config and the logs may remain (Redis keeps nothing: --save "").
            stray = sorted(p.name for p in workdir.iterdir() if p.name != "config.json" and p.suffix != ".log")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        run["left_on_disk"] = stray + sorted((_temp_entries() - before) - {workdir.name})
        run["clean_disk"] = not run["left_on_disk"]
        runs.append(run)
        write_report(Path(args.out), "soak", {"runs": runs}, markdown(runs))
    sys.stdout.write(markdown(runs))
    return 0
