"""The deployment benchmark: every artifact exported, verified and timed; tables generated."""

import json
import shutil
from pathlib import Path

import pytest

import aezoo
from aezoo import benchmark
from aezoo.errors import InputError, UnknownModelError
from tests.conftest import make_images

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def result():
    model = aezoo.ConvAutoencoder(input_shape=(28, 28, 1), latent_dim=8, filters=[4, 8])
    model.predict(make_images(2), verbose=0)
    return benchmark.benchmark_model(model, make_images(16, seed=1), make_images(64, seed=2), threads=1,
                                     min_repeats=2, min_seconds=0.0, batch_sizes=(1, 8))


def test_every_artifact_is_verified_and_every_runtime_timed(result):
    assert set(result["artifacts"]) == set(benchmark.ARTIFACTS)
    assert all(a["passed"] for a in result["artifacts"].values())
    assert result["artifacts"]["tflite_fp32"]["max_abs_diff"] <= 1e-4
    assert set(result["runtimes"]) == set(benchmark.RUNTIMES)
    for runtime in result["runtimes"].values():
        for batch, key in ((1, "batch_1"), (8, "batch_8")):
            t = runtime[key]
            assert t["batch"] == batch and t["repeats"] >= 2
            assert 0 < t["median_ms"] <= t["p90_ms"] * (1 + 1e-9)
            assert t["images_per_s"] == pytest.approx(batch / (t["median_ms"] / 1e3))
    sizes = {k: a["file_size_bytes"] for k, a in result["artifacts"].items()}
    assert sizes["tflite_int8"] < sizes["tflite_fp32"]
    assert result["int8_to_fp32_bytes"] == pytest.approx(sizes["tflite_int8"] / sizes["tflite_fp32"])
    json.dumps(result)  # plain JSON


def test_an_artifact_that_fails_verification_is_reported_not_timed(monkeypatch):
    """e.g. an int8 file beyond the 3% MSE tolerance: the other runtimes are still timed."""
    real = benchmark._export_or_report

    def fail_int8(model, path, fmt, quantize, *args):
        report = real(model, path, fmt, quantize, *args)
        return {**report, "passed": False} if quantize == "int8" else report

    monkeypatch.setattr(benchmark, "_export_or_report", fail_int8)
    model = aezoo.DenseAutoencoder(input_shape=(28, 28, 1), latent_dim=2, hidden=[8])
    model.predict(make_images(2), verbose=0)
    out = benchmark.benchmark_model(model, make_images(8, seed=1), make_images(16, seed=2), threads=1,
                                    min_repeats=1, min_seconds=0.0, batch_sizes=(1, 8))
    assert out["runtimes"]["tflite_int8"] is None and out["runtimes"]["tflite_int8_b1"] is None
    assert not out["artifacts"]["tflite_int8"]["passed"]
    assert out["runtimes"]["tflite_fp32"]["batch_1"]["repeats"] >= 1


def test_too_few_images_is_a_clear_error():
    model = aezoo.DenseAutoencoder(input_shape=(28, 28, 1), latent_dim=2, hidden=[8])
    with pytest.raises(InputError, match="at least 256 images"):
        benchmark.benchmark_model(model, make_images(10), make_images(10))


def test_unknown_entry_fails_before_any_work(tmp_path):
    with pytest.raises(UnknownModelError):
        benchmark.run(["conv_mnits"], output=tmp_path / "b.json", progress=False)
    assert not (tmp_path / "b.json").exists()


def test_tables_and_cards_from_results(result, tmp_path):
    results = {"tiny": {**result, "weights_bytes": 1234, "machine": benchmark.machine(),
                        "versions": {"keras": "x"}, "date": "2026-01-01"}}
    text = benchmark.tables(results)
    assert text.count("| tiny |") == 3
    assert f"{result['runtimes']['onnx']['batch_1']['median_ms']:.2f}" in text
    # an artifact that failed its verification is reported, not timed
    failed = json.loads(json.dumps(results))
    failed["tiny"]["runtimes"]["tflite_int8"] = None
    failed["tiny"]["artifacts"]["tflite_int8"]["passed"] = False
    text = benchmark.tables(failed)
    assert text.count("failed") == 2 and "FAILED" in text
    # a result from before int16x8 was benchmarked: its cells read "—", not "failed"
    older = json.loads(json.dumps(results))
    for key in ("tflite_int16x8", "tflite_int16x8_b1"):
        older["tiny"]["runtimes"].pop(key), older["tiny"]["artifacts"].pop(key)
    older["tiny"].pop("int16x8_to_fp32_bytes")
    text = benchmark.tables(older)
    assert "failed" not in text and text.count("—") == 5  # latency, throughput, int16x8/fp32, its ΔMSE; the legend
    assert f"{result['int16x8_to_fp32_bytes']:.3f}" in benchmark.tables(results)
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"tiny": {"1": {"file": "tiny.weights.h5"}, "2": {"file": "tiny.v2.weights.h5"}}}))
    benchmark.write_cards(results, manifest_path=manifest)
    cards = json.loads(manifest.read_text())["tiny"]
    assert "export" not in cards["1"]  # the newest published version gets the figures
    card = cards["2"]
    assert card["file"] == "tiny.v2.weights.h5"
    assert card["export"]["artifacts"]["tflite_int8"]["passed"] is True
    assert card["export"]["reproduce"] == "aezoo benchmark tiny --cards"
    # an older version's run goes to its own card, with the command that made it
    older_run = {"tiny": {**results["tiny"], "version": 1, "command": "aezoo benchmark tiny:1"}}
    benchmark.write_cards(older_run, manifest_path=manifest)
    cards = json.loads(manifest.read_text())["tiny"]
    assert cards["1"]["export"]["reproduce"] == "aezoo benchmark tiny:1 --cards"
    assert cards["2"]["export"]["reproduce"] == "aezoo benchmark tiny --cards"


def test_an_older_version_is_benchmarked_into_another_file(monkeypatch, tmp_path):
    seen = []

    def fake(model, images, representative, **_):
        seen.append((model.zoo_entry["version"], model.count_params()))
        return {"artifacts": {}, "runtimes": {}}

    monkeypatch.setattr(benchmark, "benchmark_model", fake)   # no export runs, whatever breaks
    default = tmp_path / "default.json"                       # stands in for pretrained/benchmark.json
    shutil.copyfile(benchmark.default_output(), default)
    monkeypatch.setattr(benchmark, "default_output", lambda: default)
    before = default.read_bytes()
    with pytest.raises(InputError, match="not the newest version.*--output"):
        benchmark.run(["conv_mnist:1"], progress=False)
    with pytest.raises(InputError, match="no published version 9"):
        benchmark.run(["conv_mnist:9"], output=tmp_path / "b.json", progress=False)
    assert default.read_bytes() == before and not (tmp_path / "b.json").exists() and not seen
    benchmark.run(["conv_mnist:1"], output=tmp_path / "b.json", progress=False)
    written = json.loads((tmp_path / "b.json").read_text())["conv_mnist"]
    assert written["version"] == 1 and written["command"] == "aezoo benchmark conv_mnist:1"
    assert seen == [(1, aezoo.load("conv_mnist", version=1).count_params())]
    assert seen[0][1] != aezoo.load("conv_mnist").count_params()  # not the newest's weights


def test_readme_tables_are_the_generated_ones(tmp_path):
    """The README's results and benchmark tables, and the task headlines on the cards, are exactly
    what `make results` writes (run on copies: the test leaves the source tree alone)."""
    from aezoo.cards import update_readme

    copy, manifest = tmp_path / "README.md", tmp_path / "manifest.json"
    shutil.copy(ROOT / "README.md", copy)
    shutil.copy(ROOT / "pretrained" / "manifest.json", manifest)
    update_readme(copy, manifest_path=manifest)
    assert copy.read_text() == (ROOT / "README.md").read_text(), "run `make results`"
    assert json.loads(manifest.read_text()) == json.loads((ROOT / "pretrained" / "manifest.json").read_text()), \
        "the cards' task headlines are stale: run `make results`"


def test_benchmark_json_covers_every_published_entry():
    from aezoo.weights import manifest

    published = manifest()
    results = json.loads((ROOT / "pretrained" / "benchmark.json").read_text())
    assert sorted(results) == sorted(published)
    for name, r in results.items():
        for key, a in r["artifacts"].items():
            if a["quantize"] in ("dynamic", "int8", "int16x8") and not a["passed"]:
                # a quantized file beyond its tolerance is a measured miss (README "Versions"): its change is
                # recorded, and it is never timed nor shipped
                assert abs(a["relative_mse_change"]) > 0.03 and r["runtimes"].get(key) is None, (name, key)
            else:
                assert a["passed"], (name, key)   # lossless formats and float16 always pass
        assert published[name]["export"]["artifacts"] == r["artifacts"], f"run `aezoo benchmark {name} --cards`"


def test_older_versions_benchmark_matches_their_cards():
    """benchmarks/results/benchmark_older_versions.json (`aezoo benchmark NAME:1 --cards --output ...`) holds
    older versions only, each the run its card's export figures came from."""
    from aezoo.weights import manifest, records

    results = json.loads((ROOT / "benchmarks" / "results" / "benchmark_older_versions.json").read_text())
    newest, cards = manifest(), records()
    for name, r in results.items():
        assert r["version"] < newest[name]["version"], name
        card = cards[name][str(r["version"])]
        assert card["export"]["artifacts"] == r["artifacts"], f"run `{r['command']} --cards --output ...`"


def test_a_slow_runtime_is_timed_fewer_times():
    calls = []
    times = benchmark.time_call(lambda: calls.append(1), min_repeats=50, min_seconds=0.0, warmup=1,
                                max_seconds=0.0)
    assert len(times) == benchmark.MIN_SLOW_REPEATS and len(calls) == 1 + benchmark.MIN_SLOW_REPEATS
    assert len(benchmark.time_call(lambda: None, min_repeats=50, min_seconds=0.0, warmup=1)) == 50
