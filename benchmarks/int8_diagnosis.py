"""Why an entry's int8 TFLite misses the 3% MSE check: JSON on stdout.

    AEZOO_OFFLINE=1 python benchmarks/int8_diagnosis.py conv_fashion_mnist [--version 2] [--output FILE]

For the entry: the relative MSE change of the int8 file (256 test images) with
512 / 2,048 / 4,096 calibration images (per-tensor scales) and with per-channel
scales, then TensorFlow Lite's QuantizationDebugger per-layer error: the layers
with the largest RMSE / scale (pure rounding noise is 1/sqrt(12) = 0.29).
"""

import argparse
import csv
import io
import os
import tempfile


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name")
    parser.add_argument("--version", type=int)
    parser.add_argument("--output")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)

    import tensorflow as tf

    import aezoo
    from aezoo import _io, datasets
    from aezoo.deploy import _functions, _write_savedmodel, export
    from aezoo.errors import ExportError

    model = aezoo.load(args.name, version=args.version)
    dataset = aezoo.get_entry(args.name, args.version)["recipe"]["dataset"]
    test = datasets.load_numpy(dataset, "test", limit=256)[0]
    train = datasets.load_numpy(dataset, "train", limit=4096)[0]
    out = {"entry": args.name, "version": args.version, "verified_on": "256 test images", "calibration": {}}
    with tempfile.TemporaryDirectory() as work:
        for label, count, per_channel in (("512", 512, False), ("2048", 2048, False), ("4096", 4096, False),
                                          ("512_per_channel", 512, True)):
            path = os.path.join(work, f"{label}.tflite")
            try:
                report = export(model, path, format="tflite", quantize="int8", verify_data=test,
                                representative_data=train[:count], per_channel=per_channel)
            except ExportError as e:
                report = e.report
            out["calibration"][label] = {"relative_mse_change": report["relative_mse_change"],
                                         "passed": report["passed"], "bytes": report["file_size_bytes"]}
        source = os.path.join(work, "source")
        key = model.export_parts()["full"]
        _write_savedmodel(model, _functions(model), source, [key], 1)
        converter = tf.lite.TFLiteConverter.from_saved_model(source, signature_keys=[key])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([train[i: i + 1]] for i in range(512))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = True
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([test[i: i + 1]] for i in range(128)))
        debugger.run()
        buf = io.StringIO()
        debugger.layer_statistics_dump(buf)
    buf.seek(0)
    layers = []
    for row in csv.DictReader(buf):
        if row.get("scale") and float(row["scale"]) > 0:
            layers.append({"op": row["op_name"], "tensor": row["tensor_name"][-80:],
                           "rmse_over_scale": round(float(row["mean_squared_error"]) ** 0.5 / float(row["scale"]), 3)})
    layers.sort(key=lambda r: -r["rmse_over_scale"])
    out["layers"] = {"count": len(layers), "worst": layers[: args.top],
                     "median_rmse_over_scale": sorted(r["rmse_over_scale"] for r in layers)[len(layers) // 2]}
    if args.output:
        _io.write_json(args.output, out)
    print(_io.to_json(out), end="")


if __name__ == "__main__":
    main()
