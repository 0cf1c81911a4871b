"""Per-client limits (submission rate, live jobs), client addresses behind trusted proxies, and API keys; on both
job backends (on Redis the limits hold across web processes)."""

from __future__ import annotations

import io
import logging

import pytest

from app.errors import ConfigError
from app.web import close_app, create_app
from app.web.access import SECRET_ENV, client_address, key_digest
from websupport import SLOW, jpeg_bytes, wait_for

PHOTO = jpeg_bytes(120, 90)


def submit(client, address: str = "10.0.0.1", path: str = "/api/jobs", **kwargs):
    """POST a photo to `path` from `address` (the test client's peer address)."""
    form = {"image": (io.BytesIO(PHOTO), "photo.jpg", "image/jpeg"), "crop": "48"}
    return client.post(path, data=form, content_type="multipart/form-data", environ_base={"REMOTE_ADDR": address},
                       **kwargs)


def assert_429(response, code: str) -> int:
    assert response.status_code == 429, response.get_json()
    body = response.get_json()
    assert body["error"] == code and body["message"]
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 3600
    return retry_after


def test_submissions_beyond_the_rate_get_429_per_client(make_app):
    client = make_app(rate_limit="3/minute").test_client()
    assert [submit(client).status_code for _ in range(3)] == [202] * 3
    assert 50 <= assert_429(submit(client), "rate_limited") <= 61
    # /upscale counts against the same budget; another client has its own.
    assert_429(submit(client, path="/upscale"), "rate_limited")
    assert submit(client, "10.0.0.2").status_code == 202
    # Reading, polling and cancelling are never limited.
    job = submit(client, "10.0.0.3").get_json()["id"]
    for _ in range(5):
        assert client.get(f"/api/jobs/{job}", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200


def test_the_rate_holds_across_web_processes_on_redis(make_app, backend):
    first = make_app(rate_limit="2/minute")
    second = create_app(first.extensions["zssr"].settings)  # another web process on the same config
    try:
        assert submit(first.test_client()).status_code == 202
        assert submit(second.test_client()).status_code == 202
        if backend == "redis":  # one count in Redis for every web process
            assert_429(submit(first.test_client()), "rate_limited")
            assert_429(submit(second.test_client()), "rate_limited")
        else:  # the in-process runner (and its count) is per process; gunicorn runs one process for it
            assert submit(first.test_client()).status_code == 202
            assert_429(submit(first.test_client()), "rate_limited")
    finally:
        close_app(second)


def test_live_jobs_per_client_are_capped(make_app):
    client = make_app(**{**SLOW, "rate_limit": None, "max_jobs_per_client": 2, "queue_size": 8}).test_client()
    first, second = (submit(client).get_json()["id"] for _ in range(2))
    assert_429(submit(client), "too_many_jobs")
    assert submit(client, "10.0.0.2").status_code == 202  # another client
    assert client.delete(f"/api/jobs/{first}").status_code in (200, 202)
    client.get(f"/api/jobs/{first}")

    wait_for(lambda: client.get(f"/api/jobs/{first}").get_json()["status"] == "cancelled", timeout_s=10)
    third = submit(client)
    assert third.status_code == 202
    for job in (second, third.get_json()["id"]):
        client.delete(f"/api/jobs/{job}")


def test_forwarded_addresses_count_only_from_trusted_proxies(make_app):
    app = make_app(rate_limit="1/minute", trusted_proxies=["127.0.0.1", "10.9.0.0/16"])
    client = app.test_client()

    def via_proxy(forwarded: str, peer: str = "127.0.0.1"):
        return submit(client, peer, headers={"X-Forwarded-For": forwarded})

    assert via_proxy("203.0.113.5").status_code == 202
    assert_429(via_proxy("203.0.113.5"), "rate_limited")
    # A client cannot escape by prepending addresses: the last untrusted entry is the client.
    assert_429(via_proxy("198.51.100.7, 203.0.113.5"), "rate_limited")
    assert_429(via_proxy("198.51.100.7, 203.0.113.5, 10.9.3.4", peer="10.9.0.1"), "rate_limited")
    assert via_proxy("198.51.100.8").status_code == 202
    # From a peer that is not a trusted proxy the header is ignored: the peer is the client.
    assert submit(client, "192.0.2.1", headers={"X-Forwarded-For": "198.51.100.99"}).status_code == 202
    assert_429(submit(client, "192.0.2.1", headers={"X-Forwarded-For": "198.51.100.100"}), "rate_limited")


@pytest.mark.parametrize("peer, forwarded, expected", [
    ("192.0.2.1", "1.1.1.1", "192.0.2.1"),
    ("127.0.0.1", None, "127.0.0.1"),
    ("127.0.0.1", "1.1.1.1", "1.1.1.1"),
    ("127.0.0.1", "6.6.6.6, 1.1.1.1", "1.1.1.1"),
    ("127.0.0.1", "1.1.1.1, 127.0.0.1", "1.1.1.1"),
    ("127.0.0.1", "not-an-address", "127.0.0.1"),
    ("127.0.0.1", "2001:db8::1", "2001:db8::1"),
])
def test_client_address(make_app, peer, forwarded, expected):
    import ipaddress

    app = make_app()
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": peer}, headers=headers):
        assert client_address((ipaddress.ip_network("127.0.0.0/8"),)) == expected


def test_api_keys(make_app, caplog):
    caplog.set_level(logging.DEBUG)
    keys = ["first-key-1234567890", "second-key-abcdefghij"]
    client = make_app(api_keys=[key_digest(k) for k in keys], page_session=False).test_client()
    missing = submit(client)
    assert missing.status_code == 401 and missing.get_json()["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = submit(client, headers={"Authorization": "Bearer not-a-key"})
    assert wrong.status_code == 403 and wrong.get_json()["error"] == "forbidden"
    job = submit(client, headers={"Authorization": f"Bearer {keys[1]}"})
    assert job.status_code == 202
    job_id = job.get_json()["id"]
    assert client.get(f"/api/jobs/{job_id}").status_code == 401
    assert client.get(f"/api/jobs/{job_id}", headers={"Authorization": f"Bearer {keys[0]}"}).status_code == 200
    # Probes and the page stay open.
    assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
    assert client.get("/").status_code == 200
    assert submit(client).status_code == 401  # page_session off: the page's cookie does not open the API
    text = caplog.text
    assert all(key not in text for key in keys)


def test_the_upload_pages_session_may_use_the_api_without_a_key(make_app):
    app = make_app(api_keys=[key_digest("only-key-0123456789")])
    browser, script = app.test_client(), app.test_client()
    assert submit(browser).status_code == 401
    page = browser.get("/")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert submit(browser).status_code == 202
    assert submit(script).status_code == 401  # no cookie, no key


def test_the_page_session_opens_only_the_pages_own_jobs(make_app):
    """A cookie from GET / submits, polls, cancels and fetches its own jobs; nothing else: not /metrics, not
    /upscale, not another browser's jobs. Scripts without a key get 401 as before."""
    key = "ops-key-0123456789"
    app = make_app(api_keys=[key_digest(key)], rate_limit=None)
    browser, other, script = app.test_client(), app.test_client(), app.test_client()
    browser.get("/")
    other.get("/")
    job = submit(browser)
    assert job.status_code == 202
    job_id = job.get_json()["id"]
    done = wait_for(lambda: (body := browser.get(f"/api/jobs/{job_id}").get_json())["status"] == "done" and body)
    for path in (done["result"]["url"], done["result"]["bicubic"]):
        assert browser.get(path).status_code == 200
        assert other.get(path).status_code == 404
        assert script.get(path).status_code == 401
    assert other.get(f"/api/jobs/{job_id}").status_code == 404
    assert other.delete(f"/api/jobs/{job_id}").status_code == 404
    assert script.get(f"/api/jobs/{job_id}").status_code == 401
    # The page's cookie is no key: the metrics and the waiting endpoint stay closed to it.
    for response in (browser.get("/metrics"), submit(browser, path="/upscale")):
        assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    # A key reads everything.
    auth = {"Authorization": f"Bearer {key}"}
    assert script.get("/metrics", headers=auth).status_code == 200
    assert script.get(f"/api/jobs/{job_id}", headers=auth).status_code == 200
    assert submit(script).status_code == 401 and script.get("/metrics").status_code == 401


def test_the_page_session_keeps_its_latest_jobs(make_app):
    app = make_app(api_keys=[key_digest("ops-key-0123456789")], rate_limit=None, max_jobs_per_client=0,
                   queue_size=64)
    browser = app.test_client()
    browser.get("/")
    first = submit(browser).get_json()["id"]
    browser.get("/")  # a reload keeps the session and its jobs
    ids = [submit(browser).get_json()["id"] for _ in range(16)]
    assert all(browser.get(f"/api/jobs/{job}").status_code == 200 for job in ids)
    assert browser.get(f"/api/jobs/{first}").status_code == 404  # the 17th job back is forgotten


def test_without_a_page_session_the_page_asks_for_a_key(make_app):
    closed = make_app(api_keys=[key_digest("ops-key-0123456789")], page_session=False).test_client()
    page = closed.get("/")
    html = page.get_data(as_text=True)
    assert 'data-needs-key="true"' in html and 'id="api-key"' in html
    assert "Set-Cookie" not in page.headers
    page = make_app(api_keys=[key_digest("ops-key-0123456789")]).test_client().get("/")
    assert 'data-needs-key="false"' in page.get_data(as_text=True) and 'id="api-key"' not in page.get_data(as_text=True)


def test_the_page_sends_the_key_the_api_takes():
    """The page's script keeps the key in the browser and sends it as the API's Authorization header, on every
    API call and on the result images (fetched, since an <img> cannot send a header)."""
    from pathlib import Path

    script = (Path(__file__).resolve().parents[2] / "static" / "app.js").read_text(encoding="utf-8")
    assert 'headers.set("Authorization", "Bearer " + key)' in script
    assert "localStorage.setItem(KEY_STORE" in script
    assert "fetch(`/api/jobs" not in script and 'fetch("/api/jobs' not in script
    assert ".map(imageUrl)" in script


def test_web_processes_sharing_the_secret_read_each_others_page_cookie(make_app, monkeypatch):
    """docker-compose.yml's two gunicorn processes: built with one ZSSR_SECRET_KEY, a cookie that one hands out opens
    the page's calls on the other; with secrets of their own it does not."""
    monkeypatch.setenv(SECRET_ENV, "shared-secret-0123456789")
    first = make_app(api_keys=[key_digest("ops-key-0123456789")], rate_limit=None)
    settings = first.extensions["zssr"].settings
    second = create_app(settings)
    monkeypatch.setenv(SECRET_ENV, "another-secret-0123456789")
    third = create_app(settings)
    try:
        browser = first.test_client()
        browser.get("/")
        cookie = browser.get_cookie("session")
        assert cookie is not None
        for app, status in ((second, 202), (third, 401)):
            other = app.test_client()
            other.set_cookie("session", cookie.value)
            assert submit(other).status_code == status
    finally:
        close_app(second)
        close_app(third)


def test_compose_gives_its_web_processes_one_secret():
    from pathlib import Path

    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text(encoding="utf-8")
    web = compose.split("\n  web:\n", 1)[1].split("\n  worker:\n", 1)[0]
    assert '"--workers", "2"' in web
    assert "ZSSR_SECRET_KEY: ${ZSSR_SECRET_KEY:?" in web  # from the environment or .env; compose stops without it


@pytest.mark.parametrize("base_url, peer, proto, secure", [
    ("http://localhost", "127.0.0.1", None, False),
    ("https://localhost", "192.0.2.1", None, True),  # TLS to gunicorn itself
    ("http://localhost", "127.0.0.1", "https", True),  # TLS to the trusted proxy in front
    ("http://localhost", "127.0.0.1", "http", False),
    ("http://localhost", "127.0.0.1", "http, https", True),  # the nearest proxy's word is the last
    ("http://localhost", "192.0.2.1", "https", False),  # a client's own header is not believed
])
def test_the_session_cookie_is_secure_when_the_request_came_over_tls(make_app, base_url, peer, proto, secure):
    client = make_app(api_keys=[key_digest("ops-key-0123456789")], trusted_proxies=["127.0.0.1"]).test_client()
    headers = {"X-Forwarded-Proto": proto} if proto else {}
    page = client.get("/", base_url=base_url, headers=headers, environ_base={"REMOTE_ADDR": peer})
    cookie = page.headers["Set-Cookie"]
    assert ("; Secure" in cookie) is secure and "HttpOnly" in cookie


def test_rate_limits_count_per_key_when_keys_are_on(make_app):
    keys = ["key-a-0123456789", "key-b-0123456789"]
    client = make_app(api_keys=[key_digest(k) for k in keys], rate_limit="1/minute").test_client()
    a, b = ({"Authorization": f"Bearer {k}"} for k in keys)
    assert submit(client, headers=a).status_code == 202
    assert_429(submit(client, headers=a), "rate_limited")
    assert submit(client, headers=b).status_code == 202  # same address, another key


def test_keys_file(tmp_path, make_app):
    path = tmp_path / "keys.txt"
    path.write_text(f"# team A\n{key_digest('file-key-0123456789')}  # laptop\n\n")
    client = make_app(api_keys_file=str(path), page_session=False).test_client()
    assert submit(client, headers={"Authorization": "Bearer file-key-0123456789"}).status_code == 202
    assert submit(client, headers={"Authorization": "Bearer other"}).status_code == 403
    path.write_text("not a digest\n")
    with pytest.raises(ConfigError) as excinfo:
        make_app(api_keys_file=str(path))
    assert excinfo.value.key == "api_keys_file"


def test_plain_keys_in_the_config_are_refused(make_app):
    with pytest.raises(ConfigError) as excinfo:
        make_app(api_keys=["my-secret-key"])
    assert excinfo.value.key == "api_keys"
