"""Does a bounded activation make a v2 body survive int8? A short A/B probe.

Trains the same zoo entry (its v2 recipe, shortened to --epochs) once per
activation, then measures on the VALIDATION split (the test split is not used
to choose anything):
  - quality: pooled PSNR at the recipe's noise (denoisers) or reconstruction MSE;
  - int8: the relative MSE change of a full-integer TFLite file against the Keras
    model, made and checked the way `aezoo benchmark` does (per-tensor weight
    scales, per-channel when those miss 3%; 512 training images calibrate).

    python scripts/int8_activation_probe.py denoising_mnist --activations silu relu6 --epochs 12 \
        --work /tmp/probe > probe.json

Prints one JSON object. About 5-8 min per activation for denoising_mnist on 2 cores.
Why: SiLU is unbounded above, so the residual stream of a v2 body spans tens of
units and 8-bit activation scales lose the small features (QuantizationDebugger);
ReLU6 caps every activation at 6 (MobileNet's choice for the same reason).
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np


def probe(name, activation, epochs, work, version=2):
    import aezoo
    from aezoo import datasets, registry
    from aezoo.benchmark import _export_or_report
    from aezoo.deploy import calibration_images

    entry = registry.get_entry(name, version)
    body = entry["config"].get("body_config")  # the denoising family nests its body's options
    config = {"body_config": dict(body, activation=activation)} if body else {"activation": activation}
    start = time.time()
    model, summary = aezoo.train(name, output_dir=os.path.join(work, f"{name}_{activation}_{epochs}"),
                                 version=version, epochs=epochs, verbose=0, config_overrides=config)
    seconds = time.time() - start
    recipe = entry["recipe"]
    val = datasets.load_numpy(recipe["dataset"], "validation")[0]
    out = {"activation": activation, "epochs": epochs, "train_seconds": round(seconds, 1),
           "final": summary["final"]}
    corruption = recipe.get("corruption")
    if corruption and corruption.get("noise") == "gaussian":
        rng = np.random.default_rng(0)
        noisy = np.clip(val + corruption["level"] * rng.standard_normal(val.shape).astype("float32"), 0, 1)
        mse = float(np.mean((np.asarray(model.predict(noisy, verbose=0, batch_size=256)) - val) ** 2))
        out[f"val_pooled_psnr_db_gaussian_{corruption['level']}"] = round(10 * np.log10(1 / mse), 3)
    out["val_reconstruction_mse"] = float(np.mean((np.asarray(model.predict(val, verbose=0, batch_size=256)) - val) ** 2))
    with tempfile.TemporaryDirectory() as tmp:
        report = _export_or_report(model, os.path.join(tmp, "int8.tflite"), "tflite", "int8", 1, val[:256],
                                   calibration_images(name, version=version))
    out["int8"] = {k: report.get(k) for k in ("relative_mse_change", "passed", "int8_weight_scales",
                                                "file_size_bytes")}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--activations", nargs="+", default=["silu", "relu6"])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--version", type=int, default=2)
    parser.add_argument("--work", default=None, help="run directories (default: a temporary one)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    work = args.work or tempfile.mkdtemp(prefix="aezoo-int8-probe-")
    results = [probe(args.name, a, args.epochs, work, args.version) for a in args.activations]
    json.dump({"name": args.name, "version": args.version, "split": "validation", "results": results},
              sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
