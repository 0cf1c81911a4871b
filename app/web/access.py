"""Who a request comes from and whether it may go on: API keys, the upload page's session, the client's address
behind trusted proxies, and each client's rate of job submissions (Flask-Limiter).

With keys on, a key opens the whole API. The upload page's session (a signed cookie that `GET /` hands out when
`page_session` is true) opens only what the page does: submitting a job and reading, cancelling and fetching the
results of the jobs that this session submitted (their ids travel in the cookie). It never opens /metrics,
/upscale or another client's jobs, and it is no key: a script that fetches the page gets no more than the page.

A client is an API key (by the first 12 hex digits of its SHA-256) when keys are on and one is given, else the
address the request came from: the peer's, or, when the peer is one of `trusted_proxies`, the last address in
X-Forwarded-For that is not one of them (proxies append, so everything left of the first untrusted entry could
be forged by the client). werkzeug's ProxyFix trusts a fixed number of hops from any peer, which would let a
client that reaches the service directly choose its own address; so the peer is checked first here.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import secrets
import time
from pathlib import Path

from flask import Flask, Response, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded

from app.config import ServiceConfig
from app.errors import ConfigError, ForbiddenError, UnauthorizedError, UnknownJobError
from app.web.errors import error_response

log = logging.getLogger(__name__)

# The endpoints that submit a job: the rate limit counts them together.
SUBMIT_ENDPOINTS = ("api.upscale", "api.create_job")
# Endpoints of the API blueprint that stay open with keys on: probes of load balancers and orchestrators.
OPEN_ENDPOINTS = ("api.healthz", "api.readyz")
# What the upload page's session may do with keys on: submit a job, and these on the jobs it submitted.
PAGE_SUBMIT = "api.create_job"
PAGE_JOB_ENDPOINTS = ("api.get_job", "api.cancel_job", "api.result_image", "api.bicubic_png")
# The page session remembers its latest jobs (ids of 32 hex digits), enough for results kept result_ttl_s.
PAGE_JOBS_KEPT = 16
# The session secret shared by every web process; without it each process makes its own (fine for one process).
SECRET_ENV = "ZSSR_SECRET_KEY"


def key_digest(key: str) -> str:
    """The SHA-256 hex digest of an API key: what config key `api_keys` holds (never the key itself)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def load_key_digests(service: ServiceConfig) -> tuple[str, ...]:
    """The accepted keys' digests: `api_keys` and the lines of `api_keys_file`; raises ConfigError on a bad line."""
    digests = list(service.api_keys or ())
    if service.api_keys_file:
        try:
            lines = Path(service.api_keys_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError("api_keys_file", f"cannot read {service.api_keys_file}: {exc.strerror or exc}") from exc
        for number, line in enumerate(lines, start=1):
            digest = line.split("#", 1)[0].strip().lower()
            if not digest:
                continue
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ConfigError("api_keys_file", f"line {number} of {service.api_keys_file} is not a SHA-256 "
                                                   "hex digest (python -m app.web.keys makes one)")
            digests.append(digest)
    return tuple(digests)


def _matches(given: str, digests: tuple[str, ...]) -> str | None:
    """The digest that `given` hashes to, compared in constant time against every digest (no early exit)."""
    candidate = key_digest(given).encode("ascii")
    found = None
    for digest in digests:
        if hmac.compare_digest(candidate, digest.encode("ascii")):
            found = digest
    return found


def client_address(trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> str:
    """The client's address: the peer's, or behind trusted proxies the last untrusted X-Forwarded-For entry."""
    peer = request.remote_addr or "-"

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not trusted or not is_trusted(peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed entry: do not let it name the client
    return hops[0] if hops else peer


def client_id() -> str:
    """The client this request counts against: an API key's id, or an address."""
    return g.get("client") or "ip:" + client_address(current_trusted())


def current_trusted() -> tuple:
    return current_app.extensions["zssr_access"]["trusted"]


def came_over_tls(trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    """Whether the client's request came over TLS: to this server (gunicorn with a certificate), or, from a peer
    in `trusted`, to the proxy, as its X-Forwarded-Proto says (the last value, as werkzeug's ProxyFix reads it)."""
    if request.scheme == "https":
        return True
    try:
        peer = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if not any(peer in network for network in trusted):
        return False
    protos = [p.strip().lower() for p in ",".join(request.headers.getlist("X-Forwarded-Proto")).split(",")]
    return protos[-1] == "https"


class PageSessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, its cookie marked Secure when the request came over TLS (came_over_tls), so
    that a browser never sends it back over plain HTTP."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(super().get_cookie_secure(app)) or came_over_tls(current_trusted())


def install(app: Flask, service: ServiceConfig, storage_uri: str, digests: tuple[str, ...]) -> Limiter | None:
    """Check keys on the API (`digests`, from load_key_digests), remember the client, and limit each client's
    submissions (`rate_limit`)."""
    trusted = tuple(ipaddress.ip_network(n, strict=False) for n in service.trusted_proxies or ())
    app.extensions["zssr_access"] = {"digests": digests, "trusted": trusted}
    app.secret_key = os.environ.get(SECRET_ENV) or secrets.token_bytes(32)
    app.config.update(SESSION_COOKIE_SAMESITE="Strict", SESSION_COOKIE_HTTPONLY=True)
    app.session_interface = PageSessionInterface()

    # Registered before the limiter's own hook, so that the limiter counts the key, not the address.
    @app.before_request
    def check_key() -> None:
        g.client = None
        if not digests or request.blueprint != "api" or request.endpoint in OPEN_ENDPOINTS:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            digest = _matches(given.strip(), digests)
            if digest is None:
                raise ForbiddenError("this API key is not accepted")
            g.client = "key:" + digest[:12]
            return
        if service.page_session and session.get("page"):
            check_page_session()
            return
        raise UnauthorizedError("this API needs a key: send it as 'Authorization: Bearer KEY'")

    @app.after_request
    def remember_page_job(response: Response) -> Response:
        """A job the page session submitted goes into its cookie: only that session may then read it."""
        if g.get("page_session") and request.endpoint == PAGE_SUBMIT and response.status_code == 202:
            job_id = (response.get_json(silent=True) or {}).get("id")
            if isinstance(job_id, str):
                session["jobs"] = [*session.get("jobs", [])[-(PAGE_JOBS_KEPT - 1):], job_id]
        return response

    if service.rate_limit is None:
        return None
    limiter = Limiter(client_id, app=app, storage_uri=storage_uri, strategy="moving-window",
                      key_prefix=f"{service.redis_queue}:limits", swallow_errors=True, headers_enabled=False)
    submissions = limiter.shared_limit(service.rate_limit, scope="submissions")
    for endpoint in SUBMIT_ENDPOINTS:
        app.view_functions[endpoint] = submissions(app.view_functions[endpoint])

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(exc: RateLimitExceeded):
        limit = limiter.current_limit
        retry_after = max(1, math.ceil(limit.reset_at - time.time())) if limit is not None else 60
        log.info("429 rate_limited: %s over %s", client_id(), exc.description)
        return error_response(429, "rate_limited", f"too many submissions (at most {exc.description}); try "
                                                   f"again in {retry_after} s", {"Retry-After": str(retry_after)})

    return limiter


def check_page_session() -> None:
    """Let the upload page's session through to what the page does (PAGE_SUBMIT, and PAGE_JOB_ENDPOINTS on the
    jobs it submitted), raising UnauthorizedError for anything else and UnknownJobError for other jobs."""
    if request.endpoint == PAGE_SUBMIT:
        g.page_session = True
        return
    if request.endpoint not in PAGE_JOB_ENDPOINTS:
        raise UnauthorizedError("the upload page's session opens only the page's own jobs; this needs a key: "
                                "send it as 'Authorization: Bearer KEY'")
    if (request.view_args or {}).get("job_id") not in session.get("jobs", []):
        raise UnknownJobError("no such job in this page's session (a job is read with the key or the page "
                              "session that submitted it)")


def open_page_session(service: ServiceConfig) -> None:
    """Open the upload page's session in this browser (keys on, `page_session`), keeping one already open."""
    if current_app.extensions["zssr_access"]["digests"] and service.page_session and "page" not in session:
        session["page"] = secrets.token_hex(8)
        session["jobs"] = []


def page_needs_key(service: ServiceConfig) -> bool:
    """Whether the upload page must ask its user for a key: keys on and no page session."""
    return bool(current_app.extensions["zssr_access"]["digests"]) and not service.page_session
