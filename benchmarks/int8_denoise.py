"""What int8 TFLite costs a denoiser on its job: JSON on stdout.

    AEZOO_OFFLINE=1 python benchmarks/int8_denoise.py [NAME[:VERSION] ...] [--output FILE]

The export check (`aezoo export --quantize int8`, `aezoo benchmark`) scores a
denoiser at denoising: 256 verification images with its own noise (seed 0)
against the clean ones. Until 2026-11-26 it compared reconstructions of *clean*
images, which a denoiser maps almost to themselves (denoising_mnist v2: test
MSE 0.00087), so the int8 rounding, small in absolute terms, was a large share
of that tiny MSE. This script puts both on the whole test split: the pooled
PSNR of the int8 file's output for the `aezoo bench denoise` noisy test images
(every noise of the bench, same seed) against the Keras model's, and the
clean-image MSE change.

For each entry (default: the newest version of every published denoising
entry), two int8 files are made the way the export makes them: calibrated on
the first 512 images of the entry's train split (`calibration_images`), with
per-tensor and with per-channel weight scales. The export's own 3% check is
not applied here (tolerance 9.9: the file is always written); the script
measures, it does not pass or fail.
"""

import argparse
import os
import tempfile


def measure(name, version, work):
    import numpy as np

    from aezoo import registry, tasks
    from aezoo.deploy import _chunked, _tflite_runner, calibration_images, export
    from aezoo.tasks import denoise

    model = registry.load(name, version=version)
    entry = registry.get_entry(name, version)
    x_test, _ = tasks.load_split(entry["recipe"]["dataset"], "test")
    noisy = denoise.noisy_sets(x_test, 0, "test")  # the bench's noisy test images (seed 0)
    keras_out = {key: tasks.reconstruct(model, imgs) for key, imgs in noisy.items()}
    keras_clean = tasks.reconstruct(model, x_test)
    clean_mse = float(np.mean(np.square(keras_clean.astype("float64") - x_test)))
    result = {"version": entry["version"], "dataset": entry["recipe"]["dataset"], "test_images": int(len(x_test)),
              "keras": {"clean_reconstruction_mse": clean_mse,
                        "psnr": {key: tasks.psnr_pooled(x_test, out) for key, out in keras_out.items()}}}
    calibration = calibration_images(name, version=version)
    for label, per_channel in (("int8_per_tensor", False), ("int8_per_channel", True)):
        path = os.path.join(work, f"{name}.v{entry['version']}.{label}.tflite")
        report = export(model, path, format="tflite", quantize="int8", representative_data=calibration,
                        verify_data=x_test[:256], per_channel=per_channel, tolerance=9.9)
        run = _tflite_runner(path)

        def infer(x):
            return np.clip(_chunked(run, "reconstruct", images=x)["reconstruction"], 0.0, 1.0)

        clean = float(np.mean(np.square(infer(x_test).astype("float64") - x_test)))
        psnr = {key: tasks.psnr_pooled(x_test, infer(imgs)) for key, imgs in noisy.items()}
        result[label] = {
            "file_size_bytes": report["file_size_bytes"],
            "clean_reconstruction_relative_mse_change": clean / clean_mse - 1.0,
            "psnr": psnr,
            "psnr_change_db": {key: psnr[key] - result["keras"]["psnr"][key] for key in psnr},
            "denoising_relative_mse_change": {  # PSNR change in dB -> MSE ratio
                key: 10 ** (-(psnr[key] - result["keras"]["psnr"][key]) / 10) - 1.0 for key in psnr},
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="NAME or NAME:VERSION (default: every published denoising entry)")
    parser.add_argument("--output", help="also write the JSON here")
    args = parser.parse_args(argv)

    from aezoo import _io, tasks
    from aezoo.tasks import denoise

    specs = tasks.resolve(args.names or None, None,
                          applies_to=lambda entry: entry["family"] == "denoising")
    out = {"what": __doc__.split("\n")[0], "command": "python benchmarks/int8_denoise.py " + " ".join(args.names),
           "noises": {k: list(v) for k, v in denoise.NOISES.items()}, "versions": _io.versions(), "entries": {}}
    with tempfile.TemporaryDirectory() as work:
        for spec in specs:
            out["entries"][f"{spec['name']}:{spec['version']}"] = measure(spec["name"], spec["version"], work)
    if args.output:
        _io.write_json(args.output, out)
    print(_io.to_json(out), end="")


if __name__ == "__main__":
    main()
