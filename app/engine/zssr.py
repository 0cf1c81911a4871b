"""The ZSSR pipeline: learn from one image, enlarge it in gradual steps, and hand back a PIL image."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

import numpy as np
import torch
from PIL import Image

from app.engine.checks import config_kernel
from app.engine.config import AUTO, EngineConfig
from app.engine.degradation import Compress, SonDegradation
from app.engine.device import describe, select_device
from app.engine.dihedral import ALL, keeps_axes, kernel_symmetries
from app.engine.holdout import HeldOut, Judgement, judge
from app.engine.image_io import Planes, from_planes, luma, to_planes
from app.engine.infer import enlarge
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.pairs import Downscale, FatherPool, make_downscale, min_father_side
from app.engine.profiles import ProfileChoice, choose_profile, profiled
from app.engine.resize import Scale, imresize, output_size
from app.engine.train import ReconstructionProbe, SelfCheck, TrainResult, interpolate_weights, train
from app.engine.warm_start import (WarmStart, choose_warm_start, file_arch, file_arch_of, load_weights,
                                   read_checkpoint, with_arch)
from app.errors import BadImageError, Cancelled, ConfigError

log = logging.getLogger(__name__)

OnStep = Callable[[int, int, float, float], None]  # (gradual step, iteration, loss, lr)
OnPhase = Callable[[int, str], None]  # (gradual step, "training" | "enlarging")


@dataclass(frozen=True)
class SRResult:
    image: Image.Image
    iterations: int
    iterations_per_step: tuple[int, ...]
    seconds: float
    device: str
    budget_exhausted: bool
    train_seconds: float = 0.0
    train_gflop: float = 0.0  # forward + backward, counted as 3x the forward FLOPs
    infer_seconds: float = 0.0
    infer_gflop: float = 0.0
    degradation: dict | None = None  # what the LR sons went through (SonDegradation.describe())
    self_check: dict | None = None  # {zssr_db, bicubic_db}: the first step's network against bicubic on the input
    fallback: bool = False  # the self-check found no gain, so the image is bicubic's (self_check_fallback)
    warm_start: dict | None = None  # {weights, chosen_by}: the file the network started from and why (WarmStart)
    # learning_check: per trained step, the held-out strip's PSNR with the step's learning and without, and
    # whether it was kept (holdout.Judgement.describe()); None when no check ran
    learning: tuple[dict, ...] | None = None
    # the first step's network in words (describe_network) and, where later steps started another design, theirs
    networks: tuple[str, ...] = ()
    ensembled_steps: int = 0  # gradual steps enlarged as the median over the dihedral transforms (self_ensemble)
    profile: dict | None = None  # {name, chosen_by}: the input profile the run took and why (ProfileChoice)
    learning_share: float = 1.0  # the run's (its profile's) share of each step's test-time learning kept
    later_weights: str | None = None  # the file chained steps after the first started again from (its name)


@dataclass
class _Totals:
    """What a run's gradual steps add up: iterations per step, seconds and pixels spent training and enlarging."""

    iterations: list[int] = field(default_factory=list)
    budget_exhausted: bool = False
    train_seconds: float = 0.0
    train_gflop: float = 0.0  # forward + backward, counted as 3x the forward FLOPs
    infer_seconds: float = 0.0
    infer_gflop: float = 0.0
    ensembled_steps: int = 0

    def add_training(self, result: TrainResult, net: ZSSRNet) -> None:
        self.iterations.append(result.iterations)
        self.train_seconds += result.seconds
        self.train_gflop += 3 * net.flops_per_pixel * result.pixels / 1e9  # father pixels seen
        self.budget_exhausted = self.budget_exhausted or result.budget_exhausted


class _Autocast(torch.nn.Module):
    """Runs the wrapped network under CUDA autocast (bfloat16) and returns float32."""

    def __init__(self, net: torch.nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return self.net(x).float()


def build_model(config: EngineConfig, device: torch.device,
                warm_start: str | None = None, key: str = "warm_start") -> tuple[ZSSRNet, torch.nn.Module]:
    """The network (for its parameters), started from `warm_start` (default: the config's own file; see
    choose_warm_start for `auto`), and the callable that runs it (compiled or autocast where asked).

    A weights file carries its architecture, and the network is built to it: the config's model_* keys describe
    the network that starts from scratch. (`auto` may start a JPEG from one design and a lossless image from
    another, and the later gradual steps from a third.)"""
    if config.seed is not None:
        torch.manual_seed(config.seed)
    if warm_start is None and config.warm_start != AUTO:
        warm_start = config.warm_start
    checkpoint = read_checkpoint(warm_start, key) if warm_start else None
    if checkpoint is not None:
        config = with_arch(config, checkpoint["arch"])
    net = ZSSRNet(config)
    if checkpoint is not None:
        load_weights(net, warm_start, config.scale_factor, key, checkpoint)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    net = net.to(device=device, memory_format=memory_format)
    model: torch.nn.Module = net
    if config.mixed_precision and device.type == "cuda":
        model = _Autocast(model)
    if config.compile:
        from app.engine.compiled import compile_or_eager

        model = compile_or_eager(model, config, device)
    return net, model


def describe_network(net: ZSSRNet) -> str:
    """The network in words, for logs and the job's JSON."""
    where = "on every pixel" if net.fold == 1 else f"on {net.fold}x{net.fold} blocks, sub-pixel output"
    return f"{net.config_model_depth} layers of {net.config_model_width}, {where}"


def _colour_planes(planes: Planes, in_channels: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The planes the network sees and, for a luma-only network, the chroma planes it does not."""
    x = planes.colour
    if in_channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1).contiguous(), None
    if in_channels == 1 and x.shape[1] == 3:
        ycbcr = _rgb_to_ycbcr(x)
        return ycbcr[:, :1].contiguous(), ycbcr[:, 1:].contiguous()
    return x, None


def _rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    r, b, y = x[:, 0], x[:, 2], luma(x)[:, 0]
    return torch.stack([y, (b - y) * 0.564 + 0.5, (r - y) * 0.713 + 0.5], dim=1)


def _ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    y, cb, cr = x[:, 0], x[:, 1] - 0.5, x[:, 2] - 0.5
    r = y + 1.403 * cr
    b = y + 1.773 * cb
    g = (y - 0.299 * r - 0.114 * b) / 0.587
    return torch.stack([r, g, b], dim=1).clamp(0, 1)


def super_resolve(image: Image.Image, config: EngineConfig, *, train_image: Image.Image | None = None,
                  jpeg: JpegProfile | None = None, on_step: OnStep | None = None, on_phase: OnPhase | None = None,
                  should_stop: Callable[[], bool] | None = None) -> SRResult:
    """Enlarge `image` by `scale_factor ** scale_times`, training on `train_image` (default: `image` itself).

    `jpeg` is how the photo was compressed (used for the LR sons when `sons_jpeg` is on).

    The paper's algorithm: a plan made once from the input (its profile, warm start, the sons' degradation), then
    for each gradual step: LR-son/HR-father pairs, training (continuing from the previous step's weights, the
    earlier outputs added to the HR fathers), keeping what helps, and enlarging the previous output by
    `scale_factor` (`gradual_mode` chain) or the input by the step's total scale (grow: `scale_factor` ** step,
    or `gradual_scales`); then colour. Raises Cancelled when `should_stop()` turns True.
    """
    started = time.monotonic()
    device = select_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    kernel = config_kernel(config)
    planes = to_planes(image)
    if min(planes.colour.shape[-2:]) < 4:
        raise BadImageError(f"image is {planes.colour.shape[-1]}x{planes.colour.shape[-2]}; "
                            "at least 4 pixels a side are needed")
    plan = Plan.make(config, planes, train_image, jpeg, kernel)
    run = _Run.start(plan, device)
    budget = _Budget.of(plan.config, started)
    for step, step_scale in enumerate(plan.config.steps, start=1):
        if on_phase is not None:
            on_phase(step, "training")
        run.learn(step, step_scale, budget, on_step, should_stop)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled before enlarging")
        if run.checked_and_failed(step_scale):
            break
        if on_phase is not None:
            on_phase(step, "enlarging")
        run.enlarge(step, step_scale)
    return run.result(planes, on_phase, started)


@dataclass(frozen=True)
class Plan:
    """What a run is, decided once from the input before any learning: the profile and the config it makes, the
    warm start, the planes the network sees, how the sons are degraded, and how they and the ensemble line up."""

    config: EngineConfig  # the chosen profile's keys applied
    profile: ProfileChoice
    start: WarmStart
    lr: torch.Tensor  # the input in the network's planes (1, C, H, W), on the CPU
    chroma: torch.Tensor | None  # the chroma planes a luma-only network does not see
    training_source: torch.Tensor  # what the sons and fathers are made from: the input or `train_image`
    held_out: HeldOut | None
    degradation: SonDegradation
    kernel: np.ndarray | None
    alignment: str
    transforms: tuple[int, ...]
    grid_shift: int

    @classmethod
    def make(cls, config: EngineConfig, planes: Planes, train_image: Image.Image | None,
             jpeg: JpegProfile | None, kernel: np.ndarray | None) -> "Plan":
        readings: dict[str, SonDegradation] = {}

        def blurry(photo: EngineConfig) -> bool:
            readings["photo"] = SonDegradation.plan(photo, _sources(photo, None, planes, train_image)[2], jpeg)
            return readings["photo"].blurry

        profile = choose_profile(config, jpeg is not None, blurry)
        config = profiled(config, profile)
        start = _warm_start(config, profile, jpeg is not None)
        lr, chroma, training_source = _sources(config, start, planes, train_image)
        if profile.name == "photo" and "photo" in readings:
            degradation = readings["photo"]  # made from the same planes under the same keys
        else:
            degradation = SonDegradation.plan(config, training_source, jpeg)
        if profile.name == "blurry_photo" and "photo" in readings:
            degradation = dataclasses.replace(degradation, blur_std=readings["photo"].blur_std, blurry=True)
        if degradation.blurry and profile.name is None:
            # No profiles: a photo read blurry learns nothing and starts from blurry_warm_start where set (same
            # planes: preflight checks their channels).
            config = config.replace(test_time_learning=False)
            blurry_start = choose_warm_start(config, jpeg is not None, True)
            if blurry_start != start and _in_channels(config, blurry_start) != lr.shape[1]:
                raise ConfigError("blurry_warm_start", f"{blurry_start.path} sees "
                                  f"{_in_channels(config, blurry_start)} channels, photo_warm_start {lr.shape[1]}")
            start = blurry_start
        held_out = HeldOut.split(training_source) if config.learning_check else None
        geometry = son_geometry(config, kernel, degradation)
        return cls(config, profile, start, lr, chroma, training_source, held_out, degradation, *geometry)


def _warm_start(config: EngineConfig, profile: ProfileChoice, jpeg: bool) -> WarmStart:
    """The weights a run starts from: a profile's own file (chosen by what chose the profile), else as
    choose_warm_start says."""
    if profile.name is not None and config.warm_start != AUTO:
        return WarmStart(config.warm_start, profile.reason if config.warm_start else "the profile (from scratch)")
    return choose_warm_start(config, jpeg, profile.name == "blurry_photo")


def _in_channels(config: EngineConfig, start: WarmStart | None) -> int:
    """The planes a run's network sees: its warm start's file's (a file carries its design), else the config's."""
    if start is not None and start.path:
        return file_arch(start.path)["in_channels"]
    return config.in_channels


def _sources(config: EngineConfig, start: WarmStart | None, planes: Planes, train_image: Image.Image | None
             ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """(the input in the network's planes, the chroma it does not see, the training source in those planes);
    `start` None: the warm start the config would choose for a JPEG."""
    in_channels = _in_channels(config, start if start is not None else choose_warm_start(config, True))
    lr, chroma = _colour_planes(planes, in_channels)
    source = lr if train_image is None else _colour_planes(to_planes(train_image), in_channels)[0]
    return lr, chroma, source


@dataclass
class _Budget:
    """Each gradual step's share of the run's budgets: time_budget_s (as a deadline) and iteration_budget (as a
    count). The first step may take `first_step_share`; every other step an even split of what is left."""

    steps: int
    first_share: float | None
    end: float | None  # time.monotonic() when time_budget_s is spent
    iterations: int | None

    @classmethod
    def of(cls, config: EngineConfig, started: float) -> "_Budget":
        end = started + config.time_budget_s if config.time_budget_s else None
        return cls(len(config.steps), config.first_step_share, end, config.iteration_budget)

    def share(self, step: int) -> float:
        if step == 1 and self.first_share is not None and self.steps > 1:
            return self.first_share
        return 1 / (self.steps - step + 1)

    def for_step(self, step: int, used: int) -> tuple[float | None, int | None]:
        """(the step's deadline, its most iterations), None where there is no such budget."""
        share = self.share(step)
        deadline = None
        if self.end is not None:
            now = time.monotonic()
            deadline = now + (self.end - now) * share
        iterations = None if self.iterations is None else int(round(max(0, self.iterations - used) * share))
        return deadline, iterations


@dataclass
class _Run:
    """A run under way: its network, the images so far, and what its steps add up to."""

    plan: Plan
    device: torch.device
    net: ZSSRNet
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer | None
    lr: torch.Tensor  # the input in the network's planes, on the device
    training_source: torch.Tensor  # on the device
    current: torch.Tensor  # the latest enlargement (the input before the first step)
    sources: list[torch.Tensor]  # what the fathers are made from: the training source, then each output
    downscale: Downscale
    compress: Compress | None
    rng: np.random.Generator
    generator: torch.Generator | None
    networks: list[str] = field(default_factory=list)
    totals: _Totals = field(default_factory=_Totals)
    judgements: list[Judgement] = field(default_factory=list)
    check: SelfCheck | None = None
    fallback: bool = False
    probe: ReconstructionProbe | None = None

    @classmethod
    def start(cls, plan: Plan, device: torch.device) -> "_Run":
        config = plan.config
        if plan.profile.name is None:
            log.info("profile: none (%s)", plan.profile.reason)
        else:
            log.info("profile: %s (chosen by %s)", plan.profile.name, plan.profile.reason)
        log.info("warm start: %s (chosen by %s)", plan.start.path or "none, from scratch", plan.start.reason)
        net, model = build_model(config, device, plan.start.path)
        log.info("network: %s", describe_network(net))
        lr = plan.lr.to(device)
        training_source = plan.training_source.to(device)
        # The authors' code keeps one Adam through all steps (its moments carry over); by default each step starts
        # one.
        optimizer = torch.optim.Adam(model.parameters()) if config.carry_optimizer else None
        return cls(plan, device, net, model, optimizer, lr, training_source, lr,
                   [training_source if plan.held_out is None else plan.held_out.train.to(device)],
                   make_downscale(config.scale_factor, plan.kernel, plan.alignment), plan.degradation.compress,
                   np.random.default_rng(config.seed),
                   torch.Generator().manual_seed(config.seed) if config.seed is not None else None,
                   [describe_network(net)])

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.plan.config.channels_last else torch.contiguous_format

    def learn(self, step: int, step_scale: tuple[float, float], budget: _Budget, on_step: OnStep | None,
              should_stop: Callable[[], bool] | None) -> None:
        """One gradual step's test-time learning: its pairs, training, and keeping what helps."""
        config, plan = self.plan.config, self.plan
        grow = config.gradual_mode == "grow"
        scale = _one_scale(step_scale)
        if grow and (step > 1 or config.gradual_scales is not None):
            self.downscale = make_downscale(scale, None)
        deadline, most_iterations = budget.for_step(step, sum(self.totals.iterations))
        if step == 2 and not grow:
            self._start_later_steps()
        pool = FatherPool.build(self.sources, scale, min_father_side(scale), warp=config.father_augment == "warp",
                                by_source=config.father_sampling == "source")
        # Probed on the real input's own pyramid (the latest source, so the first step's is the input's), or on the
        # training image itself where growing or training on another image than the input.
        own = plan.training_source is plan.lr and not grow
        self.probe = ReconstructionProbe.from_image(self.sources[-1] if own else self.training_source, scale,
                                                    self.downscale, compress=self.compress)
        learning = config.test_time_learning
        before = None  # the step's starting weights, where the learning is judged or interpolated
        if learning and (plan.held_out is not None or config.learning_share < 1):
            before = {k: v.detach().clone() for k, v in self.net.state_dict().items()}
        if not learning:
            result = TrainResult(0, float("nan"), config.lr, False)
        else:
            result = train(self.model, pool, self.probe, config, scale_factor=scale, downscale=self.downscale,
                           rng=self.rng, generator=self.generator, deadline=deadline,
                           max_iterations=most_iterations,
                           on_iteration=None if on_step is None else partial(on_step, step),
                           should_stop=should_stop, memory_format=self.memory_format,
                           noise_std=plan.degradation.noise_std, compress=self.compress, augment=plan.transforms,
                           optimizer=self.optimizer)
        self.totals.add_training(result, self.net)
        if config.learning_share < 1 and result.iterations:
            interpolate_weights(self.net, before, config.learning_share)
        if plan.held_out is not None and result.iterations:
            self.judgements.append(judge(self.net, self.model, before, plan.held_out, step, scale, self.downscale,
                                         self.compress))
            log.debug("step %d learning: %s", step, self.judgements[-1].describe())
        log.debug("step %d: %d iterations, loss %.5f, lr %.2e, decays at %s", step, result.iterations,
                  result.loss, result.lr, result.decays)

    def _start_later_steps(self) -> None:
        """From the second chained step on, the input is the previous step's output: clean, never
        JPEG-compressed. Its sons are not compressed either, and `later_warm_start` (when set) fits such inputs
        better than the weights that learned the photo's own degradation. (Growing, every step enlarges the
        photo itself.)"""
        config = self.plan.config
        self.compress = None
        if not config.later_warm_start:
            return
        later_arch = file_arch(config.later_warm_start, "later_warm_start")
        if later_arch == file_arch_of(self.net):
            load_weights(self.net, config.later_warm_start, config.scale_factor, "later_warm_start")
        elif later_arch["in_channels"] != self.net.config_in_channels:
            raise ConfigError("later_warm_start", f"{config.later_warm_start} sees {later_arch['in_channels']} "
                              f"channels, the first step's network {self.net.config_in_channels}; the steps "
                              "share their planes")
        else:
            # Another design: its own network (and a fresh Adam for it, where the optimizer carries on).
            self.net, self.model = build_model(config, self.device, config.later_warm_start, "later_warm_start")
            self.optimizer = torch.optim.Adam(self.model.parameters()) if self.optimizer is not None else None
        self.networks.append(describe_network(self.net))

    def checked_and_failed(self, step_scale: tuple[float, float]) -> bool:
        """The self-check, once, at the first step that enlarges both axes alike (gradual_scales may start with
        one axis alone), on the real input's own pyramid: True when the network rebuilds the input no better than
        bicubic and self_check_fallback asks for bicubic then. A photo that learned nothing is not checked (a
        blurry photo's bicubic son is the wrong test: a network that sharpens loses it to bicubic)."""
        sy, sx = step_scale
        if self.check is not None or sy != sx or not self.plan.config.test_time_learning:
            return False
        self.check = self.probe.self_check(self.model)
        log.debug("self-check: network %.2f dB, bicubic %.2f dB", self.check.zssr_db, self.check.bicubic_db)
        self.fallback = self.plan.config.self_check_fallback and self.check.gain_db <= 0
        return self.fallback

    def enlarge(self, step: int, step_scale: tuple[float, float]) -> None:
        """Enlarge by the step (the input itself when growing), with self-ensemble and back-projection."""
        config, plan = self.plan.config, self.plan
        started = time.monotonic()
        ensemble = config.self_ensemble and (config.ensemble_steps is None or step <= config.ensemble_steps)
        grow = config.gradual_mode == "grow"
        self.current = enlarge(self.model, self.lr if grow else self.current, _one_scale(step_scale), self.downscale,
                               patch_size=config.patch_size, halo=self.net.receptive_radius, align=self.net.fold,
                               ensemble=ensemble, transforms=plan.transforms, grid_shift=plan.grid_shift,
                               back_projection_iters=config.back_projection_iters, memory_format=self.memory_format)
        _synchronize(self.device)
        self.totals.infer_seconds += time.monotonic() - started
        sy, sx = step_scale
        copies = (len(plan.transforms) if sy == sx else sum(map(keeps_axes, plan.transforms))) if ensemble else 1
        self.totals.infer_gflop += (self.net.flops_per_pixel * self.current.shape[-2] * self.current.shape[-1]
                                    * copies / 1e9)
        self.totals.ensembled_steps += ensemble
        self.sources.append(self.current)

    def result(self, planes: Planes, on_phase: OnPhase | None, started: float) -> SRResult:
        """The enlargement in the input's colours (bicubic, all the way, where the self-check fell back)."""
        config, plan, totals = self.plan.config, self.plan, self.totals
        current = self.current
        if self.fallback:
            # What was learned does not help this input: bicubic, all the way, rather than a worse image.
            if on_phase is not None:
                on_phase(len(totals.iterations), "enlarging")
            current = imresize(self.lr, config.total_scale,
                               out_size=_output_size(planes, config)).clamp(0, 1)
            totals.ensembled_steps = 0
        image = _in_colour(current, plan.chroma, planes, config, self.device)
        return SRResult(image, sum(totals.iterations), tuple(totals.iterations), time.monotonic() - started,
                        describe(self.device), totals.budget_exhausted, totals.train_seconds, totals.train_gflop,
                        totals.infer_seconds, totals.infer_gflop, plan.degradation.describe(),
                        self.check.describe() if self.check is not None else None, self.fallback,
                        plan.start.describe(),
                        None if plan.held_out is None else tuple(j.describe() for j in self.judgements),
                        tuple(self.networks), totals.ensembled_steps, plan.profile.describe(),
                        config.learning_share,
                        Path(config.later_warm_start).name if config.later_warm_start and config.scale_times > 1
                        else None)


def _one_scale(step_scale: tuple[float, float]) -> Scale:
    """A step's scale as the resizers take it: one number where both axes agree."""
    sy, sx = step_scale
    return sy if sy == sx else step_scale


def _in_colour(current: torch.Tensor, chroma: torch.Tensor | None, planes: Planes, config: EngineConfig,
               device: torch.device) -> Image.Image:
    """The network's planes back to the input's: chroma enlarged by bicubic for a luma-only network, grey kept
    grey, alpha enlarged by bicubic."""
    size = tuple(current.shape[-2:])
    colour = current
    if chroma is not None:
        chroma = imresize(chroma.to(device), config.total_scale, out_size=size).clamp(0, 1)
        colour = _ycbcr_to_rgb(torch.cat([colour, chroma], dim=1))
    elif planes.grayscale and colour.shape[1] == 3:
        colour = colour.mean(dim=1, keepdim=True)
    alpha = None
    if planes.alpha is not None:
        alpha = imresize(planes.alpha.to(device), config.total_scale, out_size=size).clamp(0, 1)
    assert size == _output_size(planes, config), (size, _output_size(planes, config))
    return from_planes(colour.cpu(), None if alpha is None else alpha.cpu())


def son_geometry(config: EngineConfig, kernel: np.ndarray | None,
                 degradation: SonDegradation) -> tuple[np.ndarray | None, str, tuple[int, ...], int]:
    """How this run makes sons and ensembles: (kernel, alignment, dihedral transforms, ensemble grid shift).

    A kernel file lines up as `kernel_alignment` says, and may be asymmetric: only the rotations and flips that
    leave it unchanged keep a training pair (or the test image) true to it, unless `kernel_augment` says
    otherwise. An estimated kernel is an isotropic Gaussian (all 8 keep it) lined up as
    `estimated_kernel_alignment` says: centred on each block, as a camera's pixel, or sampled directly, as a test
    set's. With direct alignment the ensemble moves each flipped output back onto the sampling grid (s - 1).
    """
    alignment, transforms = config.kernel_alignment, ALL
    if kernel is not None:
        transforms = ALL if config.kernel_augment else kernel_symmetries(kernel)
    if degradation.kernel is not None:
        kernel, alignment = degradation.kernel.kernel(), config.estimated_kernel_alignment
    grid_shift = int(round(config.scale_factor)) - 1 if kernel is not None and alignment == "direct" else 0
    return kernel, alignment, transforms, grid_shift


def _output_size(planes: Planes, config: EngineConfig) -> tuple[int, int]:
    """The size after `scale_times` steps of `scale_factor`, each rounding up as MATLAB does."""
    size = tuple(planes.colour.shape[-2:])
    for _ in range(config.scale_times):
        size = output_size(size, config.scale_factor)
    return size


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def warm_up() -> None:
    """Pay torch's one-time lazy imports (the first Adam pulls in torch._dynamo, about 2 s here) before a job's
    clock starts; long-lived workers call it once when they start."""
    torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])


def bicubic_resize(image: Image.Image, scale: float) -> Image.Image:
    """MATLAB-compatible bicubic enlargement of a PIL image (the baseline shown beside ZSSR)."""
    planes = to_planes(image)
    colour = imresize(planes.colour, scale).clamp(0, 1)
    alpha = None if planes.alpha is None else imresize(planes.alpha, scale).clamp(0, 1)
    return from_planes(colour, alpha)
