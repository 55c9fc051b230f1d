"""Model cards: publish a training run into pretrained/ and render the results.

    aezoo publish NAME --run-dir RUN     # evaluate RUN's weights, copy them into
                                         # pretrained/, record them in manifest.json
    aezoo results [--update README.md]   # the results table, from the manifest

Every number in the manifest comes from `aezoo.evaluate` (test split, PCA
baseline with the same latent size) and the run's train_metrics.json.
"""

import datetime
import json
from pathlib import Path

import numpy as np

from aezoo import _io, datasets
from aezoo.errors import WeightsError
RESULTS_START, RESULTS_END = "<!-- results:start -->", "<!-- results:end -->"
GOALS_START, GOALS_END = "<!-- goals:start -->", "<!-- goals:end -->"


def sample_check(model, dataset):
    """MSE on the embedded demo images of `dataset`: a cheap, exact check that
    the shipped weights are the measured ones (tests recompute it)."""
    from aezoo.demo import embedded_samples, sample_key

    key = sample_key(dataset)
    x = embedded_samples()[key]
    recon = np.asarray(model.predict(x, verbose=0))
    return {"images": f"aezoo/samples/samples.npz:{key}", "mse": float(np.mean((recon - x) ** 2))}


def _flat_metrics(report):
    """The card's flat metrics: the image metrics, the PCA baseline, and the family's own
    (`Autoencoder.card_metrics`)."""
    from aezoo.models import FAMILIES

    m = dict(report["metrics"])
    if "pca" in report:
        m.update({f"pca_{k}": report["pca"][k] for k in ("mse", "bce", "psnr", "ssim")})
        m["ratio_to_pca_mse"] = report["ratio_to_pca"]["mse"]
    m.update(FAMILIES[report["family"]].card_metrics(report))
    return m


def publish(name, run_dir, iwae_k=64, pretrained_dir=None, progress=True, version=None):
    """Evaluate the weights of a finished run of `name` at `version` (default:
    the run's own version) and add them to the zoo as that version."""
    from aezoo import evaluation, registry
    from aezoo.weights import load_into, sha256

    run_dir = Path(run_dir)
    weights = run_dir / f"{name}.weights.h5"
    train_metrics = run_dir / "train_metrics.json"
    if not weights.exists() or not train_metrics.exists():
        raise WeightsError(f"{run_dir} is not a finished run of {name}: expected {weights.name} and train_metrics.json.")
    run = json.loads(train_metrics.read_text())
    version = registry.check_version(name, version if version is not None else run.get("version", 1))
    entry = registry.get_entry(name, version)
    family = registry._families()[entry["family"]]
    same_config = (family.config_for_recipe(run.get("config", entry["config"]), run["recipe"])
                   == family.config_for_recipe(entry["config"], entry["recipe"]))
    from aezoo.recipes import validate

    # the run records its recipe with every default filled in; the card keeps the registry's spelling of it
    same_recipe = validate(run["recipe"], entry["family"]) == validate(entry["recipe"], entry["family"])
    if run.get("config_overrides") or run["data"].get("dataset") != entry["recipe"]["dataset"] \
            or run["data"].get("train_examples") is None or not same_config or not same_recipe:
        raise WeightsError(f"{run_dir} changed the architecture or the data; only runs of the registry's recipe "
                           f"(version {version}) publish.")
    model = load_into(registry.build(name, version), weights)
    report = evaluation.evaluate(name, model=model, iwae_k=iwae_k, progress=progress, version=version)
    target_dir = Path(pretrained_dir or _io.pretrained_dir())
    target = target_dir / weights_file(name, version)
    _io.save_weights(model, target)  # from the uncompiled model: no optimizer state in the file
    dataset = entry["recipe"]["dataset"]
    record = {
        "version": version,
        "file": target.name,
        "sha256": sha256(target),
        "bytes": target.stat().st_size,
        "family": entry["family"],
        "config": entry["config"],
        "params": report["params"],
        "dataset": dataset,
        "split": datasets.INFO[dataset]["split_note"],
        "trained_on": f"{dataset} train split ({run['data']['train_examples']} images) from {run['data'].get('source')}",
        "evaluated_on": f"{dataset} {report['data']['split']} split ({report['data']['examples']} images)",
        "recipe": entry["recipe"],
        "overrides": run.get("overrides", {}),
        "seed": run["recipe"]["seed"],
        "epochs_run": run["epochs_run"],
        "train_seconds": run.get("seconds"),
        "train_final": run.get("final"),
        "metrics": _flat_metrics(report),
        "sample_check": sample_check(model, dataset),
        "versions": {"train": run.get("versions"), "evaluate": report["versions"]},
        "date": datetime.datetime.now(datetime.timezone.utc).date().isoformat(),
        "license": "Apache-2.0",
        "dataset_license": datasets.INFO[dataset]["license"],
        "reproduce": (f"aezoo train {name} --version {version} && aezoo evaluate {name} --version {version} "
                      f"--weights runs/{name}/{name}.weights.h5"),
    }
    manifest_path = target_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault(name, {})[str(version)] = record
    _io.write_json(manifest_path, {n: dict(sorted(v.items(), key=lambda kv: int(kv[0])))
                               for n, v in sorted(manifest.items())})
    return record


def weights_file(name, version):
    """The weights file of `name` at `version`: NAME.weights.h5 for version 1
    (its name since before versions), NAME.vN.weights.h5 after."""
    return f"{name}.weights.h5" if int(version) == 1 else f"{name}.v{int(version)}.weights.h5"


def results_table(manifest=None):
    """A Markdown table of every published version of every entry (from the
    manifest), oldest version first; `manifest` may map names to one record or
    to {version: record}."""
    from aezoo.weights import records

    table = records() if manifest is None else {n: ({"1": r} if "file" in r else r) for n, r in manifest.items()}
    head = ("| model | v | data (test split) | latent | params | MSE | PCA MSE | ratio | PSNR dB | SSIM | extra |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in sorted(table):
        for key in sorted(table[name], key=int):
            r = table[name][key]
            m = r["metrics"]
            extra = []
            if "denoise_psnr" in m:
                extra.append(f"denoise {m['denoise_noise']}: {m['denoise_psnr_noisy']:.1f} → {m['denoise_psnr']:.1f} dB")
            if "elbo" in m:
                extra.append(f"ELBO {m['elbo']:.1f}")
            if "iwae_nll" in m:
                extra.append(f"NLL(k={m['iwae_k']}) {m['iwae_nll']:.1f} nats")
            rows.append(f"| {name} | {r.get('version', key)} | {r['dataset']} | {r['config']['latent_dim']} | {r['params']:,} | "
                        f"{m['mse']:.5f} | {m['pca_mse']:.5f} | {m['ratio_to_pca_mse']:.2f} | {m['psnr']:.2f} | "
                        f"{m['ssim']:.3f} | {'; '.join(extra)} |")
    note = ("\nGenerated by `aezoo results` from `pretrained/manifest.json`; every number was measured by "
            "`aezoo evaluate` (PCA: same number of components as the latent size, fitted on the train split).")
    return "\n".join([head] + rows) + "\n" + note


def goals_table(manifest=None):
    """Markdown: every goal of every published version (zoo.json "goals"), met or by how much it is missed."""
    from aezoo import registry
    from aezoo.weights import records

    table = records() if manifest is None else manifest
    rows = []
    for name in sorted(table):
        for version in sorted(table[name], key=int):
            if int(version) not in registry.versions(name):
                continue
            for g in registry.goals(name, int(version), table):
                fmt = (lambda x: "—" if x is None else f"{x:.4g}")
                verdict = ("not measured yet" if g["met"] is None else
                           "met" if g["met"] else f"**missed by {abs(g['margin']):.3g}**")
                rows.append(f"| {name} v{version} | {g['measure']} | {g['goal']} (target {fmt(g['target'])}) | "
                            f"{fmt(g['measured'])} | {verdict} | {(g['tried'] or '') if g['met'] is False else ''} |")
    head = ("| entry | measure | goal | measured | verdict | what was tried (where missed) |\n"
            "|---|---|---|---|---|---|")
    note = ("\nGenerated by `aezoo results`: goals from `aezoo/zoo.json` (issue 9), measured numbers from the cards "
            "(`aezoo info NAME --version N`: metrics from `aezoo evaluate`, tasks from `aezoo bench`, export from "
            "`aezoo benchmark`).")
    return "\n".join([head] + rows) + "\n" + note


def _replace_block(text, start, end, body, path):
    if start not in text or end not in text:
        raise WeightsError(f"{path} has no {start} ... {end} markers for a generated table.")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{body}\n{end}{after}"


def update_readme(path, manifest_path=None):
    """Replace the generated blocks of `path`: the results table (from the
    manifest), the deployment benchmark tables (from pretrained/benchmark.json)
    and the Tasks tables (from pretrained/tasks/*.json, whose headline numbers
    also go onto the cards: manifest[NAME][VERSION]["tasks"] of `manifest_path`,
    default pretrained/manifest.json)."""
    from aezoo.benchmark import BENCH_END, BENCH_START, tables

    path = Path(path)
    text = _replace_block(path.read_text(), RESULTS_START, RESULTS_END, results_table(), path)
    text = _replace_block(text, BENCH_START, BENCH_END, tables(), path)
    from aezoo import tasks  # the Tasks tables (pretrained/tasks/*.json) and their headlines on the cards

    text = tasks.update_readme_text(text, path)
    tasks.write_cards(manifest_path)
    from aezoo.weights import by_version

    manifest = by_version(json.loads(Path(manifest_path).read_text())) if manifest_path else None
    text = _replace_block(text, GOALS_START, GOALS_END, goals_table(manifest), path)  # after the cards got their tasks
    _io.write_text(path, text)
    return path


def __getattr__(name):
    # PRETRAINED_DIR was a constant beside the source tree, wrong in an installed
    # wheel; it is now looked up through the package (aezoo._io.pretrained_dir).
    if name == "PRETRAINED_DIR":
        return _io.pretrained_dir()
    if name == "SPLIT_NOTES":  # now in aezoo.datasets.INFO
        return {d: info["split_note"] for d, info in datasets.INFO.items()}
    if name == "DATASET_LICENSES":
        return {d: info["license"] for d, info in datasets.INFO.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
