"""Every error mapped to HTTP in one place (app/web/errors.py), on a bare Flask app whose views raise each kind:
the status and code, the message, Retry-After where a client should come back, and nothing internal leaked."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from flask import Flask
from werkzeug.exceptions import RequestEntityTooLarge

from app import errors as e
from app.web import errors

CASES = [
    (e.ImageTooLargeError("too many pixels"), 413, "too_large"),
    (e.NotJPEGError("a GIF"), 415, "not_jpeg"),
    (e.ImageTooSmallError("8 px"), 400, "too_small"),
    (e.BadImageError("broken"), 400, "bad_image"),
    (e.InvalidRequestError("seed is not a number"), 400, "bad_request"),
    (e.UnauthorizedError("no key"), 401, "unauthorized"),
    (e.ForbiddenError("wrong key"), 403, "forbidden"),
    (e.RateLimitedError("slow down"), 429, "rate_limited"),
    (e.TooManyJobsError("two running"), 429, "too_many_jobs"),
    (e.UnknownJobError("no job 'x'"), 404, "not_found"),
    (e.JobStateError("still running"), 409, "conflict"),
    (e.Cancelled("stopped"), 409, "cancelled"),
    (e.JobFailedError("out of memory"), 500, "internal"),
    (e.QueueFullError("full"), 503, "queue_full"),
    (e.BackendUnavailableError("redis away"), 503, "unavailable"),
]


def bare_app(raised: list) -> Flask:
    app = Flask(__name__)
    app.extensions["zssr"] = SimpleNamespace(settings=SimpleNamespace(service=SimpleNamespace(max_MB=2.5)))
    errors.install(app)

    @app.route("/raise", methods=["GET", "POST"])
    def raise_it():
        raise raised[0]

    return app


@pytest.fixture
def call():
    raised: list = []
    client = bare_app(raised).test_client()

    def request(exc: BaseException, method: str = "GET"):
        raised[:] = [exc]
        return client.open("/raise", method=method)

    request.client = client
    return request


def body_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error", "message"}
    return body


@pytest.mark.parametrize("exc, status, code", CASES, ids=[c[2] + "-" + type(c[0]).__name__ for c in CASES])
def test_each_project_error_has_its_status_and_code_and_says_what_happened(call, exc, status, code):
    response = call(exc)
    assert response.status_code == status and response.mimetype == "application/json"
    body = body_of(response)
    assert body["error"] == code and body["message"] == str(exc)


@pytest.mark.parametrize("exc", [e.QueueFullError("full"), e.TooManyJobsError("two"), e.RateLimitedError("slow")])
def test_come_back_later_errors_say_when_by_default_five_seconds(call, exc):
    assert call(exc).headers["Retry-After"] == "5"


@pytest.mark.parametrize("retry_after, header", [(12, "12"), (2.1, "3"), (0.2, "1"), (0, "1"), (-4, "1")])
def test_a_known_wait_is_given_in_whole_seconds_rounded_up_and_at_least_one(call, retry_after, header):
    exc = e.QueueFullError("full")
    exc.retry_after_s = retry_after
    assert call(exc).headers["Retry-After"] == header


def test_an_unavailable_backend_says_when_only_when_it_knows(call):
    assert "Retry-After" not in call(e.BackendUnavailableError("away")).headers
    exc = e.BackendUnavailableError("away")
    exc.retry_after_s = 7
    assert call(exc).headers["Retry-After"] == "7"


@pytest.mark.parametrize("exc", [e.BadImageError("x"), e.UnknownJobError("x"), e.JobStateError("x"),
                                 e.JobFailedError("x"), e.ForbiddenError("x")])
def test_other_errors_set_no_retry_after_nor_authentication_header(call, exc):
    headers = call(exc).headers
    assert "Retry-After" not in headers and "WWW-Authenticate" not in headers


def test_a_missing_key_asks_for_a_bearer_token(call):
    assert call(e.UnauthorizedError("no key")).headers["WWW-Authenticate"] == 'Bearer realm="zssr"'


def test_a_subclass_is_mapped_before_its_base(call):
    class Unreadable(e.BadImageError):
        pass

    class Huge(e.ImageTooLargeError):
        pass

    assert body_of(call(Unreadable("x")))["error"] == "bad_image"
    assert call(Huge("x")).status_code == 413


def test_an_unmapped_project_error_is_a_logged_internal_error_without_its_message(call, caplog):
    class Strange(e.ZSSRError):
        pass

    with caplog.at_level(logging.INFO, logger="app.web.errors"):
        response = call(Strange("secret detail"))
    assert response.status_code == 500
    assert body_of(response) == {"error": "internal", "message": errors.INTERNAL_MESSAGE}
    assert any(r.levelno == logging.ERROR and "unmapped error Strange: secret detail" in r.getMessage()
               for r in caplog.records)


def test_a_config_error_at_request_time_is_internal_and_not_logged_as_unmapped(call, caplog):
    with caplog.at_level(logging.INFO, logger="app.web.errors"):
        response = call(e.ConfigError("kernel", "cannot read k.npy"))
    assert response.status_code == 500 and body_of(response)["message"] == errors.INTERNAL_MESSAGE
    assert not any("unmapped" in r.getMessage() for r in caplog.records)
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)  # logged with its traceback


def test_a_mapped_error_is_logged_once_at_info_with_its_status(call, caplog):
    with caplog.at_level(logging.INFO, logger="app.web.errors"):
        call(e.NotJPEGError("a GIF"))
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "app.web.errors"]
    assert lines == [(logging.INFO, "415 not_jpeg: a GIF")]


def test_any_other_exception_is_a_500_that_leaks_nothing(call, caplog):
    with caplog.at_level(logging.ERROR, logger="app.web.errors"):
        response = call(RuntimeError("password=hunter2"))
    assert response.status_code == 500
    assert body_of(response) == {"error": "internal", "message": errors.INTERNAL_MESSAGE}
    assert "hunter2" not in response.get_data(as_text=True)
    assert any(r.exc_info and r.getMessage() == "unhandled error" for r in caplog.records)


def test_an_upload_over_the_limit_names_the_limit(call):
    response = call(RequestEntityTooLarge())
    assert response.status_code == 413
    assert body_of(response) == {"error": "too_large", "message": "the upload is larger than 2.5 MB"}


def test_http_errors_are_json_named_after_their_status_and_keep_their_headers(call):
    client = call.client
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and body_of(missing)["error"] == "not_found"
    assert body_of(missing)["message"]
    wrong = client.delete("/raise")
    assert wrong.status_code == 405 and body_of(wrong)["error"] == "method_not_allowed"
    assert set(wrong.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    assert wrong.mimetype == "application/json" and wrong.headers.get_all("Content-Type") == ["application/json"]
