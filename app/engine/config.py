"""The engine's typed, frozen configuration and the validation shared by every config dataclass."""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from app.errors import ConfigError

AUTO = "auto"  # warm_start, profile: the input chooses (see app.engine.warm_start and app.engine.profiles)

# The kinds of input, each with its own profile of engine settings (app.engine.profiles chooses one).
PROFILE_NAMES = ("photo", "blurry_photo", "lossless", "kernel_given", "kernel_estimated")
# Keys no profile may set: those that choose the profile (a kernel given, or asked to be estimated) and those that
# are the caller's (where it runs, how far it enlarges, how long it may take).
CALLER_KEYS = frozenset({"profile", "profiles", "kernel", "kernel_alignment", "estimate_kernel", "device",
                         "num_threads", "seed", "scale_factor", "scale_times", "gradual_scales", "time_budget_s",
                         "iteration_budget"})


def option(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, choices: tuple | None = None) -> Any:
    """A dataclass field with its documentation and its allowed range (closed unless `lo_open`)."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "lo_open": lo_open,
                                            "choices": choices})


def _check_type(key: str, value: Any, annotation: Any) -> Any:
    """Return `value` converted to the field's type, or raise ConfigError naming `key`."""
    args = typing.get_args(annotation)
    if type(None) in args:
        if value is None:
            return None
        annotation = next(a for a in args if a is not type(None))
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(key, f"expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(key, f"expected an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(key, f"expected a finite number, got {value!r}")
            return float(value)
        raise ConfigError(key, f"expected a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        raise ConfigError(key, f"expected a string, got {value!r}")
    if typing.get_origin(annotation) is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(key, f"expected an object, got {value!r}")
        names, values = typing.get_args(annotation)
        return {_check_type(key, k, names): _check_type(key, v, values) for k, v in value.items()}
    if annotation is Any:
        return value
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(key, f"expected a non-empty list, got {value!r}")
        items = typing.get_args(annotation)
        if len(items) == 2 and items[1] is Ellipsis:
            return tuple(_check_type(key, v, items[0]) for v in value)
        if len(value) != len(items):  # a fixed-length tuple: tuple[float, float] is a pair
            raise ConfigError(key, f"expected a list of {len(items)}, got {value!r}")
        return tuple(_check_type(key, v, item) for v, item in zip(value, items))
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def validate(instance: Any) -> None:
    """Check every field of a config dataclass against its type and range; raise ConfigError on the first fault."""
    hints = typing.get_type_hints(type(instance))
    for f in dataclasses.fields(instance):
        value = _check_type(f.name, getattr(instance, f.name), hints[f.name])
        object.__setattr__(instance, f.name, value)
        meta = f.metadata
        if isinstance(value, dict):
            continue  # checked as a whole by its owner (EngineConfig._check_profiles)
        for v in _leaves(value):
            if v is None or isinstance(v, bool):
                continue
            if meta.get("choices") is not None and v not in meta["choices"]:
                raise ConfigError(f.name, f"must be one of {', '.join(map(str, meta['choices']))}; got {v!r}")
            lo, hi = meta.get("lo"), meta.get("hi")
            if lo is not None and (v < lo or (meta.get("lo_open") and v == lo)):
                relation = "greater than" if meta.get("lo_open") else "at least"
                raise ConfigError(f.name, f"must be {relation} {lo}; got {v!r}")
            if hi is not None and v > hi:
                raise ConfigError(f.name, f"must be at most {hi}; got {v!r}")


def _leaves(value: Any) -> list[Any]:
    """The scalars of a value, lists of lists flattened (each is checked against the key's range)."""
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def build(cls: type, values: Mapping[str, Any]) -> Any:
    """Make a config dataclass from a mapping; unknown keys raise ConfigError naming the key."""
    names = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in names:
            raise ConfigError(key, f"unknown key for {cls.__name__}")
    return cls(**values)


@dataclass(frozen=True)
class EngineConfig:
    """Everything the ZSSR engine needs; defaults are the authors' (Shocher et al. 2018) unless noted."""

    in_channels: int = option(3, "colour channels the network sees (3: RGB; 1: luminance only)", choices=(1, 3))
    model_width: int = option(64, "channels of each hidden conv layer", lo=1, hi=1024)
    model_depth: int = option(8, "number of conv layers", lo=2, hi=64)
    model_kernel_size: int = option(3, "conv kernel size (odd)", choices=(1, 3, 5, 7, 9))
    model_fold: int = option(1, "1: the paper's network, whose layers work on every pixel of the enlarged input; "
                                "f: they work on its f x f blocks folded into channels and unfold at the end "
                                "(sub-pixel), a 1/f^2 of the work per pixel for the same width and depth",
                             choices=(1, 2, 3, 4))
    lr: float = option(1e-3, "initial Adam learning rate", lo=0.0, hi=1.0, lo_open=True)
    lr_stop: float = option(9e-6, "stop training once the learning rate falls below this", lo=0.0, hi=1.0)
    lr_decay: float = option(0.1, "factor applied to the learning rate at a decay", lo=0.0, hi=1.0, lo_open=True)
    lr_decay_ratio: float = option(1.5, "decay when -ratio * slope < std of the reconstruction-error fit",
                                   lo=0.0, hi=1e6, lo_open=True)
    lr_decay_range: int = option(256, "the fit uses the reconstruction errors of the last this many iterations",
                                 lo=2, hi=100000)
    lr_decay_step: int = option(60, "run the learning-rate check every this many iterations", lo=1, hi=100000)
    eval_every: int = option(50, "measure the reconstruction error every this many iterations", lo=1, hi=100000)
    num_epochs: int = option(3000, "maximum training iterations per gradual step", lo=1, hi=1000000)
    min_iters: int = option(256, "no decay or stop within this many iterations of the last decay", lo=0, hi=1000000)
    crop_size: int = option(128, "side of the random training crop (whole father when smaller)", lo=8, hi=4096)
    batch_size: int = option(1, "crops per training step", lo=1, hi=256)
    init_variance: float | None = option(None, "from scratch, draw every layer's weights from N(0, this / fan-in) "
                                               "as the authors do (0.1); null: He initialisation with a zero "
                                               "last layer (the untrained network is bicubic)", lo=0.0, hi=10.0,
                                         lo_open=True)
    father_sampling: str = option("area", "how a training crop's father is drawn: area (every father, the "
                                          "input's copies and the earlier gradual outputs', by its area) or "
                                          "source (each of the input and the earlier outputs equally often, "
                                          "favouring the real input as the authors do)",
                                  choices=("area", "source"))
    father_augment: str = option("dihedral", "how training crops are varied: dihedral (the fathers at six fixed "
                                             "scales 1.0-0.5, each crop under one of the 8 rotations and flips) "
                                             "or warp (the authors' code: a random scale in [0.5, 1], shear and "
                                             "angle on half the crops, rotations and flips on most others)",
                                 choices=("dihedral", "warp"))
    patch_size: int = option(512, "inference tile side; larger inputs are tiled with overlap", lo=32, hi=16384)
    scale_factor: float = option(2.0, "enlargement of one gradual step", lo=1.0, hi=8.0, lo_open=True)
    scale_times: int = option(1, "number of gradual steps (total scale = scale_factor ** scale_times)", lo=1, hi=6)
    gradual_mode: str = option("chain", "gradual steps: chain (each step enlarges the previous output by "
                                        "scale_factor) or grow (the authors' default: step k enlarges the input "
                                        "itself by scale_factor ** k, learning from the input and the earlier "
                                        "outputs; integer scale_factor, bicubic sons)",
                               choices=("chain", "grow"))
    gradual_scales: tuple[tuple[float, float], ...] | None = option(
        None, "grow: the total (vertical, horizontal) scale of each gradual step, the last equal to scale_factor "
              "** scale_times on both axes; the authors' gradual x2 is [[1, 1.5], [1.5, 1], [1.5, 1.5], [1.5, 2], "
              "[2, 1.5], [2, 2]] (about 0.3 dB above one x2 step, at six times the time, by their README); "
              "null: scale_factor ** k at step k")
    carry_optimizer: bool = option(False, "gradual steps after the first go on with the Adam state (moments) "
                                          "of the steps before, as the authors' code does; false: a fresh Adam "
                                          "each step")
    back_projection_iters: int = option(10, "back-projection iterations after enlarging", lo=0, hi=100)
    self_ensemble: bool = option(True, "median over the 8 dihedral transforms at inference")
    ensemble_steps: int | None = option(None, "with self_ensemble, only the first this many gradual steps "
                                              "enlarge over the 8 transforms and the later ones once (the first "
                                              "step's output is the smallest, so its ensemble costs the least, "
                                              "and its errors are carried through every later step); null: "
                                              "every step", lo=1, hi=64)
    noise_std: float = option(0.0, "std of Gaussian noise added to LR sons (real, noisy photos: 0.0125)",
                              lo=0.0, hi=0.5)
    estimate_noise: bool = option(False, "LR sons get the noise level measured on the input instead of "
                                         "noise_std (real photos)")
    estimate_kernel: bool = option(False, "LR sons are made with the blur kernel estimated from the input (a "
                                          "Gaussian or bicubic; integer scale_factor, no kernel file)")
    kernel_estimator: str = option("auto", "how estimate_kernel reads the blur: learned (a small CNN trained on "
                                           "external images made small with known Gaussians; scale_factor 2), "
                                           "recurrence (the Gaussian, or bicubic, under which the input's patches "
                                           "recur best in its son), or auto (learned at scale_factor 2, "
                                           "recurrence otherwise)",
                                   choices=("auto", "learned", "recurrence"))
    estimated_kernel_alignment: str = option("centred", "how an estimated kernel lines LR pixels up with HR "
                                                        "pixels: centred (a camera's pixels, MATLAB bicubic) or "
                                                        "direct (test sets sampled at 0, s, 2s, ...: MZSR's)",
                                             choices=("direct", "centred"))
    sons_jpeg: bool = option(False, "compress each LR son with the input's own JPEG quantization tables and "
                                    "chroma subsampling, when the input is a JPEG (real photos)")
    kernel: str | None = option(None, "optional path to a blur kernel (.npy or .mat) used to make LR sons")
    kernel_alignment: str = option("direct", "how `kernel` lines LR pixels up with HR pixels: direct (correlate "
                                             "with the kernel as given, keep pixels 0, s, 2s, ...: MZSR's test "
                                             "sets, the authors' imresize, KernelGAN's estimates) or centred "
                                             "(each LR pixel at the centre of its s x s block)",
                                   choices=("direct", "centred"))
    kernel_augment: bool = option(False, "with a `kernel` file, train on and ensemble over all 8 rotations and "
                                         "flips even those that change the kernel (by default only those that "
                                         "leave it unchanged: all 8 for an isotropic Gaussian, none for a "
                                         "generic kernel, where the authors turn them all off)")
    seed: int | None = option(0, "random seed (null: nondeterministic)", lo=0, hi=2**32 - 1)
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    num_threads: int = option(0, "CPU threads for torch (0: torch's default)", lo=0, hi=1024)
    time_budget_s: float | None = option(None, "stop training when this much time is spent (null: no limit)",
                                         lo=0.0, hi=1e6, lo_open=True)
    first_step_share: float | None = option(None, "share of time_budget_s that the first gradual step may spend "
                                                   "(the later steps split the rest); null: an even split",
                                            lo=0.0, hi=1.0, lo_open=True)
    self_check_fallback: bool = option(True, "when the trained network rebuilds the input from its own smaller "
                                             "copy no better than bicubic does, return bicubic instead of a worse "
                                             "image (the self-check)")
    channels_last: bool = option(True, "NHWC memory format (faster convolutions on CPU and GPU)")
    compile: bool = option(False, "torch.compile the network (falls back to eager when no compiler works)")
    mixed_precision: bool = option(False, "bfloat16/float16 autocast on CUDA (ignored on CPU)")
    warm_start: str | None = option(None, "initial network weights (.pt), which each input profile may name "
                                          "for its own; auto (a config without profiles): the input chooses "
                                          "between photo_warm_start (a JPEG without a given kernel), "
                                          "blurry_warm_start and clean_warm_start (a lossless image, or a given "
                                          "kernel); null: from scratch")
    photo_warm_start: str | None = option(None, "with warm_start auto: the weights for JPEG inputs (pre-trained "
                                                "on photo degradations: blur, noise, JPEG)")
    clean_warm_start: str | None = option(None, "with warm_start auto: the weights for lossless inputs and for a "
                                                "given kernel (pre-trained on clean bicubic sons)")
    blurry_warm_start: str | None = option(None, "with warm_start auto: the weights for a JPEG whose blur reaches "
                                                 "blurry_photo_std (pre-trained with most crops blurred); null: "
                                                 "photo_warm_start for every JPEG")
    learning_check: bool = option(False, "hold a strip of the photo out of training and keep each gradual step's "
                                         "test-time learning only where it rebuilds that strip better than the "
                                         "weights it started from (learning that never hurts)")
    learning_share: float = option(1.0, "each gradual step's weights end at the weights it started from plus this "
                                        "share of what its test-time training moved them (1: all of it; below 1 "
                                        "the step interpolates between the warm start and the adapted network "
                                        "in weight space)", lo=0.0, hi=1.0, lo_open=True)
    blurry_photo_std: float | None = option(None, "a photo whose blur, as the learned reader reads it (x2 only), "
                                                  "has at least this std learns nothing at test time and is not "
                                                  "self-checked: its own bicubic sons, sharper than it, would "
                                                  "teach the network to sharpen less than the warm start does "
                                                  "(bicubic-made photos read 0.56-0.95); null: every photo learns",
                                            lo=0.0, hi=10.0, lo_open=True)
    later_warm_start: str | None = option(None, "weights that gradual steps after the first start again from "
                                                "(.pt); null: each step goes on from the previous one. Photos: "
                                                "clean-bicubic weights, because a later step's input is the "
                                                "network's own clean output, not the blurred, compressed photo")
    test_time_learning: bool = option(True, "train on the input's own LR-son/HR-father pairs (the method); false: "
                                            "the warm start alone enlarges it (the blurry_photo profile: a photo "
                                            "blurrier than its own sons would learn to sharpen less)")
    iteration_budget: int | None = option(None, "training iterations of all gradual steps together, split as "
                                                "time_budget_s is (first_step_share, then evenly): a budget that "
                                                "gives the same result on every machine (the quality gate's); "
                                                "null: no limit beyond num_epochs a step", lo=0, hi=10_000_000)
    profile: str = option(AUTO, "which of `profiles` applies: auto (the input chooses: a given kernel, a kernel "
                                "to estimate, a lossless image, a JPEG photo, a JPEG the blur reader finds "
                                "blurry) or one of their names (forced)", choices=(AUTO, *PROFILE_NAMES))
    profiles: dict[str, dict[str, Any]] | None = option(
        None, "per kind of input, the engine keys that differ from these (app.engine.profiles); null: none, "
              "every input runs with the keys as they are (the presets)")

    def __post_init__(self) -> None:
        validate(self)
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError("device", f"must be auto, cpu, cuda or cuda:N; got {self.device!r}")
        if self.crop_size < 2 * self.scale_factor:
            raise ConfigError("crop_size", f"must be at least twice scale_factor ({self.scale_factor})")
        if self.estimate_kernel and self.kernel_estimator == "learned" and self.scale_factor != 2:
            raise ConfigError("kernel_estimator", f"learned reads blur made small by x2 only; scale_factor is "
                                                  f"{self.scale_factor:g} (use auto or recurrence)")
        if self.blurry_photo_std is not None and self.scale_factor != 2:
            raise ConfigError("blurry_photo_std", f"the blur reader reads blur made small by x2 only; scale_factor "
                                                  f"is {self.scale_factor:g} (set blurry_photo_std to null)")
        if self.gradual_mode == "grow" and self.scale_times > 1:
            # Each step's sons are its total scale below their fathers: MATLAB bicubic does any scale, a kernel
            # (and a warm start made for later steps) only scale_factor.
            if not float(self.scale_factor).is_integer():
                raise ConfigError("gradual_mode", f"grow needs an integer scale_factor; got {self.scale_factor}")
            for key in ("kernel", "estimate_kernel", "later_warm_start"):
                if getattr(self, key):
                    raise ConfigError("gradual_mode", f"grow makes each step's sons with MATLAB bicubic at the "
                                                      f"step's total scale; it cannot be used with {key}")

        if self.gradual_scales is not None:
            self._check_gradual_scales()
        if self.profiles is not None:
            self._check_profiles()
        if self.warm_start == AUTO:
            for key in ("photo_warm_start", "clean_warm_start"):
                if not getattr(self, key):
                    raise ConfigError(key, "warm_start auto chooses between photo_warm_start and "
                                           "clean_warm_start; give both (or set warm_start to a file or null)")

    def _check_gradual_scales(self) -> None:
        total = self.total_scale
        if self.gradual_mode != "grow":
            raise ConfigError("gradual_scales", "needs gradual_mode grow (each step enlarges the input itself)")
        if self.gradual_scales[-1] != (total, total):
            raise ConfigError("gradual_scales", f"the last step must be the total scale [{total:g}, {total:g}]; "
                                                f"got {list(self.gradual_scales[-1])}")
        if any(not 1 <= s <= total for pair in self.gradual_scales for s in pair):
            raise ConfigError("gradual_scales", f"every scale must be at least 1 and at most the total scale "
                                                f"{total:g}")
        if any(pair == (1.0, 1.0) for pair in self.gradual_scales):
            raise ConfigError("gradual_scales", "a step of [1, 1] enlarges nothing")
        twice = sorted({pair for pair in self.gradual_scales if self.gradual_scales.count(pair) > 1})
        if twice:
            raise ConfigError("gradual_scales", f"a step is listed twice: {[list(pair) for pair in twice]}")
        for key in ("kernel", "estimate_kernel", "later_warm_start"):
            if getattr(self, key):
                raise ConfigError("gradual_scales", f"steps at their own scales make sons with MATLAB bicubic; "
                                                    f"they cannot be used with {key}")

    def _check_profiles(self) -> None:
        """Every profile names only engine keys that are not the caller's, and makes a valid config."""
        for name, changes in self.profiles.items():
            if name not in PROFILE_NAMES:
                raise ConfigError("profiles", f"unknown profile {name!r}; profiles are {', '.join(PROFILE_NAMES)}")
            for key in changes:
                if key in CALLER_KEYS:
                    raise ConfigError(f"profiles.{name}.{key}", "a profile cannot set it (it chooses the profile, "
                                                                "or it is the caller's)")
                if key not in ENGINE_KEYS:
                    raise ConfigError(f"profiles.{name}.{key}", "unknown key")
            try:
                self.with_profile(name)
            except ConfigError as exc:
                raise ConfigError(f"profiles.{name}.{exc.key}", exc.message) from exc
        if self.profile != AUTO and self.profile not in self.profiles:
            raise ConfigError("profile", f"{self.profile!r} is not among profiles ({', '.join(self.profiles)})")

    def with_profile(self, name: str) -> "EngineConfig":
        """This config with profile `name`'s keys applied (and no profiles left to apply)."""
        return build(EngineConfig, {**dataclasses.asdict(self), "profiles": None, "profile": name,
                                    **self.profiles[name]})

    def pinned(self, **changes: Any) -> "EngineConfig":
        """A new config with `changes` applied and kept whatever profile the input chooses: the command line's
        keys, the web job's own settings."""
        profiles = None if self.profiles is None else \
            {name: {k: v for k, v in keys.items() if k not in changes} for name, keys in self.profiles.items()}
        return self.replace(**changes, profiles=profiles) if "profiles" not in changes else self.replace(**changes)

    @property
    def steps(self) -> tuple[tuple[float, float], ...]:
        """The (vertical, horizontal) scale each gradual step enlarges by: the total scale so far in `grow` mode
        (from the input itself), `scale_factor` in `chain` mode (from the previous output)."""
        if self.gradual_scales is not None:
            return self.gradual_scales
        s = self.scale_factor
        if self.gradual_mode == "grow":
            return tuple((s ** k, s ** k) for k in range(1, self.scale_times + 1))
        return ((s, s),) * self.scale_times

    @property
    def total_scale(self) -> float:
        return self.scale_factor ** self.scale_times

    def replace(self, **changes: Any) -> "EngineConfig":
        """A new config with `changes` applied; validated like a loaded one."""
        return build(EngineConfig, {**dataclasses.asdict(self), **changes})


ENGINE_KEYS = frozenset(f.name for f in dataclasses.fields(EngineConfig))
