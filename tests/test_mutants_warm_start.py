"""Behaviours of app/engine/warm_start.py that mutation testing found unpinned: errors name the key that gave the
file, the reasons a start was chosen, and what a weights file records."""

from __future__ import annotations

import pytest
import torch

from app.engine.config import EngineConfig
from app.engine.network import ZSSRNet
from app.engine.warm_start import (WarmStart, choose_warm_start, file_arch, file_arch_of, load_weights, read_checkpoint,
                                   recorded_arch, save_weights, sha256, with_arch)
from app.errors import ConfigError

TINY = EngineConfig(model_depth=2, model_width=8, device="cpu")


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.pt"
    save_weights(ZSSRNet(TINY), TINY, path, recipe={"scale_factor": 2.0}, extra={"optimizer": {"lr": 0.1}})
    return path


@pytest.mark.parametrize("read", [file_arch, read_checkpoint])
def test_an_unreadable_file_is_a_config_error_naming_warm_start_unless_told_another_key(read, tmp_path):
    missing = tmp_path / "none.pt"
    with pytest.raises(ConfigError) as caught:
        read(missing)
    assert caught.value.key == "warm_start" and str(missing) in caught.value.message
    with pytest.raises(ConfigError) as caught:
        read(missing, "later_warm_start")
    assert caught.value.key == "later_warm_start"


def test_a_file_that_is_not_this_projects_weights_says_so(tmp_path):
    for name, content in (("list.pt", [1, 2]), ("no_arch.pt", {"state_dict": {}}), ("no_state.pt", {"arch": {}})):
        torch.save(content, tmp_path / name)
        with pytest.raises(ConfigError, match="not a weights file written by this project") as caught:
            read_checkpoint(tmp_path / name, "clean_warm_start")
        assert caught.value.key == "clean_warm_start"


def test_a_weights_file_records_its_design_its_recipe_and_extras(weights):
    checkpoint = read_checkpoint(weights)
    assert checkpoint["arch"] == {"in_channels": 3, "model_width": 8, "model_depth": 2, "model_kernel_size": 3,
                                  "model_fold": 1}
    assert checkpoint["recipe"] == {"scale_factor": 2.0} and checkpoint["optimizer"] == {"lr": 0.1}
    assert file_arch(weights) == checkpoint["arch"] == file_arch_of(ZSSRNet(TINY))
    assert len(sha256(weights)) == 64


def test_a_file_from_before_folding_existed_reads_as_the_papers_network():
    old = {"in_channels": 3, "model_width": 64, "model_depth": 8, "model_kernel_size": 3}
    assert recorded_arch(old)["model_fold"] == 1
    config = with_arch(TINY, old)
    assert (config.model_width, config.model_depth, config.model_fold) == (64, 8, 1)
    assert config.device == TINY.device  # only the design is taken from the file


def test_loading_fills_the_network_and_refuses_another_scale_naming_both(weights):
    net = ZSSRNet(TINY)
    torch.nn.init.zeros_(net.layers[0].weight.data)
    load_weights(net, weights)
    assert float(net.layers[0].weight.detach().abs().sum()) > 0
    load_weights(ZSSRNet(TINY), weights, 2.0)
    with pytest.raises(ConfigError, match=r"x2 steps, but scale_factor is 3") as caught:
        load_weights(ZSSRNet(TINY), weights, 3.0, "photo_warm_start")
    assert caught.value.key == "photo_warm_start"
    with pytest.raises(ConfigError, match="model_width=8, config has 16") as caught:
        load_weights(ZSSRNet(TINY.replace(model_width=16)), weights)
    assert caught.value.key == "warm_start"
    with pytest.raises(ConfigError) as caught:
        load_weights(ZSSRNet(TINY), weights.with_name("none.pt"), key="later_warm_start")
    assert caught.value.key == "later_warm_start"


def test_a_network_that_does_not_record_its_design_is_loaded_by_its_parameters_alone(weights):
    class Plain(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = ZSSRNet(TINY).layers

    plain = Plain()
    load_weights(plain, weights, 2.0)
    assert torch.equal(plain.layers[0].weight, read_checkpoint(weights)["state_dict"]["layers.0.weight"])


@pytest.mark.parametrize("warm_start, weights_file, reason", [(None, None, "the config (from scratch)"),
                                                              ("w.pt", "w.pt", "the config")])
def test_a_start_the_config_names_says_so(warm_start, weights_file, reason):
    start = choose_warm_start(TINY.replace(warm_start=warm_start), jpeg=True)
    assert start == WarmStart(warm_start, reason)
    assert start.describe() == {"weights": weights_file, "chosen_by": reason}


def test_a_jpeg_not_said_to_be_blurry_starts_from_the_photo_weights():
    config = TINY.replace(warm_start="auto", photo_warm_start="photo.pt", clean_warm_start="clean.pt",
                          blurry_warm_start="blurry.pt")
    assert choose_warm_start(config, True) == WarmStart("photo.pt", "a JPEG input")
    assert choose_warm_start(config, True, True) == WarmStart("blurry.pt", "a blurry JPEG input")
    assert choose_warm_start(config, False, True) == WarmStart("clean.pt", "a lossless input")
    assert choose_warm_start(config.replace(blurry_warm_start=None), True, True) == \
        WarmStart("photo.pt", "a JPEG input")


def test_weights_unlike_their_recorded_design_do_not_fit_and_say_so(weights, tmp_path):
    checkpoint = read_checkpoint(weights)
    mislabelled = tmp_path / "mislabelled.pt"
    torch.save({**checkpoint, "arch": {**checkpoint["arch"], "model_width": 16}}, mislabelled)
    with pytest.raises(ConfigError, match=r"mislabelled.pt does not fit this network \(.*'model_width': 16") as caught:
        load_weights(ZSSRNet(TINY.replace(model_width=16)), mislabelled, key="clean_warm_start")
    assert caught.value.key == "clean_warm_start"


class Payload:
    """Something a pickle could bring along with weights: unpickling it would run code of the file's choosing."""


def test_a_file_that_would_unpickle_arbitrary_objects_is_refused(weights, tmp_path):
    hostile = tmp_path / "hostile.pt"
    torch.save({**read_checkpoint(weights), "extra": Payload()}, hostile)
    with pytest.raises(ConfigError, match="cannot read weights from .*hostile.pt: UnpicklingError") as caught:
        read_checkpoint(hostile, "photo_warm_start")
    assert caught.value.key == "photo_warm_start"


def test_why_a_file_cannot_be_read_is_in_the_message(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_checkpoint(tmp_path / "none.pt")
    assert caught.value.message.startswith(f"cannot read weights from {tmp_path / 'none.pt'}: FileNotFoundError: ")
