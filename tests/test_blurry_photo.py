"""blurry_photo_std: a photo blurrier than its own bicubic sons learns nothing at test time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from app.engine import super_resolve
from app.engine.blur_net import read_blur
from app.engine.config import EngineConfig
from app.engine.degradation import SonDegradation
from app.errors import ConfigError
from tests.test_blur_net import made_small
from tests.test_degradation import dead_leaves


@pytest.fixture(scope="module")
def scene() -> torch.Tensor:
    return dead_leaves(256, seed=9)


def as_image(planes: torch.Tensor) -> Image.Image:
    return Image.fromarray((planes[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_the_reading_decides_at_the_threshold_itself(scene):
    lr = made_small(scene, 1.6)
    std = read_blur(lr)
    at = SonDegradation.plan(EngineConfig(blurry_photo_std=std), lr, None)
    assert at.blur_std == std and at.blurry
    above = SonDegradation.plan(EngineConfig(blurry_photo_std=std + 0.01), lr, None)
    assert above.blur_std == std and not above.blurry
    assert at.describe()["blur_std"] == round(std, 2) and at.describe()["blurry"] is True


def test_a_wide_blur_reads_blurry_and_a_narrow_one_does_not(scene):
    config = EngineConfig(blurry_photo_std=1.0)
    assert SonDegradation.plan(config, made_small(scene, 1.8), None).blurry
    assert not SonDegradation.plan(config, made_small(scene, 0.6), None).blurry


def test_no_reading_where_the_sons_have_their_own_kernel_or_none_is_asked(scene, tmp_path):
    lr = made_small(scene, 1.8)
    assert SonDegradation.plan(EngineConfig(), lr, None).blur_std is None
    np.save(tmp_path / "k.npy", np.ones((3, 3)) / 9)
    given = EngineConfig(blurry_photo_std=1.0, kernel=str(tmp_path / "k.npy"))
    assert SonDegradation.plan(given, lr, None).blur_std is None
    estimated = EngineConfig(blurry_photo_std=1.0, estimate_kernel=True, kernel_estimator="learned")
    planned = SonDegradation.plan(estimated, lr, None)
    assert planned.blur_std is None and not planned.blurry and planned.kernel is not None


def test_a_blurry_photo_trains_no_step_and_is_not_self_checked(tiny_config, scene):
    image = as_image(made_small(scene, 1.8))
    config = tiny_config.replace(scale_times=2, self_check_fallback=True, blurry_photo_std=1.0)
    skipped = super_resolve(image, config)
    assert skipped.iterations_per_step == (0, 0) and skipped.iterations == 0
    assert skipped.self_check is None and not skipped.fallback
    assert skipped.degradation["blurry"] is True
    assert skipped.image.size == (image.width * 4, image.height * 4)
    # The same photo under a threshold above its reading learns as before, and ends elsewhere.
    learned = super_resolve(image, config.replace(blurry_photo_std=9.0))
    assert learned.iterations_per_step[0] == tiny_config.num_epochs and learned.self_check is not None
    assert learned.degradation["blurry"] is False
    assert not np.array_equal(np.asarray(skipped.image), np.asarray(learned.image))


def test_the_reader_reads_x2_alone():
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig(blurry_photo_std=1.0, scale_factor=3.0)
    assert excinfo.value.key == "blurry_photo_std"
    assert EngineConfig(blurry_photo_std=None, scale_factor=3.0).blurry_photo_std is None


def test_a_photo_read_blurry_starts_from_the_blurry_weights_and_says_so(tiny_config, scene, tmp_path):
    from app.engine.jpeg import JpegProfile
    from app.engine.network import ZSSRNet
    from app.engine.warm_start import save_weights

    paths = {}
    for seed, name in ((1, "photo"), (2, "blurry")):
        torch.manual_seed(seed)
        net = ZSSRNet(tiny_config)
        torch.nn.init.normal_(net.layers[-1].weight, 0.0, 0.01)
        save_weights(net, tiny_config, tmp_path / f"{name}.pt", recipe={"scale_factor": 2.0})
        paths[name] = str(tmp_path / f"{name}.pt")
    config = tiny_config.replace(warm_start="auto", photo_warm_start=paths["photo"], clean_warm_start=paths["photo"],
                                 blurry_warm_start=paths["blurry"], blurry_photo_std=1.0, later_warm_start=None)
    image, jpeg = as_image(made_small(scene, 1.8)), JpegProfile.standard(90)
    blurry = super_resolve(image, config, jpeg=jpeg)
    assert blurry.degradation["blurry"] is True
    assert blurry.warm_start == {"weights": "blurry.pt", "chosen_by": "a blurry JPEG input"}
    # The same photo under a threshold above its reading starts from the photo weights; with none set, too.
    sharp = super_resolve(image, config.replace(blurry_photo_std=9.0), jpeg=jpeg)
    assert sharp.warm_start == {"weights": "photo.pt", "chosen_by": "a JPEG input"}
    unset = super_resolve(image, config.replace(blurry_warm_start=None), jpeg=jpeg)
    assert unset.warm_start == {"weights": "photo.pt", "chosen_by": "a JPEG input"}
    # Not only named: the blurry weights made the image (the photo's learns nothing either way).
    assert np.asarray(blurry.image).tolist() != np.asarray(unset.image).tolist()


def test_blurry_weights_that_see_other_planes_than_the_photo_weights_are_a_config_error(tiny_config, scene, tmp_path):
    from app.engine.jpeg import JpegProfile
    from app.engine.network import ZSSRNet
    from app.engine.warm_start import save_weights

    grey = tiny_config.replace(in_channels=1)
    save_weights(ZSSRNet(grey), grey, tmp_path / "grey.pt", recipe={"scale_factor": 2.0})
    save_weights(ZSSRNet(tiny_config), tiny_config, tmp_path / "rgb.pt", recipe={"scale_factor": 2.0})
    config = tiny_config.replace(warm_start="auto", photo_warm_start=str(tmp_path / "grey.pt"),
                                 clean_warm_start=str(tmp_path / "grey.pt"), blurry_warm_start=str(tmp_path / "rgb.pt"),
                                 blurry_photo_std=1.0, later_warm_start=None)
    with pytest.raises(ConfigError) as excinfo:
        super_resolve(as_image(made_small(scene, 1.8)), config, jpeg=JpegProfile.standard(90))
    assert excinfo.value.key == "blurry_warm_start"
