"""The zoo registry: names, info, load, register, and its errors."""

import numpy as np
import pytest

import aezoo
from aezoo.errors import InputError, UnknownModelError, WeightsError

EXPECTED = {f"{kind}_{ds}" for kind in ("dense", "conv", "denoising", "vae", "conv_vae")
            for ds in ("mnist", "fashion_mnist")}


def test_list_models_has_the_whole_zoo():
    names = aezoo.list_models()
    assert EXPECTED <= set(names) and names == sorted(names)
    assert set(aezoo.list_models(family="vae")) == {"vae_mnist", "conv_vae_mnist", "vae_fashion_mnist",
                                                    "conv_vae_fashion_mnist"}
    assert all(n.endswith("_mnist") and "fashion" not in n for n in aezoo.list_models(dataset="mnist_5k"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_entry_builds_with_its_recipe(name):
    info = aezoo.info(name)
    assert info["family"] in ("dense", "conv", "denoising", "vae")
    assert info["input_shape"] == [28, 28, 1]
    # a compressing bottleneck (>= 10x); a denoiser's only has to be undercomplete
    assert 0 < info["latent_dim"] < (28 * 28 if info["family"] == "denoising" else 28 * 28 // 10)
    assert info["params"] > 1000
    assert info["dataset"] == ("fashion_mnist" if "fashion" in name else "mnist_5k")
    for key in ("dataset", "optimizer", "schedule", "epochs", "batch_size", "seed", "loss", "corruption"):
        assert key in info["recipe"]
    aezoo.recipes.validate(info["recipe"], info["family"])
    model = aezoo.load(name, pretrained=False)
    assert model.name == name and model.latent_dim == info["latent_dim"]


def test_unknown_name_lists_close_matches():
    with pytest.raises(UnknownModelError, match="Did you mean conv_mnist"):
        aezoo.load("conv_mnst")
    with pytest.raises(UnknownModelError, match="Known models"):
        aezoo.info("resnet50")


@pytest.mark.parametrize("name", ["./conv_mnist.weights.h5", "models/conv_mnist", "conv.keras"])
def test_path_like_name_is_refused_with_advice(name):
    with pytest.raises(UnknownModelError, match="looks like a path"):
        aezoo.load(name)


def test_config_overrides_and_pretrained_conflict():
    model = aezoo.load("conv_mnist", pretrained=False, latent_dim=8)
    assert model.latent_dim == 8
    with pytest.raises(InputError, match="pretrained=False"):
        aezoo.load("conv_mnist", latent_dim=8)


def test_register_user_entry():
    name = aezoo.register("my_tiny_dense", "dense", {"input_shape": [8, 8, 1], "latent_dim": 2, "hidden": [4]},
                          recipe={"dataset": "mnist_5k", "epochs": 1}, description="tiny")
    assert name in aezoo.list_models()
    model = aezoo.load(name, pretrained=False)
    assert model.encode(np.zeros((1, 8, 8, 1), "float32")).shape == (1, 2)
    with pytest.raises(WeightsError, match="no pretrained weights"):
        aezoo.load(name)
    with pytest.raises(InputError, match="already registered"):
        aezoo.register(name, "dense", {"input_shape": [8, 8, 1], "latent_dim": 2})
    with pytest.raises(InputError, match="unknown family"):
        aezoo.register("x_model", "gan", {})
    with pytest.raises(InputError, match="letters, digits"):
        aezoo.register("bad name!", "dense", {})
