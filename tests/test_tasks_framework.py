"""aezoo.tasks: names with versions, bench merges atomically, README block and cards from the task files."""

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import aezoo
from aezoo import tasks
from aezoo.errors import InputError, UnknownModelError

ROOT = Path(__file__).resolve().parent.parent


def test_parse_spec():
    assert tasks.parse_spec("conv_mnist") == ("conv_mnist", None)
    assert tasks.parse_spec("conv_mnist:2") == ("conv_mnist", 2)
    assert tasks.parse_spec("conv_mnist:v1") == ("conv_mnist", 1)
    for bad in ("conv_mnist:", "conv_mnist:x", "conv_mnist:0", ""):
        with pytest.raises(InputError):
            tasks.parse_spec(bad)


def test_resolve_checks_names_and_versions_before_any_work():
    with pytest.raises(UnknownModelError, match="conv_mnist"):
        tasks.resolve(["conv_mnst"])
    with pytest.raises(UnknownModelError, match="no version 9"):
        tasks.resolve(["conv_mnist:9"])
    spec, = tasks.resolve(["conv_mnist:1"])
    assert (spec["name"], spec["version"], spec["model"]) == ("conv_mnist", 1, None)
    every = tasks.resolve(None, applies_to=lambda e: e["family"] == "vae")
    assert every and all(s["entry"]["family"] == "vae" for s in every)
    with pytest.raises(InputError, match="does not apply to conv_mnist"):
        tasks.resolve(["conv_mnist"], applies_to=lambda e: e["family"] == "vae")


def test_merge_keeps_other_entries_versions_and_baselines():
    old = {"task": "t", "protocol": "old", "a": {"1": {"version": 1, "x": 1}},
           "b": {"1": {"version": 1, "x": 2}},
           "baselines": {"fashion_mnist": {"pca": {"32": 0.5}}, "mnist_5k": {"pca": {"32": 0.7}}}}
    new = {"task": "t", "protocol": "new", "entries": {"a": {"version": 2, "x": 3}},
           "baselines": {"fashion_mnist": {"pca": {"16": 0.4}}}}
    merged = tasks.merge(old, new)
    assert merged["a"] == {"1": {"version": 1, "x": 1}, "2": {"version": 2, "x": 3}}
    assert merged["b"] == old["b"] and merged["protocol"] == "new"
    assert merged["baselines"] == {"fashion_mnist": {"pca": {"32": 0.5, "16": 0.4}}, "mnist_5k": {"pca": {"32": 0.7}}}
    assert old["a"] == {"1": {"version": 1, "x": 1}}  # not modified in place
    again = tasks.merge(merged, {"entries": {"a": {"version": 1, "x": 9}}})
    assert again["a"]["1"]["x"] == 9 and again["a"]["2"]["x"] == 3
    assert list(tasks.entries(again)) == [("a", "1", {"version": 1, "x": 9}), ("a", "2", {"version": 2, "x": 3}),
                                          ("b", "1", {"version": 1, "x": 2})]
    with pytest.raises(InputError, match="reserved"):
        tasks.merge({}, {"entries": {"baselines": {"version": 1}}})


def test_psnr_is_of_the_pooled_mse():
    a = np.zeros((2, 4))
    b = np.stack([np.full(4, 0.1), np.full(4, 0.01)])
    # pooled MSE = (0.01 + 0.0001) / 2; the mean of the two per-image PSNRs (20 and 40 dB) would read 30 dB
    assert tasks.psnr_pooled(a, b) == pytest.approx(10 * np.log10(1 / 0.00505))
    assert tasks.psnr_pooled(a, a) == float("inf")
    with pytest.raises(InputError):
        tasks.psnr_pooled(a, b[:1])


@pytest.fixture
def fake_task(monkeypatch, tmp_path):
    """A registered tiny entry and a task module whose result is one number per entry."""
    for name in ("tiny_task_a", "tiny_task_b"):
        aezoo.register(name, "dense", {"input_shape": [28, 28, 1], "latent_dim": 2, "hidden": [4]},
                       recipe={"dataset": "mnist_5k", "loss": "mse"}, uses=["feature extraction"], overwrite=True)
    mod = types.ModuleType("aezoo_fake_task")
    mod.TASK, mod.PROTOCOL, mod.ANCHORS = "fake", "One number.", []
    mod.applies_to = lambda entry: True

    def run(models=None, names=None, *, quick=False, seed=0, progress=True):
        specs = tasks.resolve(names, models)
        return {"task": "fake", "protocol": mod.PROTOCOL, "anchors": [],
                "entries": {s["name"]: {"version": s["version"], "value": 1.0 + quick} for s in specs},
                "baselines": {"mnist_5k": {s["name"]: 0.5 for s in specs}}}

    mod.run = run
    mod.table = lambda results: "| entry | value |\n|---|---|\n" + "\n".join(
        f"| {tasks.label(n, v)} | {r['value']:.1f} |" for n, v, r in tasks.entries(results))
    mod.card_summary = lambda r: {"value": r["value"]}
    monkeypatch.setitem(sys.modules, "aezoo_fake_task", mod)
    monkeypatch.setitem(tasks.TASKS, "fake", "aezoo_fake_task")
    monkeypatch.setitem(tasks.TASK_TITLES, "fake", "Fake")
    monkeypatch.setattr(tasks, "TASKS_DIR", tmp_path / "tasks")
    model = aezoo.load("tiny_task_a", pretrained=False)
    return model


def test_bench_merges_into_the_file_and_keeps_other_entries(fake_task, tmp_path):
    path = tmp_path / "tasks" / "fake.json"
    first = tasks.bench("fake", models={"tiny_task_a": fake_task}, progress=False)
    assert first["entries"]["tiny_task_a"]["command"] == "aezoo bench fake tiny_task_a:1"
    tasks.bench("fake", models={"tiny_task_b": fake_task}, progress=False)
    saved = json.loads(path.read_text())
    assert saved["tiny_task_a"]["1"]["value"] == 1.0 and saved["tiny_task_b"]["1"]["value"] == 1.0
    assert saved["baselines"]["mnist_5k"] == {"tiny_task_a": 0.5, "tiny_task_b": 0.5}
    assert {"machine", "versions", "date", "protocol"} <= set(saved)
    assert sorted(p.name for p in path.parent.iterdir()) == ["fake.json"]  # no temporary file left behind
    # a quick run does not touch the results file unless asked to
    quick = tasks.bench("fake", models={"tiny_task_a": fake_task}, quick=True, progress=False)
    assert quick["entries"]["tiny_task_a"]["value"] == 2.0
    assert json.loads(path.read_text()) == saved


def test_bench_refuses_unpublished_versions_before_any_work(fake_task, tmp_path):
    with pytest.raises(InputError, match="no published weights"):
        tasks.bench("fake", ["tiny_task_a"], progress=False)
    with pytest.raises(InputError, match="unknown task"):
        tasks.bench("nope", ["conv_mnist"])
    assert not (tmp_path / "tasks").exists()


def test_readme_block_and_cards_from_the_task_files(fake_task, tmp_path):
    tasks.bench("fake", models={"tiny_task_a": fake_task}, progress=False)
    block = tasks.tasks_block()
    assert "### Fake" in block and "| tiny_task_a v1 | 1.0 |" in block and "aezoo bench fake" in block
    text = f"intro\n{tasks.TASKS_START}\nstale\n{tasks.TASKS_END}\nrest\n"
    updated = tasks.update_readme_text(text)
    assert "stale" not in updated and block in updated and updated.endswith(f"{tasks.TASKS_END}\nrest\n")
    assert tasks.update_readme_text(updated) == updated
    with pytest.raises(InputError, match="markers"):
        tasks.update_readme_text("no markers here")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"tiny_task_a": {"1": {"file": "x.weights.h5", "tasks": {"old": 1}}},
                                    "other": {"1": {"file": "y.weights.h5", "metrics": {"mse": 1},
                                                    "tasks": {"fake": {"value": 0.0}}}}}))
    assert tasks.write_cards(manifest) == [("tiny_task_a", "1")]
    cards = json.loads(manifest.read_text())
    assert cards["tiny_task_a"]["1"]["tasks"] == {"fake": {"value": 1.0, "source": "pretrained/tasks/fake.json",
                                                           "command": "aezoo bench fake tiny_task_a:1"}}
    assert cards["other"] == {"1": {"file": "y.weights.h5", "metrics": {"mse": 1}}}  # no results: stale headline gone
    stamp = manifest.stat().st_mtime_ns
    assert tasks.write_cards(manifest) == [("tiny_task_a", "1")] and manifest.stat().st_mtime_ns == stamp  # no-op


def test_readme_tasks_block_is_up_to_date():
    """README.md's Tasks section is what `make results` generates from pretrained/tasks/*.json."""
    text = (ROOT / "README.md").read_text()
    assert tasks.update_readme_text(text) == text
