"""Per-request plumbing (app/web/hooks.py) on a bare Flask app: the request id (a client's own if plain, else a new
one) on the response and on every log line of the request, the security headers, no caching of the API, and each
refused request counted."""

from __future__ import annotations

import re

import pytest
from flask import Blueprint, Flask, Response, jsonify
from prometheus_client import REGISTRY

from app.logs import request_id
from app.web import hooks


@pytest.fixture
def client():
    app = Flask(__name__)
    seen = []
    api = Blueprint("api", __name__)

    @api.get("/api/thing")
    def thing():
        seen.append(request_id.get())
        return jsonify(ok=True)

    @api.get("/api/cached")
    def cached():
        return Response("x", headers={"Cache-Control": "max-age=60"})

    @api.get("/api/refuse")
    def refuse():
        return jsonify(error="queue_full", message="full"), 503

    @app.get("/page")
    def page():
        seen.append(request_id.get())
        return "<p>hi</p>"

    @app.get("/plain-error")
    def plain_error():
        return "nope", 418

    @app.get("/list-error")
    def list_error():
        return jsonify(["not", "a", "dict"]), 422

    app.register_blueprint(api)
    hooks.install(app)
    test_client = app.test_client()
    test_client.seen = seen
    return test_client


def rejected(status: str, error: str) -> float:
    return REGISTRY.get_sample_value("zssr_rejected_requests_total", {"status": status, "error": error}) or 0.0


def test_every_response_carries_the_security_headers(client):
    for path in ("/page", "/api/thing", "/nowhere"):
        headers = client.get(path).headers
        assert headers["Content-Security-Policy"] == hooks.CONTENT_SECURITY_POLICY
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"


def test_the_policy_allows_only_this_origin_and_no_framing():
    policy = dict(part.split(" ", 1) for part in hooks.CONTENT_SECURITY_POLICY.split("; "))
    assert policy["default-src"] == "'self'" and policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


def test_the_api_is_not_cached_unless_it_says_so_and_pages_are_left_alone(client):
    assert client.get("/api/thing").headers["Cache-Control"] == "no-store"
    assert client.get("/api/cached").headers["Cache-Control"] == "max-age=60"
    assert "Cache-Control" not in client.get("/page").headers


@pytest.mark.parametrize("given", ["abc", "A.b_c-1", "x" * 64])
def test_a_plain_request_id_of_the_clients_is_kept_and_logged_with(client, given):
    response = client.get("/api/thing", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given
    assert client.seen == [given]
    assert request_id.get() == "-"  # and forgotten after the request


@pytest.mark.parametrize("given", ["", "x" * 65, "has space", "semi;colon", "ünï", "a\tb"])
def test_any_other_request_id_is_replaced_by_a_new_one(client, given):
    response = client.get("/page", headers={"X-Request-ID": given} if given else {})
    made = response.headers["X-Request-ID"]
    assert made != given and re.fullmatch(r"[0-9a-f]{16}", made)
    assert client.seen == [made]


def test_each_request_gets_its_own_id(client):
    ids = {client.get("/page").headers["X-Request-ID"] for _ in range(3)}
    assert len(ids) == 3


def test_refused_requests_are_counted_by_status_and_error_code(client):
    before = {key: rejected(*key) for key in (("503", "queue_full"), ("404", "not_found"), ("418", "-"),
                                              ("422", "-"), ("200", "-"))}
    client.get("/api/refuse")
    client.get("/api/refuse")
    client.get("/plain-error")  # not JSON: no code to count it by
    client.get("/list-error")  # JSON, but not an object
    client.get("/page")  # not refused
    assert rejected("503", "queue_full") == before[("503", "queue_full")] + 2
    assert rejected("418", "-") == before[("418", "-")] + 1
    assert rejected("422", "-") == before[("422", "-")] + 1
    assert rejected("200", "-") == before[("200", "-")]


def test_the_boundary_of_refused_is_400(client):
    app = Flask(__name__)

    @app.get("/s/<int:status>")
    def status(status: int):
        return jsonify(error=f"e{status}"), status

    hooks.install(app)
    test_client = app.test_client()
    counts = {s: rejected(str(s), f"e{s}") for s in (399, 400)}
    test_client.get("/s/399")
    test_client.get("/s/400")
    assert rejected("399", "e399") == counts[399]
    assert rejected("400", "e400") == counts[400] + 1
