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
