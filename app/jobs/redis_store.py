"""The jobs' shared state in Redis: one hash per job, the bounded set of live jobs, results with a time-to-live.

Both sides use it: the web processes (RedisBackend) submit, read, cancel; the workers (app.jobs.redis_worker)
claim, report and finish. Every change of a job's state is one Lua script, so it is atomic across processes,
and every change a worker makes carries the job's attempt number: a worker that was taken for dead (and whose job
was failed or handed to another worker) can no longer change the job. RQ carries the queue itself: the list that
workers take jobs from, its worker registry and its heartbeats.

Keys, all under the prefix `<redis_queue>:` (the RQ queue has RQ's own keys, `rq:queue:<redis_queue>`):
  job:<id>    hash: state, attempt, times, crop, progress, result, error (expires result_ttl_s after the job ends)
  in:<id>     hash: the request's two images, while the job is queued or running
  out:<id>    hash: the PNG bytes of a done job (expires with its job)
  alive:<id>  the attempt now running, refreshed by its worker every second, expiring worker_lost_after_s later
  active      sorted set of the jobs queued or running: the queue bound counts these
  client:<c>  set of the jobs client <c> submitted that may still be live (those no longer in `active` are dropped
              at its next submission): max_jobs_per_client counts these
  finished    sorted set of finished jobs by finishing time, with `sizes` and `bytes`: the caps on kept results
  durations   the last seconds of jobs, for Retry-After
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import uuid
from typing import Any, Sequence

import redis
from PIL import Image
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from rq import Queue, worker_registration

from app.config import ServiceConfig
from app.engine.jpeg import JpegProfile
from app.errors import JobStateError, QueueFullError, TooManyJobsError, UnknownJobError
from app.jobs.model import Box, JobError, JobOutput, JobRequest, JobResult, JobState, JobStatus, Progress
from app.jobs.output import OutputSpec

log = logging.getLogger(__name__)

# The RQ job function, by name: the web side never imports the worker's module.
JOB_FUNCTION = "app.jobs.redis_worker.perform"
# How often a worker reports: its job's progress and heartbeat, its own heartbeat, a look at the cancel flag.
REPORT_EVERY_S = 0.25
PRESENCE_EVERY_S = 1.0
RECENT_DURATIONS = 16
# RQ kills a job that overruns job_timeout_s by this much; the worker itself stops it at job_timeout_s.
HARD_TIMEOUT_MARGIN_S = 60

# A client's set of live job ids (for max_jobs_per_client) is dropped after a day without a submission.
CLIENT_SET_TTL_S = 86400

# Each worker names its device in its RQ worker hash, under this field.
DEVICE_FIELD = "zssr_device"

_FIELDS = ("state", "created", "photo", "crop", "started", "finished", "progress", "error", "result", "cancel",
           "attempt", "steps")

# Shared by every script. ARGV: 1 prefix, 2 result ttl (ms), 3 max results, 4 results cap (bytes),
# 5 worker_lost_after (ms), 6 retries, 7 the RQ queue's key, 8 and 9 the messages of a lost job; then the
# script's own arguments from 10.
_LIB = """
local P = ARGV[1]
local TTL_MS, MAX_RESULTS, CAP = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local LOST_MS, RETRIES, QUEUE = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local LOST_RUNNING, LOST_TAKEN = ARGV[8], ARGV[9]

local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end

local function key(kind, id)
  return P .. kind .. ':' .. id
end

local function forget(id)
  local n = tonumber(redis.call('HGET', P .. 'sizes', id) or '0')
  redis.call('HDEL', P .. 'sizes', id)
  redis.call('DECRBY', P .. 'bytes', n)
  redis.call('ZREM', P .. 'finished', id)
  redis.call('DEL', key('job', id), key('out', id))
end

-- A job has ended: it leaves the bound, its results expire, and finished jobs past their time-to-live or beyond
-- the caps are dropped, oldest first.
local function retire(id, t, nbytes)
  redis.call('ZREM', P .. 'active', id)
  redis.call('DEL', key('in', id), key('alive', id))
  redis.call('PEXPIRE', key('job', id), TTL_MS)
  redis.call('ZADD', P .. 'finished', t, id)
  redis.call('HSET', P .. 'sizes', id, nbytes)
  redis.call('INCRBY', P .. 'bytes', nbytes)
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', t - TTL_MS / 1000)) do
    forget(old)
  end
  while true do
    local count = redis.call('ZCARD', P .. 'finished')
    local bytes = tonumber(redis.call('GET', P .. 'bytes') or '0')
    if count <= MAX_RESULTS and (bytes <= CAP or count <= 1) then break end
    forget(redis.call('ZRANGE', P .. 'finished', 0, 0)[1])
  end
end

-- The job's worker is gone: cancelled if a cancel was asked for, else queued again while retries are left
-- (returns the new RQ job id, for the caller to enqueue), else failed with `why`.
local function lose(id, t, why)
  local job = key('job', id)
  redis.call('DEL', key('alive', id))
  if redis.call('HGET', job, 'cancel') == '1' then
    redis.call('HSET', job, 'state', 'cancelled', 'finished', t)
    retire(id, t, 0)
    return false
  end
  local attempt = tonumber(redis.call('HGET', job, 'attempt'))
  if attempt <= RETRIES then
    local rq_id = id .. '-' .. (attempt + 1)
    redis.call('HSET', job, 'state', 'queued', 'attempt', attempt + 1, 'rq_id', rq_id, 'progress', '')
    redis.call('HDEL', job, 'started', 'worker', 'taken')
    return rq_id
  end
  redis.call('HSET', job, 'state', 'failed', 'finished', t,
             'error', cjson.encode({code = 'worker_lost', message = why}))
  retire(id, t, 0)
  return false
end

local function is_alive(id, attempt)
  return redis.call('GET', key('alive', id)) == attempt
end
"""

# ARGV 10: job id. The job's fields (see _FIELDS) after a check that its worker is alive, then its place in the
# queue (1 is next; a job taken by a worker but not yet started counts as next) and an RQ job id to enqueue
# when the check found its worker gone and retries left; nil for an unknown job.
_LOOK = _LIB + """
local id = ARGV[10]
local job = key('job', id)
local state, attempt = unpack(redis.call('HMGET', job, 'state', 'attempt'))
if not state then return nil end
local requeue = ''
if state == 'running' and not is_alive(id, attempt) then
  requeue = lose(id, now(), LOST_RUNNING) or ''
end
local fields = redis.call('HMGET', job, 'state', 'created', 'photo', 'crop', 'started', 'finished', 'progress',
                          'error', 'result', 'cancel', 'attempt', 'steps')
local position = 0
if fields[1] == 'queued' then
  position = (redis.call('LPOS', QUEUE, redis.call('HGET', job, 'rq_id')) or 0) + 1
end
table.insert(fields, position)
table.insert(fields, requeue)
return fields
"""

# Every live job: a running one whose worker is gone is lost; so is a queued one that a worker took from RQ's
# queue but never started, worker_lost_after_s after a sweep first found it taken. Returns the numbers queued and
# running, then the RQ job ids to enqueue.
_SWEEP = _LIB + """
local t = now()
local queued, running, requeue = 0, 0, {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'active', 0, -1)) do
  local job = key('job', id)
  local state, attempt, rq_id, taken = unpack(redis.call('HMGET', job, 'state', 'attempt', 'rq_id', 'taken'))
  local again = false
  if state == 'running' then
    if is_alive(id, attempt) then running = running + 1 else again = lose(id, t, LOST_RUNNING) end
  elseif state == 'queued' then
    queued = queued + 1
    if redis.call('LPOS', QUEUE, rq_id) then
      if taken then redis.call('HDEL', job, 'taken') end
    elseif not taken then
      redis.call('HSET', job, 'taken', t)
    elseif (t - tonumber(taken)) * 1000 > LOST_MS then
      queued = queued - 1
      again = lose(id, t, LOST_TAKEN)
    end
  else
    redis.call('ZREM', P .. 'active', id)
  end
  if again then
    queued = queued + 1
    table.insert(requeue, again)
  end
end
local answer = {queued, running}
for _, rq_id in ipairs(requeue) do table.insert(answer, rq_id) end
return answer
"""

# ARGV 10: job id. Cancel a queued job now (it leaves the RQ queue) or flag a running one for its worker.
# Returns the state it is in afterwards and, for a job cancelled here, the RQ job id to delete.
_CANCEL = _LIB + """
local id = ARGV[10]
local job = key('job', id)
local state, rq_id = unpack(redis.call('HMGET', job, 'state', 'rq_id'))
if not state then return nil end
if state == 'queued' then
  redis.call('LREM', QUEUE, 0, rq_id)
  local t = now()
  redis.call('HSET', job, 'state', 'cancelled', 'finished', t)
  retire(id, t, 0)
  return {'cancelled', rq_id}
end
if state == 'running' then
  redis.call('HSET', job, 'cancel', '1')
end
return {state, ''}
"""

# ARGV 10 job id, 11 attempt, 12 worker name. A worker starts the job: 'running', or the state that stops it.
_START = _LIB + """
local id, attempt = ARGV[10], ARGV[11]
local job = key('job', id)
local state, current = unpack(redis.call('HMGET', job, 'state', 'attempt'))
if not state then return 'gone' end
if current ~= attempt then return 'stale' end
if state ~= 'queued' then return state end
redis.call('HSET', job, 'state', 'running', 'started', now(), 'worker', ARGV[12])
redis.call('HDEL', job, 'taken')
redis.call('SET', key('alive', id), attempt, 'PX', LOST_MS)
return 'running'
"""

# ARGV 10 job id, 11 attempt, 12 progress (JSON). The worker's report: 'ok', 'cancel' when asked to stop, or
# 'lost' when the job is no longer this worker's (it was taken for dead, or the job is gone).
_BEAT = _LIB + """
local id, attempt = ARGV[10], ARGV[11]
local job = key('job', id)
local state, current, cancel = unpack(redis.call('HMGET', job, 'state', 'attempt', 'cancel'))
if state ~= 'running' or current ~= attempt then return 'lost' end
redis.call('SET', key('alive', id), attempt, 'PX', LOST_MS)
redis.call('HSET', job, 'progress', ARGV[12])
if cancel == '1' then return 'cancel' end
return 'ok'
"""

# ARGV 10 job id, 11 attempt, 12 state, 13 progress, 14 error, 15 result (JSON or ''), 16 and 17 the PNGs
# ('' without), 18 seconds. Returns 'ok', or 'lost' when the job is no longer this worker's.
_FINISH = _LIB + """
local id, attempt = ARGV[10], ARGV[11]
local job = key('job', id)
local state, current = unpack(redis.call('HMGET', job, 'state', 'attempt'))
if state ~= 'running' or current ~= attempt then return 'lost' end
local t = now()
redis.call('HSET', job, 'state', ARGV[12], 'finished', t, 'progress', ARGV[13], 'error', ARGV[14],
           'result', ARGV[15])
local nbytes = 0
if ARGV[16] ~= '' then
  redis.call('HSET', key('out', id), 'sr', ARGV[16], 'bicubic', ARGV[17])
  redis.call('PEXPIRE', key('out', id), TTL_MS)
  nbytes = string.len(ARGV[16]) + string.len(ARGV[17])
end
redis.call('LPUSH', P .. 'durations', ARGV[18])
redis.call('LTRIM', P .. 'durations', 0, %d)
retire(id, t, nbytes)
return 'ok'
""" % (RECENT_DURATIONS - 1)

# ARGV 10 job id, 11 attempt, 12 why. The worker stops in the middle of the job (it was shut down): the job is
# lost as if the worker had died, now rather than after worker_lost_after_s. Returns an RQ job id to enqueue, or ''.
_ABANDON = _LIB + """
local id, attempt = ARGV[10], ARGV[11]
local job = key('job', id)
local state, current = unpack(redis.call('HMGET', job, 'state', 'attempt'))
if state ~= 'running' or current ~= attempt then return '' end
return lose(id, now(), ARGV[12]) or ''
"""


def connect(url: str, socket_timeout_s: float | None = 5.0) -> redis.Redis:
    """A client that gives up quickly when Redis is away (a request answers 503 rather than hang)."""
    return redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=socket_timeout_s,
                                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2), health_check_interval=30)


def unreachable_errors() -> tuple[type[Exception], ...]:
    """The errors that mean Redis cannot be reached (or is still loading its data), not that a command is wrong."""
    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


@dataclasses.dataclass(frozen=True)
class Counts:
    queued: int
    running: int


class JobStore:
    """The jobs of one queue (config key redis_queue) in one Redis; thread-safe, as redis-py's client is."""

    def __init__(self, connection: redis.Redis, service: ServiceConfig):
        self.connection = connection
        self.service = service
        self.queue = Queue(service.redis_queue, connection=connection)
        self._prefix = f"{service.redis_queue}:"
        lost_after = f"{service.worker_lost_after_s:g}"
        self._common = [
            self._prefix, str(math.ceil(service.result_ttl_s * 1000)), str(service.max_results),
            str(int(service.results_max_MB * 1_000_000)), str(math.ceil(service.worker_lost_after_s * 1000)),
            str(service.job_retries), self.queue.key,
            f"the worker running this job stopped (nothing heard from it for {lost_after} s); please try again",
            "the worker that took this job stopped before starting it; please try again",
        ]
        scripts = {"look": _LOOK, "sweep": _SWEEP, "cancel": _CANCEL, "start": _START, "beat": _BEAT,
                   "finish": _FINISH, "abandon": _ABANDON}
        self._scripts = {name: connection.register_script(source) for name, source in scripts.items()}

    def key(self, kind: str, job_id: str = "") -> str:
        return f"{self._prefix}{kind}:{job_id}" if job_id else f"{self._prefix}{kind}"

    def _run(self, script: str, *args: Any) -> Any:
        return self._scripts[script](args=[*self._common, *args])

    # The web side.

    def submit(self, request: JobRequest, steps: int) -> JobStatus:
        """Queue a job unless queue_size jobs are queued or running (QueueFullError), or its client already has
        max_jobs_per_client of them (TooManyJobsError)."""
        job_id = uuid.uuid4().hex
        payload = _request_payload(request)
        for attempt in range(2):
            answer = self._admit(job_id, request, payload, steps)
            if answer == "ok":
                return self.status(job_id)
            if answer == "client":
                raise TooManyJobsError.at(self.service.max_jobs_per_client)
            if attempt == 0:
                self.sweep()  # a lost job may be holding a place
        raise QueueFullError(f"the queue is full ({self.service.queue_size} jobs); try again shortly")

    def _admit(self, job_id: str, request: JobRequest, payload: dict[str, Any], steps: int) -> str:
        """Count the live jobs (all, and the client's) and add this one in one transaction, enqueueing it on RQ's
        queue with it: "ok", or "full" or "client" for the bound that refused it."""
        rq_job = self._rq_job(job_id, 1)
        active = self.key("active")
        cap = self.service.max_jobs_per_client if request.client != "-" else 0
        # The client's jobs that may still be live; those that have left `active` are dropped here.
        mine = self.key("client", request.client)
        with self.connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(active, mine)
                    if pipe.zcard(active) >= self.service.queue_size:
                        pipe.unwatch()
                        return "full"
                    ended = []
                    if cap:
                        ids = pipe.smembers(mine)
                        ended = [i for i in ids if pipe.zscore(active, i) is None]
                        if len(ids) - len(ended) >= cap:
                            pipe.unwatch()
                            return "client"
                    seconds, micros = pipe.time()
                    created = seconds + micros / 1e6
                    pipe.multi()
                    if cap:
                        if ended:
                            pipe.srem(mine, *ended)
                        pipe.sadd(mine, job_id)
                        pipe.expire(mine, CLIENT_SET_TTL_S)
                    pipe.zadd(active, {job_id: created})
                    pipe.hset(self.key("job", job_id), mapping={
                        "state": JobState.QUEUED.value, "created": repr(created), "attempt": "1", "rq_id": rq_job.id,
                        "steps": str(steps), "request_id": request.request_id,
                        "photo": json.dumps(list(request.photo_size)),
                        "crop": json.dumps(dataclasses.asdict(request.crop))})
                    pipe.hset(self.key("in", job_id), mapping=payload)
                    self.queue.enqueue_job(rq_job, pipeline=pipe)
                    pipe.execute()
                    return "ok"
                except redis.WatchError:
                    continue

    def status(self, job_id: str) -> JobStatus:
        values = self._run("look", job_id)
        if values is None:
            raise UnknownJobError(f"no job {job_id!r} (unknown, or its result has expired)")
        *fields, position, requeue = values
        if requeue:
            self.enqueue(requeue)
        return _decode_status(job_id, fields, int(position))

    def output(self, job_id: str) -> JobOutput:
        with self.connection.pipeline(transaction=False) as pipe:
            pipe.hmget(self.key("job", job_id), "state", "result")
            pipe.hmget(self.key("out", job_id), "sr", "bicubic")
            (state, result), (sr, bicubic) = pipe.execute()
        if state is None:
            raise UnknownJobError(f"no job {job_id!r} (unknown, or its result has expired)")
        if state.decode() != JobState.DONE.value:
            raise JobStateError(f"job {job_id} is {state.decode()}; it has no result")
        if sr is None:
            raise UnknownJobError(f"the result of job {job_id!r} has expired")
        return JobOutput(result=_decode_result(json.loads(result)), sr_png=sr, bicubic_png=bicubic)

    def cancel(self, job_id: str) -> JobStatus:
        answer = self._run("cancel", job_id)
        if answer is None:
            raise UnknownJobError(f"no job {job_id!r} (unknown, or its result has expired)")
        state, rq_id = (value.decode() for value in answer)
        if state in (JobState.DONE.value, JobState.FAILED.value):
            raise JobStateError(f"job {job_id} is already {state}; there is nothing to cancel")
        if rq_id:
            rq_job = self.queue.fetch_job(rq_id)
            if rq_job is not None:
                try:
                    rq_job.delete()
                except ValueError:
                    # RQ lists the job's executions and then fetches each: a worker that ends the execution in
                    # between makes the fetch fail. The job had left the queue by then, and it is cancelled above.
                    log.debug("job %s: its RQ execution ended while it was deleted", job_id)
        return self.status(job_id)

    def sweep(self) -> Counts:
        """Find lost jobs (failing them, or queueing them again) and count the live ones."""
        queued, running, *requeue = self._run("sweep")
        for rq_id in requeue:
            self.enqueue(rq_id.decode())
        return Counts(queued=int(queued), running=int(running))

    def sweep_if_due(self, holder: str) -> None:
        """Sweep unless another process did in the last second (each worker tries once a second)."""
        if self.connection.set(self.key("sweeping"), holder, nx=True, px=int(PRESENCE_EVERY_S * 900)):
            self.sweep()

    def enqueue(self, rq_id: str | bytes) -> None:
        """Put a job that was taken for lost back on RQ's queue, as its next attempt."""
        rq_id = rq_id.decode() if isinstance(rq_id, bytes) else rq_id
        job_id, attempt = rq_id.rsplit("-", 1)
        self.queue.enqueue_job(self._rq_job(job_id, int(attempt)))

    def _rq_job(self, job_id: str, attempt: int):
        """RQ's job for one attempt (id "<job id>-<attempt>"): it calls perform(job_id, attempt) in a worker."""
        ttl = math.ceil(self.service.result_ttl_s)
        return self.queue.create_job(
            JOB_FUNCTION, args=(job_id, attempt), job_id=f"{job_id}-{attempt}", description=f"enlarge {job_id}",
            timeout=math.ceil(self.service.job_timeout_s) + HARD_TIMEOUT_MARGIN_S, result_ttl=ttl, failure_ttl=ttl)

    def worker_devices(self) -> list[str]:
        """The device of each live worker of this queue, from RQ's worker registry (a dead worker's entry expires
        worker_lost_after_s after its last heartbeat)."""
        keys = sorted(worker_registration.get_keys(queue=self.queue))
        with self.connection.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hget(key, DEVICE_FIELD)
            devices = pipe.execute()
        return [device.decode() for device in devices if device is not None]

    def retry_after_s(self, workers: int, fallback_s: float) -> int:
        """A guess at when a place frees up: the mean recent job time over the number of workers."""
        recent = [float(s) for s in self.connection.lrange(self.key("durations"), 0, -1)]
        mean = sum(recent) / len(recent) if recent else fallback_s
        return max(1, min(600, math.ceil(mean / max(1, workers))))

    # The worker side.

    def start(self, job_id: str, attempt: int, worker: str) -> tuple[str, JobRequest | None]:
        """Mark the job running on `worker`: ("running", its request), or the state that stops it starting."""
        state = self._run("start", job_id, str(attempt), worker).decode()
        if state != JobState.RUNNING.value:
            return state, None
        fields = self.connection.hgetall(self.key("in", job_id))
        meta = self.connection.hmget(self.key("job", job_id), "photo", "crop", "request_id")
        return state, _decode_request(fields, meta)

    def waited_s(self, job_id: str) -> float | None:
        """How long a job that has just started waited since it was submitted (Redis's clock), for the metrics."""
        created, started = self.connection.hmget(self.key("job", job_id), "created", "started")
        if created is None or started is None:
            return None
        return float(started) - float(created)

    def beat(self, job_id: str, attempt: int, progress: Progress) -> str:
        return self._run("beat", job_id, str(attempt), json.dumps(dataclasses.asdict(progress))).decode()

    def finish(self, job_id: str, attempt: int, state: JobState, progress: Progress, seconds: float,
               output: JobOutput | None = None, error: JobError | None = None) -> bool:
        """Record the outcome; False when the job is no longer this worker's (it was taken for lost)."""
        answer = self._run(
            "finish", job_id, str(attempt), state.value, json.dumps(dataclasses.asdict(progress)),
            json.dumps(dataclasses.asdict(error)) if error else "",
            json.dumps(dataclasses.asdict(output.result)) if output else "",
            output.sr_png if output else b"", output.bicubic_png if output else b"", repr(seconds))
        return answer.decode() == "ok"

    def abandon(self, job_id: str, attempt: int) -> None:
        rq_id = self._run("abandon", job_id, str(attempt),
                          "the worker running this job was shut down; please try again")
        if rq_id:
            self.enqueue(rq_id)


def _request_payload(request: JobRequest) -> dict[str, Any]:
    """The two images as raw pixels (no encoding to pay for on either side) and the seed."""
    out = request.output
    payload: dict[str, Any] = {"seed": "" if request.seed is None else str(request.seed),
                               "jpeg": "" if request.jpeg is None else json.dumps(dataclasses.asdict(request.jpeg)),
                               "format": out.format, "quality": str(out.quality), "icc": out.icc or b"",
                               "exif": out.exif or b"", "name": request.name, "scale": str(request.scale),
                               "context": "" if request.context is None else json.dumps(dataclasses.asdict(
                                   request.context))}
    for name, image in (("crop", request.crop_image), ("train", request.train_image)):
        payload[f"{name}_mode"] = image.mode
        payload[f"{name}_size"] = json.dumps(list(image.size))
        payload[f"{name}_pixels"] = image.tobytes()
    return payload


def _decode_request(fields: dict[bytes, bytes], meta: Sequence[bytes | None]) -> JobRequest:
    def image(name: str) -> Image.Image:
        size = tuple(json.loads(fields[f"{name}_size".encode()]))
        return Image.frombytes(fields[f"{name}_mode".encode()].decode(), size, fields[f"{name}_pixels".encode()])

    photo, crop, request_id = meta
    seed = fields[b"seed"].decode()
    jpeg = json.loads(fields[b"jpeg"]) if fields.get(b"jpeg") else None
    output = OutputSpec(format=fields[b"format"].decode(), quality=int(fields[b"quality"]),
                        icc=fields[b"icc"] or None, exif=fields[b"exif"] or None)
    return JobRequest(photo_size=tuple(json.loads(photo)), crop=Box(**json.loads(crop)), crop_image=image("crop"),
                      train_image=image("train"), seed=int(seed) if seed else None,
                      request_id=request_id.decode() if request_id else "-",
                      jpeg=None if jpeg is None else JpegProfile.from_dict(jpeg), output=output,
                      name=fields[b"name"].decode(), scale=int(fields[b"scale"]),
                      context=Box(**json.loads(fields[b"context"])) if fields.get(b"context") else None)


def _decode_result(data: dict[str, Any]) -> JobResult:
    return JobResult(**{**data, "crop": Box(**data["crop"]), "photo_size": tuple(data["photo_size"]),
                        "learned_from_size": tuple(data["learned_from_size"]),
                        "iterations_per_step": tuple(data["iterations_per_step"]),
                        "learning": None if data.get("learning") is None else tuple(data["learning"]),
                        "context": None if data.get("context") is None else Box(**data["context"])})


def _decode_status(job_id: str, values: Sequence[bytes | None], position: int) -> JobStatus:
    f = {name: (value.decode() if value else None) for name, value in zip(_FIELDS, values)}
    state = JobState(f["state"])
    progress = Progress(**json.loads(f["progress"])) if f["progress"] else Progress(steps=int(f["steps"]))
    error = json.loads(f["error"]) if f["error"] else None
    return JobStatus(
        id=job_id, state=state, created_at=float(f["created"]), progress=progress,
        queue_position=position if state is JobState.QUEUED else 0 if state is JobState.RUNNING else None,
        crop=Box(**json.loads(f["crop"])), photo_size=tuple(json.loads(f["photo"])),
        cancel_requested=f["cancel"] == "1", started_at=float(f["started"]) if f["started"] else None,
        finished_at=float(f["finished"]) if f["finished"] else None,
        result=_decode_result(json.loads(f["result"])) if f["result"] else None,
        error=JobError(error["code"], error["message"]) if error else None)
