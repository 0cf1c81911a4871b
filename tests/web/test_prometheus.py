"""/metrics in the Prometheus format: job outcomes, times and speed where jobs run, refused requests, the live
queue; summed over processes under gunicorn (multiprocess mode), whose folder is removed when it exits."""

from __future__ import annotations

import glob
import os
import tempfile
import time

from prometheus_client.parser import text_string_to_metric_families

from websupport import TINY, Gunicorn, jpeg_bytes, upload


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(snapshot: dict, name: str, **labels) -> float:
    return snapshot.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    return samples(response.get_data(as_text=True))


def test_metrics_count_jobs_refusals_and_show_the_live_queue(make_app):
    client = make_app().test_client()
    before = scrape(client)
    assert upload(client, data=jpeg_bytes(120, 90), crop=48).status_code == 200
    assert client.get("/api/jobs/nope").status_code == 404
    assert upload(client, data=b"GIF89a not a jpeg").status_code == 415
    # A job's metrics are recorded just after its outcome is stored (only an outcome that was stored counts), so
    # a scrape right after the answer may be a moment early: wait for it a little, as a scraper would.
    deadline = time.monotonic() + 10
    while True:
        after = scrape(client)
        done = value(after, "zssr_jobs_total", outcome="done")
        if done > value(before, "zssr_jobs_total", outcome="done") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert done == value(before, "zssr_jobs_total", outcome="done") + 1
    for histogram in ("zssr_job_seconds", "zssr_queue_wait_seconds", "zssr_job_iterations_per_second"):
        assert value(after, histogram + "_count") == value(before, histogram + "_count") + 1, histogram
    assert value(after, "zssr_job_iterations_per_second_sum") > value(before, "zssr_job_iterations_per_second_sum")
    for status, error in (("404", "not_found"), ("415", "not_jpeg")):
        assert value(after, "zssr_rejected_requests_total", status=status, error=error) == \
            value(before, "zssr_rejected_requests_total", status=status, error=error) + 1
    assert value(after, "zssr_queue_depth", state="queued") == 0
    assert value(after, "zssr_queue_depth", state="running") == 0
    assert value(after, "zssr_workers") >= 1
    devices = [labels for (name, labels) in after if name == "zssr_device_info"]
    assert len(devices) == 1 and dict(devices[0])["device"].startswith("cpu")


def test_gunicorn_sums_its_processes_and_removes_its_metrics_folder(tmp_path):
    pattern = os.path.join(tempfile.gettempdir(), "zssr-metrics-*")
    existing = set(glob.glob(pattern))
    server = Gunicorn(tmp_path, TINY)
    try:
        server.wait_ready()
        created = set(glob.glob(pattern)) - existing
        assert len(created) == 1 and os.listdir(created.pop())  # the worker writes its values there
        status, _, _ = server.http.upload("/upscale", jpeg_bytes(120, 90), crop=48)
        assert status == 200
        server.http.request("GET", "/api/jobs/nope")
        status, headers, body = server.http.request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        snapshot = samples(body.decode())
        assert value(snapshot, "zssr_jobs_total", outcome="done") == 1
        assert value(snapshot, "zssr_rejected_requests_total", status="404", error="not_found") == 1
        assert value(snapshot, "zssr_queue_depth", state="running") == 0
    finally:
        server.stop()
    assert set(glob.glob(pattern)) - existing == set()
