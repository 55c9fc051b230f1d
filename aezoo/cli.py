"""`aezoo` command line: a thin shell over the Python API.

    aezoo list | info NAME | train NAME | evaluate NAME | reconstruct NAME |
    sample NAME | demo

Errors in what was asked print one line (`aezoo: error: ...`) and exit 2.
"""

import argparse
import json
import os
import sys
from pathlib import Path

EXIT_USAGE = 2


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")


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

    _print_json(aezoo.info(args.name, version=args.version))


def cmd_train(args):
    import aezoo
    from aezoo import recipes

    overrides = recipes.parse_overrides(args.set)
    _, summary = aezoo.train(args.name, output_dir=args.output_dir, epochs=args.epochs, batch_size=args.batch_size,
                             overrides=overrides, data_dir=args.data_dir, limit=args.limit, strategy=args.strategy,
                             version=args.version)
    print(json.dumps({k: summary[k] for k in ("name", "epochs_run", "seconds", "final", "weights")}, default=float))


def cmd_evaluate(args):
    import aezoo
    from aezoo.evaluation import format_report
    from aezoo.training import write_json

    report = aezoo.evaluate(args.name, split=args.split, pretrained=not args.no_pretrained, weights=args.weights,
                            data_dir=args.data_dir, limit=args.limit, iwae_k=args.iwae_k,
                            pca=False if args.no_pca else (args.pca_components or True), version=args.version)
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    if args.output:
        write_json(args.output, report)


def _load_for_pictures(args):
    import aezoo

    return aezoo.load(args.name, pretrained=not args.no_pretrained, weights=args.weights, version=args.version)


def cmd_reconstruct(args):
    import numpy as np
    import aezoo
    from aezoo import datasets
    from aezoo.models import DenoisingAutoencoder
    from aezoo.plotting import save_grid

    model = _load_for_pictures(args)
    x, _ = datasets.load_numpy(aezoo.get_entry(args.name)["recipe"]["dataset"], args.split, data_dir=args.data_dir,
                               limit=args.n)
    rows, labels = [x], ["original"]
    if isinstance(model, DenoisingAutoencoder):
        noisy = np.asarray(model.corrupt(x, seed=0))
        rows, labels = [x, noisy], ["original", "noisy"]
        x = noisy
    rows.append(np.asarray(model.reconstruct(x)))
    labels.append("denoised" if len(rows) == 3 else "reconstruction")
    path = save_grid(rows, args.output, row_labels=labels, title=f"{args.name}: {args.split} split")
    print(path)


def cmd_sample(args):
    import numpy as np
    from aezoo.errors import InputError
    from aezoo.models import VariationalAutoencoder
    from aezoo.plotting import save_grid, tile

    model = _load_for_pictures(args)
    if not isinstance(model, VariationalAutoencoder):
        raise InputError(f"{args.name} is a {type(model).__name__}, not a VAE: only VAEs sample (try vae_mnist).")
    images = np.asarray(model.sample(args.n, seed=args.seed))
    path = save_grid(tile(images, 8), args.output, title=f"{args.name}: {args.n} samples from the prior")
    print(path)


def cmd_demo(args):
    from aezoo.demo import run

    run(output=args.output, model_names=args.model)


def cmd_export(args):
    import aezoo
    from aezoo.export import calibration_images, export

    model = aezoo.load(args.name, pretrained=not args.no_pretrained, weights=args.weights, version=args.version)
    representative = calibration_images(args.name) if args.quantize == "int8" else None
    report = export(model, args.output, format=args.format, quantize=args.quantize, part=args.part,
                    representative_data=representative, int8_io=args.int8_io, overwrite=args.overwrite,
                    per_channel=args.per_channel, batch_size=args.batch_size)
    print(json.dumps(report, default=float))


def cmd_benchmark(args):
    from aezoo.benchmark import run

    results = run(args.names or None, output=args.output, cards=args.cards, threads=args.threads,
                  min_repeats=args.min_repeats, min_seconds=args.min_seconds)
    _print_json(results)


def cmd_bench(args):
    from aezoo.tasks import bench

    result = bench(args.task, args.names or None, quick=args.quick, output=args.output, seed=args.seed)
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
    from aezoo import weights

    results = weights.verify(args.names or None)
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
    p = argparse.ArgumentParser(prog="aezoo", description="The autoencoder model zoo for Keras 3.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("list", help="list the zoo's models")
    s.add_argument("--family", choices=["dense", "conv", "denoising", "vae"])
    s.add_argument("--dataset")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("info", help="a model's family, config, recipe, metrics (JSON)")
    s.add_argument("name")
    s.add_argument("--version", type=int, help="which version (default: the newest published)")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("train", help="train a model with its recipe")
    s.add_argument("name")
    s.add_argument("--version", type=int, help="which version's recipe (default: the newest published)")
    s.add_argument("--epochs", type=int)
    s.add_argument("--batch-size", type=int)
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="recipe override, e.g. optimizer.learning_rate=3e-4")
    s.add_argument("--output-dir", help="run directory (default runs/NAME); re-run to resume")
    s.add_argument("--data-dir", help="directory with the dataset files")
    s.add_argument("--limit", type=int, help="use only the first N images of each split")
    s.add_argument("--strategy", choices=["none", "mirrored", "multi_worker", "data_parallel"], default="none")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="test-split metrics beside a PCA baseline")
    s.add_argument("name")
    s.add_argument("--version", type=int, help="which version (default: the newest published)")
    s.add_argument("--split", default="test", choices=["train", "validation", "test"])
    s.add_argument("--limit", type=int)
    s.add_argument("--iwae-k", type=int, default=64, help="importance samples for the VAE NLL (0: skip)")
    s.add_argument("--weights", help="a .weights.h5 file instead of the pretrained weights")
    s.add_argument("--no-pretrained", action="store_true", help="evaluate a freshly initialised model")
    s.add_argument("--no-pca", action="store_true")
    s.add_argument("--pca-components", type=int, help="PCA baseline with N components (default: the latent size)")
    s.add_argument("--data-dir")
    s.add_argument("--json", action="store_true", help="print JSON instead of the table")
    s.add_argument("--output", help="also write the JSON report here")
    s.set_defaults(func=cmd_evaluate)

    for verb, helptext, default in (("reconstruct", "PNG grid: originals over reconstructions", "reconstructions.png"),
                                    ("sample", "PNG grid of VAE samples", "samples.png")):
        s = sub.add_parser(verb, help=helptext)
        s.add_argument("name")
        s.add_argument("--version", type=int, help="which version (default: the newest published)")
        s.add_argument("--output", default=default)
        s.add_argument("--n", type=int, default=16 if verb == "reconstruct" else 64)
        s.add_argument("--weights")
        s.add_argument("--no-pretrained", action="store_true")
        if verb == "reconstruct":
            s.add_argument("--split", default="test", choices=["train", "validation", "test"])
            s.add_argument("--data-dir")
        else:
            s.add_argument("--seed", type=int, default=0)
        s.set_defaults(func=cmd_reconstruct if verb == "reconstruct" else cmd_sample)

    s = sub.add_parser("demo", help="load pretrained models and show what they do on embedded images (offline)")
    s.add_argument("--output", default="aezoo_demo.png")
    s.add_argument("--model", action="append", help="zoo names to show (default: the Fashion-MNIST zoo)")
    s.set_defaults(func=cmd_demo)
    s = sub.add_parser("export", help="export to SavedModel, TFLite or ONNX, verified against Keras")
    s.add_argument("name")
    s.add_argument("--version", type=int, help="which version (default: the newest published)")
    s.add_argument("--format", required=True, choices=["savedmodel", "tflite", "onnx"])
    s.add_argument("--quantize", default="none", choices=["none", "float16", "dynamic", "int8"])
    s.add_argument("--part", default="full", choices=["full", "encoder", "decoder"])
    s.add_argument("--int8-io", action="store_true", help="int8 inputs/outputs for --quantize int8")
    s.add_argument("--batch-size", type=int, help="tflite: a fixed batch size (e.g. 1) instead of a dynamic batch")
    s.add_argument("--per-channel", action="store_true",
                   help="--quantize int8 with one weight scale per output channel (default: per tensor)")
    s.add_argument("--output", required=True, help="artifact path (a directory for savedmodel)")
    s.add_argument("--overwrite", action="store_true")
    s.add_argument("--weights")
    s.add_argument("--no-pretrained", action="store_true")
    s.set_defaults(func=cmd_export)

    s = sub.add_parser("benchmark", help="export every pretrained entry, verify it, time every runtime (JSON)")
    s.add_argument("names", nargs="*", help="entries (default: every pretrained entry)")
    s.add_argument("--output", help="JSON file to merge the results into (default pretrained/benchmark.json)")
    s.add_argument("--cards", action="store_true", help="also write sizes and parity into pretrained/manifest.json")
    s.add_argument("--threads", type=int, help="TFLite/onnxruntime threads (default: every core)")
    s.add_argument("--min-repeats", type=int, default=20)
    s.add_argument("--min-seconds", type=float, default=1.0)
    s.set_defaults(func=cmd_benchmark)

    s = sub.add_parser("bench", help="measure entries at a task beside baselines (JSON into pretrained/tasks/TASK.json)")
    s.add_argument("task", choices=["anomaly", "denoise", "features", "compress", "generate", "embed"])
    s.add_argument("names", nargs="*", metavar="NAME[:VERSION]",
                   help="entries (default: every published entry the task applies to, newest version)")
    s.add_argument("--quick", action="store_true", help="a small, fast variant (writes nothing without --output)")
    s.add_argument("--output", help="JSON file to merge the results into (default pretrained/tasks/TASK.json)")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=cmd_bench)

    s = sub.add_parser("publish", help="evaluate a finished run and add its weights to pretrained/ (maintainers)")
    s.add_argument("name")
    s.add_argument("--run-dir", required=True)
    s.add_argument("--version", type=int, help="publish as this version (default: the run's version)")
    s.add_argument("--iwae-k", type=int, default=64)
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
        code = args.func(args)
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
