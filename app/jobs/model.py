"""The job runner's plain data: what a job asks for, how far it is, and what it produced (no tensors, no HTTP)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, replace

from PIL import Image

from app.engine.jpeg import JpegProfile
from app.jobs.output import OutputSpec


@dataclass(frozen=True)
class Box:
    """A rectangle in photo pixels (after EXIF orientation); x, y is its top-left corner."""

    x: int
    y: int
    width: int
    height: int

    def as_pil(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.x + self.width, self.y + self.height)

    def grown(self, margin: int, size: tuple[int, int]) -> "Box":
        """This box with `margin` pixels more on every side, as far as a (width, height) photo reaches."""
        left, top = max(0, self.x - margin), max(0, self.y - margin)
        right, bottom = min(size[0], self.x + self.width + margin), min(size[1], self.y + self.height + margin)
        return Box(left, top, right - left, bottom - top)

    def within(self, outer: "Box", scale: int) -> tuple[int, int, int, int]:
        """Where this box lies in `outer` (which holds it) enlarged `scale` times, as a PIL crop box."""
        x, y = (self.x - outer.x) * scale, (self.y - outer.y) * scale
        return (x, y, x + self.width * scale, y + self.height * scale)


@dataclass(frozen=True)
class JobRequest:
    """One enlargement: learn from `train_image` (the whole photo, downscaled) and enlarge `crop_image`, the
    crop with the photo's pixels around it (`context`), cutting the crop's part out of the result.

    Only these two small images are kept, not the upload, so a queued job holds little memory.
    """

    photo_size: tuple[int, int]  # the whole upload, after orientation
    crop: Box
    crop_image: Image.Image
    train_image: Image.Image
    seed: int | None = None
    request_id: str = "-"
    jpeg: JpegProfile | None = None  # how the upload was compressed: the LR sons are compressed the same way
    client: str = "-"  # who asked (an address or an API key's id): the per-client cap counts these
    output: OutputSpec = OutputSpec()  # how to write the result: format, quality, the photo's profile and EXIF
    name: str = "photo"  # the upload's file name without its extension: the result's file names start with it
    scale: int = 8  # 2, 4 or 8: gradual steps of 2x
    context: Box | None = None  # the part of the photo `crop_image` holds: `crop` and around it; None: `crop`

    @property
    def enlarged(self) -> Box:
        """The part of the photo that is enlarged."""
        return self.context or self.crop

    @property
    def steps(self) -> int:
        """The gradual 2x steps this job takes."""
        return max(1, round(math.log2(self.scale)))

    @classmethod
    def from_photo(cls, photo: Image.Image, crop: Box, train_max_side: int, seed: int | None = None,
                   request_id: str = "-", jpeg: JpegProfile | None = None, client: str = "-",
                   output: OutputSpec | None = None, name: str = "photo", scale: int = 8,
                   context_px: int = 0) -> "JobRequest":
        """Cut `crop`, with up to `context_px` pixels of the photo around it, out of `photo`, and downscale the photo
        (antialiased) to at most `train_max_side` a side."""
        shrink = train_max_side / max(photo.size)
        train = photo
        if shrink < 1.0:
            size = (max(1, round(photo.width * shrink)), max(1, round(photo.height * shrink)))
            train = photo.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
        context = crop.grown(context_px, photo.size)
        return cls(photo_size=photo.size, crop=crop, crop_image=photo.crop(context.as_pil()), train_image=train,
                   seed=seed, request_id=request_id, jpeg=jpeg, client=client,
                   output=replace(output or OutputSpec(), icc=photo.info.get("icc_profile"),
                                  exif=photo.info.get("exif")),
                   name=name, scale=scale, context=None if context == crop else context)


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Progress:
    """How far a running job is: gradual `step` of `steps`, the iteration within it, and a time estimate."""

    step: int = 0
    steps: int = 0
    phase: str | None = None  # "training" or "enlarging"; None before the engine starts
    iteration: int = 0  # within the current gradual step
    iterations: int = 0  # over all steps so far
    loss: float | None = None
    fraction: float = 0.0  # 0..1, an estimate
    elapsed_s: float = 0.0
    eta_s: float | None = None  # seconds left, an estimate; None while unknown


@dataclass(frozen=True)
class JobResult:
    """What a finished job reports about its output; the PNG bytes are kept apart (see JobOutput)."""

    width: int
    height: int
    scale: int
    crop: Box
    photo_size: tuple[int, int]  # the whole upload, after orientation
    learned_from_size: tuple[int, int]  # the whole photo as the network saw it (downscaled to train_max_side)
    seconds: float
    iterations: int
    iterations_per_step: tuple[int, ...]
    device: str
    budget_exhausted: bool
    weights: str | None = None  # the warm-start file the network started from (its name); None: from scratch
    later_weights: str | None = None  # the file the gradual steps after the first started again from, if any
    degradation: dict | None = None  # what the LR sons went through: noise (estimated or set), the photo's JPEG
    self_check: dict | None = None  # {zssr_db, bicubic_db}: the network against bicubic on the photo's own details
    fallback: bool = False  # the self-check found no gain: the image is bicubic's
    weights_chosen_by: str | None = None  # why `weights`: "the config", "a JPEG input", "a blurry JPEG input", ...
    profile: str | None = None  # the input profile the job ran with (photo, blurry_photo, ...); None: no profiles
    profile_chosen_by: str | None = None  # why that profile: "a JPEG input", "a blurry JPEG input", "the config"
    network: str | None = None  # the first step's network in words ("12 layers of 96, on 2x2 blocks, ...")
    # per trained step: the held-out strip's PSNR with and without the step's learning, and whether it was kept
    learning: tuple[dict, ...] | None = None
    learning_share: float = 1.0  # of each step's test-time learning kept (the rest of the way: its warm start)
    ensembled_steps: int = 0  # gradual steps enlarged as the median over the 8 rotations and flips
    context: Box | None = None  # the part of the photo enlarged with the crop (then cut away); None: the crop alone
    format: str = "png"  # of the enlarged image (png, webp, jpeg); the bicubic one is always PNG
    name: str = "photo"  # the upload's name, for the result's file names


@dataclass(frozen=True)
class JobOutput:
    """A finished job's images as PNG bytes: the ZSSR enlargement and the bicubic one of the same crop."""

    result: JobResult
    sr_png: bytes = field(repr=False)
    bicubic_png: bytes = field(repr=False)

    @property
    def nbytes(self) -> int:
        return len(self.sr_png) + len(self.bicubic_png)


@dataclass(frozen=True)
class JobError:
    """Why a job failed, in words fit for the person who sent it (no stack traces)."""

    code: str
    message: str


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job, safe to hand to another thread or to serialise."""

    id: str
    state: JobState
    created_at: float  # wall-clock epoch seconds
    progress: Progress
    queue_position: int | None  # 1 = next to run; 0 = running; None when finished
    crop: Box
    photo_size: tuple[int, int]
    cancel_requested: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    result: JobResult | None = None
    error: JobError | None = None
