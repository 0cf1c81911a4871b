"""The in-process job runner on its own: queue order and bound, cancelling, failures, expiry and caps, progress."""

from __future__ import annotations

import io
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from app.config import ServiceConfig
from app.engine import EngineConfig
from app.errors import BadImageError, Cancelled, JobStateError, QueueFullError, UnknownJobError
from app.jobs import Box, JobOutput, JobRequest, JobResult, JobState, MemoryBackend
from app.jobs.progress import ProgressTracker

ENGINE = EngineConfig(scale_factor=2.0, scale_times=3, num_epochs=100, time_budget_s=10.0, device="cpu")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeWork:
    """Stands in for the engine: each job blocks until released (or stopped), then succeeds or raises."""

    def __init__(self, png_bytes: int = 100) -> None:
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.raises: BaseException | None = None
        self.png_bytes = png_bytes

    def __call__(self, request, config, tracker, should_stop) -> JobOutput:
        tracker.on_phase(1, "training")
        tracker.on_step(1, 7, 0.5, 1e-3)
        self.started.release()
        while not self.release.wait(0.01):
            if should_stop():
                raise Cancelled("stopped")
        if self.raises is not None:
            raise self.raises
        crop = request.crop
        result = JobResult(width=crop.width * 8, height=crop.height * 8, scale=8, crop=crop,
                           photo_size=request.photo_size, learned_from_size=request.train_image.size,
                           seconds=0.1, iterations=7, iterations_per_step=(7,), device="fake",
                           budget_exhausted=False)
        return JobOutput(result, b"s" * self.png_bytes, b"b" * self.png_bytes)


def request(size=(40, 30)) -> JobRequest:
    return JobRequest.from_photo(Image.new("RGB", size), Box(0, 0, 16, 16), train_max_side=32)


@pytest.fixture
def make_backend():
    backends = []

    def build(work, clock=None, **service):
        backend = MemoryBackend(ENGINE, ServiceConfig(**service), work=work, **({"clock": clock} if clock else {}))
        backends.append(backend)
        return backend

    yield build
    for backend in backends:
        backend.close()


def test_jobs_run_in_order_with_queue_positions(make_backend):
    work = FakeWork()
    backend = make_backend(work, queue_size=3)
    first, second, third = (backend.submit(request()) for _ in range(3))
    assert work.started.acquire(timeout=30)
    assert backend.status(first.id).state is JobState.RUNNING
    assert backend.status(first.id).queue_position == 0
    assert [backend.status(j.id).queue_position for j in (second, third)] == [1, 2]
    work.release.set()
    done = backend.wait(third.id, 10)
    assert done.state is JobState.DONE and done.queue_position is None
    assert done.progress.fraction == 1.0
    assert backend.output(third.id).result.width == 128


def test_full_queue_refuses_with_retry_after(make_backend):
    work = FakeWork()
    backend = make_backend(work, queue_size=2)
    backend.submit(request())
    backend.submit(request())
    with pytest.raises(QueueFullError) as caught:
        backend.submit(request())
    assert caught.value.retry_after_s >= 1
    work.release.set()


def test_cancel_queued_job_at_once_and_running_job_at_its_next_check(make_backend):
    work = FakeWork()
    backend = make_backend(work, queue_size=4)
    running, queued = backend.submit(request()), backend.submit(request())
    assert work.started.acquire(timeout=30)
    assert backend.cancel(queued.id).state is JobState.CANCELLED
    status = backend.cancel(running.id)
    assert status.state is JobState.RUNNING and status.cancel_requested
    assert backend.wait(running.id, 10).state is JobState.CANCELLED
    assert backend.cancel(running.id).state is JobState.CANCELLED  # cancelling twice is harmless
    with pytest.raises(JobStateError):
        backend.output(running.id)
    # The worker is free again.
    work.release.set()
    assert backend.wait(backend.submit(request()).id, 10).state is JobState.DONE


def test_cancelling_a_finished_job_is_a_conflict(make_backend):
    work = FakeWork()
    work.release.set()
    backend = make_backend(work)
    job = backend.wait(backend.submit(request()).id, 10)
    assert job.state is JobState.DONE
    with pytest.raises(JobStateError):
        backend.cancel(job.id)


@pytest.mark.parametrize("error, code", [(BadImageError("no good"), "bad_image"), (RuntimeError("secret"), "internal")])
def test_failures_say_what_went_wrong_without_internals(make_backend, error, code):
    work = FakeWork()
    work.release.set()
    work.raises = error
    backend = make_backend(work)
    job = backend.wait(backend.submit(request()).id, 10)
    assert job.state is JobState.FAILED and job.error.code == code
    assert "secret" not in job.error.message
    assert backend.health().alive  # a failing job does not kill its worker


def test_results_expire_after_their_time_to_live(make_backend):
    clock, work = Clock(), FakeWork()
    work.release.set()
    backend = make_backend(work, clock=clock, result_ttl_s=60.0)
    job = backend.wait(backend.submit(request()).id, 10)
    clock.now += 59
    assert backend.status(job.id).state is JobState.DONE
    clock.now += 2
    with pytest.raises(UnknownJobError):
        backend.status(job.id)


def test_at_most_max_results_are_kept_oldest_dropped_first(make_backend):
    work = FakeWork()
    work.release.set()
    backend = make_backend(work, max_results=2)
    ids = [backend.wait(backend.submit(request()).id, 10).id for _ in range(3)]
    with pytest.raises(UnknownJobError):
        backend.status(ids[0])
    assert [backend.status(i).state for i in ids[1:]] == [JobState.DONE, JobState.DONE]


def test_results_are_capped_in_bytes(make_backend):
    work = FakeWork(png_bytes=300_000)  # 0.6 MB a job
    work.release.set()
    backend = make_backend(work, results_max_MB=1.0)
    ids = [backend.wait(backend.submit(request()).id, 10).id for _ in range(3)]
    with pytest.raises(UnknownJobError):
        backend.output(ids[1])
    assert backend.output(ids[2]).nbytes == 600_000


def test_wait_returns_at_its_timeout_while_the_job_runs(make_backend):
    work = FakeWork()
    backend = make_backend(work)
    job = backend.submit(request())
    assert backend.wait(job.id, 0.05).state in (JobState.QUEUED, JobState.RUNNING)
    work.release.set()


def test_health_and_close(make_backend):
    work = FakeWork()
    backend = make_backend(work, workers_per_device=2, queue_size=5)
    health = backend.health()
    assert health.alive and health.workers == 2 and health.device.startswith("cpu")
    jobs = [backend.submit(request()) for _ in range(3)]
    assert work.started.acquire(timeout=30) and work.started.acquire(timeout=30)
    backend.close()
    assert not backend.health().alive
    assert {backend.status(j.id).state for j in jobs} == {JobState.CANCELLED}
    with pytest.raises(QueueFullError):
        backend.submit(request())


def test_unknown_job(make_backend):
    backend = make_backend(FakeWork())
    for call in (backend.status, backend.output, backend.cancel, lambda i: backend.wait(i, 0)):
        with pytest.raises(UnknownJobError):
            call("nope")


def test_request_keeps_only_the_crop_and_a_downscaled_photo():
    photo = Image.new("RGB", (2000, 1000), "white")
    job = JobRequest.from_photo(photo, Box(10, 20, 64, 48), train_max_side=512, seed=3)
    assert job.photo_size == (2000, 1000)
    assert job.crop_image.size == (64, 48)
    assert job.train_image.size == (512, 256)
    small = Image.new("RGB", (300, 200))
    assert JobRequest.from_photo(small, Box(0, 0, 64, 64), train_max_side=512).train_image.size == (300, 200)


def test_progress_counts_steps_and_iterations_and_estimates_from_iterations_without_a_budget():
    clock = Clock()
    tracker = ProgressTracker(steps=3, num_epochs=100, budget_s=None, clock=clock)
    assert tracker.snapshot().step == 0 and tracker.snapshot().eta_s is None
    tracker.on_phase(1, "training")
    tracker.on_step(1, 50, 0.2, 1e-3)
    clock.now += 10
    p = tracker.snapshot()
    assert (p.step, p.steps, p.phase, p.iteration, p.iterations) == (1, 3, "training", 50, 50)
    assert p.eta_s == pytest.approx(50)  # half a step in 10 s: two and a half steps to go
    assert p.fraction == pytest.approx(10 / 60)
    tracker.on_phase(1, "enlarging")
    clock.now += 2
    tracker.on_step(2, 20, 0.1, 1e-3)  # a new step starts without its phase call: still counted
    p = tracker.snapshot()
    assert (p.step, p.phase, p.iteration, p.iterations) == (2, "training", 20, 70)
    # 1.2 of 3 steps in 12 s leaves 18 s of training; enlarging step 1 took 2 s, so step 3 takes 32 s.
    assert p.eta_s == pytest.approx(18 + 32) and p.fraction == pytest.approx(12 / 62)


def test_progress_with_a_budget_adds_the_last_enlargement_predicted_from_the_first():
    clock = Clock()
    tracker = ProgressTracker(steps=3, num_epochs=3000, budget_s=30.0, scale_factor=2.0, clock=clock)
    tracker.on_step(1, 10, 0.2, 1e-3)
    clock.now += 9
    assert tracker.snapshot().eta_s == pytest.approx(21)  # nothing enlarged yet: the budget alone
    tracker.on_phase(1, "enlarging")
    clock.now += 1  # enlarging step 1 took 1 s: step 3 makes 16 times the pixels
    tracker.on_phase(2, "training")
    p = tracker.snapshot()
    assert p.eta_s == pytest.approx(20 + 16)
    assert p.fraction == pytest.approx(9 / 30)  # 10/46 now, but the bar never goes back
    clock.now += 10
    assert tracker.snapshot().fraction == pytest.approx(20 / 46)
    clock.now += 10
    tracker.on_phase(3, "enlarging")
    clock.now += 10
    assert tracker.snapshot().eta_s == pytest.approx(6)
    clock.now += 10  # slower than predicted: no estimate rather than a wrong one
    p = tracker.snapshot()
    assert p.eta_s is None and p.fraction == 0.99


def test_progress_takes_the_last_enlargement_from_a_hint_when_there_is_one():
    clock = Clock()
    tracker = ProgressTracker(steps=3, num_epochs=3000, budget_s=30.0, clock=clock, last_enlarge_hint_s=12.0)
    tracker.on_step(1, 10, 0.2, 1e-3)
    clock.now += 10
    assert tracker.snapshot().eta_s == pytest.approx(20 + 12)
    assert tracker.last_enlarge_s() is None
    tracker.on_phase(3, "enlarging")
    clock.now += 5
    assert tracker.snapshot().eta_s == pytest.approx(7) and tracker.last_enlarge_s() == pytest.approx(5)


class EnlargingWork(FakeWork):
    """Ends like a real job: the last enlargement, taking `seconds` of the fake clock; notes the ETA it starts with."""

    def __init__(self, clock: Clock, seconds: float):
        super().__init__()
        self.clock, self.seconds = clock, seconds
        self.etas: list[float | None] = []
        self.release.set()

    def __call__(self, request, config, tracker, should_stop):
        output = super().__call__(request, config, tracker, should_stop)
        tracker.on_phase(3, "enlarging")
        self.etas.append(tracker.snapshot().eta_s)
        self.clock.now += self.seconds
        return output


def test_runner_predicts_the_last_enlargement_from_the_job_before(make_backend):
    clock = Clock()
    work = EnlargingWork(clock, seconds=8.0)
    backend = make_backend(work, clock=clock)
    backend.wait(backend.submit(request()).id, 10)  # crop 16x16: 128x128 out, 8 s
    job = JobRequest.from_photo(Image.new("RGB", (64, 64)), Box(0, 0, 32, 32), train_max_side=64)
    backend.wait(backend.submit(job).id, 10)  # crop 32x32: four times the pixels
    assert work.etas[0] is None and work.etas[1] == pytest.approx(32.0)


def test_web_jobs_use_the_real_photo_settings():
    """8x in three steps, sons degraded as the photo was, no back-projection (X2_REAL_CONF), the job's budget."""
    from app.config import load_settings
    from app.jobs import service_engine_config

    settings = load_settings(overrides={"back_projection_iters": 10, "job_time_budget_s": 7.0})
    config = service_engine_config(settings)
    assert (config.scale_factor, config.scale_times, config.total_scale) == (2.0, 3, 8.0)
    assert config.back_projection_iters == 0 and config.time_budget_s == 7.0
    # The job's own keys win over every input profile (a lossless profile's back-projections included).
    for name in config.profiles:
        applied = config.with_profile(name)
        assert (applied.back_projection_iters, applied.scale_times, applied.time_budget_s) == (0, 3, 7.0), name
    # config.json's photo profile: the noise measured on the photo, the photo's own JPEG tables on the sons.
    photo = config.with_profile("photo")
    assert photo.estimate_noise and photo.sons_jpeg
    # Each is switchable, and a set noise level (0 included) is kept as set, whatever the profile.
    manual = service_engine_config(settings.replace(estimate_noise=False, sons_jpeg=False, noise_std=0.0))
    assert (manual.estimate_noise, manual.sons_jpeg, manual.noise_std) == (False, False, 0.0)
    photo = manual.with_profile("photo")
    assert (photo.estimate_noise, photo.sons_jpeg, photo.noise_std) == (False, False, 0.0)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_grown_box_adds_the_margin_where_the_photo_has_it(data):
    width, height = data.draw(st.integers(1, 200)), data.draw(st.integers(1, 200))
    x, y = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
    box = Box(x, y, data.draw(st.integers(1, width - x)), data.draw(st.integers(1, height - y)))
    margin = data.draw(st.integers(0, 300))
    grown = box.grown(margin, (width, height))
    assert box.x - grown.x == min(margin, box.x) and box.y - grown.y == min(margin, box.y)
    assert grown.x + grown.width - (box.x + box.width) == min(margin, width - box.x - box.width)
    assert grown.y + grown.height - (box.y + box.height) == min(margin, height - box.y - box.height)


def test_a_request_holds_the_crop_with_its_context():
    photo = Image.effect_noise((100, 80), 40).convert("RGB")
    job = JobRequest.from_photo(photo, Box(5, 60, 32, 16), train_max_side=512, context_px=8)
    assert job.context == Box(0, 52, 45, 28) == job.enlarged  # 5 px left of the crop, 4 below it
    assert job.crop_image.tobytes() == photo.crop((0, 52, 45, 80)).tobytes()
    alone = JobRequest.from_photo(photo, Box(5, 60, 32, 16), train_max_side=512)
    assert alone.context is None and alone.enlarged == alone.crop and alone.crop_image.size == (32, 16)
    whole = JobRequest.from_photo(photo, Box(0, 0, 100, 80), train_max_side=512, context_px=8)
    assert whole.context is None  # nothing of the photo lies around it


def test_the_job_enlarges_the_context_and_cuts_the_crop_out(monkeypatch):
    """The result is the crop's part of the context's enlargement, and so is the bicubic comparison."""
    import app.jobs.work as work
    from app.engine import bicubic_resize
    from app.engine.zssr import SRResult

    photo = Image.effect_noise((60, 50), 40).convert("RGB")
    job = JobRequest.from_photo(photo, Box(20, 10, 16, 24), train_max_side=64, context_px=6, scale=2)
    seen = []

    def fake_super_resolve(image, config, **kwargs):
        seen.append(image.size)
        enlarged = image.resize((image.width * 2, image.height * 2), Image.Resampling.NEAREST)
        return SRResult(enlarged, 0, (0,), 0.0, "cpu", False, warm_start={"weights": None, "chosen_by": None})

    monkeypatch.setattr(work, "super_resolve", fake_super_resolve)
    config = EngineConfig(scale_factor=2.0, scale_times=1, device="cpu")
    output = work.run_zssr(job, config, ProgressTracker(1, 1, None, 2.0), lambda: False)
    assert seen == [(28, 36)]  # 20-6 .. 20+16+6, 10-6 .. 10+24+6
    sr = Image.open(io.BytesIO(output.sr_png))
    expected = photo.crop((20, 10, 36, 34)).resize((32, 48), Image.Resampling.NEAREST)
    assert sr.size == (32, 48) == (output.result.width, output.result.height)
    assert sr.convert("RGB").tobytes() == expected.tobytes()
    bicubic = Image.open(io.BytesIO(output.bicubic_png)).convert("RGB")
    assert bicubic.tobytes() == bicubic_resize(job.crop_image, 2.0).crop((12, 12, 44, 60)).convert("RGB").tobytes()
    assert output.result.context == Box(14, 4, 28, 36) and output.result.crop == Box(20, 10, 16, 24)


@pytest.mark.parametrize("context_px", [0, 4])
def test_a_queued_request_keeps_its_context(context_px):
    """The Redis backend's encoding of a request (as a worker reads it back) carries the context box."""
    import json

    from app.jobs.redis_store import _decode_request, _request_payload

    photo = Image.effect_noise((40, 30), 40).convert("RGB")
    job = JobRequest.from_photo(photo, Box(6, 5, 16, 16), train_max_side=32, context_px=context_px)
    fields = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in _request_payload(job).items()}
    meta = (json.dumps(list(job.photo_size)).encode(), json.dumps({"x": 6, "y": 5, "width": 16, "height": 16}).encode(),
            b"rid")
    back = _decode_request(fields, meta)
    assert back.context == job.context == (Box(2, 1, 24, 24) if context_px else None)
    assert back.crop_image.tobytes() == job.crop_image.tobytes() and back.enlarged == job.enlarged
