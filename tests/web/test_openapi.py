"""The OpenAPI document at /openapi.json: a valid document, every response shape the service gives validates
against it (on both job backends), and a response with a field renamed or dropped does not."""

from __future__ import annotations

import io
import json

import jsonschema
import pytest
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.validation.response.exceptions import InvalidData
from openapi_spec_validator import validate
from werkzeug.wrappers import Response

import app.web.api
from app.web import close_app
from app.web.access import key_digest
from app.web.openapi import DOCUMENT
from test_uploads import with_size_in_header
from websupport import SLOW, jpeg_bytes, upload, wait_for


class SentRequest(WerkzeugOpenAPIRequest):
    """The test client's request as openapi-core sees it, without its body: the app has read it already, and
    validating a response needs only the method and the path."""

    @property
    def body(self) -> bytes | None:
        return None


@pytest.fixture(scope="module")
def spec() -> OpenAPI:
    # Through JSON, as a client reads it: tuples become lists, and nothing that JSON cannot carry slips in.
    return OpenAPI.from_dict(json.loads(json.dumps(DOCUMENT)))


def check(spec: OpenAPI, response, status: int, code: str | None = None):
    """Assert the status (and error code), validate the response against the document; return its JSON."""
    assert response.status_code == status, response.get_data(as_text=True)
    spec.validate_response(SentRequest(response.request), WerkzeugOpenAPIResponse(response))
    body = response.get_json(silent=True)
    if code is not None:
        assert body["error"] == code, body
    return body


def check_error_body(response, status: int, code: str) -> None:
    """For answers the document cannot describe (a method or path it does not have): the Error schema alone."""
    assert response.status_code == status
    jsonschema.validate(response.get_json(), DOCUMENT["components"]["schemas"]["Error"])
    assert response.get_json()["error"] == code


def tampered(response, change) -> Response:
    """The response with its JSON body changed by `change(body)`, for the same request."""
    body = response.get_json()
    change(body)
    headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    forged = Response(json.dumps(body), status=response.status_code, headers=headers, mimetype="application/json")
    forged.request = response.request
    return forged


def field(body: dict, path: str) -> tuple[dict, str]:
    """The object that holds the dotted `path`'s last field, and that field's name."""
    *parents, name = path.split(".")
    for parent in parents:
        body = body[parent]
    return body, name


def rename(path: str, new: str):
    def change(body: dict) -> None:
        parent, name = field(body, path)
        parent[new] = parent.pop(name)
    return change


def drop(path: str):
    def change(body: dict) -> None:
        parent, name = field(body, path)
        del parent[name]
    return change


def test_document_is_valid_and_covers_every_route(client):
    response = client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    document = response.get_json()
    validate(document)
    assert document == json.loads(json.dumps(DOCUMENT))
    assert OpenAPI.from_dict(document) is not None
    routes = {rule.rule.replace("<", "{").replace(">", "}") for rule in client.application.url_map.iter_rules()
              if rule.endpoint not in ("static", "pages.index")}
    assert routes <= set(document["paths"]), routes - set(document["paths"])


def test_jobs_from_upload_to_result_match_the_document(make_app, spec):
    client = make_app(estimate_kernel=True).test_client()  # so that every degradation field is filled in
    upscaled = check(spec, upload(client, data=jpeg_bytes(100, 80), crop=48), 200)
    assert upscaled["image_encoding"] == "base64"
    assert upscaled["degradation"]["jpeg"] is not None and upscaled["degradation"]["kernel"] is not None
    job_id = check(spec, upload(client, "/api/jobs", jpeg_bytes(100, 80), crop=48), 202)["id"]
    wait_for(lambda: client.get(f"/api/jobs/{job_id}").get_json()["status"] == "done")
    job = check(spec, client.get(f"/api/jobs/{job_id}"), 200)
    assert job["result"]["image_encoding"] == "url" and job["error"] is None
    check(spec, client.get(job["result"]["image"]), 200)
    check(spec, client.get(job["result"]["bicubic"] + "?download=1"), 200)
    check(spec, client.delete(f"/api/jobs/{job_id}"), 409, "conflict")
    for method, path in (("GET", "/api/jobs/nope"), ("DELETE", "/api/jobs/nope"),
                         ("GET", "/api/jobs/nope/result.png"), ("GET", "/api/jobs/nope/bicubic.png")):
        check(spec, client.open(path, method=method), 404, "not_found")
    check(spec, client.get("/healthz"), 200)
    check(spec, client.get("/readyz"), 200)
    check(spec, client.get("/openapi.json"), 200)


def test_queued_running_and_cancelled_jobs_match_the_document(make_app, spec):
    client = make_app(**{**SLOW, "queue_size": 2, "wait_s": 0.0}).test_client()
    running = check(spec, upload(client, data=jpeg_bytes(120, 90)), 202)  # /upscale cannot finish in wait_s
    url = f"/api/jobs/{running['id']}"
    wait_for(lambda: client.get(url).get_json()["progress"]["iteration"] > 0)
    job = check(spec, client.get(url), 200)
    assert job["status"] == "running" and job["progress"]["phase"] == "training" and job["started_at"]
    queued = check(spec, upload(client, "/api/jobs", jpeg_bytes(120, 90)), 202)
    assert queued["status"] == "queued" and queued["queue_position"] == 1
    full = upload(client, "/api/jobs", jpeg_bytes(120, 90))
    check(spec, full, 503, "queue_full")
    assert int(full.headers["Retry-After"]) >= 1
    check(spec, client.get(url + "/result.png"), 409, "conflict")
    assert check(spec, client.delete(f"/api/jobs/{queued['id']}"), 200)["status"] == "cancelled"
    assert check(spec, client.delete(url), 202)["cancel_requested"] is True
    wait_for(lambda: client.get(url).get_json()["status"] == "cancelled", timeout_s=10)
    check(spec, client.get(url), 200)
    check(spec, client.delete(url), 200)


def test_errors_match_the_document(make_app, spec, monkeypatch):
    client = make_app().test_client()
    data = jpeg_bytes(200, 150, quality=95)
    check(spec, upload(client, data=data, seed="abc"), 400, "bad_request")
    check(spec, client.post("/api/jobs", data={}), 400, "bad_request")
    check(spec, upload(client, data=data[: len(data) // 2]), 400, "bad_image")
    check(spec, upload(client, "/api/jobs", jpeg_bytes(12, 40)), 400, "too_small")
    check(spec, upload(client, data=with_size_in_header(jpeg_bytes(64, 64), 7000, 7000)), 413, "too_large")
    check(spec, upload(client, data=b"plain text, not a photo"), 415, "not_jpeg")
    check_error_body(client.get("/upscale"), 405, "method_not_allowed")
    check_error_body(client.get("/no/such/page"), 404, "not_found")
    # Refused before the form is parsed (werkzeug's limit on the body, not the service's check of the file).
    small = make_app(max_MB=0.05).test_client()
    check(spec, upload(small, data=b"\xff\xd8\xff" + bytes(400_000)), 413, "too_large")

    def broken(*args, **kwargs):
        raise KeyError("secret")

    monkeypatch.setattr(app.web.api, "read_photo", broken)
    check(spec, upload(client, data=data), 500, "internal")


def test_readiness_failure_matches_the_document(app, client, spec):
    close_app(app)
    check(spec, client.get("/readyz"), 503, "unavailable")


def test_keys_and_submission_caps_match_the_document(make_app, spec):
    client = make_app(**{**SLOW, "api_keys": [key_digest("right")], "rate_limit": "2/minute",
                         "max_jobs_per_client": 1}).test_client()
    check(spec, client.get("/api/jobs/nope"), 401, "unauthorized")
    check(spec, client.get("/api/jobs/nope", headers={"Authorization": "Bearer wrong"}), 403, "forbidden")
    key = {"Authorization": "Bearer right"}
    check(spec, client.get("/api/jobs/nope", headers=key), 404, "not_found")
    check(spec, client.get("/healthz"), 200)
    check(spec, client.get("/readyz"), 200)

    def submit():
        form = {"image": (io.BytesIO(jpeg_bytes(60, 40)), "photo.jpg", "image/jpeg")}
        return client.post("/api/jobs", data=form, headers=key, content_type="multipart/form-data")

    check(spec, submit(), 202)
    check(spec, submit(), 429, "too_many_jobs")
    limited = submit()
    check(spec, limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1


def test_renamed_or_dropped_fields_fail_validation(make_app, spec):
    client = make_app().test_client()
    upscaled = upload(client, data=jpeg_bytes(100, 80), crop=48)
    job = upload(client, "/api/jobs", jpeg_bytes(100, 80), crop=48)
    missing = client.get("/api/jobs/nope")
    for response, status in ((upscaled, 200), (job, 202), (missing, 404)):
        check(spec, response, status)  # as they came, they pass
    forgeries = [
        (job, rename("queue_position", "position")),
        (job, drop("progress.eta_s")),
        (job, lambda body: body.update(status="finished")),
        (upscaled, rename("crop.x", "left")),
        (upscaled, drop("degradation.jpeg")),
        (upscaled, lambda body: body.update(extra=1)),
        (missing, lambda body: body.update(error="missing")),
    ]
    for response, change in forgeries:
        with pytest.raises(InvalidData):
            spec.validate_response(SentRequest(response.request),
                                   WerkzeugOpenAPIResponse(tampered(response, change)))


def test_respond_async_and_metrics_match_the_document(make_app, spec):
    client = make_app(**SLOW).test_client()
    form = {"image": (io.BytesIO(jpeg_bytes(120, 90)), "photo.jpg", "image/jpeg")}
    response = client.post("/upscale", data=form, content_type="multipart/form-data",
                           headers={"Prefer": "respond-async"})
    job = check(spec, response, 202)
    assert response.headers["Preference-Applied"] == "respond-async"
    check(spec, client.get("/metrics"), 200)
    client.delete(f"/api/jobs/{job['id']}")
