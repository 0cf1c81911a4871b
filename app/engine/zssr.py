"""The ZSSR pipeline: learn from one image, enlarge it in gradual steps, and hand back a PIL image."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from PIL import Image

from app.engine.checks import config_kernel
from app.engine.config import AUTO, EngineConfig
from app.engine.degradation import SonDegradation
from app.engine.device import describe, select_device
from app.engine.dihedral import ALL, keeps_axes, kernel_symmetries
from app.engine.holdout import HeldOut, Judgement, judge
from app.engine.image_io import Planes, from_planes, luma, to_planes
from app.engine.infer import enlarge
from app.engine.jpeg import JpegProfile
from app.engine.network import ZSSRNet
from app.engine.pairs import FatherPool, make_downscale, min_father_side
from app.engine.resize import imresize, output_size
from app.engine.train import ReconstructionProbe, TrainResult, interpolate_weights, train
from app.engine.warm_start import (choose_warm_start, file_arch, file_arch_of, load_weights, read_checkpoint,
                                   with_arch)
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

    Each gradual step trains (continuing from the previous step's weights, with the earlier outputs added to the
    HR fathers) and then enlarges the previous output by `scale_factor` (`gradual_mode` chain) or the input by
    the step's total scale (grow: `scale_factor` ** step, or `gradual_scales`). Raises Cancelled when
    `should_stop()` turns True.
    """
    started = time.monotonic()
    device = select_device(config.device)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    kernel = config_kernel(config)

    planes = to_planes(image)
    side = min(planes.colour.shape[-2:])
    if side < 4:
        raise BadImageError(f"image is {planes.colour.shape[-1]}x{planes.colour.shape[-2]}; "
                            "at least 4 pixels a side are needed")
    start = choose_warm_start(config, jpeg is not None)
    log.info("warm start: %s (chosen by %s)", start.path or "none, from scratch", start.reason)
    net, model = build_model(config, device, start.path)
    networks = [describe_network(net)]
    log.info("network: %s", networks[0])
    # The planes the network sees: its own in_channels (a warm start's file may differ from the config).
    in_channels = net.config_in_channels
    current, chroma = _colour_planes(planes, in_channels)
    current = lr = current.to(device)
    training_source = current
    if train_image is not None:
        training_source = _colour_planes(to_planes(train_image), in_channels)[0].to(device)
    held_out = HeldOut.split(training_source) if config.learning_check else None
    judgements: list[Judgement] = []
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    rng = np.random.default_rng(config.seed)
    generator = torch.Generator().manual_seed(config.seed) if config.seed is not None else None
    degradation = SonDegradation.plan(config, training_source, jpeg)
    if degradation.blurry and (blurry_start := choose_warm_start(config, jpeg is not None, True)) != start:
        # Read blurry: the weights made for blurred photos instead (same planes: preflight checks their channels).
        start = blurry_start
        log.info("warm start: %s (chosen by %s)", start.path, start.reason)
        net, model = build_model(config, device, start.path)
        networks = [describe_network(net)]
        if net.config_in_channels != in_channels:
            raise ConfigError("blurry_warm_start", f"{start.path} sees {net.config_in_channels} channels, "
                                                   f"photo_warm_start {in_channels}")
    kernel, alignment, transforms, grid_shift = son_geometry(config, kernel, degradation)
    downscale = make_downscale(config.scale_factor, kernel, alignment)
    compress = degradation.compress
    sources = [training_source if held_out is None else held_out.train]
    totals = _Totals()
    fallback = False
    check = None
    budget_end = started + config.time_budget_s if config.time_budget_s else None

    # In `grow` mode step k learns and enlarges by scale_factor ** k from the input itself (the authors' default);
    # in `chain` mode every step enlarges the previous output by scale_factor.
    grow = config.gradual_mode == "grow"
    # The authors' code keeps one Adam through all steps (its moments carry over); by default each step starts one.
    optimizer = torch.optim.Adam(model.parameters()) if config.carry_optimizer else None
    steps = config.steps
    for step, step_scale in enumerate(steps, start=1):
        if on_phase is not None:
            on_phase(step, "training")
        sy, sx = step_scale
        step_scale = sy if sy == sx else step_scale
        if grow and (step > 1 or config.gradual_scales is not None):
            downscale = make_downscale(step_scale, None)
        deadline = None
        if budget_end is not None:
            left = budget_end - time.monotonic()
            if step == 1 and config.first_step_share is not None and len(steps) > 1:
                deadline = time.monotonic() + left * config.first_step_share
            else:
                # What is left of the budget, split evenly over the steps still to come.
                deadline = time.monotonic() + left / (len(steps) - step + 1)
        if step == 2 and not grow:
            # A later step's input is the previous step's output: clean, never JPEG-compressed. Its sons are
            # not compressed either, and `later_warm_start` (when set) fits such inputs better than the weights
            # that learned the photo's own degradation. (Growing, every step enlarges the photo itself.)
            compress = None
            if config.later_warm_start:
                later_arch = file_arch(config.later_warm_start, "later_warm_start")
                if later_arch == file_arch_of(net):
                    load_weights(net, config.later_warm_start, config.scale_factor, "later_warm_start")
                elif later_arch["in_channels"] != in_channels:
                    raise ConfigError("later_warm_start", f"{config.later_warm_start} sees "
                                      f"{later_arch['in_channels']} channels, the first step's network "
                                      f"{in_channels}; the steps share their planes")
                else:
                    # Another design: its own network (and a fresh Adam for it, where the optimizer carries on).
                    net, model = build_model(config, device, config.later_warm_start, "later_warm_start")
                    optimizer = torch.optim.Adam(model.parameters()) if optimizer is not None else None
                networks.append(describe_network(net))
        pool = FatherPool.build(sources, step_scale, min_father_side(step_scale),
                                warp=config.father_augment == "warp",
                                by_source=config.father_sampling == "source")
        probe = ReconstructionProbe.from_image(sources[-1] if train_image is None and not grow else training_source,
                                               step_scale, downscale, compress=compress)

        def on_iteration(iteration: int, loss: float, lr: float, step: int = step) -> None:
            if on_step is not None:
                on_step(step, iteration, loss, lr)

        before = None  # the step's starting weights, where the learning is judged or interpolated
        if not degradation.blurry and (held_out is not None or config.learning_share < 1):
            before = {k: v.detach().clone() for k, v in net.state_dict().items()}
        if degradation.blurry:
            # The photo is blurrier than its bicubic sons: learning from them would undo the warm start's
            # sharpening (blurry_photo_std). The warm start alone enlarges it.
            result = TrainResult(0, float("nan"), config.lr, False)
        else:
            result = train(model, pool, probe, config, scale_factor=step_scale, downscale=downscale,
                           rng=rng, generator=generator, deadline=deadline, on_iteration=on_iteration,
                           should_stop=should_stop, memory_format=memory_format,
                           noise_std=degradation.noise_std, compress=compress, augment=transforms,
                           optimizer=optimizer)
        totals.add_training(result, net)
        if config.learning_share < 1 and result.iterations:
            interpolate_weights(net, before, config.learning_share)
        if held_out is not None and result.iterations:
            judgements.append(judge(net, model, before, held_out, step, step_scale, downscale, compress))
            log.debug("step %d learning: %s", step, judgements[-1].describe())
        log.debug("step %d: %d iterations, loss %.5f, lr %.2e, decays at %s", step, result.iterations,
                  result.loss, result.lr, result.decays)
        if should_stop is not None and should_stop():
            raise Cancelled("cancelled before enlarging")
        if check is None and sy == sx and not degradation.blurry:
            # Measured once, on the real input's own pyramid (later steps also learn from their own outputs), at
            # the first step that enlarges both axes alike (gradual_scales may start with one axis alone). A
            # blurry photo's bicubic son is the wrong test: a network that sharpens loses it to bicubic.
            check = probe.self_check(model)
            log.debug("self-check: network %.2f dB, bicubic %.2f dB", check.zssr_db, check.bicubic_db)
            if config.self_check_fallback and check.gain_db <= 0:
                fallback = True
                break
        if on_phase is not None:
            on_phase(step, "enlarging")
        enlarge_started = time.monotonic()
        ensemble = config.self_ensemble and (config.ensemble_steps is None or step <= config.ensemble_steps)
        current = enlarge(model, lr if grow else current, step_scale, downscale, patch_size=config.patch_size,
                          halo=net.receptive_radius, align=net.fold, ensemble=ensemble,
                          transforms=transforms,
                          grid_shift=grid_shift,
                          back_projection_iters=config.back_projection_iters, memory_format=memory_format)
        _synchronize(device)
        totals.infer_seconds += time.monotonic() - enlarge_started
        copies = (len(transforms) if sy == sx else sum(map(keeps_axes, transforms))) if ensemble else 1
        totals.infer_gflop += net.flops_per_pixel * current.shape[-2] * current.shape[-1] * copies / 1e9
        totals.ensembled_steps += ensemble
        sources.append(current)

    if fallback:
        # What was learned does not help this input: bicubic, all the way, rather than a worse image.
        if on_phase is not None:
            on_phase(len(totals.iterations), "enlarging")
        current = imresize(lr, config.total_scale, out_size=_output_size(planes, config)).clamp(0, 1)
        totals.ensembled_steps = 0
    colour = current
    size = tuple(colour.shape[-2:])
    if chroma is not None:
        chroma = imresize(chroma.to(device), config.total_scale, out_size=size).clamp(0, 1)
        colour = _ycbcr_to_rgb(torch.cat([colour, chroma], dim=1))
    elif planes.grayscale and colour.shape[1] == 3:
        colour = colour.mean(dim=1, keepdim=True)
    alpha = None
    if planes.alpha is not None:
        alpha = imresize(planes.alpha.to(device), config.total_scale, out_size=size).clamp(0, 1)
    assert size == _output_size(planes, config), (size, _output_size(planes, config))
    return SRResult(from_planes(colour.cpu(), None if alpha is None else alpha.cpu()), sum(totals.iterations),
                    tuple(totals.iterations), time.monotonic() - started, describe(device), totals.budget_exhausted,
                    totals.train_seconds, totals.train_gflop, totals.infer_seconds, totals.infer_gflop,
                    degradation.describe(),
                    check.describe() if check is not None else None, fallback, start.describe(),
                    None if held_out is None else tuple(j.describe() for j in judgements), tuple(networks),
                    totals.ensembled_steps)


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
