"""The job layer's plain data (app/jobs/model.py) without threads: boxes, what a request keeps of the upload, the
number of gradual steps, finished states and the size a result holds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.engine.jpeg import JpegProfile
from app.jobs import Box, JobOutput, JobRequest, JobState
from app.jobs.output import OutputSpec
from test_jobs import FakeWork


def noise_photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(width * 1000 + height)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def test_a_box_as_pil_is_left_top_right_bottom():
    assert Box(3, 4, 10, 20).as_pil() == (3, 4, 13, 24)


@pytest.mark.parametrize("box, margin, grown", [
    (Box(10, 10, 5, 5), 3, Box(7, 7, 11, 11)),  # room all round
    (Box(1, 2, 5, 5), 3, Box(0, 0, 9, 10)),  # the top-left corner stops it
    (Box(20, 22, 8, 6), 5, Box(15, 17, 15, 13)),  # the photo's right and bottom edges (30 x 30) stop it
    (Box(0, 0, 30, 30), 4, Box(0, 0, 30, 30)),  # the whole photo
])
def test_a_box_grows_by_the_margin_as_far_as_the_photo_reaches(box, margin, grown):
    assert box.grown(margin, (30, 30)) == grown


def test_a_box_within_its_context_is_placed_in_the_contexts_enlargement():
    context = Box(14, 4, 28, 36)
    assert Box(20, 10, 16, 24).within(context, 2) == (12, 12, 44, 60)
    assert Box(20, 10, 16, 24).within(context, 8) == (48, 48, 176, 240)
    assert context.within(context, 4) == (0, 0, 112, 144)


@pytest.mark.parametrize("scale, steps", [(2, 1), (4, 2), (8, 3), (1, 1)])
def test_a_request_takes_one_gradual_2x_step_per_doubling(scale, steps):
    job = JobRequest.from_photo(noise_photo(40, 30), Box(0, 0, 16, 16), train_max_side=64, scale=scale)
    assert job.steps == steps and job.scale == scale


@pytest.mark.parametrize("size, train_max_side, train_size", [
    ((600, 300), 300, (300, 150)),
    ((1000, 3), 512, (512, 2)),  # a side never rounds to nothing
    ((3, 2000), 100, (1, 100)),
    ((2000, 3), 512, (512, 1)),
    ((301, 200), 300, (300, 199)),
])
def test_a_large_photo_is_learned_from_downscaled_to_the_longest_side_allowed(size, train_max_side, train_size):
    photo = noise_photo(*size)
    job = JobRequest.from_photo(photo, Box(0, 0, 1, 1), train_max_side=train_max_side)
    assert job.train_image.size == train_size and job.photo_size == size
    # Downscaled smoothly (bicubic, antialiased), not by picking pixels: noise averages towards grey.
    spread = np.asarray(job.train_image, dtype=np.float64).std()
    assert spread < np.asarray(photo, dtype=np.float64).std() or min(train_size) < 4


def test_a_photo_within_the_limit_is_learned_from_as_it_is():
    photo = noise_photo(300, 200)
    job = JobRequest.from_photo(photo, Box(0, 0, 16, 16), train_max_side=300)
    assert job.train_image is photo


def test_a_request_carries_what_it_was_given_and_the_photos_colour_and_exif():
    photo = noise_photo(40, 30)
    photo.info["icc_profile"] = b"icc bytes"
    photo.info["exif"] = b"Exif\x00\x00exif bytes"
    profile = JpegProfile.standard(70)
    job = JobRequest.from_photo(photo, Box(2, 3, 16, 12), train_max_side=64, seed=7, request_id="rid",
                                jpeg=profile, client="c1", output=OutputSpec(format="webp", quality=80),
                                name="holiday", scale=4)
    assert (job.seed, job.request_id, job.jpeg, job.client, job.name, job.scale) == \
        (7, "rid", profile, "c1", "holiday", 4)
    assert job.output == OutputSpec(format="webp", quality=80, icc=b"icc bytes", exif=b"Exif\x00\x00exif bytes")
    assert job.crop == Box(2, 3, 16, 12) and job.crop_image.tobytes() == photo.crop((2, 3, 18, 15)).tobytes()
    plain = JobRequest.from_photo(noise_photo(40, 30), Box(0, 0, 16, 16), train_max_side=64)
    assert (plain.seed, plain.request_id, plain.jpeg, plain.client, plain.name, plain.scale) == \
        (None, "-", None, "-", "photo", 8)
    assert plain.output == OutputSpec()


def test_only_done_failed_and_cancelled_are_finished():
    assert {state for state in JobState if state.finished} == {JobState.DONE, JobState.FAILED, JobState.CANCELLED}
    assert [state.value for state in JobState] == ["queued", "running", "done", "failed", "cancelled"]


def test_a_results_size_is_both_its_images():
    request = JobRequest.from_photo(noise_photo(40, 30), Box(0, 0, 16, 16), train_max_side=32)
    work = FakeWork(png_bytes=123)
    work.release.set()

    class Tracker:
        def on_phase(self, *args):
            pass

        def on_step(self, *args):
            pass

    output = work(request, None, Tracker(), lambda: False)
    assert isinstance(output, JobOutput) and output.nbytes == 246
    assert JobOutput(output.result, b"a" * 5, b"b" * 9).nbytes == 14


def test_a_box_grows_within_a_photo_wider_than_it_is_tall():
    assert Box(50, 5, 10, 10).grown(20, (100, 30)) == Box(30, 0, 50, 30)
    assert Box(5, 50, 10, 10).grown(20, (30, 100)) == Box(0, 30, 30, 50)


def test_a_request_keeps_the_crops_context_only_where_the_photo_has_some():
    photo = noise_photo(60, 40)
    job = JobRequest.from_photo(photo, Box(10, 10, 16, 16), train_max_side=64, context_px=4)
    assert job.context == Box(6, 6, 24, 24) == job.enlarged and job.crop == Box(10, 10, 16, 16)
    assert job.crop_image.tobytes() == photo.crop((6, 6, 30, 30)).tobytes()
    whole = JobRequest.from_photo(photo, Box(0, 0, 60, 40), train_max_side=64, context_px=4)
    assert whole.context is None and whole.enlarged == whole.crop
    plain = JobRequest.from_photo(photo, Box(10, 10, 16, 16), train_max_side=64)
    assert plain.context is None and plain.crop_image.size == (16, 16)
