import pytest

from aezoo import recipes
from aezoo.errors import RecipeError
from aezoo.registry import get_entry


def test_overrides_are_parsed_and_applied():
    base = get_entry("conv_mnist")["recipe"]
    parsed = recipes.parse_overrides(["epochs=3", "optimizer.learning_rate=3e-4", "schedule.name=constant"])
    assert parsed == {"epochs": 3, "optimizer.learning_rate": 3e-4, "schedule.name": "constant"}
    out = recipes.apply_overrides(base, parsed, "conv")
    assert out["epochs"] == 3 and out["optimizer"]["learning_rate"] == 3e-4
    assert base["epochs"] != 3  # the registry's recipe is untouched


@pytest.mark.parametrize("override, message", [
    ({"epoch": 3}, "unknown recipe key 'epoch'"),
    ({"epochs": 0}, "epochs must be an integer"),
    ({"epochs": "many"}, "epochs must be an integer"),
    ({"optimizer.learning_rate": -1}, "learning_rate must be a number"),
    ({"optimizer.name": "lion"}, "optimizer.name must be one of"),
    ({"dataset": "cifar10"}, "dataset 'cifar10' is unknown"),
    ({"loss": "elbo"}, "does not fit family 'conv'"),
    ({"corruption": {"noise": "gaussian", "level": 0.1}}, "applies to denoising models"),
])
def test_bad_overrides_say_what_was_expected(override, message):
    with pytest.raises(RecipeError, match=message):
        recipes.apply_overrides(get_entry("conv_mnist")["recipe"], override, "conv")


def test_override_syntax():
    with pytest.raises(RecipeError, match="KEY=VALUE"):
        recipes.parse_overrides(["epochs"])


def test_bad_corruption_level():
    with pytest.raises(RecipeError, match="noise_level for masking must be in"):
        recipes.apply_overrides(get_entry("denoising_mnist")["recipe"],
                                {"corruption": {"noise": "masking", "level": 2}}, "denoising")


def test_a_name_for_a_dict_key_sets_its_name():
    base = get_entry("conv_mnist")["recipe"]
    out = recipes.apply_overrides(base, recipes.parse_overrides(["optimizer=sgd"]), "conv")
    assert out["optimizer"]["name"] == "sgd" and out["optimizer"]["learning_rate"] == base["optimizer"]["learning_rate"]
    out = recipes.apply_overrides(base, {"schedule": "constant"}, "conv")
    assert out["schedule"]["name"] == "constant"
    assert recipes.validate({"optimizer": "adamw"}, "conv")["optimizer"] == {**recipes.DEFAULT["optimizer"],
                                                                           "name": "adamw"}
    with pytest.raises(RecipeError, match="optimizer.name must be one of"):
        recipes.apply_overrides(base, {"optimizer": "lion"}, "conv")
    with pytest.raises(RecipeError, match="recipe schedule must be a name or a dict"):
        recipes.validate({"schedule": 3}, "conv")


def test_family_rules_come_from_the_family():
    with pytest.raises(RecipeError, match="loss 'mse' does not fit family 'vae': it trains on 'elbo'"):
        recipes.validate({"loss": "mse"}, "vae")
    with pytest.raises(RecipeError, match="recipe kl_warmup_epochs applies to vae models, not 'conv'"):
        recipes.validate({"kl_warmup_epochs": 2}, "conv")
    assert recipes.validate({"loss": "elbo", "kl_warmup_epochs": 2}, "vae")["kl_warmup_epochs"] == 2
    with pytest.raises(RecipeError, match=r"recipe corruption must be \{'noise'"):
        recipes.validate({"corruption": {"noise": "gaussian"}}, "denoising")
