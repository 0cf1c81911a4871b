"""Scale-out with real processes: a redis-server, two gunicorn web processes and two job workers, all on loopback.

Ten jobs complete each exactly once; a worker killed with SIGKILL in the middle of a job fails that job within the
bound and nothing else is lost; a bounded load test; Redis stopped and started again while the web is up. The tests
share one cluster and run in file order; each checks the state it starts from.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import re
import signal
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from websupport import TINY, Gunicorn, Http, JobWorker, RedisServer, jpeg_bytes, png_of, wait_for

LOST_AFTER_S = 2.0
QUEUE_SIZE = 10
# Jobs train until a 0.6 s budget is spent, then enlarge: about 0.7 s each, however busy the two cores are.
SCALE = {**TINY, "num_epochs": 1_000_000, "min_iters": 1_000_000, "job_time_budget_s": 0.6,
         "job_backend": "redis", "redis_queue": "scale", "worker_lost_after_s": LOST_AFTER_S,
         "queue_size": QUEUE_SIZE, "max_results": 1000, "wait_s": 30.0}
LOAD_CLIENTS = 14
LOAD_SECONDS = 8.0
LOAD_REPORT = Path("/tmp/zssr-load-test.json")


@dataclass
class Cluster:
    redis: RedisServer
    config: Path
    workdir: Path
    webs: list[Gunicorn]
    workers: list[JobWorker] = field(default_factory=list)

    def add_worker(self, name: str) -> JobWorker:
        worker = JobWorker(self.workdir, self.config, name)
        self.workers.append(worker)
        return worker

    def live_workers(self) -> list[JobWorker]:
        return [worker for worker in self.workers if worker.process.poll() is None]

    def ensure_workers(self, count: int = 2) -> list[JobWorker]:
        """Start workers until `count` run, and wait until both web processes see exactly them."""
        while len(self.live_workers()) < count:
            self.add_worker(f"w{len(self.workers)}")
        for web in self.webs:
            wait_for(lambda: self.ready_workers(web) == count, timeout_s=60, interval_s=0.2)
        return self.live_workers()

    def worker_of(self, job_id: str) -> JobWorker:
        """The process running the job (a worker that restarted its RQ loop adds ".N" to its name)."""
        name = self.job(job_id)["worker"]
        return next(w for w in self.live_workers() if name == w.name or name.startswith(f"{w.name}."))

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.redis.port, socket_timeout=5)

    def ready_workers(self, web: Gunicorn) -> int:
        status, _, body = web.http.get_json("/readyz")
        return body["workers"] if status == 200 else 0

    def job(self, job_id: str) -> dict:
        fields = self.client().hgetall(f"scale:job:{job_id}")
        return {key.decode(): value.decode() for key, value in fields.items() if key != b"progress"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Cluster:
    workdir = tmp_path_factory.mktemp("scale")
    server = RedisServer(workdir)
    settings = {**SCALE, "redis_url": server.url}
    config = workdir / "config.json"
    config.write_text(json.dumps(settings))
    cluster = Cluster(server, config, workdir, webs=[])
    try:
        for i in range(2):
            cluster.add_worker(f"w{i}")
        cluster.webs = [Gunicorn(tmp_path_factory.mktemp(f"web{i}"), settings) for i in range(2)]
        for web in cluster.webs:
            web.wait_ready()
        yield cluster
    finally:
        for web in cluster.webs:
            web.stop()
        for worker in cluster.workers:
            worker.stop()
        server.stop()


def submit(http: Http, seed: int) -> dict:
    status, headers, body = http.upload("/api/jobs", jpeg_bytes(160, 120, seed=seed), crop=48, seed=seed)
    assert status == 202 and headers["location"] == f"/api/jobs/{body['id']}", body
    return body


def finished(http: Http, job_id: str, timeout_s: float = 60.0) -> dict:
    return wait_for(lambda: (j := http.get_json(f"/api/jobs/{job_id}")[2])["status"] in
                    ("done", "failed", "cancelled") and j, timeout_s=timeout_s, interval_s=0.05)


def done_lines(cluster: Cluster, job_id: str) -> list[str]:
    return [line for worker in cluster.workers for line in worker.log.read_text().splitlines()
            if f"job {job_id} done" in line]


def test_ten_jobs_through_two_web_processes_and_two_workers_each_complete_exactly_once(cluster):
    a, b = (web.http for web in cluster.webs)
    workers = cluster.ensure_workers(2)
    jobs = [submit((a, b)[i % 2], seed=i) for i in range(10)]
    assert len({job["id"] for job in jobs}) == 10
    for i, job in enumerate(jobs):
        other = (b, a)[i % 2]  # each web process sees the other's jobs
        body = finished(other, job["id"])
        assert body["status"] == "done" and body["error"] is None, body
        assert body["crop"] == job["crop"] and body["progress"]["fraction"] == 1.0
        status, headers, png = other.request("GET", body["result"]["image"])
        assert status == 200 and headers["content-type"] == "image/png" and png_of(png).size == (384, 384)
    workers_used = set()
    for job in jobs:
        record = cluster.job(job["id"])
        assert record["attempt"] == "1" and record["state"] == "done"
        assert len(done_lines(cluster, job["id"])) == 1  # ran once, by one worker
        workers_used.add(record["worker"])
    assert workers_used == {w.name for w in workers}  # the two workers shared the queue


def gunicorn_worker_pid(web: Gunicorn) -> int:
    master = web.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1
    return int(children[0])


def rss_mb(pid: int) -> float:
    kb = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text()).group(1)
    return int(kb) / 1024


def iso(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_bounded_load_every_request_answered_503_only_when_full_no_failed_job_memory_flat(cluster):
    webs = [web.http for web in cluster.webs]
    cluster.ensure_workers(2)
    pids = [gunicorn_worker_pid(web) for web in cluster.webs]
    rss_before = [rss_mb(pid) for pid in pids]
    lock = threading.Lock()
    submit_ms, status_ms, problems = [], [], []
    refusals: list[tuple[float, float]] = []  # wall-clock interval of each 503
    jobs: list[dict] = []
    deadline = time.monotonic() + LOAD_SECONDS
    started = time.monotonic()

    def client(n: int) -> None:
        photo = jpeg_bytes(160, 120, seed=100 + n)
        i = 0
        while time.monotonic() < deadline:
            http = webs[(n + i) % 2]
            i += 1
            sent, t0 = time.time(), time.perf_counter()
            try:
                status, headers, body = http.upload("/api/jobs", photo, crop=48, seed=i)
            except OSError as exc:
                problems.append(f"submission unanswered: {exc!r}")
                continue
            with lock:
                submit_ms.append((time.perf_counter() - t0) * 1000)
            if status == 503:
                if body.get("error") != "queue_full" or "retry-after" not in headers:
                    problems.append(f"503 that is not a full queue: {body}")
                refusals.append((sent, time.time()))
                time.sleep(min(0.5, int(headers.get("retry-after", 1))))
                continue
            if status != 202:
                problems.append(f"submission answered {status}: {body}")
                continue
            job, give_up = None, time.monotonic() + 30
            while job is None:  # poll until it ends, on either web process
                if time.monotonic() > give_up:
                    problems.append(f"job {body['id']} did not end within 30 s")
                    break
                time.sleep(0.1)
                t0 = time.perf_counter()
                try:
                    status, _, answer = webs[(n + i) % 2].get_json(f"/api/jobs/{body['id']}")
                except OSError as exc:
                    problems.append(f"status unanswered: {exc!r}")
                    continue
                with lock:
                    status_ms.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    problems.append(f"status answered {status}: {answer}")
                    break
                if answer["status"] in ("done", "failed", "cancelled"):
                    job = answer
                    jobs.append(job)
            if job is not None and job["status"] == "done":
                status, _, png = http.request("GET", job["result"]["image"])
                if status != 200 or png[:4] != b"\x89PNG":
                    problems.append(f"result answered {status}")

    samples: list[list[float]] = []  # the web processes' RSS each half second
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.5):
            samples.append([rss_mb(pid) for pid in pids])

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(LOAD_CLIENTS) as pool:
            for future in [pool.submit(client, n) for n in range(LOAD_CLIENTS)]:
                future.result(timeout=LOAD_SECONDS + 120)
    finally:
        sampling.set()
        sampler.join()
    elapsed = time.monotonic() - started
    rss_after = [rss_mb(pid) for pid in pids]
    rss_mid = samples[len(samples) // 2]

    report = {
        "clients": LOAD_CLIENTS, "seconds": round(elapsed, 1), "queue_size": QUEUE_SIZE, "web_processes": 2,
        "workers": 2, "jobs_done": sum(j["status"] == "done" for j in jobs), "jobs_failed":
        sum(j["status"] != "done" for j in jobs), "refused_503": len(refusals),
        "throughput_jobs_per_s": round(len(jobs) / elapsed, 2),
        "submit_ms": {"n": len(submit_ms), "p50": round(statistics.median(submit_ms), 1),
                      "p95": round(percentile(submit_ms, 0.95), 1)},
        "status_ms": {"n": len(status_ms), "p50": round(statistics.median(status_ms), 1),
                      "p95": round(percentile(status_ms, 0.95), 1)},
        "web_rss_mb": {"before": [round(r, 1) for r in rss_before], "half_way": [round(r, 1) for r in rss_mid],
                       "after": [round(r, 1) for r in rss_after],
                       "samples": [[round(r, 1) for r in sample] for sample in samples]},
    }
    LOAD_REPORT.write_text(json.dumps(report, indent=2))
    print("\nload test:", json.dumps(report))

    assert problems == [], problems[:5]
    assert len(jobs) >= 10 and report["jobs_failed"] == 0, report
    # Each refusal came while QUEUE_SIZE jobs were queued or running, by the jobs' own (Redis) clock.
    spans = [(iso(j["created_at"]), iso(j["finished_at"])) for j in jobs]
    for sent, answered in refusals:
        moments = [sent - 0.005] + [t for span in spans for t in span if sent - 0.005 <= t <= answered + 0.005]
        busiest = max(sum(start <= t < end for start, end in spans) for t in moments)
        assert busiest >= QUEUE_SIZE, f"503 while only {busiest} jobs were queued or running"
    # Flat: what the first requests allocate (threads, connections) stays; the second half of the load adds
    # nothing that lasts.
    assert max(after - before for before, after in zip(rss_before, rss_after)) < 20, report
    assert max(after - mid for mid, after in zip(rss_mid, rss_after)) < 3, report


def test_a_worker_killed_mid_job_fails_that_job_within_the_bound_and_nothing_else_is_lost(cluster):
    a, b = (web.http for web in cluster.webs)
    cluster.ensure_workers(2)
    jobs, running, victim = [], None, None
    for attempt in range(5):  # a job runs for about 0.7 s: catch one in the middle
        jobs += [submit(a, seed=200 + 4 * attempt + i) for i in range(4)]
        job = wait_for(lambda: next((j for j in jobs if cluster.job(j["id"]).get("state") == "running"), None),
                       timeout_s=10, interval_s=0.005)
        worker = cluster.worker_of(job["id"])
        worker.process.send_signal(signal.SIGSTOP)  # frozen: it can change nothing from here on
        if cluster.job(job["id"])["state"] == "running":
            running, victim = job, worker
            break
        worker.process.send_signal(signal.SIGCONT)  # it finished just before: try again
    assert victim is not None, "no job was caught running"
    victim.kill()
    killed = time.monotonic()
    body = finished(b, running["id"], timeout_s=LOST_AFTER_S + 10)
    assert time.monotonic() - killed <= LOST_AFTER_S + 2.0  # its last heartbeat was before the kill
    assert body["status"] == "failed" and body["error"]["error"] == "worker_lost", body
    assert "worker running this job stopped" in body["error"]["message"]
    # The other worker goes on: the other jobs, and new ones, are done, each once.
    later = [submit(b, seed=300 + i) for i in range(2)]
    for job in [j for j in jobs if j is not running] + later:
        assert finished(a, job["id"])["status"] == "done"
        assert len(done_lines(cluster, job["id"])) == 1
    [survivor] = cluster.live_workers()
    assert {cluster.worker_of(j["id"]) for j in later} == {survivor}
    # The dead worker drops out of the registry; a new one (on any machine) joins.
    for web in cluster.webs:
        wait_for(lambda: cluster.ready_workers(web) == 1, timeout_s=LOST_AFTER_S + 5, interval_s=0.2)
    cluster.ensure_workers(2)


def test_redis_stopped_while_the_web_is_up_is_503_then_it_recovers(cluster):
    a, b = (web.http for web in cluster.webs)
    cluster.ensure_workers(2)
    before = submit(a, seed=400)
    assert finished(b, before["id"])["status"] == "done"
    cluster.redis.stop()
    for http in (a, b):
        for status, headers, body in (http.upload("/api/jobs", jpeg_bytes(160, 120), crop=48),
                                      http.get_json(f"/api/jobs/{before['id']}"), http.get_json("/readyz")):
            assert status == 503, body
            assert body["error"] == "unavailable" and "cannot be reached" in body["message"]
        assert int(headers["retry-after"]) >= 1
        assert http.get_json("/healthz")[0] == 200
    cluster.redis.start()
    # Back (empty, as it keeps nothing on disk here): the workers register again and jobs run.
    workers = cluster.live_workers()
    for web in cluster.webs:
        wait_for(lambda: cluster.ready_workers(web) == len(workers), timeout_s=20, interval_s=0.2)
    job = submit(b, seed=401)
    assert finished(a, job["id"])["status"] == "done"
    assert cluster.live_workers() == workers  # the workers rode it out


def test_a_worker_stopped_with_sigterm_finishes_its_job_first(cluster):
    a, b = (web.http for web in cluster.webs)
    cluster.ensure_workers(2)
    jobs, running, stopping = [], None, None
    for attempt in range(5):  # as above: catch a job in the middle
        jobs += [submit(a, seed=500 + 3 * attempt + i) for i in range(3)]
        job = wait_for(lambda: next((j for j in jobs if cluster.job(j["id"]).get("state") == "running"), None),
                       timeout_s=10, interval_s=0.005)
        worker = cluster.worker_of(job["id"])
        worker.process.send_signal(signal.SIGSTOP)
        if cluster.job(job["id"])["state"] == "running":
            running, stopping = job, worker
            break
        worker.process.send_signal(signal.SIGCONT)
    assert stopping is not None, "no job was caught running"
    stopping.process.send_signal(signal.SIGTERM)  # handled once it runs again
    stopping.process.send_signal(signal.SIGCONT)
    assert stopping.process.wait(15) == 0
    assert finished(b, running["id"])["status"] == "done"  # the job in hand was finished, not lost
    for job in jobs:
        assert finished(b, job["id"])["status"] == "done"
    for web in cluster.webs:
        wait_for(lambda: cluster.ready_workers(web) == 1, timeout_s=10, interval_s=0.2)
