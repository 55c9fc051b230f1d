"""Export to SavedModel / TFLite / ONNX, with parity against Keras, and the
standalone consumers in export/ (run without TensorFlow)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import keras

import aezoo
from aezoo.artifact_card import read_card
from aezoo import datasets
from aezoo import deploy as export_module
from aezoo.errors import AezooError, BackendError, ExportError
from aezoo.deploy import export

pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="export needs TensorFlow")

REPO = Path(__file__).resolve().parents[1]

# Small versions of every family, trained briefly so int8 parity is measured on
# weights that reconstruct something (not a constant grey image).
# The v1 bodies: their int8 stays within 3% (the v2 residual bodies' int8 is measured by `aezoo benchmark`;
# the U-Net's export and int16x8 have their own tests below).
FAMILIES = {
    "dense": ("dense_mnist", dict(hidden=[32], latent_dim=8)),
    "conv": ("conv_mnist", dict(version=1, filters=[8, 16], latent_dim=8, convs_per_stage=1)),
    "denoising": ("denoising_mnist", dict(version=1, latent_dim=8, body_config={"filters": [8, 16]})),
    "vae": ("vae_mnist", dict(hidden=[32], latent_dim=8)),
    "conv_vae": ("conv_vae_mnist", dict(version=1, filters=[8, 16], latent_dim=8)),
}
VAES = ("vae", "conv_vae")
ALL_SIGNATURES = {"reconstruct", "encode", "decode", "score", "serving_default"}


@pytest.fixture(scope="module")
def train_images():
    return datasets.load_numpy("mnist_5k", "train", limit=512)[0]


@pytest.fixture(scope="module")
def test_images():
    return datasets.load_numpy("mnist_5k", "test", limit=256)[0]


class _Models(dict):
    """family -> small model trained 3 epochs on 512 mnist_5k digits, built on
    first use (so an xdist worker trains only the families its tests need)."""

    def __init__(self, images):
        super().__init__()
        self.images = images

    def __missing__(self, family):
        name, overrides = FAMILIES[family]
        keras.utils.set_random_seed(0)
        model = aezoo.registry.build(name, **overrides)
        model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
        model.fit(self.images, epochs=3, batch_size=32, verbose=0)
        self[family] = model
        return model


@pytest.fixture(scope="module")
def models(train_images):
    return _Models(train_images)


@pytest.fixture(scope="module")
def calibration(train_images):
    return train_images[:128]


def _tflite_ops(path):
    from ai_edge_litert.interpreter import Interpreter

    return {d["op_name"] for d in Interpreter(model_path=str(path))._get_ops_details()}


def _assert_builtin_deterministic(ops):
    bad = [op for op in ops if "FLEX" in op.upper() or "RANDOM" in op.upper() or op.upper() == "CUSTOM"]
    assert not bad, bad


def _check_report(report, path, fmt, quantize, part):
    assert report["passed"] is True, report
    assert report["format"] == fmt and report["quantize"] == quantize and report["part"] == part
    assert report["path"] == str(path)
    assert report["file_size_bytes"] > 0
    for key in ("max_abs_diff", "mse_keras", "mse_artifact", "relative_mse_change", "tolerance", "date"):
        assert report[key] is not None, key
    assert set(report["versions"]) >= {"tensorflow", "keras", "tf2onnx", "onnxruntime", "ai-edge-litert"}
    on_disk = json.loads(Path(str(path) + ".report.json").read_text())
    assert on_disk == report
    if quantize == "none":
        assert report["max_abs_diff"] <= 1e-4
    else:
        assert abs(report["relative_mse_change"]) <= export_module.QUANT_REL_MSE_TOL


# -- SavedModel ---------------------------------------------------------------

@pytest.mark.parametrize("family", list(FAMILIES))
def test_savedmodel_signatures_and_parity(models, family, tmp_path, test_images):
    import tensorflow as tf

    model = models[family]
    path = tmp_path / "sm" / "1"  # TF Serving layout; parents are created
    report = export(model, path, format="savedmodel")
    _check_report(report, path, "savedmodel", "none", "full")
    want = ALL_SIGNATURES | ({"sample"} if family in VAES else set())
    assert set(report["signatures"]) == want
    _assert_builtin_deterministic(report["ops"])

    loaded = tf.saved_model.load(str(path))
    assert set(loaded.signatures) == want
    for n in (1, 16):
        x = tf.constant(test_images[:n])
        assert loaded.signatures["reconstruct"](images=x)["reconstruction"].shape == (n, 28, 28, 1)
        assert loaded.signatures["score"](images=x)["score"].shape == (n,)
    enc = loaded.signatures["encode"](images=tf.constant(test_images[:3]))
    if family in VAES:
        assert set(enc) == {"mean", "log_var"}
        np.testing.assert_allclose(enc["mean"].numpy(), model.encode(test_images[:3]), atol=1e-5)
        eps = tf.random.normal((5, model.latent_dim))
        out = loaded.signatures["sample"](eps=eps)["images"].numpy()
        np.testing.assert_allclose(out, model.decode(eps.numpy()), atol=1e-5)
    else:
        assert set(enc) == {"latent"}
    score = loaded.signatures["score"](images=tf.constant(test_images[:8]))["score"].numpy()
    np.testing.assert_allclose(score, model.anomaly_score(test_images[:8]), rtol=1e-4, atol=1e-6)


def test_saved_model_cli_lists_signatures(models, tmp_path):
    cli = Path(sys.executable).with_name("saved_model_cli")
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed")
    path = tmp_path / "vae"
    export(models["conv_vae"], path, format="savedmodel")
    out = subprocess.run([str(cli), "show", "--all", "--dir", str(path)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    for name in ("reconstruct", "encode", "decode", "score", "sample", "serving_default"):
        assert f"signature_def['{name}']" in out.stdout
    assert "inputs['eps']" in out.stdout and "outputs['log_var']" in out.stdout
    assert "(-1, 28, 28, 1)" in out.stdout


# -- TFLite -------------------------------------------------------------------

def _run_tflite(path, x, n):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    (inp,) = interpreter.get_input_details()
    assert inp["shape_signature"][0] == -1
    interpreter.resize_tensor_input(inp["index"], [n] + list(x.shape[1:]))
    interpreter.allocate_tensors()
    feed = x[:n]
    if inp["dtype"] == np.int8:
        scale, zero = inp["quantization"]
        feed = np.clip(np.round(feed / scale + zero), -128, 127).astype(np.int8)
    interpreter.set_tensor(inp["index"], feed)
    interpreter.invoke()
    return [interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()]


@pytest.mark.parametrize("family", list(FAMILIES))
def test_tflite_fp32_and_int8(models, family, tmp_path, test_images, calibration):
    model = models[family]
    fp32 = tmp_path / "fp32.tflite"
    report = export(model, fp32, format="tflite")
    _check_report(report, fp32, "tflite", "none", "full")

    int8_io = family in ("conv", "vae")
    int8 = tmp_path / "int8.tflite"
    report8 = export(model, int8, format="tflite", quantize="int8", representative_data=calibration,
                     int8_io=int8_io)
    _check_report(report8, int8, "tflite", "int8", "full")
    assert report8["file_size_bytes"] < report["file_size_bytes"]
    assert (report8["inputs"]["images"]["dtype"] == "int8") == int8_io

    for path in (fp32, int8):
        _assert_builtin_deterministic(_tflite_ops(path))
        for n in (1, 16):  # the batch dimension resizes
            (out,) = _run_tflite(path, test_images, n)
            assert out.shape == (n, 28, 28, 1)


def test_tflite_all_quantizations_and_parts(models, tmp_path, calibration):
    model = models["conv"]
    sizes = {}
    for quantize in ("none", "float16", "dynamic", "int8"):
        path = tmp_path / f"conv_{quantize}.tflite"
        report = export(model, path, format="tflite", quantize=quantize,
                        representative_data=calibration if quantize == "int8" else None)
        _check_report(report, path, "tflite", quantize, "full")
        if quantize == "float16":
            assert report["max_abs_diff"] <= export_module.FLOAT16_ATOL
        sizes[quantize] = report["file_size_bytes"]
    assert sizes["float16"] < sizes["none"] and sizes["dynamic"] < sizes["none"]

    # int8 weight scales: one per tensor by default, one per output channel on request
    per_channel = tmp_path / "conv_int8_pc.tflite"
    report = export(model, per_channel, format="tflite", quantize="int8", representative_data=calibration,
                    per_channel=True)
    _check_report(report, per_channel, "tflite", "int8", "full")
    assert report["int8_weight_scales"] == "per-channel"
    assert report["file_size_bytes"] > sizes["int8"]
    assert _max_weight_scales(tmp_path / "conv_int8.tflite") == 1
    assert _max_weight_scales(per_channel) > 1

    enc = tmp_path / "enc_int8.tflite"
    report = export(model, enc, format="tflite", part="encoder", quantize="int8", representative_data=calibration)
    _check_report(report, enc, "tflite", "int8", "encoder")
    dec = tmp_path / "dec_int8.tflite"
    latents = np.asarray(model.encode(calibration))  # latents are accepted for the decoder
    report = export(model, dec, format="tflite", part="decoder", quantize="int8", representative_data=latents)
    _check_report(report, dec, "tflite", "int8", "decoder")
    assert report["inputs"]["z"]["shape"] == [-1, model.latent_dim]


def test_int16x8_has_int8_weights_and_int16_activations(train_images, test_images, tmp_path):
    """16x8 quantization: the file is as small as int8's (int8 weights), activations are int16, and on a
    residual body it changes the reconstruction MSE less than int8 does (the reason it exists)."""
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(0)
    model = aezoo.registry.build("conv_mnist", version=2, widths=[8, 16, 16], blocks=[0, 1, 1], latent_dim=8)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    model.fit(train_images, epochs=3, batch_size=32, verbose=0)
    reports = {}
    for quantize in ("none", "int8", "int16x8"):
        path = tmp_path / f"{quantize}.tflite"
        try:
            reports[quantize] = export(model, path, format="tflite", quantize=quantize, verify_data=test_images,
                                       representative_data=train_images[:128] if quantize != "none" else None)
        except ExportError as e:  # int8 may miss its tolerance here; its figures are still measured
            reports[quantize] = e.report
    r16 = reports["int16x8"]
    _check_report(r16, tmp_path / "int16x8.tflite", "tflite", "int16x8", "full")
    assert r16["file_size_bytes"] < 0.5 * reports["none"]["file_size_bytes"]  # int8 weights (a tiny model:
    assert r16["file_size_bytes"] < 1.1 * reports["int8"]["file_size_bytes"]  # the card and names weigh too)
    assert r16["int8_weight_scales"] == "per-tensor" and r16["representative_count"] == 128
    assert abs(r16["relative_mse_change"]) < abs(reports["int8"]["relative_mse_change"])
    interpreter = Interpreter(model_path=str(tmp_path / "int16x8.tflite"))
    interpreter.allocate_tensors()
    dtypes = {}
    for d in interpreter.get_tensor_details():
        dtypes.setdefault(np.dtype(d["dtype"]).name, []).append(d["name"])
    assert any("conv" in n.lower() for n in dtypes.get("int8", []))  # the convolution kernels
    assert len(dtypes.get("int16", [])) > 10  # every activation
    assert read_card(tmp_path / "int16x8.tflite")["artifact"]["quantize"] == "int16x8"


def _max_weight_scales(path):
    """The most distinct quantization scales any int8 tensor of a TFLite file has (activations have one)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return max(len(np.unique(d["quantization_parameters"]["scales"])) for d in interpreter.get_tensor_details()
               if np.dtype(d["dtype"]) == np.int8)


@pytest.mark.parametrize("family", VAES)
def test_vae_tflite_parts_have_no_random_ops(models, family, tmp_path, test_images):
    model = models[family]
    for part in ("full", "encoder", "decoder"):
        path = tmp_path / f"{part}.tflite"
        report = export(model, path, format="tflite", part=part)
        _check_report(report, path, "tflite", "none", part)
        ops = _tflite_ops(path)
        _assert_builtin_deterministic(ops)
        assert not any("RANDOM" in op for op in ops)
    from ai_edge_litert.interpreter import Interpreter

    encoder = Interpreter(model_path=str(tmp_path / "encoder.tflite")).get_signature_runner("encode")
    out = encoder(images=test_images[:4])
    assert set(out) == {"mean", "log_var"}
    np.testing.assert_allclose(out["mean"], model.encode(test_images[:4]), atol=1e-4)
    # the decoder part is also the sampler: feed eps ~ N(0, I) as z
    eps = np.random.default_rng(1).standard_normal((16, model.latent_dim)).astype("float32")
    (images,) = _run_tflite(tmp_path / "decoder.tflite", eps, 16)
    np.testing.assert_allclose(images, model.decode(eps), atol=1e-4)


# -- ONNX ---------------------------------------------------------------------

@pytest.mark.parametrize("family", list(FAMILIES))
def test_onnx_parts(models, family, tmp_path, test_images):
    import onnx
    import onnxruntime

    model = models[family]
    for part in ("full", "encoder", "decoder"):
        path = tmp_path / f"{family}_{part}.onnx"
        report = export(model, path, format="onnx", part=part, verify_data=test_images[:64])
        _check_report(report, path, "onnx", "none", part)
        assert {k: report["verify_data"][k] for k in ("source", "count")} == {"source": "verify_data", "count": 64}
        assert report["opset"] >= 17
        _assert_builtin_deterministic(report["ops"])
        proto = onnx.load(str(path))
        assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        for n in (1, 16):
            feed = test_images[:n] if part != "decoder" else np.asarray(model.encode(test_images[:n]))
            outs = dict(zip(names, session.run(None, {session.get_inputs()[0].name: feed})))
            if part == "encoder":
                assert set(outs) == ({"mean", "log_var"} if family in VAES else {"latent"})
                assert outs[names[0]].shape == (n, model.latent_dim)
            else:
                assert outs[names[0]].shape == (n, 28, 28, 1)


# -- standalone consumers ---------------------------------------------------------

def test_standalone_consumers_run_without_tensorflow(models, tmp_path, test_images, calibration):
    model = models["conv"]
    tfl = tmp_path / "conv_int8.tflite"
    tfl_report = export(model, tfl, format="tflite", quantize="int8", representative_data=calibration, int8_io=True,
                        verify_data=test_images)  # int8 would otherwise verify on held-out calibration images
    onx = tmp_path / "conv.onnx"
    onx_report = export(model, onx, format="onnx")
    fixed = tmp_path / "conv_b3.tflite"  # a fixed batch of 3: 256 images = 85 calls + 1 padded
    fixed_report = export(model, fixed, format="tflite", batch_size=3)
    assert fixed_report["batch_size"] == 3 and fixed_report["inputs"]["images"]["shape"] == [3, 28, 28, 1]
    assert fixed_report["max_abs_diff"] <= export_module.FP32_ATOL
    assert "SHAPE" not in fixed_report["ops"]  # every shape is static
    images = tmp_path / "images.npy"
    np.save(images, test_images)  # the same 256 images as the default verification

    blocker = tmp_path / "blocked"
    for package in ("tensorflow", "aezoo", "keras"):
        (blocker / package).mkdir(parents=True)
        (blocker / package / "__init__.py").write_text(f"raise ImportError('{package} is blocked in this test')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
    assert probe.returncode != 0 and "blocked" in probe.stderr

    for script, artifact, report in (("run_tflite.py", tfl, tfl_report), ("run_onnx.py", onx, onx_report),
                                     ("run_tflite.py", fixed, fixed_report)):
        png = tmp_path / f"{script}.png"
        out = subprocess.run([sys.executable, str(REPO / "export" / script), str(artifact), str(images),
                              "--png", str(png)], env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=600)
        assert out.returncode == 0, out.stderr
        line = json.loads(out.stdout.strip().splitlines()[-1])
        assert line["images"] == 256
        assert line["mse"] == pytest.approx(report["mse_artifact"], rel=1e-4)
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        # without an images file: the repo's embedded sample
        out = subprocess.run([sys.executable, str(REPO / "export" / script), str(artifact), "--png", "s.png"],
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        line = json.loads(out.stdout.strip().splitlines()[-1])
        assert line["data"] == "embedded:mnist" and line["images"] == 32 and 0 < line["mse"] < 0.2
        assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- bad input and failures ------------------------------------------------------

def test_bad_arguments(models, tmp_path, calibration):
    model = models["dense"]
    target = tmp_path / "m.tflite"
    with pytest.raises(ExportError, match="'savedmodel', 'tflite', 'onnx'"):
        export(model, target, format="pb")
    with pytest.raises(ExportError, match="'none', 'float16', 'dynamic', 'int8'"):
        export(model, target, format="tflite", quantize="int4")
    with pytest.raises(ExportError, match="'full', 'encoder', 'decoder'"):
        export(model, target, format="tflite", part="middle")
    with pytest.raises(ExportError, match="representative_data"):
        export(model, target, format="tflite", quantize="int8")
    with pytest.raises(ExportError, match="tflite"):
        export(model, tmp_path / "sm", format="savedmodel", quantize="float16")
    with pytest.raises(ExportError, match="tflite"):
        export(model, tmp_path / "m.onnx", format="onnx", quantize="int8", representative_data=calibration)
    with pytest.raises(ExportError, match="int8"):
        export(model, target, format="tflite", int8_io=True)
    with pytest.raises(ExportError, match="batch_size .* TFLite setting"):
        export(model, tmp_path / "m.onnx", format="onnx", batch_size=1)
    with pytest.raises(ExportError, match="positive integer"):
        export(model, target, format="tflite", batch_size=0)
    with pytest.raises(ExportError, match="quantize='int16x8' needs representative_data"):
        export(model, target, format="tflite", quantize="int16x8")
    with pytest.raises(ExportError, match="int8_io=True needs quantize='int8'"):
        export(model, target, format="tflite", quantize="int16x8", int8_io=True, representative_data=calibration)
    with pytest.raises(ExportError, match="per_channel=True needs quantize='int8'"):
        export(model, target, format="tflite", quantize="dynamic", per_channel=True)
    with pytest.raises(ExportError, match="signature"):
        export(model, tmp_path / "sm", format="savedmodel", part="encoder")
    with pytest.raises(ExportError, match="opset"):
        export(model, tmp_path / "m.onnx", format="onnx", opset=7)
    with pytest.raises(ExportError, match="aezoo autoencoder"):
        export(model.encoder, target, format="tflite")
    with pytest.raises(ExportError, match="verify_data"):  # not a zoo name: no default dataset
        export(aezoo.DenseAutoencoder(hidden=[8], latent_dim=2, name="mine"), tmp_path / "x.onnx", format="onnx")
    assert issubclass(ExportError, AezooError)
    assert list(tmp_path.iterdir()) == []  # nothing written by refused exports


def test_needs_tensorflow_backend(models, tmp_path, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(BackendError, match="export needs TensorFlow"):
        export(models["dense"], tmp_path / "m.onnx", format="onnx")


def test_existing_path_needs_overwrite(models, tmp_path):
    model = models["dense"]
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old")
    with pytest.raises(ExportError, match="overwrite=True"):
        export(model, path, format="onnx")
    assert path.read_bytes() == b"old"
    report = export(model, path, format="onnx", overwrite=True)
    assert report["passed"] and path.read_bytes() != b"old"

    sm = tmp_path / "sm"
    export(model, sm, format="savedmodel")
    with pytest.raises(ExportError, match="overwrite=True"):
        export(model, sm, format="savedmodel")
    export(model, sm, format="savedmodel", overwrite=True)  # replaces a directory
    assert (sm / "saved_model.pb").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.report.json", "sm", "sm.report.json"]


def test_failed_conversion_leaves_nothing(models, tmp_path, monkeypatch):
    def broken(model, staged, work, **kwargs):
        Path(staged).write_bytes(b"half a flatbuffer")
        raise RuntimeError("converter crashed")

    monkeypatch.setitem(export_module._CONVERTERS, "tflite", broken)
    target = tmp_path / "new" / "deeper" / "m.tflite"
    with pytest.raises(RuntimeError, match="converter crashed"):
        export(models["conv"], target, format="tflite")
    assert list(tmp_path.iterdir()) == []  # no artifact, no temp dir, no created parents


def test_failed_verification_ships_nothing(models, tmp_path, monkeypatch):
    model = models["conv"]
    path = tmp_path / "m.tflite"
    good = export(model, path, format="tflite")
    old_bytes = path.read_bytes()

    monkeypatch.setattr(export_module, "FP32_ATOL", -1.0)  # nothing can pass
    with pytest.raises(ExportError, match="failed verification") as info:
        export(model, path, format="tflite", overwrite=True)
    assert info.value.report["passed"] is False
    assert info.value.report["max_abs_diff"] == pytest.approx(good["max_abs_diff"], abs=1e-6)
    assert path.read_bytes() == old_bytes  # the previous artifact is untouched
    assert json.loads(Path(str(path) + ".report.json").read_text())["passed"] is True
    failed = json.loads(Path(str(path) + ".failed.report.json").read_text())
    assert failed["passed"] is False and failed["path"] is None

    fresh = tmp_path / "fresh.onnx"
    with pytest.raises(ExportError):
        export(model, fresh, format="onnx")
    assert not fresh.exists() and not Path(str(fresh) + ".report.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "fresh.onnx.failed.report.json", "m.tflite", "m.tflite.failed.report.json", "m.tflite.report.json"]

    monkeypatch.undo()
    export(model, fresh, format="onnx")  # a passing export clears the stale failed report
    assert not Path(str(fresh) + ".failed.report.json").exists()


def test_artifact_that_does_not_run_is_not_shipped(models, tmp_path, monkeypatch):
    def broken_runner(path):
        def run(signature, **inputs):
            raise RuntimeError("runtime rejects the model")
        return run

    monkeypatch.setitem(export_module._RUNNERS, "onnx", broken_runner)
    with pytest.raises(ExportError, match="does not run"):
        export(models["dense"], tmp_path / "m.onnx", format="onnx")
    assert list(tmp_path.iterdir()) == []


# -- the callable, the stages, and the family's parts ------------------------------

def test_aezoo_export_is_the_function():
    import importlib

    import aezoo.deploy

    assert callable(aezoo.export) and aezoo.export is aezoo.deploy.export
    importlib.import_module("aezoo.deploy")  # importing the module does not shadow the function
    assert aezoo.export is export
    assert "format" in __import__("inspect").signature(aezoo.export).parameters


def test_verification_data_is_explicit_not_looked_up_by_name(tmp_path, test_images):
    """A model that merely carries a zoo name was not built by the zoo: no default images."""
    impostor = aezoo.DenseAutoencoder(hidden=[8], latent_dim=2, name="conv_mnist")
    with pytest.raises(ExportError, match="not built from the zoo.*verify_data"):
        export(impostor, tmp_path / "x.onnx", format="onnx")
    report = export(impostor, tmp_path / "x.onnx", format="onnx", verify_data=test_images[:16])
    assert report["verify_data"] == {"source": "verify_data", "count": 16}
    built = aezoo.build("dense_mnist", version=1, hidden=[8], latent_dim=2)
    assert built.zoo_entry == {"name": "dense_mnist", "version": 1, "dataset": "mnist_5k"}
    report = export(built, tmp_path / "y.onnx", format="onnx")
    assert report["verify_data"]["source"] == "mnist_5k:test[:256]"


def test_denoiser_export_is_checked_at_denoising(models, tmp_path, test_images):
    """A denoiser's check runs on noisy copies of the verification images and scores against the clean ones."""
    from aezoo import deploy

    model = models["denoising"]
    report = export(model, tmp_path / "d.tflite", format="tflite", verify_data=test_images)
    noisy = np.asarray(model.corrupt(test_images, seed=deploy.VERIFY_SEED))
    denoising_mse = np.mean(np.square(np.asarray(model.reconstruct(noisy), "float64") - test_images))
    clean_mse = np.mean(np.square(np.asarray(model.reconstruct(test_images), "float64") - test_images))
    assert report["passed"] and report["mse_keras"] == pytest.approx(denoising_mse, rel=1e-5)
    assert report["mse_keras"] != pytest.approx(clean_mse, rel=1e-3)  # not the clean-image figure
    assert "gaussian noise 0.2 (seed 0)" in report["verify_data"]["scored"]
    plain = export(models["dense"], tmp_path / "p.tflite", format="tflite", verify_data=test_images)
    assert "scored" not in plain["verify_data"]


def test_unet_denoiser_exports_full_and_encoder_but_no_decoder(tmp_path):
    import onnxruntime
    import tensorflow as tf

    model = aezoo.DenoisingAutoencoder((16, 16, 1), latent_dim=16, body="unet",
                                       body_config={"widths": [8, 16], "blocks": [0, 1]})
    x = np.random.default_rng(0).random((8, 16, 16, 1)).astype("float32")
    with pytest.raises(ExportError, match="has no decoder part.*part='full' or part='encoder'"):
        export(model, tmp_path / "d.onnx", format="onnx", part="decoder", verify_data=x)
    with pytest.raises(ExportError, match="has no decoder, so a quantized encoder cannot be checked"):
        export(model, tmp_path / "e.tflite", format="tflite", part="encoder", quantize="int8",
               representative_data=x, verify_data=x)
    sm = export(model, tmp_path / "sm", format="savedmodel", verify_data=x)
    assert set(sm["signatures"]) == {"reconstruct", "encode", "score", "serving_default"}
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(loaded.signatures["reconstruct"](images=tf.constant(x))["reconstruction"],
                               model.reconstruct(x), atol=1e-5)
    enc = export(model, tmp_path / "e.onnx", format="onnx", part="encoder", verify_data=x)
    assert enc["passed"] and enc["mse_artifact"] is None  # no reconstruction: the latents' diff decides
    session = onnxruntime.InferenceSession(str(tmp_path / "e.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {session.get_inputs()[0].name: x})[0], model.encode(x), atol=1e-5)
    full = export(model, tmp_path / "f.tflite", format="tflite", verify_data=x)
    assert full["passed"] and full["signatures"] == ["reconstruct"]


def test_extra_functions_are_exported_and_verified(models, tmp_path, test_images):
    import tensorflow as tf
    from keras import ops

    model = models["dense"]

    def detect(images):
        score = ops.mean(ops.square(images - model.infer(images)), axis=(1, 2, 3))
        return {"score": score, "is_anomaly": ops.greater(score, 0.05)}

    extra = {"detect": (detect, {"images": (28, 28, 1)})}
    report = export(model, tmp_path / "sm", format="savedmodel", extra_functions=extra)
    assert "detect" in report["signatures"] and "detect/is_anomaly" in report["diffs"]
    out = tf.saved_model.load(str(tmp_path / "sm")).signatures["detect"](images=tf.constant(test_images[:8]))
    np.testing.assert_allclose(out["score"], model.anomaly_score(test_images[:8]), rtol=1e-4, atol=1e-7)
    report = export(model, tmp_path / "d.tflite", format="tflite", part="detect", extra_functions=extra)
    assert report["signatures"] == ["detect"] and report["passed"]
    with pytest.raises(ExportError, match="would replace the model's own 'score'"):
        export(model, tmp_path / "x", format="savedmodel", extra_functions={"score": extra["detect"]})


def test_unwritable_target_is_named_not_the_temp_dir(models, tmp_path, monkeypatch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError, match=f"cannot write the export to {blocker}") as info:
        export(models["dense"], blocker / "m.onnx", format="onnx")
    assert "aezoo-tmp" not in str(info.value) and ".work" not in str(info.value)
    target = tmp_path / "ro"
    target.mkdir()
    real_mkdir = os.mkdir

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(target)):
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(ExportError, match=f"cannot write the export to {target}: Permission denied"):
        export(models["dense"], target / "m.onnx", format="onnx")
    assert list(target.iterdir()) == []


def test_killed_exports_leave_no_work_dir_after_the_next_export(models, tmp_path):
    from aezoo import _io

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / _io.temp_name("m.onnx", ".work").replace(f"-{os.getpid()}.", f"-{dead.pid}.")
    stale.mkdir()
    (stale / "m.onnx").write_bytes(b"half an artifact")
    export(models["dense"], tmp_path / "m.onnx", format="onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.report.json"]


def test_cli_overwrite_message_names_the_flag(tmp_path, capsys):
    from aezoo.cli import main

    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    assert main(["export", "dense_mnist", "--no-pretrained", "--format", "onnx", "--output", str(target)]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and target.read_bytes() == b"old"


@pytest.mark.parametrize("script", ["run_onnx.py", "run_tflite.py"])
def test_standalone_consumers_refuse_bad_image_files(script, tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "text.npy").write_text("not numpy")
    np.save(tmp_path / "strings.npy", np.array(["a", "b"]))
    np.savez(tmp_path / "archive.npz", x=np.zeros((2, 28, 28, 1), "float32"))
    for name, message in (("objects.npy", "never unpickles"), ("text.npy", "not a .npy array of numbers"),
                          ("strings.npy", "is not numeric"), ("archive.npz", "an .npz archive"),
                          ("missing.npy", "no such file")):
        out = subprocess.run([sys.executable, str(REPO / "export" / script), "model.file", str(tmp_path / name)],
                             capture_output=True, text=True, timeout=600)
        assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
        assert message in out.stderr, (name, out.stderr)
