"""aezoo.train runs a recipe: weights, metrics JSON, checkpoints, logs, resume."""

import csv
import json

import keras
import numpy as np
import pytest

import aezoo
from aezoo.errors import BackendError, RecipeError
from aezoo.training import RunDirError

SMALL = {"hidden": [32], "latent_dim": 4}


def test_train_writes_weights_and_metrics(tmp_path):
    model, summary = aezoo.train("dense_mnist", output_dir=tmp_path / "run", epochs=3, limit=256,
                                 config_overrides=SMALL, verbose=0)
    run = tmp_path / "run"
    assert (run / "dense_mnist.weights.h5").exists() and (run / "best.weights.h5").exists()
    assert any((run / "logs").rglob("events.out.tfevents.*"))
    saved = json.loads((run / "train_metrics.json").read_text())
    assert saved["recipe"]["epochs"] == 3 and saved["overrides"] == {"epochs": 3}
    assert saved["data"]["dataset"] == "mnist_5k" and saved["data"]["train_examples"] == 256
    assert saved["data"]["validation_examples"] == 256
    assert saved["history"]["loss"][-1] < saved["history"]["loss"][0]
    assert saved["versions"]["keras"] == keras.__version__
    fresh = aezoo.build("dense_mnist", **SMALL)
    fresh.load_weights(run / "dense_mnist.weights.h5")
    x, _ = aezoo.datasets.load_numpy("mnist_5k", "test", limit=8)
    np.testing.assert_array_equal(np.asarray(fresh.reconstruct(x)), np.asarray(model.reconstruct(x)))


class _Crash(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt("simulated kill")


def test_killed_run_resumes(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        aezoo.train("dense_mnist", output_dir=run, epochs=3, limit=128, config_overrides=SMALL, verbose=0,
                    callbacks=[_Crash()])
    assert (run / "backup").exists()
    # other settings do not silently resume the killed run
    with pytest.raises(RunDirError, match=r"started with other settings \(recipe.epochs: 3 -> 5\)"):
        aezoo.train("dense_mnist", output_dir=run, epochs=5, limit=128, config_overrides=SMALL, verbose=0)
    before = json.loads((run / "epoch_seconds.json").read_text())
    assert len(before) == 1  # the crash came at the end of epoch 1, before its clock ran
    _, summary = aezoo.train("dense_mnist", output_dir=run, epochs=3, limit=128, config_overrides=SMALL, verbose=0)
    assert summary["epochs_this_process"] == 2  # epoch 1 was done before the kill
    clock = json.loads((run / "epoch_seconds.json").read_text())
    assert len(clock) == 3 and clock[0] == before[0]  # every epoch, the first process's kept
    # the card's time counts the epoch the killed process finished, not only this process's
    assert summary["seconds"] == pytest.approx(summary["seconds_this_process"] + before[0], abs=0.11)
    epochs = [int(r["epoch"]) for r in csv.DictReader((run / "history.csv").open())]
    assert epochs == [0, 1, 2]
    with pytest.raises(RunDirError, match="holds a finished run of dense_mnist"):
        aezoo.train("dense_mnist", output_dir=run, epochs=3, limit=128, config_overrides=SMALL, verbose=0)
    with pytest.raises(RunDirError, match="run directory of 'dense_mnist', not 'vae_mnist'"):
        aezoo.train("vae_mnist", output_dir=run, epochs=1, limit=16, verbose=0)
    assert [int(r["epoch"]) for r in csv.DictReader((run / "history.csv").open())] == [0, 1, 2]  # untouched


def test_legacy_run_dir_of_another_model_is_refused(tmp_path):
    run = tmp_path / "old"
    run.mkdir()
    (run / "conv_mnist.weights.h5").write_bytes(b"from an earlier run")
    with pytest.raises(RunDirError, match="holds another model's run \\(conv_mnist.weights.h5\\)"):
        aezoo.train("dense_mnist", output_dir=run, epochs=1, limit=16, config_overrides=SMALL, verbose=0)


def test_optimizer_and_schedule_names_as_overrides(tmp_path, capsys):
    from aezoo.cli import main

    _, summary = aezoo.train("dense_mnist", output_dir=tmp_path / "a", epochs=1, limit=32, config_overrides=SMALL,
                             overrides={"schedule": "constant", "optimizer": "sgd"}, verbose=0)
    assert summary["recipe"]["schedule"]["name"] == "constant" and summary["recipe"]["optimizer"]["name"] == "sgd"
    assert main(["train", "dense_mnist", "--set", "optimizer=adamw", "--epochs", "1", "--limit", "32",
                 "--output-dir", str(tmp_path / "b")]) == 0
    assert json.loads((tmp_path / "b" / "train_metrics.json").read_text())["recipe"]["optimizer"]["name"] == "adamw"


def test_denoiser_uses_recipe_corruption_and_user_data(tmp_path, images):
    model, summary = aezoo.train("denoising_mnist", output_dir=tmp_path / "d", epochs=1, data=images[:64],
                                 overrides={"corruption.level": 0.35},
                                 config_overrides={"latent_dim": 8, "body_config": {"widths": [4, 8], "blocks": [1, 1]}}, verbose=0)
    assert model.noise_level == 0.35 and summary["data"]["dataset"] == "user data"
    with pytest.raises(ValueError, match="integer dtype"):
        aezoo.train("dense_mnist", output_dir=tmp_path / "e", epochs=1, data=(images * 255).astype("uint8"))


def test_denoiser_validates_on_noisy_inputs(tmp_path, images):
    """val_loss scores denoising (fixed noisy copies -> clean), not clean reconstruction."""
    import tensorflow as tf

    tiny = {"latent_dim": 8, "body_config": {"widths": [4, 8], "blocks": [1, 1]}}
    train, val = images[:64], images[64:128]
    for i, validation in enumerate((val, tf.data.Dataset.from_tensor_slices(val))):
        model, summary = aezoo.train("denoising_mnist", output_dir=tmp_path / f"d{i}", epochs=1, data=train,
                                     validation_data=validation, config_overrides=tiny, verbose=0)
        bs, seed = summary["recipe"]["batch_size"], summary["recipe"]["seed"]
        noisy, clean = model.scored_pairs(val, seed) if i == 0 else next(iter(
            tf.data.Dataset.from_tensor_slices(val).batch(len(val)).map(lambda b: model.scored_pairs(b, seed))))
        assert not np.allclose(np.asarray(noisy), val)
        on_noisy = model.evaluate(np.asarray(noisy), np.asarray(clean), batch_size=bs, verbose=0)
        on_clean = model.evaluate(val, val, batch_size=bs, verbose=0)
        assert summary["final"]["val_loss"] == pytest.approx(on_noisy, rel=1e-4)
        assert on_noisy > 1.5 * on_clean
    # the same noisy copies every epoch (and every call): the seed fixes them
    np.testing.assert_array_equal(model.scored_pairs(val, 5)[0], model.scored_pairs(val, 5)[0])


def test_vae_trains_with_elbo(tmp_path):
    _, summary = aezoo.train("vae_mnist", output_dir=tmp_path / "v", epochs=2, limit=128,
                             config_overrides={"hidden": [32], "latent_dim": 2}, verbose=0)
    assert {"reconstruction_loss", "kl_loss", "val_loss"} <= set(summary["final"])


def test_bad_requests(tmp_path):
    with pytest.raises(RecipeError, match="unknown recipe key"):
        aezoo.train("dense_mnist", output_dir=tmp_path, overrides={"learning_rate": 1})
    with pytest.raises(BackendError, match="data_parallel"):
        aezoo.train("dense_mnist", output_dir=tmp_path, epochs=1, limit=8, strategy="data_parallel")


def test_mirrored_strategy_on_one_device(tmp_path):
    import tensorflow as tf

    model, summary = aezoo.train("dense_mnist", output_dir=tmp_path / "m", epochs=1, limit=64,
                                 config_overrides=SMALL, strategy="mirrored", verbose=0)
    assert summary["strategy"] == "mirrored" and summary["replicas"] >= 1
    # the model really was built under the strategy: its variables are mirrored
    assert all(isinstance(v.value, tf.distribute.DistributedValues) for v in model.trainable_variables)
    plain, _ = aezoo.train("dense_mnist", output_dir=tmp_path / "n", epochs=1, limit=64, config_overrides=SMALL,
                           verbose=0)
    assert not any(isinstance(v.value, tf.distribute.DistributedValues) for v in plain.trainable_variables)
