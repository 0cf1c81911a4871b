"""Access control at the edges mutation testing found loose: the keys file's errors (key, line number, message) and
comments, the client's address when every hop is a trusted proxy or the peer is unknown, the rate limiter's keys,
window and failure mode, and the page session only with keys on."""

from __future__ import annotations

import io
import ipaddress
import os

import pytest
from flask import g

from app.config import ServiceConfig, load_settings
from app.errors import ConfigError
from app.web import close_app, create_app
from app.web.access import SECRET_ENV, client_address, client_id, key_digest, load_key_digests
from websupport import TINY, jpeg_bytes

PHOTO = jpeg_bytes(120, 90)
DIGEST = key_digest("file-key-0123456789")


@pytest.fixture
def build():
    """Apps on the in-process runner with flat overrides, closed at the end."""
    apps = []

    def make(**overrides):
        apps.append(create_app(load_settings(overrides={**TINY, **overrides})))
        return apps[-1]

    yield make
    for app in apps:
        close_app(app)


def submit(client, address: str = "10.0.0.1"):
    form = {"image": (io.BytesIO(PHOTO), "photo.jpg", "image/jpeg"), "crop": "48"}
    return client.post("/api/jobs", data=form, content_type="multipart/form-data",
                       environ_base={"REMOTE_ADDR": address})


def keys_file_error(tmp_path, text: str) -> ConfigError:
    path = tmp_path / "keys.txt"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_key_digests(ServiceConfig(api_keys_file=str(path)))
    return caught.value


def test_a_bad_line_in_the_keys_file_is_named_by_its_number(tmp_path):
    path = tmp_path / "keys.txt"
    for bad in ("a" * 63, "g" * 64, "0" * 65):
        error = keys_file_error(tmp_path, f"# team A\n{bad}\n")
        assert error.key == "api_keys_file"
        assert str(error).endswith(f"line 2 of {path} is not a SHA-256 hex digest (python -m app.web.keys makes one)")


def test_an_unreadable_keys_file_is_a_config_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere.txt"
    with pytest.raises(ConfigError) as caught:
        load_key_digests(ServiceConfig(api_keys_file=str(missing)))
    assert caught.value.key == "api_keys_file"
    assert str(caught.value).endswith(f"cannot read {missing}: No such file or directory")


def test_keys_file_comments_may_hold_hashes_and_any_letters(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text(f"{DIGEST.upper()}  # laptop #2 of Zoë\n# {'f' * 64}\n", encoding="utf-8")
    assert load_key_digests(ServiceConfig(api_keys=("a" * 64,), api_keys_file=str(path))) == ("a" * 64, DIGEST)


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("10.0.0.7", ["10.0.0.5, 10.0.0.6"], "10.0.0.5"),  # every hop a proxy: the first is the client
    ("10.0.0.7", ["10.0.0.6"], "10.0.0.6"),
    ("10.0.0.7", ["1.1.1.1", "10.0.0.6"], "1.1.1.1"),  # two header lines (joined by WSGI) read as one list
    ("10.0.0.7", ["6.6.6.6", "1.1.1.1, 10.0.0.6"], "1.1.1.1"),
    ("", [], "-"),  # no peer address at all
])
def test_client_address_edges(build, peer, forwarded, expected):
    app = build()
    headers = [("X-Forwarded-For", value) for value in forwarded]
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": peer}, headers=headers):
        assert client_address((ipaddress.ip_network("10.0.0.0/8"),)) == expected


def test_a_proxy_network_may_be_written_with_host_bits(build):
    app = build(trusted_proxies=["10.1.2.3/8"])
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": "10.9.9.9"},
                                  headers={"X-Forwarded-For": "1.1.1.1"}):
        g.client = None
        assert client_id() == "ip:1.1.1.1"


def test_the_limits_are_kept_per_service_client_and_scope_in_a_moving_window(build):
    app = build(rate_limit="2/minute", redis_queue="photos-a")
    (limiter,) = app.extensions["limiter"]
    assert submit(app.test_client()).status_code == 202
    # One moving-window count per service (its queue name), client and the submissions scope: services sharing a
    # Redis never share counts.
    assert list(limiter.storage.events) == ["LIMITER/photos-a:limits/ip:10.0.0.1/submissions/2/1/minute"]
    assert not limiter.storage.storage


def test_a_failing_limit_store_lets_submissions_through(build, monkeypatch):
    app = build(rate_limit="1/minute")
    (limiter,) = app.extensions["limiter"]

    def unavailable(*args, **kwargs):
        raise ConnectionError("the limit store is down")

    monkeypatch.setattr(limiter.limiter, "hit", unavailable)
    assert [submit(app.test_client()).status_code for _ in range(2)] == [202, 202]


def test_responses_carry_no_rate_limit_headers(build):
    response = submit(build(rate_limit="5/minute").test_client())
    assert response.status_code == 202
    assert not [name for name in response.headers.keys() if name.lower().startswith(("x-ratelimit", "retry"))]


def test_the_session_secret_is_the_environments_or_32_random_bytes(build, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    first, second = build().secret_key, build().secret_key
    assert isinstance(first, bytes) and len(first) == 32 and first != second
    monkeypatch.setenv(SECRET_ENV, "shared-secret")
    assert build().secret_key == os.environ[SECRET_ENV]


def test_without_keys_the_page_opens_no_session(build):
    page = build().test_client().get("/")
    assert page.status_code == 200 and "Set-Cookie" not in page.headers
