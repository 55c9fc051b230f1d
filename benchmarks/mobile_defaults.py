#!/usr/bin/env python3
"""Which int8 TFLite settings a phone wants: batch and I/O type, timed at batch 1.

For each entry, exports the full model (the ``reconstruct`` signature) to int8
TFLite four ways, every one verified by `aezoo.export` against Keras on 256
test images (the same tolerance), then times one image per call (what an app
does per camera frame) with the ai_edge_litert interpreter:

- dynamic batch, float32 input/output (aezoo 0.1's CLI default)
- dynamic batch, int8 input/output
- fixed batch 1, float32 input/output
- fixed batch 1, int8 input/output (``--int8-io``)

Timing: `rounds` interleaved rounds (every variant once per round, so a busy
machine slows them alike); per round `aezoo.benchmark.time_call` (warm-up, then
at least `min_repeats` calls and `min_seconds`); the figure is the median over
rounds of the per-round median. Inputs are prepared before timing (an int8
model gets int8 pixels, as an app would hand it).

    python benchmarks/mobile_defaults.py conv_mnist conv_fashion_mnist dense_mnist --threads 1
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

VARIANTS = {  # name -> (batch_size, int8_io)
    "dynamic_float_io": (None, False),
    "dynamic_int8_io": (None, True),
    "b1_float_io": (1, False),
    "b1_int8_io": (1, True),
}


def measure(name, threads, rounds, min_repeats, min_seconds):
    import aezoo
    from ai_edge_litert.interpreter import Interpreter

    from aezoo import datasets
    from aezoo.benchmark import time_call
    from aezoo.deploy import _quantize, calibration_images, export

    model = aezoo.load(name)
    dataset = aezoo.get_entry(name)["recipe"]["dataset"]
    x, _ = datasets.load_numpy(dataset, "test", limit=256)
    representative = calibration_images(name)
    out = {"entry": name, "variants": {}}
    calls = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant, (batch, int8_io) in VARIANTS.items():
            path = os.path.join(tmp, variant + ".tflite")
            report = export(model, path, format="tflite", quantize="int8", representative_data=representative,
                            verify_data=x, batch_size=batch, int8_io=int8_io)
            interpreter = Interpreter(model_path=path, num_threads=threads)
            runner = interpreter.get_signature_runner("reconstruct")
            image = _quantize(x[:1], runner.get_input_details()["images"])
            calls[variant] = (lambda r=runner, i=image: r(images=i))
            out["variants"][variant] = {"batch": batch or "dynamic", "int8_io": int8_io,
                                        "file_size_bytes": report["file_size_bytes"],
                                        "relative_mse_change": report["relative_mse_change"],
                                        "passed": report["passed"], "ops": len(report.get("ops", [])),
                                        "round_medians_ms": []}
        for _ in range(rounds):
            for variant, fn in calls.items():
                times = time_call(fn, min_repeats=min_repeats, min_seconds=min_seconds)
                out["variants"][variant]["round_medians_ms"].append(statistics.median(times) * 1e3)
    for v in out["variants"].values():
        v["median_ms"] = statistics.median(v["round_medians_ms"])
    base = out["variants"]["dynamic_float_io"]["median_ms"]
    for v in out["variants"].values():
        v["speedup_vs_dynamic_float_io"] = base / v["median_ms"]
    out["fastest"] = min(out["variants"], key=lambda k: out["variants"][k]["median_ms"])
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["conv_mnist", "conv_fashion_mnist", "dense_mnist"])
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads (a phone app often uses 1-4)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--min-repeats", type=int, default=200)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    from aezoo.benchmark import machine

    results = [measure(n, args.threads, args.rounds, args.min_repeats, args.min_seconds) for n in args.names]
    print(json.dumps({"benchmark": "mobile_defaults", "threads": args.threads, "rounds": args.rounds,
                      "machine": machine(), "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
