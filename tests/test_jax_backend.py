"""Every family trains and infers on the JAX backend (in a subprocess, since
the Keras backend is fixed per process)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("jax")

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np, keras
    assert keras.backend.backend() == "jax"
    import aezoo
    from aezoo.errors import BackendError
    from conftest import make_images

    x = make_images(128)
    out = {}
    cases = {
        "dense_mnist": dict(hidden=[32], latent_dim=4),
        "conv_mnist": dict(widths=[4, 8], blocks=[0, 1], latent_dim=4),
        "denoising_mnist": dict(body_config={"widths": [4, 8], "blocks": [1, 1]}, latent_dim=8),
        "vae_mnist": dict(hidden=[32], latent_dim=2),
        "conv_vae_mnist": dict(widths=[4, 8], blocks=[0, 1], latent_dim=2),
    }
    for name, cfg in cases.items():
        keras.utils.set_random_seed(0)
        model = aezoo.build(name, **cfg)
        model.compile(keras.optimizers.Adam(3e-3), loss=None if "vae" in name else "mse")
        losses = model.fit(x, epochs=4, batch_size=32, verbose=0).history["loss"]
        path = sys.argv[1] + f"/{name}.keras"
        model.save(path)
        again = keras.saving.load_model(path)
        same = bool(np.array_equal(np.asarray(again.reconstruct(x[:4])), np.asarray(model.reconstruct(x[:4]))))
        out[name] = {"first": losses[0], "last": losses[-1], "same": same,
                     "score_shape": list(np.asarray(model.anomaly_score(x[:3])).shape)}
    vae = aezoo.build("vae_mnist", hidden=[16], latent_dim=2)
    try:
        vae.posterior(x[:2])
        out["posterior_error"] = None
    except BackendError as e:
        out["posterior_error"] = str(e)
    out["samples"] = list(np.asarray(vae.sample(3, seed=0)).shape)
    report = aezoo.evaluate("vae_mnist", model=vae, limit=8, iwae_k=4, pca=False, progress=False)
    out["nll_note"] = report["vae"].get("note")
    _, summary = aezoo.train("dense_mnist", output_dir=sys.argv[1] + "/run", epochs=2, limit=64,
                             config_overrides=dict(hidden=[16], latent_dim=2), verbose=0)
    out["train_backend"] = summary["versions"]["backend"]
    print("RESULT" + json.dumps(out))
""")


def test_all_families_on_jax(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.path.dirname(__file__) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=540)
    lines = [l for l in result.stdout.splitlines() if l.startswith("RESULT")]
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    out = json.loads(lines[0][len("RESULT"):])
    for name in ("dense_mnist", "conv_mnist", "denoising_mnist", "vae_mnist", "conv_vae_mnist"):
        assert out[name]["last"] < out[name]["first"], (name, out[name])
        assert out[name]["same"], name
        assert out[name]["score_shape"] == [3]
    assert "needs the TensorFlow backend" in out["posterior_error"]
    assert out["samples"] == [3, 28, 28, 1]
    assert "KERAS_BACKEND=tensorflow" in out["nll_note"]
    assert out["train_backend"] == "jax"
