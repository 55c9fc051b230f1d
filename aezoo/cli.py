"""`aezoo` command line: a thin shell over the Python API.

    aezoo list | info NAME | train NAME | evaluate NAME | reconstruct NAME |
    sample NAME | demo | export NAME | ...

Errors in what was asked print one line (`aezoo: error: ...`) and exit 2.

Fast and quiet: parsing the arguments and the commands that only read the
zoo's data (`list`, `info`, `results`, `download-all`, `--help`, argument
errors) import neither TensorFlow nor Keras. The other commands load
TensorFlow with its C++ start-up log lines silenced (they are printed before
TF_CPP_MIN_LOG_LEVEL is read, so stderr is redirected while TensorFlow loads
and initialises its devices), and its Python logging set to errors only.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

EXIT_USAGE = 2
EXIT_PIPE = 141  # 128 + SIGPIPE: the reader went away (e.g. `aezoo list | head -1`), as a shell tool would

# Commands that never need TensorFlow or Keras.
LIGHT_COMMANDS = ("list", "info", "results", "download-all")


def _quiet_tensorflow():
    """Environment for a quiet TensorFlow, set before anything imports it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


@contextlib.contextmanager
def _stderr_to_file():
    """Send the process's stderr (file descriptor 2, which C++ libraries write
    to) into a temporary file for the block; yields the file. Restored after."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def load_tensorflow_quietly():
    """Import TensorFlow and Keras and initialise TF's devices with their C++
    start-up lines kept off the terminal; Python-side TF/absl logging is set to
    errors only. An import failure is raised with what TensorFlow printed."""
    if "tensorflow" in sys.modules:
        return
    _quiet_tensorflow()
    with _stderr_to_file() as capture:
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            tf.constant(0.0) + 0.0  # noqa: B018 - the first op initialises the runtime (it logs cuInit)
            import keras  # noqa: F401
        except BaseException:
            capture.seek(0)
            printed = capture.read().decode(errors="replace")
            if printed:
                print(printed, file=sys.__stderr__, end="")
            raise
    tf.get_logger().setLevel("ERROR")
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


class LazyChoices:
    """argparse choices read from a module on first use (when the option is given
    or its help shown), so building the parser imports nothing heavy."""

    def __init__(self, module, attribute):
        self.module, self.attribute = module, attribute
        self._values = None

    @property
    def values(self):
        if self._values is None:
            import importlib

            value = getattr(importlib.import_module(self.module), self.attribute)
            self._values = tuple(value() if callable(value) else value)
        return self._values

    def __contains__(self, item):
        return item in self.values

    def __iter__(self):
        return iter(self.values)

    def __len__(self):
        return len(self.values)

    def __repr__(self):
        return repr(self.values)


def _whole_at_least(minimum):
    """argparse type: a whole number >= minimum (a negative count is an error, not a slice from the end)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


positive_int = _whole_at_least(1)
count = _whole_at_least(0)


def _print_json(data):
    print(json.dumps(data, indent=2, default=float))


def cmd_list(args):
    import aezoo

    names = aezoo.list_models(family=args.family, dataset=args.dataset)
    if args.json:
        _print_json(names)
        return
    from aezoo import weights

    manifest = weights.manifest()
    for name in names:
        entry = aezoo.get_entry(name)
        mark = "pretrained" if name in manifest else "no weights"
        print(f"{name:26s} {entry['family']:9s} {entry['recipe']['dataset']:14s} {mark:10s} {entry.get('description', '')}")


def cmd_info(args):
    import aezoo

    _print_json(aezoo.info(args.name, version=args.version, count_params=args.params))


def cmd_train(args):
    import aezoo
    from aezoo import recipes

    overrides = recipes.parse_overrides(args.set)
    if args.data:  # your own images: the recipe on them, from the pretrained weights by default; a preset at the end
        from aezoo.finetune import train_on_images

        _, summary = train_on_images(args.name, args.data, output_dir=args.output_dir, epochs=args.epochs,
                                     batch_size=args.batch_size, overrides=overrides, version=args.version,
                                     init=args.init)
        print(json.dumps({k: summary[k] for k in ("name", "epochs_run", "seconds", "final", "weights", "preset", "init",
                                                  "data")}, default=float))
        return
    _, summary = aezoo.train(args.name, output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
                             overrides=overrides, data_dir=args.data_dir, limit=args.limit, strategy=args.strategy,
                             version=args.version)
    print(json.dumps({k: summary[k] for k in ("name", "epochs_run", "seconds", "final", "weights")}, default=float))


def cmd_evaluate(args):
    import aezoo
    from aezoo.evaluation import format_report
    from aezoo.training import write_json

    name, model, data, described = args.name, None, None, None
    if _is_preset(args.name) or args.data:
        model = _load_model(args) if _is_preset(args.name) else None
        if model is not None:
            name = (model.zoo_entry or {}).get("name")
            if not name:
                from aezoo.errors import InputError

                raise InputError(f"{args.name} names no zoo entry it comes from, so there is no recipe to evaluate "
                                 "it against.")
        data, described = _user_images(args.data, model or args.name, args.version) if args.data else \
            _preset_samples(args.name)
    version = (model.zoo_entry or {}).get("version") if model is not None else args.version
    report = aezoo.evaluate(name, split=args.split, pretrained=not args.no_pretrained, weights=args.weights,
                            data_dir=args.data_dir, limit=args.limit, iwae_k=args.iwae_k, model=model, data=data,
                            pca=False if args.no_pca else (args.pca_components or True), version=version)
    if described:
        report["data"]["source"] = described
    if model is not None:
        report["preset"] = model.preset_path
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    if args.output:
        write_json(args.output, report)


def _load_for_pictures(args):
    return _load_model(args)


def _is_preset(name):
    from aezoo.presets import is_preset

    return is_preset(name)


def _load_model(args):
    """The model NAME or preset DIR names, with --weights / --no-pretrained / --version."""
    import aezoo

    if _is_preset(args.name):
        from aezoo import presets

        if getattr(args, "weights", None) or getattr(args, "no_pretrained", False) or getattr(args, "version", None):
            from aezoo.errors import InputError

            raise InputError(f"{args.name} is a preset directory: it has its own weights; drop --weights, "
                             "--no-pretrained and --version.")
        return presets.load(args.name)
    return aezoo.load(args.name, pretrained=not args.no_pretrained, weights=args.weights, version=args.version)


def _user_images(path, model_or_name, version=None):
    """(images, description): a .npy/.npz/folder of images through the model's or entry's preprocessor."""
    from aezoo.inputs import for_entry
    from aezoo.preprocessing import for_model, read_images

    raw, what = read_images(path)
    prep = for_entry(model_or_name, version) if isinstance(model_or_name, str) else for_model(model_or_name)
    x = prep(raw)
    inverted = len(prep.last_report.get("inverted", []))
    return x, f"{what} through the {prep.config.name} preprocessor" + (f" ({inverted} inverted)" if inverted else "")


def _preset_samples(path):
    from aezoo import presets

    if not _is_preset(path):
        return None, None
    x = presets.samples(path)
    return (x, f"the preset's held-out samples ({path}/samples.npz)") if x is not None else (None, None)


def _weights_title(args, model):
    """What a picture's title says about the weights: entry and version, a weights file, or a preset."""
    if getattr(model, "preset_path", None):
        return f"preset {model.preset_path}"
    if args.weights:
        return f"{args.name} v{model.zoo_version} with weights {Path(args.weights).name}"
    if args.no_pretrained:
        return f"{args.name} v{model.zoo_version}, untrained"
    return f"{args.name} v{model.zoo_version} (pretrained)"


def cmd_reconstruct(args):
    import numpy as np
    import aezoo
    from aezoo import datasets
    from aezoo.plotting import save_grid

    from aezoo.plotting import one_per_class

    model = _load_for_pictures(args)
    kept = _preset_samples(args.name)[0] if not args.data and not (model.zoo_entry or {}).get("dataset") else None
    if args.data:
        x, what = _user_images(args.data, model)
        x, where = x[: args.n], f"{len(x[: args.n])} of {what}"
    elif kept is not None:   # a preset trained on your images: its held-out ones
        x, where = kept[: args.n], f"{len(kept[: args.n])} of the preset's held-out images"
    else:
        entry = model.zoo_entry or {}
        dataset = entry.get("dataset") or aezoo.get_entry(entry.get("name") or args.name)["recipe"]["dataset"]
        images, labels_ = datasets.load_numpy(dataset, args.split, data_dir=args.data_dir)
        pick = one_per_class(labels_, args.n)   # the splits can be in class order (mnist_5k): not the first n
        x, where = images[pick], f"{dataset} {args.split} split, one image per class"
    shown = model.showcase(x, seed=0)  # the family says what to show: e.g. noisy and denoised
    rows = [x] + [np.asarray(images) for _, images in shown]
    labels = ["original"] + [label for label, _ in shown]
    path = save_grid(rows, args.output, row_labels=labels, title=f"{_weights_title(args, model)}: {where}")
    print(path)


def cmd_sample(args):
    import numpy as np
    from aezoo.plotting import save_grid, tile

    model = _load_for_pictures(args)
    images = np.asarray(model.sample(args.n, seed=args.seed))  # families that do not generate refuse
    path = save_grid(tile(images, 8), args.output,
                     title=f"{_weights_title(args, model)}: {args.n} samples from the prior")
    print(path)


def cmd_demo(args):
    from aezoo.demo import run

    run(output=args.output, model_names=args.model)


def cmd_export(args):
    from aezoo.deploy import CALIBRATED, VERIFY_COUNT, calibration_images, export
    from aezoo.errors import InputError

    model = _load_model(args)
    int8 = args.quantize == "int8"
    calibrated = args.quantize in CALIBRATED  # int8 or int16x8: calibration images, a phone's batch of 1
    if args.format != "tflite" and (args.dynamic_batch or args.float_io):
        raise InputError("--dynamic-batch and --float-io are TFLite settings (for --quantize int8).")
    if args.batch_size and args.dynamic_batch:
        raise InputError("--batch-size N fixes the batch; --dynamic-batch leaves it free: give one of them.")
    if args.int8_io and args.float_io:
        raise InputError("--int8-io and --float-io contradict each other.")
    # A phone's settings by default for int8 TFLite: a fixed batch of 1 and int8 input/output
    # (benchmarks/mobile_defaults.py: 2.6x faster per image than a dynamic batch on conv_mnist);
    # int16x8: a batch of 1 with float32 input/output.
    batch_size = args.batch_size or (1 if calibrated and args.format == "tflite" and not args.dynamic_batch
                                     else None)
    int8_io = args.int8_io or (int8 and not args.float_io)
    representative = verify_data = None
    if args.data:
        images, _ = _user_images(args.data, model)
        if calibrated:
            representative = images           # verified on a held-out fifth of them (the report says so)
        else:
            verify_data = images[:VERIFY_COUNT]
    elif calibrated:
        entry = model.zoo_entry or {}
        kept = _preset_samples(args.name)[0]
        if kept is not None:
            representative = kept
        elif entry.get("dataset"):
            representative = calibration_images(entry["name"], version=entry.get("version"))
            verify_data = entry["dataset"]    # a zoo entry: verified on its test split, as the benchmark is
        else:
            raise InputError(f"{args.name}: --quantize {args.quantize} needs calibration images: pass --data PATH "
                             "(a folder of images, .npy or .npz).")
    report = export(model, args.output, format=args.format, quantize=args.quantize, part=args.part,
                    representative_data=representative, int8_io=int8_io, overwrite=args.overwrite,
                    per_channel=args.per_channel, batch_size=batch_size, verify_data=verify_data,
                    tolerance=args.tolerance, preprocess=args.preprocess,
                    input_size=tuple(args.input_size) if args.input_size else None)
    print(json.dumps(report, default=float))


def cmd_benchmark(args):
    from aezoo.benchmark import run

    results = run(args.names or None, output=args.output, cards=args.cards, threads=args.threads,
                  min_repeats=args.min_repeats, min_seconds=args.min_seconds)
    _print_json(results)


def cmd_bench(args):
    from aezoo.tasks import bench

    options = {}
    if args.protocol == "oneclass" or args.output_dir:
        from aezoo.errors import InputError

        if args.task != "anomaly" or args.protocol != "oneclass" or args.names:
            raise InputError("--protocol oneclass and --output-dir go with `aezoo bench anomaly` and no names "
                             "(protocol 1 trains its own models).")
        from aezoo.tasks.anomaly import _published_items

        options = {"protocol": "oneclass", "output_dir": args.output_dir}
        args.names = [_published_items()[0]]   # bench resolves some entry; protocol 1 does not use it
    result = bench(args.task, args.names or None, quick=args.quick, output=args.output, seed=args.seed, **options)
    _print_json(result)


def cmd_publish(args):
    from aezoo.cards import publish

    record = publish(args.name, args.run_dir, iwae_k=args.iwae_k, version=args.version)
    print(json.dumps({"name": args.name, "sha256": record["sha256"], "metrics": record["metrics"]}, default=float))


def cmd_results(args):
    from aezoo.benchmark import tables
    from aezoo.cards import results_table, update_readme

    if args.update:
        print(update_readme(args.update))
    else:
        print(results_table() + "\n\n" + tables())


def cmd_verify(args):
    from aezoo import registry, weights

    results = registry.verify(args.names or None)
    for r in results:
        status = "ok" if r["sha256_ok"] and r["loaded"] else f"FAILED: {r['error']}"
        print(f"{r['name']:26s} v{r['version'] or '-'}  {status}")
    missing = [n for n in __import__("aezoo").list_models() if n not in weights.manifest()]
    if missing and not args.names:
        print(f"no pretrained weights yet: {', '.join(missing)}")
    print(f"{sum(r['sha256_ok'] and r['loaded'] for r in results)} verified, "
          f"{sum(not (r['sha256_ok'] and r['loaded']) for r in results)} failed")
    return 0 if all(r["sha256_ok"] and r["loaded"] for r in results) else 1


def cmd_download_all(args):
    from aezoo import weights

    paths = weights.download_all(args.directory)
    print(f"wrote {len(paths)} files to {args.directory}; on the air-gapped machine: export AEZOO_HOME={args.directory}")


def build_parser():
    splits = LazyChoices("aezoo.datasets", "SPLITS")

    p = argparse.ArgumentParser(prog="aezoo", description="The autoencoder model zoo for Keras 3.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="list the zoo's models")
    s.add_argument("--family", choices=LazyChoices("aezoo.registry", "families"), metavar="FAMILY",
                   help="only this family (%(choices)s)")
    s.add_argument("--dataset")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="a model's family, config, recipe, metrics (JSON)")
    s.add_argument("name")
    s.add_argument("--version", type=positive_int, help="which version (default: the newest published)")
    s.add_argument("--params", action="store_true",
                   help="count the parameters of an entry without published weights (builds it: loads Keras)")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("train", help="train a model with its recipe")
    s.add_argument("name")
    s.add_argument("--version", type=positive_int, help="which version's recipe (default: the newest published)")
    s.add_argument("--epochs", type=positive_int)
    s.add_argument("--batch-size", type=positive_int)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. optimizer.learning_rate=3e-4")
    s.add_argument("--output-dir", help="run directory (default runs/NAME); re-run to resume")
    s.add_argument("--data-dir", help="directory with the dataset files")
    s.add_argument("--limit", type=positive_int, help="use only the first N images of each split")
    s.add_argument("--strategy", choices=LazyChoices("aezoo.training", "ALL_STRATEGIES"), default="none",
                   metavar="STRATEGY", help="scale-out engine (%(choices)s; default none)")
    s.add_argument("--data", metavar="PATH",
                   help="train on your images: a folder of PNG/JPEG, a .npy or a .npz (through the entry's "
                        "preprocessor); writes a preset into OUTPUT_DIR/preset")
    s.add_argument("--init", choices=("auto", "pretrained", "scratch"), default="auto",
                   help="with --data: start from the pretrained weights (fine-tune) or from scratch "
                        "(default auto: pretrained when the entry has weights)")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="test-split metrics beside a PCA baseline")
    s.add_argument("name", help="a zoo name, or a preset directory (aezoo.save)")
    s.add_argument("--data", metavar="PATH", help="evaluate on your images (folder of PNG/JPEG, .npy, .npz)")
    s.add_argument("--version", type=positive_int, help="which version (default: the newest published)")
    s.add_argument("--split", default="test", choices=splits, metavar="SPLIT", help="%(choices)s (default test)")
    s.add_argument("--limit", type=positive_int)
    s.add_argument("--iwae-k", type=count, default=64, help="importance samples for the VAE NLL (0: skip)")
    s.add_argument("--weights", help="a .weights.h5 file instead of the pretrained weights")
    s.add_argument("--no-pretrained", action="store_true", help="evaluate a freshly initialised model")
    s.add_argument("--no-pca", action="store_true")
    s.add_argument("--pca-components", type=positive_int, help="PCA baseline with N components (default: the latent size)")
    s.add_argument("--data-dir")
    s.add_argument("--json", action="store_true", help="print JSON instead of the table")
    s.add_argument("--output", help="also write the JSON report here")
    s.set_defaults(func=cmd_evaluate)

    for verb, helptext, default in (("reconstruct", "PNG grid: originals over reconstructions", "reconstructions.png"),
                                    ("sample", "PNG grid of VAE samples", "samples.png")):
        s = sub.add_parser(verb, help=helptext)
        s.add_argument("name")
        s.add_argument("--version", type=positive_int, help="which version (default: the newest published)")
        s.add_argument("--output", default=default)
        s.add_argument("--n", type=positive_int, default=16 if verb == "reconstruct" else 64)
        s.add_argument("--weights")
        s.add_argument("--no-pretrained", action="store_true")
        if verb == "reconstruct":
            s.add_argument("--split", default="test", choices=splits, metavar="SPLIT", help="%(choices)s (default test)")
            s.add_argument("--data-dir")
            s.add_argument("--data", metavar="PATH", help="your images instead of the dataset split")
        else:
            s.add_argument("--seed", type=int, default=0)
        s.set_defaults(func=cmd_reconstruct if verb == "reconstruct" else cmd_sample)

    s = sub.add_parser("demo", help="load pretrained models and show what they do on embedded images (offline)")
    s.add_argument("--output", default="aezoo_demo.png")
    s.add_argument("--model", action="append", help="zoo names to show (default: the Fashion-MNIST zoo)")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("export", help="export to SavedModel, TFLite or ONNX, verified against Keras")
    s.add_argument("name", help="a zoo name, or a preset directory (aezoo.save, aezoo train --data)")
    s.add_argument("--version", type=positive_int, help="which version (default: the newest published)")
    s.add_argument("--format", required=True, choices=LazyChoices("aezoo.deploy", "FORMATS"), metavar="FORMAT",
                   help="%(choices)s")
    s.add_argument("--quantize", default="none", choices=LazyChoices("aezoo.deploy", "QUANTIZATIONS"),
                   metavar="Q", help="TFLite: %(choices)s (default none)")
    s.add_argument("--part", default="full", choices=LazyChoices("aezoo.deploy", "PARTS"), metavar="PART",
                   help="TFLite/ONNX: %(choices)s (default full; what the family has)")
    s.add_argument("--int8-io", action="store_true",
                   help="int8 inputs/outputs (the default for --quantize int8 tflite; --float-io for float32)")
    s.add_argument("--float-io", action="store_true", help="--quantize int8 with float32 inputs/outputs")
    s.add_argument("--batch-size", type=positive_int,
                   help="tflite: a fixed batch size (default for --quantize int8/int16x8: 1, what a phone runs)")
    s.add_argument("--dynamic-batch", action="store_true", help="tflite: a dynamic batch instead of a fixed one")
    s.add_argument("--tolerance", type=float,
                   help="dynamic/int8/int16x8: the allowed relative change of the reconstruction MSE "
                        "(default 0.03)")
    s.add_argument("--data", metavar="PATH",
                   help="your images (folder, .npy, .npz): int8/int16x8 calibration, with a held-out fifth for "
                        "verification; verification images otherwise")
    s.add_argument("--preprocess", action="store_true",
                   help="put the entry's preprocessing in the graph: raw 0..255 pixels in (see --input-size)")
    s.add_argument("--input-size", type=positive_int, nargs=2, metavar=("H", "W"),
                   help="with --preprocess: the raw input's height and width (default the model's)")
    s.add_argument("--per-channel", action="store_true",
                   help="--quantize int8/int16x8 with one weight scale per output channel (default: per tensor)")
    s.add_argument("--output", required=True, help="artifact path (a directory for savedmodel)")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--weights")
    s.add_argument("--no-pretrained", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("benchmark", help="export every pretrained entry, verify it, time every runtime (JSON)")
    s.add_argument("names", nargs="*", metavar="NAME[:VERSION]", help="entries (default: the newest version of every pretrained entry; an older version needs --output)")
    s.add_argument("--output", help="JSON file to merge the results into (default pretrained/benchmark.json)")
    s.add_argument("--cards", action="store_true", help="also write sizes and parity into pretrained/manifest.json")
    s.add_argument("--threads", type=positive_int, help="TFLite/onnxruntime threads (default: every core)")
    s.add_argument("--min-repeats", type=positive_int, default=20)
    s.add_argument("--min-seconds", type=float, default=1.0)
    s.set_defaults(func=cmd_benchmark)

    s = sub.add_parser("bench", help="measure entries at a task beside baselines (JSON into pretrained/tasks/TASK.json)")
    s.add_argument("task", choices=["anomaly", "denoise", "features", "compress", "generate", "embed"])
    s.add_argument("names", nargs="*", metavar="NAME[:VERSION]",
                   help="entries (default: every published entry the task applies to, newest version)")
    s.add_argument("--quick", action="store_true", help="a small, fast variant (writes nothing without --output)")
    s.add_argument("--output", help="JSON file to merge the results into (default pretrained/tasks/TASK.json)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--protocol", choices=["ood", "oneclass"], default="ood",
                   help="anomaly only: ood (protocol 2, the published entries) or oneclass (protocol 1: trains "
                        "10 models per family from aezoo/tasks/oneclass.json)")
    s.add_argument("--output-dir", help="anomaly --protocol oneclass: the run directories (kept: a stopped run resumes)")
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("publish", help="evaluate a finished run and add its weights to pretrained/ (maintainers)")
    s.add_argument("name")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--version", type=positive_int, help="publish as this version (default: the run's version)")
    s.add_argument("--iwae-k", type=count, default=64)
    s.set_defaults(func=cmd_publish)

    s = sub.add_parser("results", help="the results and benchmark tables (from pretrained/)")
    s.add_argument("--update", metavar="README", help="rewrite the generated tables between the markers of this file")
    s.set_defaults(func=cmd_results)

    s = sub.add_parser("verify", help="check every pretrained entry's hash and load it")
    s.add_argument("names", nargs="*")
    s.set_defaults(func=cmd_verify)

    s = sub.add_parser("download-all", help="mirror every pretrained entry into DIR (for air-gapped machines)")
    s.add_argument("directory")
    s.set_defaults(func=cmd_download_all)
    return p


def main(argv=None):
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    from aezoo.errors import AezooError

    try:
        if args.command not in LIGHT_COMMANDS or getattr(args, "params", False):  # info --params builds a model
            load_tensorflow_quietly()
        code = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader closed the pipe: stop quietly, and keep Python's exit flush from raising again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except AezooError as e:
        print(f"aezoo: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ImportError) as e:
        print(f"aezoo: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aezoo: interrupted", file=sys.stderr)
        return 130
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
