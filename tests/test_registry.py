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


def test_denoiser_noise_is_stated_once():
    """In the recipe's corruption, not also in the config; the built model follows the recipe."""
    names = aezoo.list_models(family="denoising")
    assert names
    for name in names:
        for version in aezoo.registry.versions(name):
            entry = aezoo.get_entry(name, version)
            assert not {"noise", "noise_level"} & set(entry["config"]), (name, version)
            corruption = entry["recipe"]["corruption"]
            model = aezoo.build(name, version)
            assert (model.noise, model.noise_level) == (corruption["noise"], corruption["level"])


def test_registrations_do_not_leak_between_zoos():
    """The bug: test_register_user_entry left my_tiny_dense registered for the tests after it."""
    from aezoo import registry

    outer = registry.current()
    sandbox = outer.copy()
    with registry.use(sandbox):
        aezoo.register("leaky", "dense", {"input_shape": [8, 8, 1], "latent_dim": 2, "hidden": [4]})
        assert "leaky" in aezoo.list_models()
    assert registry.current() is outer and "leaky" not in aezoo.list_models()
    assert "leaky" in sandbox.entries
    sandbox.reset()
    assert "leaky" not in sandbox.entries and "conv_mnist" in sandbox.entries


def test_register_refuses_bad_configs_and_published_names():
    with pytest.raises(InputError, match="config is a dict"):
        aezoo.register("x_model", "dense", None)
    with pytest.raises(InputError, match="latent_dim must be a positive integer; got 'abc'"):
        aezoo.register("x_model", "dense", {"latent_dim": "abc"})
    with pytest.raises(InputError, match=r"bad config for 'x_model'.*keyword arguments.*hiden.*It takes input_shape"):
        aezoo.register("x_model", "dense", {"latent_dim": 2, "hiden": [4]})
    with pytest.raises(InputError, match="has published pretrained weights.*another name"):
        aezoo.register("conv_mnist", "dense", {"latent_dim": 2}, overwrite=True)
    assert aezoo.get_entry("conv_mnist")["family"] == "conv"  # untouched
    mine = {"input_shape": [8, 8, 1], "latent_dim": 2, "hidden": [4]}
    aezoo.register("mine", "dense", mine)
    aezoo.register("mine", "dense", {**mine, "latent_dim": 3}, overwrite=True)  # no weights: replaced
    assert aezoo.load("mine", pretrained=False).latent_dim == 3


def test_load_with_a_bad_override_says_what_was_expected():
    with pytest.raises(InputError, match="latent_dim must be a positive integer; got 'abc'"):
        aezoo.load("conv_mnist", pretrained=False, latent_dim="abc")
    with pytest.raises(InputError, match="latent_dim must be a positive integer; got 2.5"):
        aezoo.build("conv_mnist", latent_dim=2.5)
    with pytest.raises(InputError, match="bad config for 'conv_mnist'.*filtres.*It takes"):
        aezoo.load("conv_mnist", pretrained=False, filtres=[4])


def test_verify_of_an_unknown_name_says_unknown(capsys):
    from aezoo.cli import main

    with pytest.raises(UnknownModelError, match="unknown model 'foo'"):
        aezoo.registry.verify(["foo"])
    assert main(["verify", "foo"]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'foo'" in err and "train" not in err


def test_info_reads_data_only():
    info = aezoo.info("conv_mnist")
    assert info["params"] == aezoo.weights.record("conv_mnist")["params"]
    assert info["input_shape"] == [28, 28, 1] and info["latent_dim"] == 32
    unpublished = [(n, v) for n in aezoo.list_models() for v in aezoo.registry.versions(n)
                   if aezoo.weights.record(n, v) is None]
    if unpublished:
        name, version = unpublished[0]
        assert aezoo.info(name, version=version)["params"] is None
        assert aezoo.info(name, version=version, count_params=True)["params"] == \
            aezoo.build(name, version).count_params()


# -- goals: data in zoo.json, checked against the cards -----------------------------------------

def test_goals_are_checked_against_the_card(monkeypatch, tmp_path):
    from aezoo import cards, registry

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "compress.json").write_text('{"baselines": {"pca": {"64": 20.0}}}')
    monkeypatch.setattr(aezoo._io, "pretrained_dir", lambda: tmp_path)
    specs = [
        {"measure": "probe", "path": ["tasks", "features", "probe"], "op": ">=", "value": 0.86, "tried": "more epochs"},
        {"measure": "ratio", "path": ["metrics", "ratio"], "op": "<=", "value": 0.45},
        {"measure": "probe over pca", "path": ["tasks", "features", "probe"], "op": ">=", "value": 0.03,
         "relative_to": {"path": ["tasks", "features", "pca"]}},
        {"measure": "nll vs other", "path": ["metrics", "nll"], "op": "<=", "value": -5.0,
         "relative_to": {"entry": "other", "version": 1, "path": ["metrics", "nll"]}},
        {"measure": "psnr vs file", "path": ["metrics", "psnr"], "op": ">=", "value": 0.5, "scale": 1.0,
         "relative_to": {"file": "tasks/compress.json", "path": ["baselines", "pca", "64"]}},
        {"measure": "not run yet", "path": ["tasks", "generate", "fd"], "op": "<", "value": 50},
    ]
    monkeypatch.setattr(registry, "raw_version", lambda name, version: {"goals": specs})
    monkeypatch.setattr(registry, "versions", lambda name: [1, 2])
    manifest = {"me": {"2": {"metrics": {"ratio": 0.38, "nll": 235.3, "psnr": 20.4},
                             "tasks": {"features": {"probe": 0.844, "pca": 0.813}}}},
                "other": {"1": {"metrics": {"nll": 238.1}}}}
    got = {g["measure"]: g for g in registry.goals("me", 2, manifest)}
    assert got["probe"]["met"] is False and got["probe"]["margin"] == pytest.approx(-0.016)
    assert got["probe"]["tried"] == "more epochs"
    assert got["ratio"]["met"] is True and got["ratio"]["margin"] == pytest.approx(0.07)
    assert got["probe over pca"]["target"] == pytest.approx(0.843) and got["probe over pca"]["met"] is True
    assert got["nll vs other"]["target"] == pytest.approx(233.1) and got["nll vs other"]["met"] is False
    assert got["nll vs other"]["margin"] == pytest.approx(-2.2)
    assert got["psnr vs file"]["target"] == pytest.approx(20.5) and got["psnr vs file"]["met"] is False
    assert got["not run yet"]["measured"] is None and got["not run yet"]["met"] is None
    table = cards.goals_table(manifest={"me": manifest["me"]})
    assert "**missed by 0.016**" in table and "more epochs" in table

    specs.append({"measure": "bad", "path": ["metrics", "ratio"], "op": "=<", "value": 1})
    with pytest.raises(InputError, match="expected one of"):
        registry.goals("me", 2, manifest)


def test_every_goal_of_a_published_version_is_measured():
    """A goal's path names numbers the card has (a typo would leave it 'not measured' for ever);
    `aezoo info` carries them."""
    checked = 0
    for name in aezoo.list_models():
        for version in aezoo.weights.published_versions(name):
            for g in aezoo.info(name, version=version)["goals"]:
                assert g["measured"] is not None and g["target"] is not None, (name, version, g["measure"])
                assert g["met"] == (g["margin"] >= 0), (name, version, g["measure"])
                checked += 1
    assert checked >= 20


# -- a new family is its own module ------------------------------------------------------------

@pytest.fixture
def toy_family():
    """A family defined the way a new module would define it: nothing else in aezoo changes."""
    import keras

    from aezoo.models import FAMILIES, register_family
    from aezoo.models.dense import DenseAutoencoder

    @register_family("toy")
    class ToyAutoencoder(DenseAutoencoder):
        allowed_losses = ("mse",)
        recipe_options = ("corruption",)

        def evaluation_extras(self, x, *, metrics, predict, baseline=None, seed=0, batch_size=256, iwae_k=64):
            return {"toy": {"latent_norm": float(np.linalg.norm(np.asarray(self.encode(x)), axis=1).mean())}}

        @classmethod
        def format_extras(cls, report):
            return [f"toy: latent norm {report['toy']['latent_norm']:.3f}"] if "toy" in report else []

        @classmethod
        def card_metrics(cls, report):
            return {"toy_latent_norm": report["toy"]["latent_norm"]}

    yield ToyAutoencoder
    FAMILIES.pop("toy")
    keras.saving.get_custom_objects().pop("aezoo>ToyAutoencoder", None)


def test_a_new_family_plugs_into_every_verb(toy_family, tmp_path):
    from aezoo import recipes
    from aezoo.cards import _flat_metrics
    from aezoo.evaluation import format_report

    with pytest.raises(aezoo.RecipeError, match="loss 'bce' does not fit family 'toy'"):
        recipes.validate({"loss": "bce"}, "toy")
    recipes.validate({"corruption": {"noise": "gaussian", "level": 0.1}}, "toy")  # it takes corruption
    with pytest.raises(aezoo.RecipeError, match="applies to denoising and toy models, not 'dense'"):
        recipes.validate({"corruption": {"noise": "gaussian", "level": 0.1}}, "dense")
    aezoo.register("toy_mnist", "toy", {"latent_dim": 4, "hidden": [16]}, recipe={"dataset": "mnist_5k"})
    model = aezoo.load("toy_mnist", pretrained=False)
    assert isinstance(model, toy_family) and model.family == "toy"
    report = aezoo.evaluate("toy_mnist", model=model, limit=16, pca=False, progress=False)
    assert report["toy"]["latent_norm"] > 0 and "toy: latent norm" in format_report(report)
    assert _flat_metrics(report)["toy_latent_norm"] == report["toy"]["latent_norm"]
    _, summary = aezoo.train("toy_mnist", output_dir=tmp_path / "run", epochs=1, limit=32, verbose=0)
    assert summary["family"] == "toy"
    report = aezoo.export(model, tmp_path / "toy.onnx", format="onnx")
    assert report["passed"] and report["model"]["family"] == "toy"


def test_publish_keeps_the_registry_recipe_and_refuses_another(tmp_path):
    """The card's recipe is the entry's; a run whose recipe validates to another one (here another batch
    size, though the architecture and data are the same) is refused."""
    import json

    from aezoo.cards import publish
    from aezoo.errors import WeightsError

    recipe = {"dataset": "mnist_5k", "epochs": 1, "batch_size": 64, "loss": "mse"}
    aezoo.register("tiny_publish", "dense", {"input_shape": [28, 28, 1], "latent_dim": 2, "hidden": [8]}, recipe)
    run = tmp_path / "run"
    aezoo.train("tiny_publish", output_dir=run, limit=128, verbose=0)
    assert "kl_warmup_epochs" in json.loads((run / "train_metrics.json").read_text())["recipe"]
    record = publish("tiny_publish", run, pretrained_dir=tmp_path / "pre", progress=False)
    assert record["recipe"] == aezoo.get_entry("tiny_publish")["recipe"]
    assert json.loads((tmp_path / "pre" / "manifest.json").read_text())["tiny_publish"]["1"]["recipe"] == \
        aezoo.get_entry("tiny_publish")["recipe"]
    metrics = json.loads((run / "train_metrics.json").read_text())
    metrics["recipe"]["batch_size"] = 32                      # trained with another recipe
    (run / "train_metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(WeightsError, match="only runs of the registry's recipe"):
        publish("tiny_publish", run, pretrained_dir=tmp_path / "pre2", progress=False)
