"""Input profiles: which named set of engine settings an input runs with, chosen by what the input is.

A config's `profiles` hold, per kind of input, the keys that differ from its own: a JPEG photo, a JPEG photo the
blur reader finds blurry, a lossless image, an image whose blur kernel is given, one whose kernel is to be
estimated. Each profile's values are chosen on that input's own benchmark protocol, so tuning one path cannot move
another. `profile` forces one; keys pinned by the caller (EngineConfig.pinned: the command line, the web job) win
over every profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from app.engine.config import AUTO, EngineConfig

# Why the input chose each profile, in the words the job's JSON, the CLI's log and the page show.
REASONS = {
    "kernel_given": "a blur kernel is given",
    "kernel_estimated": "the blur kernel is estimated from the input",
    "lossless": "a lossless input",
    "photo": "a JPEG input",
    "blurry_photo": "a blurry JPEG input",
}


@dataclass(frozen=True)
class ProfileChoice:
    """The profile an input runs with (None: the config has no profiles) and why."""

    name: str | None
    reason: str

    def describe(self) -> dict:
        return {"name": self.name, "chosen_by": self.reason}


NO_PROFILE = ProfileChoice(None, "the config has no profiles")


def choose_profile(config: EngineConfig, jpeg: bool, blurry: Callable[[EngineConfig], bool]) -> ProfileChoice:
    """The profile for an input: forced by `profile`, else by the input. `jpeg`: the input is a JPEG file;
    `blurry(photo_config)`: whether the blur reader finds it blurry under the photo profile's settings (called
    only for a JPEG, and only when a blurry_photo profile exists: the reading costs a forward pass).

    The order is what the sons must be true to: a given kernel, then a kernel to estimate (either is the input's
    own blur, whatever its file), then the file's kind. A kind with no profile of its own runs as `lossless`
    (a lossless image's profile is the one without photo-specific guesses) when there is one, else with the
    config's own keys."""
    profiles = config.profiles
    if profiles is None:
        return NO_PROFILE
    if config.profile != AUTO:
        return ProfileChoice(config.profile, "the config")
    if config.kernel:
        name = "kernel_given"
    elif config.estimate_kernel:
        name = "kernel_estimated"
    elif not jpeg:
        name = "lossless"
    elif "blurry_photo" in profiles and "photo" in profiles and blurry(config.with_profile("photo")):
        name = "blurry_photo"
    else:
        name = "photo"
    if name not in profiles:
        return ProfileChoice("lossless" if "lossless" in profiles else None,
                             f"{REASONS[name]}, with no {name} profile")
    return ProfileChoice(name, REASONS[name])


def profiled(config: EngineConfig, choice: ProfileChoice) -> EngineConfig:
    """`config` with the chosen profile's keys applied (as it is when none was chosen)."""
    if choice.name is None or config.profiles is None:
        return config
    return config.with_profile(choice.name)
