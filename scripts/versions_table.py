"""Before/after: every published version of every entry side by side (markdown).

Reads the cards (pretrained/manifest.json: metrics, task results, export sizes
and parity) and the export benchmark: pretrained/benchmark.json (the newest
version of each entry) and benchmarks/results/benchmark_older_versions.json
(`aezoo benchmark NAME:1 ... --cards --output` that file: the older versions,
timed on the same machine). More runs can be passed with --benchmark, e.g. a
copy kept before republishing. Prints nothing it did not read.

    python scripts/versions_table.py [--benchmark OLD.json ...] [--all]

--all lists entries with one published version too (their v2 column says so).
"""

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _latency(benchmarks, name, version, runtime="tflite_int8_b1"):
    """A runtime's batch-1 median ms from the first benchmark run of this (name, version)
    that timed it (a failed or older artifact has no timing)."""
    for bench in benchmarks:
        r = bench.get(name)
        if r and int(r.get("version") or 1) == version:
            run = (r.get("runtimes") or {}).get(runtime) or {}
            b1 = run.get("batch_1")
            if b1:
                return b1["median_ms"], r.get("machine", {}).get("cpu", "?")
    return None, None


def _cell(value, fmt):
    return "—" if value is None else format(value, fmt)


def rows(manifest, benchmarks, include_single=False):
    out = []
    for name in sorted(manifest):
        versions = manifest[name] if "file" not in manifest[name] else {"1": manifest[name]}
        if len(versions) < 2 and not include_single:
            continue
        for v in sorted(versions, key=int):
            r = versions[v]
            m, t, e = r.get("metrics", {}), r.get("tasks", {}), r.get("export", {})
            artifacts = e.get("artifacts") or {}
            int8 = artifacts.get("tflite_int8_b1") or artifacts.get("tflite_int8") or {}
            int16x8 = artifacts.get("tflite_int16x8_b1") or artifacts.get("tflite_int16x8") or {}
            out.append({
                "entry": f"`{name}` v{v}",
                "params": r.get("params"),
                "train_s": r.get("train_seconds"),
                "mse": m.get("mse"), "x_pca": m.get("ratio_to_pca_mse"), "psnr": m.get("psnr"),
                "iwae": m.get("iwae_nll"),
                "probe": (t.get("features") or {}).get("linear_probe_accuracy"),
                "ood": (t.get("anomaly") or {}).get("auroc"),
                "denoise02": ((t.get("denoise") or {}).get("psnr_db") or {}).get("gaussian_0.2"),
                "fd": (t.get("generate") or {}).get("fd"),
                "int8_kib": int8.get("file_size_bytes") and int8["file_size_bytes"] / 1024,
                "int8_ratio": e.get("int8_to_fp32_bytes"),
                "int8_dmse": int8.get("relative_mse_change"),
                "int16x8_dmse": int16x8.get("relative_mse_change"),
                "fp32_b1_ms": _latency(benchmarks, name, int(v), "tflite_fp32_b1")[0],
                "int8_b1_ms": _latency(benchmarks, name, int(v), "tflite_int8_b1")[0],
                "int16x8_b1_ms": _latency(benchmarks, name, int(v), "tflite_int16x8_b1")[0],
            })
    return out


def markdown(table):
    head = ("| entry | params | train s | test MSE | × PCA | PSNR dB | IWAE NLL | probe | OOD AUROC | "
            "σ=0.2 PSNR | FD | int8 KiB | int8/fp32 | int8 ΔMSE | int16x8 ΔMSE | b1 ms fp32 | b1 ms int8 | "
            "b1 ms int16x8 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in table:
        lines.append("| " + " | ".join([
            r["entry"], _cell(r["params"], ",d"), _cell(r["train_s"], ",.0f"), _cell(r["mse"], ".5f"),
            _cell(r["x_pca"], ".3f"), _cell(r["psnr"], ".2f"), _cell(r["iwae"], ".1f"), _cell(r["probe"], ".4f"),
            _cell(r["ood"], ".3f"), _cell(r["denoise02"], ".2f"), _cell(r["fd"], ".1f"), _cell(r["int8_kib"], ",.0f"),
            _cell(r["int8_ratio"], ".3f"), _cell(r["int8_dmse"], "+.2%"), _cell(r["int16x8_dmse"], "+.2%"),
            _cell(r["fp32_b1_ms"], ".3f"), _cell(r["int8_b1_ms"], ".3f"), _cell(r["int16x8_b1_ms"], ".2f")]) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", nargs="*", default=[], help="older benchmark JSON files (latency of older versions)")
    parser.add_argument("--all", action="store_true", help="also entries with a single published version")
    args = parser.parse_args(argv)
    manifest = json.loads((ROOT / "pretrained" / "manifest.json").read_text())
    benchmarks = [json.loads((ROOT / "pretrained" / "benchmark.json").read_text())]
    older = ROOT / "benchmarks" / "results" / "benchmark_older_versions.json"
    if older.exists():
        benchmarks.append(json.loads(older.read_text()))
    benchmarks += [json.loads(Path(p).read_text()) for p in args.benchmark]
    print(markdown(rows(manifest, benchmarks, include_single=args.all)))


if __name__ == "__main__":
    main()
