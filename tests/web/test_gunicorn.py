"""The service under a real gunicorn on a loopback port, driven over HTTP."""

from __future__ import annotations

import base64
import concurrent.futures
from pathlib import Path

import pytest

from websupport import SLOW, Gunicorn, jpeg_bytes, png_of, wait_for


def test_upload_answers_a_png_of_8x_the_crop(server):
    status, headers, body = server.http.upload("/upscale", jpeg_bytes(320, 240), crop=48, seed=5)
    assert status == 200, body
    assert png_of(base64.b64decode(body["image"])).size == (384, 384)
    assert (body["crop"]["width"], body["crop"]["height"]) == (48, 48)
    assert headers["x-content-type-options"] == "nosniff" and "img-src 'self' data: blob:" in \
        headers["content-security-policy"]


def test_three_concurrent_uploads(server):
    photos = [jpeg_bytes(200 + 40 * i, 150, seed=i) for i in range(3)]
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda data: server.http.upload("/upscale", data, crop=64), photos))
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert len({body["id"] for _, _, body in answers}) == 3
    for _, _, body in answers:
        assert png_of(base64.b64decode(body["image"])).size == (512, 512)
    assert [body["photo"]["width"] for _, _, body in answers] == [200, 240, 280]


def test_torch_is_loaded_in_the_worker_never_in_the_master(server):
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1  # one worker process

    def has_torch(pid) -> bool:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()

    assert not has_torch(master) and has_torch(children[0])


@pytest.fixture(scope="module")
def busy_server(tmp_path_factory):
    """A server whose queue holds one job, and whose jobs train until cancelled."""
    server = Gunicorn(tmp_path_factory.mktemp("busy"), {**SLOW, "queue_size": 1, "wait_s": 1.0})
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def test_full_queue_answers_503_then_frees_up_when_the_job_is_cancelled(busy_server):
    http = busy_server.http
    status, headers, job = http.upload("/api/jobs", jpeg_bytes(120, 90))
    assert status == 202 and headers["location"] == f"/api/jobs/{job['id']}"
    status, headers, body = http.upload("/upscale", jpeg_bytes(120, 90))
    assert status == 503 and body["error"] == "queue_full" and int(headers["retry-after"]) >= 1
    assert http.request("DELETE", f"/api/jobs/{job['id']}")[0] in (200, 202)
    wait_for(lambda: http.get_json(f"/api/jobs/{job['id']}")[2]["status"] == "cancelled", timeout_s=10)
    status, headers, body = http.upload("/upscale", jpeg_bytes(120, 90))
    assert status == 202 and headers["location"] == f"/api/jobs/{body['id']}"  # accepted; still training
    http.request("DELETE", f"/api/jobs/{body['id']}")
