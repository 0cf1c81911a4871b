"""Every endpoint and error path of the web service through Flask's test client, on a tiny engine config."""

from __future__ import annotations

import base64
import io
import logging
import re
import time

import numpy as np
import pytest
from PIL import ExifTags, Image

import app.jobs.work
import app.web.api
from app.config import load_settings
from app.errors import BadImageError, Cancelled, ConfigError
from app.logs import RequestIdFilter
from app.web import close_app, create_app
from test_uploads import with_size_in_header
from websupport import SLOW, TINY, jpeg_bytes, multipart, png_of, upload, wait_for


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error", "message"} and body["error"] == code and body["message"]
    assert "Traceback" not in body["message"]
    return body


def running_job(client) -> dict:
    """Start a job on a SLOW app and wait until it trains."""
    response = upload(client, "/api/jobs", jpeg_bytes(120, 90))
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    return wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}").get_json())["progress"]["iteration"] > 0 and j)


def test_page_offers_the_upload_and_sets_security_headers(client):
    response = client.get("/")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert 'type="file"' in html and 'accept="image/jpeg' in html
    assert all(f'value="{size}"' in html for size in (48, 64, 96, 128))
    assert 'data-max-mb="10.0"' in html
    assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # no inline scripts: the CSP forbids them
    assert "style=" not in html
    csp = response.headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:" in csp and "script-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    for asset in ("/static/app.js", "/static/style.css"):
        with client.get(asset) as response:
            assert response.status_code == 200


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["device"].startswith("cpu") and ready["workers"] == 1


def test_readiness_fails_when_the_runner_is_stopped(app, client):
    close_app(app)
    assert_error(client.get("/readyz"), 503, "unavailable")
    assert client.get("/healthz").status_code == 200


def test_upscale_answers_base64_png_at_8x_the_crop(client):
    response = upload(client, data=jpeg_bytes(700, 300))
    assert response.status_code == 200
    body = response.get_json()
    sr = png_of(base64.b64decode(body["image"]))
    crop = body["crop"]
    assert (crop["width"], crop["height"]) == (64, 64)
    assert 0 <= crop["x"] <= 700 - 64 and 0 <= crop["y"] <= 300 - 64
    assert sr.size == (512, 512) == (body["width"], body["height"]) and body["scale"] == 8
    assert body["image_encoding"] == "base64"
    assert body["photo"] == {"width": 700, "height": 300}
    assert body["learned_from"] == {"what": "the whole photo", "width": 512, "height": 219}
    # config.json's context_px (8): the crop is enlarged with up to 8 photo pixels around it, as far as the photo goes
    left, top = max(0, crop["x"] - 8), max(0, crop["y"] - 8)
    context = {"x": left, "y": top, "width": min(700, crop["x"] + 72) - left, "height": min(300, crop["y"] + 72) - top}
    assert body["enlarged"] == {"what": "the crop", "width": 64, "height": 64, "context": context}
    assert body["iterations"] == sum(body["iterations_per_step"]) > 0 and len(body["iterations_per_step"]) == 3
    assert body["device"].startswith("cpu") and body["seconds"] > 0
    # What the job read from the upload (config.json: sons compressed with its tables, its noise measured), on
    # both backends (the Redis one carries the JPEG profile through the queue).
    assert body["degradation"]["jpeg"] == {"quality": 85, "subsampling": "4:2:0"}
    assert body["degradation"]["noise_estimated"] is True and 0 <= body["degradation"]["noise_std"] <= 0.03
    assert body["weights"] is None  # the tiny config starts from scratch
    assert body["profile"] == {"name": "photo", "chosen_by": "a JPEG input"}  # config.json's profiles
    bicubic = client.get(body["bicubic"])
    assert bicubic.mimetype == "image/png" and png_of(bicubic.data).size == (512, 512)


def test_upscale_reports_weights_and_what_was_switched_off(make_app):
    client = make_app(sons_jpeg=False, estimate_noise=False, estimate_kernel=False, noise_std=0.0,
                      blurry_photo_std=None, warm_start="app/engine/weights/zssr_x2_photo.pt", model_depth=8,
                      model_width=64,
                      later_warm_start="app/engine/weights/zssr_x2.pt", num_epochs=1, crop_size=16,
                      learning_share=0.45).test_client()
    body = upload(client, data=jpeg_bytes(40, 32, quality=60)).get_json()
    assert body["weights"] == "zssr_x2_photo.pt" and body["later_weights"] == "zssr_x2.pt"
    assert body["learning_share"] == 0.45
    assert body["profile"] == {"name": "photo", "chosen_by": "a JPEG input"}
    assert body["degradation"] == {"noise_std": 0.0, "noise_estimated": False, "jpeg": None, "kernel": None,
                                   "blur_std": None, "blurry": False}


def test_upscale_reports_a_forced_profile_and_runs_its_settings(make_app):
    client = make_app(profile="lossless").test_client()
    body = upload(client, data=jpeg_bytes(40, 32, quality=85)).get_json()
    assert body["profile"] == {"name": "lossless", "chosen_by": "the config"}
    # config.json's lossless profile: its sons are not compressed with the photo's tables, and no blur is read.
    assert body["degradation"]["jpeg"] is None and body["degradation"]["blur_std"] is None


@pytest.mark.parametrize("overrides, ensembled", [({}, 1), ({"ensemble_steps": 2}, 2),
                                                   ({"ensemble_steps": None}, 3), ({"self_ensemble": False}, 0)])
def test_upscale_reports_how_many_steps_enlarged_over_the_8_transforms(make_app, overrides, ensembled):
    client = make_app(**overrides).test_client()
    body = upload(client, data=jpeg_bytes(64, 48), crop=48).get_json()
    assert body["ensembled_steps"] == ensembled and body["width"] == 384


def test_upscale_answers_a_url_when_base64_is_off(make_app):
    client = make_app(base64=False).test_client()
    body = upload(client, data=jpeg_bytes(200, 150), crop=48).get_json()
    assert body["image_encoding"] == "url" and body["image"] == f"/api/jobs/{body['id']}/result.png"
    png = client.get(body["image"])
    assert png.status_code == 200 and png_of(png.data).size == (384, 384)
    assert png.headers["Content-Disposition"].startswith("inline")
    download = client.get(body["image"] + "?download=1")
    assert download.headers["Content-Disposition"].startswith("attachment") and download.data == png.data


def test_upscale_at_a_chosen_place_and_size(client):
    body = upload(client, data=jpeg_bytes(200, 150), crop=48, x=10, y=20).get_json()
    assert body["crop"] == {"x": 10, "y": 20, "width": 48, "height": 48}
    assert png_of(base64.b64decode(body["image"])).size == (384, 384)


def test_seed_decides_the_random_place(client):
    data = jpeg_bytes(400, 300)
    crops = [upload(client, data=data, seed=seed).get_json()["crop"] for seed in (1, 1, 2)]
    assert crops[0] == crops[1] != crops[2]


def test_crop_shrinks_to_a_small_photo(client):
    body = upload(client, data=jpeg_bytes(40, 30)).get_json()
    assert body["crop"] == {"x": 0, "y": 0, "width": 40, "height": 30}
    assert png_of(base64.b64decode(body["image"])).size == (320, 240)


@pytest.mark.parametrize("kind", ["orientation", "cmyk", "grayscale"])
def test_oriented_cmyk_and_grayscale_photos(client, kind):
    data = {"orientation": jpeg_bytes(60, 40, orientation=6), "cmyk": jpeg_bytes(60, 40, mode="CMYK"),
            "grayscale": jpeg_bytes(60, 40, mode="L")}[kind]
    body = upload(client, data=data, crop=48).get_json()
    expected = {"width": 40, "height": 60} if kind == "orientation" else {"width": 60, "height": 40}
    assert body["photo"] == expected
    assert png_of(base64.b64decode(body["image"])).mode == "RGB"


def test_upscale_answers_202_with_a_location_when_the_wait_is_over(make_app):
    client = make_app(**{**SLOW, "wait_s": 0.2}).test_client()
    response = upload(client, data=jpeg_bytes(120, 90))
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/api/jobs/{body['id']}"
    assert body["status"] in ("queued", "running") and body["result"] is None


def test_job_api_from_submission_to_result(client):
    response = upload(client, "/api/jobs", jpeg_bytes(200, 150), crop=48)
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    assert response.headers["Location"] == f"/api/jobs/{job_id}"
    assert response.get_json()["status"] in ("queued", "running")
    job = wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}").get_json())["status"] == "done" and j)
    assert job["queue_position"] is None and job["error"] is None
    progress = job["progress"]
    assert progress["fraction"] == 1.0 and progress["step"] == progress["steps"] == 3
    assert progress["iterations"] == job["result"]["iterations"]
    result = job["result"]
    assert result["image"] == f"/api/jobs/{job_id}/result.png" and result["crop"] == job["crop"]
    assert png_of(client.get(result["image"]).data).size == (384, 384)
    assert png_of(client.get(result["bicubic"]).data).size == (384, 384)
    assert job["finished_at"] >= job["started_at"] >= job["created_at"]


def test_running_job_reports_progress_and_stops_when_cancelled(make_app):
    client = make_app(**SLOW).test_client()
    job = running_job(client)
    assert job["status"] == "running" and job["queue_position"] == 0
    progress = job["progress"]
    assert progress["step"] == 1 and progress["steps"] == 3 and progress["phase"] == "training"
    assert 0 < progress["fraction"] < 1 and progress["loss"] is not None
    # The estimate appears once one percent is done (0.6 s of the 60 s budget).
    eta = wait_for(lambda: client.get(f"/api/jobs/{job['id']}").get_json()["progress"]["eta_s"])
    assert 0 < eta <= 60  # the budget left, rounded to 0.1 s
    assert_error(client.get(f"/api/jobs/{job['id']}/result.png"), 409, "conflict")
    response = client.delete(f"/api/jobs/{job['id']}")
    assert response.status_code == 202 and response.get_json()["cancel_requested"] is True
    wait_for(lambda: client.get(f"/api/jobs/{job['id']}").get_json()["status"] == "cancelled", timeout_s=10)
    again = client.delete(f"/api/jobs/{job['id']}")
    assert again.status_code == 200 and again.get_json()["status"] == "cancelled"
    assert_error(client.get(f"/api/jobs/{job['id']}/result.png"), 409, "conflict")


def test_queued_job_is_cancelled_at_once(make_app):
    client = make_app(**{**SLOW, "queue_size": 2}).test_client()
    running = running_job(client)
    queued = upload(client, "/api/jobs", jpeg_bytes(120, 90)).get_json()
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    response = client.delete(f"/api/jobs/{queued['id']}")
    assert response.status_code == 200 and response.get_json()["status"] == "cancelled"
    assert client.get(f"/api/jobs/{running['id']}").get_json()["status"] == "running"


def test_full_queue_answers_503_with_retry_after(make_app):
    client = make_app(**{**SLOW, "queue_size": 1}).test_client()
    running_job(client)
    for path in ("/upscale", "/api/jobs"):
        response = upload(client, path, jpeg_bytes(120, 90))
        assert_error(response, 503, "queue_full")
        assert int(response.headers["Retry-After"]) >= 1


def test_cancelling_a_done_job_is_a_conflict(client):
    body = upload(client, data=jpeg_bytes(100, 80), crop=48).get_json()
    assert_error(client.delete(f"/api/jobs/{body['id']}"), 409, "conflict")


@pytest.mark.parametrize("method, path", [("GET", "/api/jobs/nope"), ("DELETE", "/api/jobs/nope"),
                                          ("GET", "/api/jobs/nope/result.png"),
                                          ("GET", "/api/jobs/nope/bicubic.png")])
def test_unknown_job_is_404(client, method, path):
    assert_error(client.open(path, method=method), 404, "not_found")


def test_max_mb_boundary_through_http(make_app):
    data = jpeg_bytes(120, 90, quality=95)
    data += bytes(60_000 - len(data))
    accepted = make_app(max_MB=len(data) / 1e6).test_client()
    assert upload(accepted, data=data, crop=48).status_code in (200, 202)
    refused = make_app(max_MB=len(data) * 0.99 / 1e6).test_client()
    assert_error(upload(refused, data=data), 413, "too_large")


def test_over_max_mb_is_413(make_app):
    data = jpeg_bytes(300, 200, quality=95)
    client = make_app(max_MB=len(data) / 1e6 * 0.9).test_client()
    assert "MB" in assert_error(upload(client, data=data), 413, "too_large")["message"]


def test_body_far_over_the_limit_is_413_before_it_is_parsed(make_app):
    client = make_app(max_MB=0.05).test_client()
    body = assert_error(upload(client, data=b"\xff\xd8\xff" + bytes(400_000)), 413, "too_large")
    assert "0.05 MB" in body["message"]


def test_too_many_pixels_is_413(client):
    bomb = with_size_in_header(jpeg_bytes(64, 64), 7000, 7000)
    assert "pixels" in assert_error(upload(client, data=bomb), 413, "too_large")["message"]


def test_png_renamed_jpg_is_415(client):
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    assert_error(upload(client, data=buffer.getvalue(), filename="photo.jpg"), 415, "not_jpeg")
    assert_error(upload(client, data=b"plain text, not a photo", filename="a.jpg"), 415, "not_jpeg")


def test_truncated_and_corrupt_jpegs_are_400(client):
    data = jpeg_bytes(200, 150, quality=95)
    assert_error(upload(client, data=data[: len(data) // 2]), 400, "bad_image")
    assert_error(upload(client, data=b"\xff\xd8\xff" + bytes(range(256)) * 8), 400, "bad_image")


def test_photo_too_small_is_400_saying_so(client):
    body = assert_error(upload(client, data=jpeg_bytes(12, 40)), 400, "too_small")
    assert "at least 16 pixels" in body["message"]


@pytest.mark.parametrize("fields, words", [
    ({"seed": "abc"}, "seed must be a whole number"),
    ({"seed": "-1"}, "seed must be between"),
    ({"crop": "8"}, "crop must be between 16 and 128"),
    ({"crop": "4096"}, "crop must be between 16 and 128"),
    ({"x": "3"}, "both x and y"),
    ({"x": "190", "y": "0"}, "not inside"),
])
def test_bad_fields_are_400(client, fields, words):
    body = assert_error(upload(client, data=jpeg_bytes(200, 150), **fields), 400, "bad_request")
    assert words in body["message"]


def test_missing_or_empty_file_is_400(client):
    assert "image" in assert_error(client.post("/upscale", data={}), 400, "bad_request")["message"]
    assert_error(upload(client, data=b""), 400, "bad_request")


def test_http_errors_are_json_too(client):
    response = client.get("/upscale")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]
    assert_error(client.get("/no/such/page"), 404, "not_found")


def test_engine_failure_is_500_without_details(client, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret detail /srv/path")

    monkeypatch.setattr(app.jobs.work, "super_resolve", broken)
    body = assert_error(upload(client, data=jpeg_bytes(100, 80)), 500, "internal")
    assert "secret" not in body["message"]
    job = upload(client, "/api/jobs", jpeg_bytes(100, 80)).get_json()
    failed = wait_for(lambda: (j := client.get(f"/api/jobs/{job['id']}").get_json())["status"] == "failed" and j)
    assert failed["error"]["error"] == "internal" and "secret" not in failed["error"]["message"]


@pytest.mark.parametrize("error, status, code", [(BadImageError("the image is odd"), 400, "bad_image"),
                                                 (Cancelled("stopped"), 409, "cancelled")])
def test_job_that_ends_without_a_result_while_upscale_waits(client, monkeypatch, error, status, code):
    def ends(*args, **kwargs):
        raise error

    monkeypatch.setattr(app.jobs.work, "super_resolve", ends)
    body = assert_error(upload(client, data=jpeg_bytes(100, 80)), status, code)
    assert code != "bad_image" or body["message"] == "the image is odd"


def test_unexpected_error_in_a_view_is_500_json(client, monkeypatch):
    def broken(*args, **kwargs):
        raise KeyError("secret")

    monkeypatch.setattr(app.web.api, "read_photo", broken)
    body = assert_error(upload(client, data=jpeg_bytes(100, 80)), 500, "internal")
    assert "secret" not in body["message"]


def test_request_id_on_the_response_and_on_every_log_line_of_the_job(client):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    try:
        response = client.post("/upscale", headers={"X-Request-ID": "trace-42"},
                               data={"image": (io.BytesIO(jpeg_bytes(100, 80)), "p.jpg")})
    finally:
        logger.removeHandler(handler)
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "trace-42"
    job_lines = [r for r in records if response.get_json()["id"] in r.getMessage()]
    assert len(job_lines) == 2 and {r.request_id for r in job_lines} == {"trace-42"}  # queued, done
    assert client.get("/healthz", headers={"X-Request-ID": "bad id!"}).headers["X-Request-ID"] != "bad id!"


def test_uploads_never_touch_the_disk(client, monkeypatch):
    import tempfile

    import werkzeug.formparser

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload was about to be written to disk")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    monkeypatch.setattr(werkzeug.formparser, "SpooledTemporaryFile", no_disk)
    data = jpeg_bytes(900, 700, quality=100)
    assert len(data) > 500_000  # past werkzeug's in-memory limit for its default file streams
    body, content_type = multipart(data, crop=48)  # encoded here: the test client would spool it to disk
    assert client.post("/upscale", data=body, content_type=content_type).status_code == 200


def test_no_debug_even_when_the_environment_asks(make_app, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    application = make_app()
    assert application.debug is False and application.config["PROPAGATE_EXCEPTIONS"] is False


def test_create_app_takes_settings_overrides_or_a_path(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"queue_size": 3, "model_depth": 2, "model_width": 8}')
    settings = load_settings(overrides={**TINY, "queue_size": 5})
    for config, size in ((settings, 5), ({**TINY, "queue_size": 4}, 4), (str(path), 3), (path, 3)):
        application = create_app(config)
        try:
            assert application.extensions["zssr"].settings.service.queue_size == size
        finally:
            close_app(application)
    with pytest.raises(ConfigError, match="queue_sise"):
        create_app({"queue_sise": 3})


def test_prefer_respond_async_answers_202_at_once(make_app):
    client = make_app(**SLOW).test_client()
    form = {"image": (io.BytesIO(jpeg_bytes(120, 90)), "photo.jpg", "image/jpeg"), "crop": "48"}
    started = time.monotonic()
    response = client.post("/upscale", data=form, content_type="multipart/form-data",
                           headers={"Prefer": "wait=5, respond-async"})
    assert time.monotonic() - started < 5  # SLOW's wait_s is 30 and its job never finishes on its own
    assert response.status_code == 202 and response.headers["Preference-Applied"] == "respond-async"
    body = response.get_json()
    assert response.headers["Location"] == f"/api/jobs/{body['id']}" and body["status"] in ("queued", "running")
    client.delete(f"/api/jobs/{body['id']}")


def test_every_job_reports_its_self_check_and_a_losing_network_falls_back(make_app, tmp_path):
    import torch

    from app.engine.network import ZSSRNet
    from app.engine.warm_start import save_weights

    body = upload(make_app().test_client(), data=jpeg_bytes(160, 120), crop=48).get_json()
    assert set(body["self_check"]) == {"zssr_db", "bicubic_db"} and body["fallback"] is False
    settings = load_settings(overrides=TINY)
    net = ZSSRNet(settings.engine)
    with torch.no_grad():
        net.layers[-1].bias.fill_(0.4)  # the input plus a large constant: far behind bicubic
    save_weights(net, settings.engine, tmp_path / "bad.pt", recipe={})
    client = make_app(warm_start=str(tmp_path / "bad.pt"), lr=1e-9, num_epochs=1, self_check_fallback=True)
    body = upload(client.test_client(), data=jpeg_bytes(160, 120), crop=48).get_json()
    assert body["fallback"] is True and body["self_check"]["zssr_db"] < body["self_check"]["bicubic_db"]
    assert body["iterations_per_step"] == [1]
    job = client.test_client()
    sr = job.get(f"/api/jobs/{body['id']}/result.png").data
    bicubic = job.get(f"/api/jobs/{body['id']}/bicubic.png").data
    assert np.array_equal(np.asarray(png_of(sr)), np.asarray(png_of(bicubic)))


@pytest.mark.parametrize("scale, steps", [(2, 1), (4, 2), (8, 3)])
def test_a_job_enlarges_by_the_scale_asked_for(make_app, scale, steps):
    client = make_app().test_client()
    body = upload(client, data=jpeg_bytes(160, 120), crop=48, scale=scale).get_json()
    assert body["scale"] == scale and (body["width"], body["height"]) == (48 * scale, 48 * scale)
    assert len(body["iterations_per_step"]) == steps
    job = client.get(f"/api/jobs/{body['id']}").get_json()
    assert job["progress"]["steps"] == steps and job["progress"]["fraction"] == 1.0


def test_the_whole_photo_can_be_enlarged(make_app):
    client = make_app(base64=False).test_client()
    body = upload(client, data=jpeg_bytes(150, 100), region="whole", scale=2).get_json()
    assert body["enlarged"] == {"what": "the whole photo", "width": 150, "height": 100, "context": None}
    assert body["crop"] == {"x": 0, "y": 0, "width": 150, "height": 100}
    assert png_of(client.get(body["url"]).data).size == (300, 200)
    assert_error(upload(client, data=jpeg_bytes(150, 100), region="whole", x=3, y=4), 400, "bad_request")
    assert_error(upload(client, data=jpeg_bytes(150, 100), scale=3), 400, "bad_request")
    assert_error(upload(client, data=jpeg_bytes(150, 100), region="all"), 400, "bad_request")


@pytest.mark.parametrize("scale, advice", [(8, "the largest scale that fits is 4x"),
                                           (4, "the largest scale that fits is 2x")])
def test_an_enlargement_over_max_output_pixels_names_the_largest_scale_that_fits(make_app, scale, advice):
    # 150x100 at 4x is 240,000 pixels, at 8x 960,000; the limit lets 4x through but not 8x (or 2x, not 4x).
    limit = 150 * 100 * (scale // 2) ** 2
    client = make_app(max_output_pixels=limit).test_client()
    message = assert_error(upload(client, data=jpeg_bytes(150, 100), region="whole", scale=scale), 400,
                           "bad_request")["message"]
    assert advice in message and f"{limit:,}" in message
    assert upload(client, data=jpeg_bytes(150, 100), region="whole", scale=scale // 2).status_code == 200
    none_fit = make_app(max_output_pixels=100).test_client()
    assert "choose a region" in assert_error(upload(none_fit, data=jpeg_bytes(150, 100), region="whole", scale=2),
                                             400, "bad_request")["message"]


def gps_jpeg() -> bytes:
    """A 120x90 photo with a phone's EXIF: its make, and where it was taken (a GPS IFD)."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Zeiss"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 29.0)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg_bytes(120, 90))).save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


@pytest.mark.parametrize("keep_gps", [False, True])
def test_results_drop_the_gps_position_unless_keep_gps(make_app, keep_gps):
    client = make_app(base64=False, keep_gps=keep_gps).test_client()
    response = upload(client, "/upscale", gps_jpeg(), crop="48", format="jpeg")
    assert response.status_code == 200, response.get_json()
    result = Image.open(io.BytesIO(client.get(response.get_json()["url"]).data))
    exif = result.getexif()
    assert exif[ExifTags.Base.Make] == "Zeiss"  # the rest of the EXIF stays
    assert (exif.get_ifd(ExifTags.IFD.GPSInfo).get(ExifTags.GPS.GPSLatitudeRef) == "N") is keep_gps
