"""Deployment benchmark: what each pretrained entry costs to run, per runtime.

    aezoo benchmark                         # every pretrained entry
    aezoo benchmark conv_mnist --cards      # one entry; also write its export figures into the card
    aezoo benchmark conv_mnist:1 --cards --output v1.json   # an older published version

For each entry the model is exported to every artifact in ARTIFACTS with
`aezoo.export` (so every artifact is verified against Keras on the
entry's own test images before it is timed; int8 calibrates on 512 images of
the entry's train split), then these runtimes reconstruct real test images:

- ``keras_predict``: ``model.predict(x, batch_size=len(x))``
- ``keras_call``: ``model(x, training=False)``, converted to numpy
- ``savedmodel``: ``tf.saved_model.load(...).signatures["reconstruct"]``
- ``tflite_fp32`` / ``tflite_fp16`` / ``tflite_dynamic`` / ``tflite_int8``:
  the ``ai_edge_litert`` interpreter's ``reconstruct`` signature runner
- ``tflite_int16x8``: 16x8 quantization (int8 weights, int16 activations),
  for models whose int8 misses its tolerance
- ``tflite_fp32_b1`` / ``tflite_int8_b1`` / ``tflite_int16x8_b1``: the same, exported with a fixed
  batch of 1 (``batch_size=1``, every shape static, what a phone app runs);
  a batch of 256 is 256 calls
- ``onnx``: onnxruntime's CPU execution provider

Timing: each (runtime, batch size) is warmed up, then run at least
`min_repeats` times and for at least `min_seconds` (a runtime slower than
`MAX_SECONDS` for its calls stops after `MIN_SLOW_REPEATS`); the figures are the median
and the 90th percentile wall time of one call, as measured by
``time.perf_counter`` around the call including conversion to numpy.
Batch 1 gives latency; batch 256 gives throughput (images per second from the
median). TFLite and onnxruntime use `threads` threads (default: every core);
TensorFlow uses its own default (every core). Timings belong to the machine in
the result's ``machine`` field; sizes and parity do not.

The result is JSON: printed, and merged into `output` (default
``pretrained/benchmark.json``, one key per entry: the newest version's run; an
older version, ``NAME:VERSION``, goes to another `output`). With ``cards=True`` the
export figures that do not depend on the machine (file size, parity with
Keras, tolerance, passed) are written into each entry's record in
``pretrained/manifest.json`` under ``export``. `tables` renders the README
tables from the JSON.
"""

import datetime
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from aezoo import _io
from aezoo.errors import InputError

# key -> (format, quantize, fixed batch size or None for a dynamic batch);
# every one has part="full" (the reconstruct signature).
ARTIFACTS = {
    "savedmodel": ("savedmodel", "none", None),
    "tflite_fp32": ("tflite", "none", None),
    "tflite_fp16": ("tflite", "float16", None),
    "tflite_dynamic": ("tflite", "dynamic", None),
    "tflite_int8": ("tflite", "int8", None),
    "tflite_int16x8": ("tflite", "int16x8", None),
    "tflite_fp32_b1": ("tflite", "none", 1),
    "tflite_int8_b1": ("tflite", "int8", 1),
    "tflite_int16x8_b1": ("tflite", "int16x8", 1),
    "onnx": ("onnx", "none", None),
}
RUNTIMES = ("keras_predict", "keras_call", "savedmodel", "tflite_fp32", "tflite_fp16", "tflite_dynamic",
            "tflite_int8", "tflite_int16x8", "tflite_fp32_b1", "tflite_int8_b1", "tflite_int16x8_b1", "onnx")
BATCH_SIZES = (1, 256)
MAX_SECONDS, MIN_SLOW_REPEATS = 20.0, 3  # time_call: a slow runtime's budget per (runtime, batch)
NOT_RUN = object()  # a runtime that an older benchmark result does not have
BENCHMARK_FILE = "benchmark.json"  # in the package's pretrained data, beside manifest.json
BENCH_START, BENCH_END = "<!-- benchmark:start -->", "<!-- benchmark:end -->"
_SUFFIX = {"savedmodel": "", "tflite": ".tflite", "onnx": ".onnx"}


def default_output():
    """Where `run` merges its results: benchmark.json in the package's pretrained data."""
    return _io.pretrained_dir() / BENCHMARK_FILE


def machine():
    """The machine the timings belong to."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count()
    return {"cpu": cpu, "cores": usable, "system": f"{platform.system()} {platform.release()}",
            "machine": platform.machine()}


def time_call(fn, min_repeats=20, min_seconds=1.0, warmup=3, max_repeats=10_000, max_seconds=MAX_SECONDS):
    """Wall times (seconds) of `fn()`: after `warmup` calls, at least
    `min_repeats` calls and at least `min_seconds` in all; a slow runtime stops
    early once it has `MIN_SLOW_REPEATS` calls and `max_seconds` (the int16x8
    files take ~10 s per batch of 256 on 2 cores: 20 calls would be minutes)."""
    for _ in range(warmup):
        fn()
    times, start = [], time.perf_counter()
    while len(times) < min_repeats or (time.perf_counter() - start < min_seconds and len(times) < max_repeats):
        if len(times) >= MIN_SLOW_REPEATS and time.perf_counter() - start > max_seconds:
            break
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def summarize(times, batch):
    median = statistics.median(times)
    p90 = float(np.percentile(times, 90))
    return {"batch": batch, "repeats": len(times), "median_ms": median * 1e3, "p90_ms": p90 * 1e3,
            "images_per_s": batch / median}


def _runners(model, paths, threads):
    """name -> make(x) -> a no-argument function that reconstructs x."""
    import keras
    import onnxruntime
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    def keras_predict(x):
        return lambda: model.predict(x, batch_size=len(x), verbose=0)

    def keras_call(x):
        return lambda: keras.ops.convert_to_numpy(model(x, training=False))

    loaded = tf.saved_model.load(paths["savedmodel"])
    signature = loaded.signatures["reconstruct"]

    def savedmodel(x):
        images = tf.constant(x)
        return lambda: signature(images=images)["reconstruction"].numpy()

    def tflite(path):
        interpreter = Interpreter(model_path=path, num_threads=threads)
        runner = interpreter.get_signature_runner("reconstruct")
        detail = runner.get_input_details()["images"]
        fixed = int(detail["shape_signature"][0])

        def make(x):
            from aezoo.deploy import _quantize

            images = _quantize(x, detail)  # int8 I/O models take int8; float models float32
            if fixed < 0:
                return lambda: runner(images=images)
            chunks = [images[i: i + fixed] for i in range(0, len(images), fixed)]
            return lambda: [runner(images=c) for c in chunks]

        return make

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(paths["onnx"], options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name

    def onnx(x):
        return lambda: session.run(None, {input_name: x})

    makers = {"keras_predict": keras_predict, "keras_call": keras_call, "savedmodel": savedmodel, "onnx": onnx}
    for key, (fmt, _, _) in ARTIFACTS.items():
        if fmt == "tflite" and key in paths:  # an artifact that failed its verification is not timed
            makers[key] = tflite(paths[key])
    return makers


def _export_or_report(model, path, fmt, quantize, batch_size, images, representative):
    """Export and verify; int8/int16x8 fall back to per-channel weight scales when
    the default per-tensor ones miss the tolerance (the report says which was used).
    An artifact that still fails is returned as its failed report, not timed."""
    from aezoo.deploy import CALIBRATED, export
    from aezoo.errors import ExportError

    options = [False, True] if quantize in CALIBRATED else [False]
    for per_channel in options:
        try:
            return export(model, path, format=fmt, quantize=quantize, verify_data=images, batch_size=batch_size,
                          representative_data=representative if quantize in CALIBRATED else None,
                          per_channel=per_channel)
        except ExportError as e:
            if e.report is None:  # not a verification failure: a real error
                raise
            failed = e.report
    return failed


def _artifact_figures(report):
    """What the model card keeps of an export report."""
    keep = ("format", "quantize", "batch_size", "int8_weight_scales", "file_size_bytes", "max_abs_diff", "mse_keras",
            "mse_artifact", "relative_mse_change", "criterion", "passed")
    out = {k: report[k] for k in keep}
    out["verified_on"] = f"{report['verify_data']['count']} images: {report['verify_data']['source']}"
    return out


def benchmark_model(model, images, representative, threads=None, min_repeats=20, min_seconds=1.0, workdir=None,
                    progress=None, batch_sizes=BATCH_SIZES):
    """Export `model` to every artifact, verify, and time every runtime.

    Args:
        model: an aezoo model (TensorFlow backend).
        images: float32 (N, H, W, C) real test images, N >= max(batch_sizes):
            verification and timing data.
        representative: calibration images for int8 and int16x8.
        threads: threads for TFLite and onnxruntime (default: every usable core).
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or len(images) < max(batch_sizes):
        raise InputError(f"benchmark needs at least {max(batch_sizes)} images (N, H, W, C); got shape {images.shape}.")
    threads = threads or machine()["cores"]
    with tempfile.TemporaryDirectory(prefix="aezoo-bench-", dir=workdir) as tmp:
        paths, artifacts = {}, {}
        for key, (fmt, quantize, batch_size) in ARTIFACTS.items():
            paths[key] = os.path.join(tmp, key + _SUFFIX[fmt])
            report = _export_or_report(model, paths[key], fmt, quantize, batch_size, images, representative)
            artifacts[key] = _artifact_figures(report)
            if not report["passed"]:
                paths.pop(key)
            if progress:
                progress.update()
        makers = _runners(model, paths, threads)
        runtimes = {}
        for name in RUNTIMES:
            if name in ARTIFACTS and name not in paths:  # failed its verification: not timed
                runtimes[name] = None
                continue
            runtimes[name] = {}
            for batch in batch_sizes:
                fn = makers[name](images[:batch])
                times = time_call(fn, min_repeats=min_repeats, min_seconds=min_seconds)
                runtimes[name][f"batch_{batch}"] = summarize(times, batch)
            if progress:
                progress.update()
    fp32 = artifacts["tflite_fp32"]["file_size_bytes"]  # int8 below: the artifact that passed
    return {
        "params": int(model.count_params()),
        "artifacts": artifacts,
        "int8_to_fp32_bytes": artifacts["tflite_int8"]["file_size_bytes"] / fp32,
        "int16x8_to_fp32_bytes": artifacts["tflite_int16x8"]["file_size_bytes"] / fp32,
        "runtimes": runtimes,
        "settings": {"threads_tflite_onnx": threads, "tensorflow_threads": "default (all cores)",
                     "min_repeats": min_repeats, "min_seconds": min_seconds, "warmup": 3,
                     "images": f"{len(images)} test images"},
    }


def run(names=None, output=None, cards=False, threads=None, min_repeats=20, min_seconds=1.0, progress=True):
    """Benchmark pretrained entries (default: all of them); see the module docstring."""
    from tqdm.auto import tqdm

    from aezoo import datasets, registry
    from aezoo.deploy import calibration_images
    from aezoo.weights import manifest as load_manifest

    import keras

    if keras.backend.backend() != "tensorflow":
        from aezoo.errors import BackendError

        raise BackendError(f"the benchmark exports models, which needs the TensorFlow backend "
                           f"(KERAS_BACKEND=tensorflow); this is {keras.backend.backend()!r}.")
    from aezoo.weights import record

    published = load_manifest()
    output = Path(output or default_output())
    specs = [registry.parse_spec(spec) for spec in (names or sorted(published))]
    for name, version in specs:  # unknown names, versions and destinations fail before any work
        registry.get_entry(name)
        if name not in published:
            raise InputError(f"{name!r} has no pretrained weights to benchmark; published: {', '.join(sorted(published))}.")
        if version is not None and record(name, version) is None:
            raise InputError(f"{name!r} has no published version {version}; published: version "
                             f"{published[name]['version']} (the newest) and older ones listed by `aezoo info {name}`.")
        if (version not in (None, published[name]["version"])
                and output.resolve() == Path(default_output()).resolve()):
            raise InputError(f"{name}:{version} is not the newest version, and {BENCHMARK_FILE} holds the newest "
                             f"version's run of each entry (the README tables); pass --output FILE (output=) "
                             f"for an older version.")
    specs = [(name, version or published[name]["version"]) for name, version in specs]
    bar = tqdm(total=len(specs) * (len(ARTIFACTS) + len(RUNTIMES)), desc="benchmark", unit="step",
               disable=not progress)
    results = {}
    for name, version in specs:
        bar.set_postfix_str(f"{name}:{version}")
        dataset = registry.get_entry(name, version)["recipe"]["dataset"]
        model = registry.load(name, version=version)
        images = datasets.load_numpy(dataset, "test", limit=max(BATCH_SIZES))[0]
        representative = calibration_images(name, version=version)
        results[name] = benchmark_model(model, images, representative, threads=threads, min_repeats=min_repeats,
                                        min_seconds=min_seconds, progress=bar)
        newest = version == published[name]["version"]
        results[name].update(weights_bytes=record(name, version)["bytes"], version=version, dataset=dataset,
                             machine=machine(), versions=_io.versions(),
                             command=f"aezoo benchmark {name}" + ("" if newest else f":{version}"),
                             date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
        # merged in after every entry: an interrupted run keeps what it measured
        existing = json.loads(output.read_text()) if output.exists() else {}
        _io.write_json(output, dict(sorted({**existing, name: results[name]}.items())))
        if cards:
            write_cards({name: results[name]})
    bar.close()
    return results


def write_cards(results, manifest_path=None):
    """Put each entry's machine-independent export figures into its manifest
    record: the version the results name (`version`), else the newest published."""
    manifest_path = Path(manifest_path or _io.pretrained_dir() / "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    for name, r in results.items():
        versions = manifest[name] if "file" not in manifest[name] else {"1": manifest[name]}
        version = str(r.get("version") or max(map(int, versions)))
        versions[version]["export"] = {
            "artifacts": r["artifacts"],
            "int8_to_fp32_bytes": r["int8_to_fp32_bytes"],
            "int16x8_to_fp32_bytes": r.get("int16x8_to_fp32_bytes"),
            "versions": r["versions"],
            "date": r["date"],
            "reproduce": f"{r.get('command') or f'aezoo benchmark {name}'} --cards",
        }
        manifest[name] = versions
    _io.write_json(manifest_path, manifest)


def _fmt_bytes(n):
    return f"{n / 1024:,.0f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.2f} MiB"


def tables(results=None):
    """Markdown tables (latency, throughput, sizes and parity) from benchmark JSON."""
    if results is None:
        stored = _io.pretrained_files().joinpath(BENCHMARK_FILE)
        results = json.loads(stored.read_text()) if stored.is_file() else {}
    if not results:
        return "No benchmark results yet: run `aezoo benchmark`."
    names = sorted(results)
    timed = ("keras_predict", "keras_call", "savedmodel", "tflite_fp32", "tflite_int8", "tflite_fp32_b1",
             "tflite_int8_b1", "tflite_int16x8_b1", "onnx")
    head = "| model | " + " | ".join(f"`{t}`" for t in timed) + " |\n|---|" + "---|" * len(timed)

    def by_batch(n, pick):  # the smallest batch gives latency, the largest throughput; None: failed verification
        runs = results[n]["runtimes"]  # a runtime missing from an older result: NOT_RUN
        return {t: NOT_RUN if t not in runs else runs[t] and pick(runs[t].values(), key=lambda r: r["batch"])
                for t in timed}

    small = {n: by_batch(n, min) for n in names}
    large = {n: by_batch(n, max) for n in names}
    cell = lambda r, key, spec: "—" if r is NOT_RUN else "failed" if r is None else format(r[key], spec)  # noqa: E731
    lat = [f"| {n} | " + " | ".join(cell(small[n][t], "median_ms", ".2f") for t in timed) + " |" for n in names]
    thr = [f"| {n} | " + " | ".join(cell(large[n][t], "images_per_s", ",.0f") for t in timed) + " |" for n in names]
    small_b = sorted({r["batch"] for n in names for r in small[n].values() if r and r is not NOT_RUN})
    large_b = sorted({r["batch"] for n in names for r in large[n].values() if r and r is not NOT_RUN})
    size_head = ("| model | weights .h5 | TFLite fp32 | fp16 | dynamic | int8 | int8 / fp32 | int16x8 / fp32 | ONNX | "
                 "fp32 max abs diff | int8 ΔMSE | int16x8 ΔMSE |\n|---|---|---|---|---|---|---|---|---|---|---|---|")

    def change(a, key):
        if key not in a:
            return "—"
        return (f"{a[key]['relative_mse_change']:+.2%} ({a[key].get('int8_weight_scales') or '-'}"
                f"{'' if a[key]['passed'] else ', FAILED'})")

    sizes = []
    for n in names:
        a, r = results[n]["artifacts"], results[n]
        sizes.append(
            f"| {n} | {_fmt_bytes(r['weights_bytes'])} | "
            + " | ".join(_fmt_bytes(a[k]["file_size_bytes"]) for k in ("tflite_fp32", "tflite_fp16",
                                                                     "tflite_dynamic", "tflite_int8"))
            + f" | {r['int8_to_fp32_bytes']:.3f} | "
            + (f"{r['int16x8_to_fp32_bytes']:.3f}" if r.get("int16x8_to_fp32_bytes") else "—")
            + f" | {_fmt_bytes(a['onnx']['file_size_bytes'])} | "
            f"{a['tflite_fp32']['max_abs_diff']:.1e} | {change(a, 'tflite_int8')} | {change(a, 'tflite_int16x8')} |")
    machines = sorted({f"{r['machine']['cpu']}, {r['machine']['cores']} cores" for r in results.values()})
    threads = sorted({str(r["settings"]["threads_tflite_onnx"]) for r in results.values()})
    return "\n".join([
        f"Batch-{'/'.join(map(str, small_b))} latency, median ms (lower is better):", "", head, *lat, "",
        f"Batch-{'/'.join(map(str, large_b))} throughput, images/s (higher is better):", "", head, *thr, "",
        "Sizes and parity with Keras (fp32: max abs diff of the reconstruction; int8, int16x8: relative change "
        "of the reconstruction MSE), on the entry's test images (a denoiser's: with its noise added, scored "
        "against the clean images); — : not in that entry's benchmark run "
        "(int16x8 was added to the benchmark after it):", "", size_head, *sizes, "",
        f"Generated by `aezoo results` from `pretrained/benchmark.json`, written by `aezoo benchmark` on "
        f"{'; '.join(machines)} (TFLite/onnxruntime threads: {', '.join(threads)}; TensorFlow: its default).",
    ])
