"""Deploy aezoo autoencoders: SavedModel, TFLite and ONNX, verified against Keras.

    >>> import aezoo
    >>> model = aezoo.load("conv_mnist")
    >>> aezoo.export(model, "conv_mnist.onnx", format="onnx")          # the same function
    >>> from aezoo.deploy import export
    >>> export(model, "models/conv_mnist/1", format="savedmodel")      # TF Serving
    >>> export(model, "conv_mnist.tflite", format="tflite", quantize="int8",
    ...        representative_data=x_train[:256])
    >>> export(model, "conv_mnist_encoder.onnx", format="onnx", part="encoder")

This module is glue around the maintained converters: `keras.export.ExportArchive`
writes the SavedModel, `tf.lite.TFLiteConverter.from_saved_model` makes TFLite
(builtin ops only), `tf2onnx.convert.from_function` makes ONNX. Every export
needs the TensorFlow backend.

What is exported is always the deterministic inference graph that the model's
family defines (`Autoencoder.export_functions`: `infer`, never `call`, so no
training-time noise, no `add_loss`, and for VAEs no random op):

===================  ==========  ===============================================
signature            input       outputs
===================  ==========  ===============================================
``reconstruct``      ``images``  ``reconstruction`` (VAE: decodes the posterior mean)
``encode``           ``images``  ``latent``; VAE: ``mean`` and ``log_var``
``decode``           ``z``       ``images``
``score``            ``images``  ``score``: per-example mean squared reconstruction error
``sample`` (VAE)     ``eps``     ``images``: decode(eps); feed eps ~ N(0, I) yourself
``serving_default``  ``images``  the same as ``reconstruct``
===================  ==========  ===============================================

``images`` is float32 (batch, H, W, C) in [0, 1], ``z``/``eps`` float32
(batch, latent_dim); the batch dimension is dynamic everywhere. A SavedModel
holds all the signatures; a TFLite or ONNX file holds one part: ``full``
(reconstruct), ``encoder`` (encode) or ``decoder`` (decode), as the family's
`export_parts` allows (a U-Net denoiser has no decoder, so no ``decode`` and no
``decoder`` part).

`export` runs in stages: `check_request` (every option rule is a row of
`REQUEST_RULES`), `verification_data`, `convert`, `verify`, `make_report`,
`ship` (install the artifact, or keep only the failed report). Verification
images are passed explicitly (`verify_data`), or come from the dataset that
`aezoo.build`/`aezoo.load` recorded on the model (`model.zoo_entry`).

Verification is part of export. The artifact is written into a temporary
directory next to `path`, loaded with its own runtime (TF SavedModel loader,
`ai_edge_litert` interpreter, onnxruntime), run on real test images (by
default the first 256 test images of the dataset the zoo entry trains on) and
compared with the Keras model:

- quantize "none": max_scaled_diff <= FP32_ATOL, where max_scaled_diff is the
  largest, over every output, of max |artifact - keras| / max(1, max |keras|):
  the plain max abs diff for images (in [0, 1]), relative to the size of the
  latents for encoder outputs (whose scale is arbitrary);
- "float16": max_scaled_diff <= FLOAT16_ATOL;
- "dynamic" / "int8" / "int16x8": |relative change of the reconstruction MSE| <= QUANT_REL_MSE_TOL
  (a denoiser: of the denoising MSE, see below),
  or <= `tolerance` when the caller gives one (e.g. 0.05 for a fine-tuned model
  on its own images).
  For part="encoder" the reconstruction is the Keras decoder applied to the
  artifact's latents; for part="decoder" the artifact decodes the Keras
  encoder's latents (the posterior mean for VAEs).

"int16x8" is TensorFlow Lite's 16x8 quantization: int8 weights (the file is
as small as int8's) and int16 activations. It is for models whose accuracy
suffers from 8-bit activations: the first v2 bodies (residual blocks and a U-Net
with SiLU) lost 4-12% MSE in int8 (one +489%) and about 0.2% in int16x8; the
published v2s use ReLU6 where it mattered and pass int8 (`aezoo benchmark`).
Integer-only accelerators that take int8 only (e.g. the Edge TPU) cannot run it.

Verification images, in order: `verify_data`; for int8/int16x8 without it, a held-out
part of `representative_data` (the last `VERIFY_HOLDOUT` of it, at most
VERIFY_COUNT images; calibration uses the rest), so a model fine-tuned on your
images is verified on your images; a preset's held-out samples
(`aezoo.presets`); the test split of the zoo dataset. The report's
``verify_data`` says which.

The check scores what the model is for (the family's `scored_pairs`): a
denoiser is run on the verification images with its own noise added (seed
VERIFY_SEED) and its MSE is measured against the clean images, so "the int8
file is within 3%" means within 3% at denoising. (On clean images a denoiser is
near the identity, test MSE ~0.001, and the same small rounding is a much
larger share; `benchmarks/int8_denoise.py` reports both figures.) The report's
``verify_data.scored`` says so. Other families reconstruct their input.

Every artifact carries its card (`aezoo.artifact_card`: entry, version, input
range and layout, outputs in index order with their meaning, quantization
parameters, preprocessing, detector threshold), readable without TensorFlow;
TFLite tensors are named after their signature keys and outputs keep the
family's order in every format (a VAE encoder: ``mean``, then ``log_var``).
With ``preprocess=True`` the artifact takes raw pixels (``input_range``,
default 0..255, and ``input_size``) and runs the entry's in-graph preprocessing
(`aezoo.preprocessing.Preprocessor.graph_fn`) before the model; the card lists
the steps the app must still do (framing by the object's box and centre of mass).

A TFLite/ONNX/SavedModel graph with Flex/custom ops or a random op also fails.
The tolerances are module constants. A model without a decoder (a U-Net
denoiser) exports its encoder part in float only: a quantized encoder could
not be checked through a reconstruction.

The report (a dict, also written as JSON to ``PATH.report.json`` beside the
artifact, for a SavedModel directory too) has: format, quantize, part, path,
file_size_bytes, max_abs_diff, max_scaled_diff, mse_keras, mse_artifact,
relative_mse_change (signed: (mse_artifact - mse_keras) / mse_keras), passed,
tolerance, criterion, problems, versions, date, and details (signatures, ops,
inputs/outputs, per-output diffs, verification data). JSON has no infinity:
a figure that could not be computed (e.g. an output of the wrong shape) is null.

Failures leave nothing half-written: the artifact only replaces `path` (with
`os.replace`/`rename`) after it passed verification. If verification fails
the new artifact is deleted, anything already at `path` (and its report) is
left untouched, the report (passed=false, path=null) is written to
``PATH.failed.report.json`` and `ExportError` is raised with the figures (also
in `error.report`). A later export of `path` that passes removes that file.
Any other failure (a converter error, an interrupt) removes the temporary
directory and the parent directories export created; the work directory of an
export that was killed (SIGKILL) is removed by the next export into the same
directory. Keras, TensorFlow and the converters are imported when an export
starts, not with this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import os
import shutil
from typing import Any, Callable

import numpy as np

from aezoo import _io
from aezoo.errors import BackendError, ExportError

FORMATS = ("savedmodel", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8", "int16x8")
CALIBRATED = ("int8", "int16x8")  # quantizations that calibrate activation ranges on representative_data
PARTS = ("full", "encoder", "decoder")

FP32_ATOL = 1e-4            # quantize="none": max abs difference to Keras
FLOAT16_ATOL = 1e-2         # quantize="float16": max abs difference to Keras
QUANT_REL_MSE_TOL = 0.03    # dynamic/int8/int16x8: |mse_artifact / mse_keras - 1|
VERIFY_COUNT = 256          # default number of test images for verification
VERIFY_CHUNK = 1024         # images per call when running the models
CALIBRATION_COUNT = 512     # int8/int16x8 calibration images that the CLI and the benchmark use
VERIFY_SEED = 0             # the seed of a denoiser's verification noise (`scored_images`)
VERIFY_HOLDOUT = 0.2        # int8/int16x8 without verify_data: this share of representative_data verifies, the rest calibrates
MIN_HOLDOUT_IMAGES = 20     # representative images needed before a part is held out for verification
DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 13, 18   # what tf2onnx 1.17 converts to
FORBIDDEN_OP_MARKERS = ("FLEX", "CUSTOM", "RANDOM")   # substrings of op names, upper-cased
EPS_SEED = 0                # seed of the eps fed to a `sample` signature in verification

__all__ = ["export", "signature_names", "report_path", "failed_report_path", "calibration_images", "FORMATS",
           "QUANTIZATIONS", "PARTS", "FP32_ATOL", "FLOAT16_ATOL", "QUANT_REL_MSE_TOL"]


def report_path(path):
    """Where the report of a successful export of `path` is written."""
    return os.fspath(path) + ".report.json"


def failed_report_path(path):
    """Where the report of an export of `path` that failed verification is written."""
    return os.fspath(path) + ".failed.report.json"


# -- what is exported --------------------------------------------------------------

def _functions(model, extra_functions=None):
    """The family's export functions, plus any extra ones (e.g. an anomaly detector's `detect`)."""
    functions = dict(model.export_functions())
    for name, value in (extra_functions or {}).items():
        if name in functions:
            raise ExportError(f"extra function {name!r} would replace the model's own {name!r} signature.")
        functions[name] = value
    return functions


def signature_names(model, extra_functions=None):
    """The serving signatures a SavedModel export of `model` has (the family's `export_functions`)."""
    return list(_functions(model, extra_functions))


def _endpoints(functions, batch_size=None):
    """name -> (fn, [tf.TensorSpec]): the batch dimension is dynamic unless `batch_size` is given."""
    import tensorflow as tf

    return {name: (fn, [tf.TensorSpec((batch_size,) + tuple(shape), tf.float32, name=input_name)
                        for input_name, shape in inputs.items()])
            for name, (fn, inputs) in functions.items()}


# -- stage 1: the request ---------------------------------------------------------------

@dataclasses.dataclass
class Request:
    """What `export` was asked for, checked."""

    model: Any
    path: str
    format: str
    quantize: str
    part: str
    representative_data: Any
    int8_io: bool
    overwrite: bool
    opset: int | None
    per_channel: bool
    batch_size: int | None
    functions: dict
    parts: dict
    tolerance: float | None = None
    preprocessor: Any = None         # a Preprocessor run in the graph (preprocess=True), else None
    input_size: tuple | None = None
    input_range: tuple = (0.0, 255.0)
    card_fields: dict = dataclasses.field(default_factory=dict)   # preprocessing, detector, extra

    def images_feed(self, x):
        """What the artifact's ``images`` input takes for verification images `x` (float32 in [0, 1],
        the model's size): `x` itself, or raw pixels when the preprocessing is in the graph."""
        if self.preprocessor is None:
            return x
        lo, hi = self.input_range
        raw = x
        size = tuple(self.input_size or x.shape[1:3])
        if size != tuple(x.shape[1:3]):
            from aezoo.preprocessing import _resize

            raw = np.stack([_resize(img, *size) for img in x])
        return np.ascontiguousarray(lo + raw * (hi - lo), dtype="float32")

    @property
    def signature(self):
        """The signature a single-part artifact holds."""
        return self.parts[self.part]

    @property
    def has_decoder(self):
        return "decode" in self.functions


def _positive_int(value):
    return not isinstance(value, bool) and isinstance(value, int) and value >= 1


# Every option rule of an export: (when it is broken, what to say). The
# messages are formatted with the request's fields.
REQUEST_RULES = (
    (lambda r: r.format != "tflite" and r.quantize != "none",
     "quantize={quantize!r} is for format='tflite' only; {format} exports are float32 (use quantize='none')."),
    (lambda r: r.format == "savedmodel" and r.part != "full",
     "a SavedModel holds every part as a signature ({signatures}); export it with part='full' and call the "
     "signature you need."),
    (lambda r: r.quantize in CALIBRATED and r.representative_data is None,
     "quantize={quantize!r} needs representative_data: a few hundred training images, float32 {batch_shape} in "
     "[0, 1] (for part='decoder' latents also work)."),
    (lambda r: r.quantize not in CALIBRATED and r.representative_data is not None,
     "representative_data is only used with quantize='int8' or 'int16x8' (got quantize={quantize!r})."),
    (lambda r: r.int8_io and r.quantize != "int8", "int8_io=True needs quantize='int8' (format='tflite')."),
    (lambda r: r.per_channel and r.quantize not in CALIBRATED,
     "per_channel=True needs quantize='int8' or 'int16x8' (format='tflite')."),
    (lambda r: r.batch_size is not None and r.format != "tflite",
     "batch_size (a fixed batch) is a TFLite setting; format is {format!r}, whose batch is always dynamic."),
    (lambda r: r.batch_size is not None and not _positive_int(r.batch_size),
     "batch_size must be a positive integer (or None for a dynamic batch); got {batch_size!r}."),
    (lambda r: r.opset is not None and r.format != "onnx", "opset is an ONNX setting; format is {format!r}."),
    (lambda r: r.opset is not None and (isinstance(r.opset, bool) or not isinstance(r.opset, int)
                                        or not MIN_OPSET <= r.opset <= MAX_OPSET),
     "opset must be an integer from {MIN_OPSET} to {MAX_OPSET}; got {opset!r}."),
    (lambda r: r.tolerance is not None and r.quantize not in ("dynamic", *CALIBRATED),
     "tolerance (the allowed relative change of the reconstruction MSE) is for quantize='dynamic', 'int8' or "
     "'int16x8'; "
     "quantize={quantize!r} is checked against Keras to a fixed difference (FP32_ATOL / FLOAT16_ATOL)."),
    (lambda r: r.tolerance is not None and (isinstance(r.tolerance, bool) or not isinstance(r.tolerance, (int, float))
                                            or not 0 < r.tolerance < 10),
     "tolerance is the allowed relative change of the reconstruction MSE, a number above 0 and below 10 "
     "(e.g. 0.05 for 5%); got {tolerance!r}."),
    (lambda r: r.preprocessor is not None and r.part not in ("full", "encoder") and r.format != "savedmodel",
     "preprocess=True puts the image preprocessing in front of an images input; part={part!r} takes "
     "latents. Export part='full' or 'encoder'."),
    (lambda r: not r.has_decoder and r.part == "encoder" and r.quantize in ("dynamic", *CALIBRATED),
     "{name!r} has no decoder, so a quantized encoder cannot be checked through a reconstruction; export "
     "part='full' quantized, or the encoder in float (quantize='none' or 'float16')."),
)


def _choice(what, value, choices, hint=""):
    if not isinstance(value, str) or value not in choices:
        raise ExportError(f"unknown {what} {value!r}; expected one of {', '.join(map(repr, choices))}.{hint}")
    return value


def check_request(model, path, format="savedmodel", quantize="none", part="full", representative_data=None,
                  int8_io=False, overwrite=False, opset=None, per_channel=False, batch_size=None,
                  extra_functions=None, tolerance=None, preprocess=False, input_size=None,
                  input_range=(0.0, 255.0)) -> Request:
    """Stage 1: check every option against `REQUEST_RULES` and the target path; nothing is written.

    Raises:
        BackendError: the Keras backend is not TensorFlow.
        ExportError: a bad option, a part the model lacks, or an existing path without overwrite.
    """
    import keras

    from aezoo.models.base import Autoencoder

    if keras.backend.backend() != "tensorflow":
        raise BackendError(
            f"export needs TensorFlow: the active Keras backend is {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=tensorflow before importing keras (weights load across backends)."
        )
    if not isinstance(model, Autoencoder):
        raise ExportError(
            f"export takes an aezoo autoencoder (e.g. aezoo.load(name)); got {type(model).__name__}."
        )
    _choice("format", format, FORMATS)
    _choice("quantize", quantize, QUANTIZATIONS)
    functions = _functions(model, extra_functions)
    parts = dict(model.export_parts())
    parts.update({name: name for name in (extra_functions or {})})
    if part in PARTS and part not in parts:
        raise ExportError(
            f"{model.name!r} ({type(model).__name__}) has no {part} part: its family exports "
            f"{', '.join(map(repr, parts))}. A U-Net denoiser has no decoder (its skip connections carry the "
            "image); export part='full' or part='encoder'."
        )
    _choice("part", part, tuple(PARTS) + tuple(p for p in parts if p not in PARTS))
    request = Request(model, "", format, quantize, part, representative_data, bool(int8_io), bool(overwrite), opset,
                      bool(per_channel), batch_size, functions, parts, tolerance)
    if preprocess:
        _with_preprocessing(request, input_size, input_range)
    fields = {**{f.name: getattr(request, f.name) for f in dataclasses.fields(Request)},
              "name": model.name, "signatures": ", ".join(functions),
              "batch_shape": (None,) + tuple(model.image_shape), "MIN_OPSET": MIN_OPSET, "MAX_OPSET": MAX_OPSET}
    for broken, message in REQUEST_RULES:
        if broken(request):
            raise ExportError(message.format(**fields))
    if path is None or not os.fspath(path):
        raise ExportError("export needs a target path.")
    request.path = os.path.abspath(os.fspath(path))
    if os.path.lexists(request.path):
        if not overwrite:
            raise ExportError(_exists_message(request.path))
        want_dir = format == "savedmodel"
        if os.path.isdir(request.path) != want_dir or os.path.islink(request.path):
            kind = "a directory" if os.path.isdir(request.path) else "a file or link"
            raise ExportError(
                f"{request.path} is {kind}; a {format} export is a {'directory' if want_dir else 'file'}, "
                "so it will not replace it even with overwrite. Remove it yourself."
            )
    return request


def _exists_message(path):
    return f"{path} already exists; pass overwrite=True (CLI: --overwrite) to replace it."


# -- stage 2: verification data --------------------------------------------------

def verification_data(model, verify_data=None):
    """Stage 2: (images, description) to verify an export of `model` on.

    `verify_data` is images (float32 (N, H, W, C) in [0, 1]) or a dataset name;
    without it, the first VERIFY_COUNT test images of the dataset recorded on the
    model by `aezoo.build`/`aezoo.load` (`model.zoo_entry["dataset"]`).
    """
    from aezoo import datasets
    from aezoo.models.base import validate_images

    if verify_data is not None and not isinstance(verify_data, str):
        x = validate_images(verify_data, model.image_shape, what="verify_data")
        return np.ascontiguousarray(x, dtype="float32"), "verify_data"
    preset = getattr(model, "preset_path", None)
    if verify_data is None and preset:
        from aezoo import presets

        kept = presets.samples(preset)
        if kept is not None:
            x = validate_images(kept[:VERIFY_COUNT], model.image_shape, what="the preset's samples")
            return np.ascontiguousarray(x), f"the preset's held-out samples ({preset}/samples.npz)[:{len(x)}]"
    dataset = verify_data or (getattr(model, "zoo_entry", None) or {}).get("dataset")
    if dataset is None:
        raise ExportError(
            f"model {model.name!r} was not built from the zoo (aezoo.build/aezoo.load), so there are no default "
            "verification images; pass verify_data=images "
            f"(float32 {(None,) + tuple(model.image_shape)} in [0, 1]) or a dataset name."
        )
    x, _ = datasets.load_numpy(dataset, "test", limit=VERIFY_COUNT)
    if tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ExportError(
            f"the {dataset} test images have shape {x.shape[1:]} but the model takes "
            f"{tuple(model.image_shape)}; pass verify_data=images."
        )
    return np.ascontiguousarray(x, dtype="float32"), f"{dataset}:test[:{len(x)}]"


def calibration_images(name, limit=CALIBRATION_COUNT, version=None):
    """int8 calibration images for zoo entry `name`: its own training split."""
    from aezoo import datasets, registry

    return datasets.load_numpy(registry.get_entry(name, version)["recipe"]["dataset"], "train", limit=limit)[0]


def _representative_samples(request):
    """The calibration inputs of the exported part: images, or latents for the decoder."""
    import keras

    from aezoo.models.base import validate_images

    model, data, part = request.model, request.representative_data, request.part
    arr = np.asarray(keras.ops.convert_to_numpy(data) if not isinstance(data, np.ndarray) else data)
    if part == "decoder" and arr.ndim == 2:
        if arr.shape[1] != model.latent_dim or len(arr) == 0 or not np.isfinite(arr).all():
            raise ExportError(
                f"representative_data for the decoder: latents of shape (N, {model.latent_dim}) "
                f"or images; got shape {arr.shape}."
            )
        return np.ascontiguousarray(arr, dtype="float32")
    images = validate_images(arr, model.image_shape, what="representative_data")
    if part != "decoder":
        return np.ascontiguousarray(images)
    latents = _chunked(_keras_runner(request.functions), "encode", images=images)[model.latent_output]
    return np.ascontiguousarray(latents, dtype="float32")


# -- stage 3: convert (each converter writes `staged` and returns details) --------

def _write_savedmodel(model, functions, directory, names, batch_size=None, card=None, work=None):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(model)
    endpoints = _endpoints(functions, batch_size)
    for name in names:
        fn, signature = endpoints[name]
        archive.add_endpoint(name=name, fn=fn, input_signature=signature)
    if card is not None:  # assets/aezoo_card.json and loaded.aezoo_card
        from aezoo.artifact_card import savedmodel_asset

        savedmodel_asset(archive, card, work)
    with _quiet_tf2onnx("tensorflow"):
        archive.write_out(directory, verbose=False)


def _savedmodel_ops(directory):
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(directory, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(node.op for node in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted(ops)


def _convert_savedmodel(model, staged, work, functions=None, card=None, **_):
    functions = functions or _functions(model)
    names = list(functions)
    _write_savedmodel(model, functions, staged, names, card=card, work=work)
    return {"signatures": names, "ops": _savedmodel_ops(staged)}


def _convert_tflite(model, staged, work, quantize, part, representative, int8_io, per_channel=False, batch_size=None,
                    functions=None, signature=None, **_):
    import tensorflow as tf

    functions = functions or _functions(model)
    key = signature or model.export_parts()[part]
    source = os.path.join(work, "source_savedmodel")
    _write_savedmodel(model, functions, source, [key], batch_size)
    converter = tf.lite.TFLiteConverter.from_saved_model(source, signature_keys=[key])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quantize in CALIBRATED:
        step = batch_size or 1

        def representative_dataset():
            for i in range(0, len(representative) - step + 1, step):
                yield [representative[i: i + step]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if quantize == "int16x8"
            else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        # Per-tensor weight scales by default: on the zoo's conv models per-channel
        # scales of the wide dense projection (7*7*64 channels) make the file
        # about a quarter bigger for ~0.3 points less MSE change (export/README.md).
        converter._experimental_disable_per_channel = not per_channel  # convolutions
        converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel
        io_type = tf.int8 if int8_io else tf.float32
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
    flatbuffer = converter.convert()
    with open(staged, "wb") as f:
        f.write(flatbuffer)
    shutil.rmtree(source, ignore_errors=True)

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=staged)
    ops = sorted({d["op_name"] for d in interpreter._get_ops_details()})
    runner = interpreter.get_signature_runner(key)
    describe = lambda details: {  # noqa: E731
        name: {"dtype": np.dtype(d["dtype"]).name, "shape": [int(s) for s in d["shape_signature"]],
               "quantization": [float(d["quantization"][0]), int(d["quantization"][1])]}
        for name, d in details.items()
    }
    return {"signatures": [key], "ops": ops,
            "inputs": describe(runner.get_input_details()), "outputs": describe(runner.get_output_details())}


@contextlib.contextmanager
def _quiet_tf2onnx(name="tf2onnx"):
    """Python logging of `name` (tf2onnx; "tensorflow" for the saver's "Assets written to") at WARNING."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _convert_onnx(model, staged, work, part, opset, functions=None, signature=None, **_):
    import onnx
    import tensorflow as tf
    import tf2onnx

    functions = functions or _functions(model)
    key = signature or model.export_parts()[part]
    fn, input_signature = _endpoints(functions)[key]
    function = tf.function(fn, input_signature=input_signature)
    with _quiet_tf2onnx():
        proto, _ = tf2onnx.convert.from_function(function, input_signature=input_signature, opset=opset)
    # tf2onnx names the dynamic batch "unk__N"; call it "batch".
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    proto.doc_string = f"aezoo {model.name} ({model.family}): {key}"
    onnx.checker.check_model(proto)
    onnx.save(proto, staged)
    return {"signatures": [key], "ops": sorted({node.op_type for node in proto.graph.node}),
            "opset": int(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))),
            "inputs": [i.name for i in proto.graph.input], "outputs": [o.name for o in proto.graph.output]}


_CONVERTERS = {"savedmodel": _convert_savedmodel, "tflite": _convert_tflite, "onnx": _convert_onnx}


def convert(request: Request, staged: str, work: str, representative=None) -> dict:
    """Stage 3: write the artifact to `staged` (inside the private `work` directory); returns its details."""
    return _CONVERTERS[request.format](
        request.model, staged, work, quantize=request.quantize, part=request.part, representative=representative,
        int8_io=request.int8_io, opset=request.opset, per_channel=request.per_channel,
        batch_size=request.batch_size, functions=request.functions, signature=request.signature,
        card=_card(request) if request.format == "savedmodel" else None)


# -- the card, preprocessing in the graph, held-out verification (see aezoo.artifact_card) -----------

def _with_preprocessing(request: Request, input_size, input_range) -> None:
    """Put the model's preprocessing (`aezoo.preprocessing.for_model`) in front of every
    export function that takes ``images``; the raw input is `input_size` x channels in `input_range`."""
    from aezoo.errors import InputError
    from aezoo.preprocessing import for_model

    model = request.model
    prep = for_model(model)
    size = tuple(int(s) for s in (input_size or model.image_shape[:2]))
    if len(size) != 2 or min(size) < 3:
        raise ExportError(f"input_size is (height, width), each >= 3; got {input_size!r}.")
    try:
        graph = prep.graph_fn(input_size=size, input_range=input_range)
    except InputError as e:
        raise ExportError(str(e)) from None
    channels = model.image_shape[-1]
    wrapped = {}
    for name, (fn, inputs) in request.functions.items():
        if list(inputs) == ["images"]:
            wrapped[name] = ((lambda f: lambda raw: f(graph(raw)))(fn), {"images": (*size, channels)})
        else:
            wrapped[name] = (fn, inputs)
    request.functions = wrapped
    request.preprocessor = prep
    request.input_size = size
    request.input_range = tuple(float(v) for v in input_range)


def _hold_out(request: Request):
    """int8 without verify_data: (calibration part, held-out images, description), or None when the
    representative data are latents or too few images to spare a part."""
    data = request.representative_data
    arr = np.asarray(data) if isinstance(data, np.ndarray) or not hasattr(data, "numpy") else np.asarray(data.numpy())
    if arr.ndim != len(request.model.image_shape) + 1 or len(arr) < MIN_HOLDOUT_IMAGES:
        return None
    n = len(arr)
    n_verify = min(VERIFY_COUNT, max(1, int(round(n * VERIFY_HOLDOUT))))
    return (arr[: n - n_verify], arr[n - n_verify:],
            f"representative_data[{n - n_verify}:{n}] (held out: calibration used the first {n - n_verify} of "
            f"the {n} images)")


def _detector_card(detector) -> dict | None:
    if detector is None:
        return None
    return {"signature": "detect", "score": getattr(detector, "score_name", None),
            "threshold": None if detector.threshold is None else float(detector.threshold),
            "fpr": getattr(detector, "fpr", None), "calibration": getattr(detector, "calibration", None),
            "is_anomaly": "score > threshold"}


def _closure_detector(fn):
    """The AnomalyDetector whose `graph_fn` made `fn` (its closure holds it), or None."""
    import inspect

    try:
        found = inspect.getclosurevars(fn).nonlocals.get("self")
    except (TypeError, ValueError):
        return None
    return found if hasattr(found, "threshold") and hasattr(found, "score_name") else None


def describe(request: Request, staged: str, details: dict) -> dict:
    """Stage 3b: the artifact's card (`aezoo.artifact_card.build_card`) put into the staged
    artifact, with stable tensor names and output order (TFLite, ONNX); a SavedModel got its
    card as an asset when it was written. Returns a summary for the report."""
    from aezoo import artifact_card

    card = _card(request, details)
    if request.format in ("tflite", "onnx"):
        order = artifact_card.output_order(request.functions, request.signature)
    if request.format == "tflite":
        artifact_card.embed_tflite(staged, card, order)
        outputs = details.get("outputs") or {}
        details["outputs"] = {name: outputs[name] for name in order + [n for n in outputs if n not in order]
                              if name in outputs}   # the report lists them in the artifact's order
    elif request.format == "onnx":
        import onnx

        proto = onnx.load(staged)
        artifact_card.embed_onnx(proto, card, order)
        onnx.checker.check_model(proto)
        onnx.save(proto, staged)
        details["outputs"] = [o.name for o in proto.graph.output]
    return {"embedded": True, "where": {"tflite": "flatbuffer metadata 'aezoo_card'",
                                       "onnx": "metadata_props 'aezoo_card'",
                                       "savedmodel": "assets/aezoo_card.json"}[request.format],
            "summary": artifact_card.card_summary(card)}


def _card(request: Request, details: dict | None = None) -> dict:
    from aezoo import artifact_card
    from aezoo.preprocessing import for_model

    model = request.model
    if request.format == "savedmodel":
        signatures = {name: name for name in request.functions}
    else:
        signatures = {request.signature: request.signature}
    if request.preprocessor is not None:
        preprocessing = request.preprocessor.describe(in_graph=True, input_size=request.input_size,
                                                      input_range=request.input_range)
    else:
        preprocessing = for_model(model).describe(in_graph=False)
    return artifact_card.build_card(
        model, format=request.format, quantize=request.quantize, part=request.part, signatures=signatures,
        functions=request.functions, batch_size=request.batch_size, int8_io=request.int8_io,
        per_channel=request.per_channel, details=details, preprocessing=preprocessing,
        detector=request.card_fields.get("detector"), extra=request.card_fields.get("extra"))


# -- runners: run(signature, **inputs) -> {output name: numpy} ----------------

def _savedmodel_runner(directory):
    import tensorflow as tf

    loaded = tf.saved_model.load(directory)

    def run(signature, **inputs):
        out = loaded.signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in out.items()}

    return run


def _quantize(x, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype.kind not in "iu":
        return x.astype(dtype, copy=False)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)


def _dequantize(y, detail):
    if np.dtype(detail["dtype"]).kind not in "iu":
        return np.asarray(y) if np.asarray(y).dtype == bool else np.asarray(y, dtype="float32")
    scale, zero_point = detail["quantization"]
    return ((y.astype("float32") - zero_point) * scale).astype("float32")


def _tflite_runner(path):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)

    def run(signature, **inputs):
        runner = interpreter.get_signature_runner(signature)
        in_details, out_details = runner.get_input_details(), runner.get_output_details()

        def call(**batch):
            out = runner(**{k: _quantize(v, in_details[k]) for k, v in batch.items()})
            return {k: _dequantize(v, out_details[k]) for k, v in out.items()}

        fixed = int(next(iter(in_details.values()))["shape_signature"][0])
        if fixed < 0:  # a dynamic batch: one call
            return call(**inputs)
        return _batched(call, inputs, fixed, pad=True)  # a fixed batch: padded batches

    return run


def _onnx_runner(path):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]

    def run(signature, **inputs):
        return dict(zip(names, session.run(None, inputs)))

    return run


_RUNNERS = {"savedmodel": _savedmodel_runner, "tflite": _tflite_runner, "onnx": _onnx_runner}


def _batched(call, inputs, size, pad=False):
    """`call(**batch)` over `inputs` in batches of `size`, outputs concatenated.
    With `pad`, the last batch is filled up to `size` by repeating its last row
    (for fixed-batch models) and the extra outputs are dropped."""
    n = len(next(iter(inputs.values())))
    parts = []
    for i in range(0, n, size):
        batch = {k: v[i: i + size] for k, v in inputs.items()}
        short = size - len(next(iter(batch.values()))) if pad else 0
        if short:
            batch = {k: np.concatenate([v, np.repeat(v[-1:], short, axis=0)]) for k, v in batch.items()}
        out = call(**batch)
        parts.append({k: v[: len(v) - short] for k, v in out.items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _chunked(run, signature, **inputs):
    return _batched(lambda **batch: run(signature, **batch), inputs, VERIFY_CHUNK)


# -- stage 4: verify -----------------------------------------------------------

def _keras_runner(functions):
    """A runner over the Keras model itself (the reference): the same functions as exported."""
    import keras

    def run(signature, **inputs):
        fn = functions[signature][0]
        out = fn(*[keras.ops.convert_to_tensor(v) for v in inputs.values()])
        return {k: keras.ops.convert_to_numpy(v) for k, v in out.items()}

    return run


def _max_abs(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return math.inf
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.inf
    return float(np.max(np.abs(a.astype("float64") - b.astype("float64")))) if a.size else 0.0


def _compare(diffs, signature, got, want):
    """Record max |got - want| per output, and the same divided by max(1, max |want|)."""
    for name, value in want.items():
        diff = _max_abs(got.get(name), value) if name in got else math.inf
        scale = max(1.0, float(np.max(np.abs(value.astype("float64"))))) if np.size(value) else 1.0
        diffs[f"{signature}/{name}"] = {"max_abs_diff": diff, "scaled": diff / scale}


def _inputs_for(functions, signature, x, z):
    """What verification feeds `signature`: images, the Keras encoder's latents, or N(0, I) noise."""
    feed = {}
    for name, shape in functions[signature][1].items():
        if name == "images":
            feed[name] = x
        elif name == "z":
            feed[name] = z
        else:  # e.g. a VAE's eps
            rng = np.random.default_rng(EPS_SEED)
            feed[name] = rng.standard_normal((len(x),) + tuple(shape)).astype("float32")
    return feed


def scored_images(model, x: np.ndarray):
    """(inputs, targets, description) the check runs on, from verification images `x`:
    the family's `scored_pairs` (a denoiser: `x` with its noise at seed VERIFY_SEED -> `x`)."""
    pairs = model.scored_pairs(x, VERIFY_SEED)
    if not isinstance(pairs, tuple):
        return x, x, None
    inputs, targets = (np.ascontiguousarray(np.asarray(a), dtype="float32") for a in pairs)
    return inputs, targets, (f"inputs: the images with the model's {model.noise} noise {model.noise_level:g} "
                             f"(seed {VERIFY_SEED}); targets: the clean images")


def verify(request: Request, run: Callable, x: np.ndarray) -> dict:
    """Stage 4: run the artifact (`run(signature, **inputs)`) and the Keras model on images `x`
    (the family's scored inputs, `scored_images`); returns the figures (max differences per
    output, MSEs of the reconstructions against the targets)."""
    model, functions = request.model, request.functions
    x, target, scored = scored_images(model, x)
    feed = request.images_feed(x)   # x itself, or raw pixels for an in-graph preprocessing
    ref = _keras_runner(functions)
    want_enc = _chunked(ref, "encode", images=feed)
    z = np.asarray(want_enc[model.latent_output], dtype="float32")
    want_rec = _chunked(ref, "reconstruct", images=feed)
    signatures = list(functions) if request.format == "savedmodel" else [request.signature]
    diffs, recon = {}, None
    for signature in signatures:
        inputs = _inputs_for(functions, signature, feed, z)
        got = _chunked(run, signature, **inputs)
        want = want_rec if signature in ("reconstruct", "serving_default") else (
            want_enc if signature == "encode" else _chunked(ref, signature, **inputs))
        _compare(diffs, signature, got, want)
        if signature == request.signature:
            if signature == "reconstruct":
                recon = got.get("reconstruction")
            elif signature == "decode":
                recon = got.get("images")
            elif signature == "encode" and request.has_decoder:
                latents = got.get(model.latent_output)
                if latents is not None and np.asarray(latents).shape == z.shape:
                    recon = _chunked(ref, "decode", z=np.asarray(latents, dtype="float32"))["images"]
    x64 = target.astype("float64")
    mse_keras = float(np.mean(np.square(x64 - want_rec["reconstruction"])))
    if request.signature not in ("reconstruct", "decode", "encode") or (
            request.signature == "encode" and not request.has_decoder):
        mse_artifact = relative = None  # no reconstruction to measure: the diffs decide
    else:
        if recon is None or np.asarray(recon).shape != x.shape or not np.isfinite(recon).all():
            mse_artifact = math.inf
        else:
            mse_artifact = float(np.mean(np.square(x64 - recon)))
        if mse_keras > 0:
            relative = (mse_artifact - mse_keras) / mse_keras
        else:
            relative = 0.0 if mse_artifact == 0 else math.inf
    return {
        "max_abs_diff": max((d["max_abs_diff"] for d in diffs.values()), default=math.inf),
        "max_scaled_diff": max((d["scaled"] for d in diffs.values()), default=math.inf),
        "diffs": diffs,
        "mse_keras": mse_keras,
        "mse_artifact": mse_artifact,
        "relative_mse_change": relative,
        "scored": scored,
    }


def _criterion(quantize, tolerance=None):
    """(metric, tolerance) that decides `passed` (the tolerances are read when an export runs;
    a quantized export takes the caller's `tolerance` when given)."""
    if quantize == "none":
        return "max_scaled_diff", FP32_ATOL
    if quantize == "float16":
        return "max_scaled_diff", FLOAT16_ATOL
    return "abs(relative_mse_change)", QUANT_REL_MSE_TOL if tolerance is None else float(tolerance)


def _metric_value(metric, figures):
    if metric == "max_scaled_diff":
        return figures["max_scaled_diff"]
    change = figures["relative_mse_change"]
    return math.inf if change is None else abs(change)


def _forbidden_ops(ops):
    return [op for op in ops if any(m in op.upper() for m in FORBIDDEN_OP_MARKERS)]


# -- stage 5: report ------------------------------------------------------------

def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None  # JSON has no inf/nan
    if isinstance(value, np.integer):
        return int(value)
    return value


def _size(path):
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, f)) for root, _, files in os.walk(path) for f in files)
    return os.path.getsize(path)


def make_report(request: Request, staged: str, details: dict, figures: dict, verify_source: str, count: int,
                representative_count: int | None) -> dict:
    """Stage 5: the report, with `passed` and the problems that decided it."""
    model = request.model
    metric, tolerance = _criterion(request.quantize, request.tolerance)
    value = _metric_value(metric, figures)
    problems = []
    if not value <= tolerance:
        problems.append(f"{metric} = {value:.3g} exceeds the tolerance {tolerance:g}")
    forbidden = _forbidden_ops(details.get("ops", []))
    if forbidden:
        problems.append(f"the graph has ops that are not plain builtins: {', '.join(forbidden)}")
    return {
        "format": request.format,
        "quantize": request.quantize,
        "part": request.part,
        "path": request.path,
        "file_size_bytes": _size(staged),
        "max_abs_diff": figures["max_abs_diff"],
        "max_scaled_diff": figures["max_scaled_diff"],
        "mse_keras": figures["mse_keras"],
        "mse_artifact": figures["mse_artifact"],
        "relative_mse_change": figures["relative_mse_change"],
        "passed": not problems,
        "tolerance": tolerance,
        "criterion": f"{metric} <= {tolerance:g}",
        "problems": problems,
        "model": {"name": model.name, "family": model.family, "input_shape": list(model.image_shape),
                  "latent_dim": model.latent_dim},
        "int8_io": request.int8_io,
        "batch_size": request.batch_size,  # None: dynamic
        "int8_weight_scales": ("per-channel" if request.per_channel else "per-tensor")
        if request.quantize in CALIBRATED else None,
        "opset": request.opset,
        "representative_count": representative_count,
        "verify_data": {"source": verify_source, "count": count,
                        **({"scored": figures["scored"]} if figures.get("scored") else {})},
        "card": details.get("card"),
        "preprocess": None if request.preprocessor is None else {
            "in_graph": True, "input_size": list(request.input_size or model.image_shape[:2]),
            "input_range": list(request.input_range)},
        "diffs": figures["diffs"],
        **{k: v for k, v in details.items() if k not in ("opset", "card")},
        "versions": _io.versions(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# -- stage 6: ship ---------------------------------------------------------------

def _write_json(path, report, work):
    staged = os.path.join(work, os.path.basename(path))
    with open(staged, "w") as f:
        json.dump(_json_safe(report), f, indent=2)
        f.write("\n")
    return staged


def _install(staged, path, work):
    """Move `staged` to `path` (replacing what is there); a failed move restores it."""
    _io.install(staged, path, work)


def ship(request: Request, staged: str, report: dict, work: str) -> dict:
    """Stage 6: install a passing artifact and its report at `request.path`; for a
    failing one keep only ``PATH.failed.report.json`` and raise ExportError."""
    path = request.path
    if report["problems"]:
        report = {**report, "path": None}
        failed = failed_report_path(path)
        os.replace(_write_json(failed, report, work), failed)
        raise ExportError(
            f"{request.format} export of {request.model.name!r} (quantize={request.quantize}, part={request.part}) "
            f"failed verification on {report['verify_data']['count']} images: {'; '.join(report['problems'])} "
            f"(mse keras {report['mse_keras']:.5g}, artifact "
            f"{report['mse_artifact'] if report['mse_artifact'] is None else format(report['mse_artifact'], '.5g')})."
            f" Nothing was written to {path}; the report is {failed}."
            + (" Per-channel weight scales (per_channel=True, --per-channel) are more accurate."
               if request.quantize in CALIBRATED and not request.per_channel else "")
            + (" 16x8 quantization (quantize='int16x8': int8 weights, int16 activations, the same file size) "
               "keeps deep models within a fraction of a percent." if request.quantize == "int8" else "")
            + (" To accept the measured change, raise the tolerance (tolerance=, --tolerance)."
               if request.quantize in ("dynamic", *CALIBRATED) else ""),
            report=_json_safe(report),
        )
    staged_report = _write_json(report_path(path), report, work)
    if os.path.lexists(path) and not request.overwrite:  # appeared while we were converting
        raise ExportError(_exists_message(path))
    _install(staged, path, work)
    os.replace(staged_report, report_path(path))
    with contextlib.suppress(FileNotFoundError):
        os.remove(failed_report_path(path))
    return _json_safe(report)


def _makedirs(directory):
    """Create `directory` and missing parents; return those created (deepest last)."""
    created = []
    d = directory
    while not os.path.exists(d):
        created.append(d)
        d = os.path.dirname(d)
    os.makedirs(directory, exist_ok=True)
    return created[::-1]


def _legacy_work_dir(name):
    return name.startswith(".") and ".export-" in name  # aezoo 0.1's mkdtemp names


# -- the API ------------------------------------------------------------------

def export(model, path: str | os.PathLike, format: str = "savedmodel", quantize: str = "none", part: str = "full",
           representative_data=None, int8_io: bool = False, overwrite: bool = False, verify_data=None,
           opset: int | None = None, per_channel: bool = False, batch_size: int | None = None,
           extra_functions: dict | None = None, tolerance: float | None = None, preprocess: bool = False,
           input_size: tuple | None = None, input_range: tuple = (0.0, 255.0), detector=None,
           card_extra: dict | None = None) -> dict:
    """Export `model`, verify the artifact against Keras, and return the report.

    Args:
        model: an aezoo autoencoder (TensorFlow backend).
        path: the SavedModel directory (for TF Serving use ``.../NAME/1``), or
            the ``.tflite`` / ``.onnx`` file. Missing parent directories are made.
        format: "savedmodel", "tflite" or "onnx".
        quantize: TFLite only: "none" (float32), "float16" (float16 weights),
            "dynamic" (int8 weights, float activations), "int8" (full integer)
            or "int16x8" (int8 weights, int16 activations: for models that
            lose accuracy in int8; same size, not for int8-only accelerators).
        part: "full" (reconstruct), "encoder" or "decoder" (TFLite and ONNX;
            a SavedModel always has every part as a signature); what the
            family allows (`model.export_parts()`).
        representative_data: int8/int16x8 only, required: calibration images
            (float32 (N, H, W, C) in [0, 1]; ~100-500 training images); for
            part="decoder" they are encoded by the Keras encoder, or pass
            latents (N, latent_dim).
        int8_io: int8 only: int8 input and output tensors (quantization
            parameters in the model) instead of float32 ones.
        overwrite: replace an existing artifact at `path` (only after the new one
            passed verification).
        verify_data: images for verification, or a dataset name; default: for
            int8, the last fifth of `representative_data` (at most 256 images;
            calibration uses the rest), so a fine-tuned model is verified on the
            images it was calibrated with; else a preset's held-out samples, else
            the first 256 test images of the dataset the model was built for
            (`model.zoo_entry`, set by `aezoo.build`/`aezoo.load`). The report's
            ``verify_data`` says what was used.
        opset: ONNX opset (default DEFAULT_OPSET, 13 to 18).
        per_channel: int8/int16x8 only: one weight scale per output channel (the
            converter's default) instead of one per tensor (aezoo's default:
            smaller, and run by XNNPACK; see `aezoo benchmark`).
        batch_size: TFLite only: a fixed batch size (e.g. 1 for a phone) instead
            of a dynamic one. Every shape in the graph is then static, so
            XNNPACK runs all of it (the transposed convolutions too), about 2x
            faster per image at batch 1 on conv models; see `aezoo benchmark`.
        extra_functions: more signatures, name -> (fn, {input name: shape
            without the batch}) (e.g. an anomaly detector's ``detect``): added to
            a SavedModel, or exported alone with ``part=name``; verified against
            running `fn` in Keras.
        tolerance: dynamic/int8/int16x8 only: the allowed relative change of the
            reconstruction MSE (default QUANT_REL_MSE_TOL, 0.03; e.g. 0.05).
        preprocess: put the entry's preprocessing in the graph
            (`aezoo.preprocessing`): the artifact's ``images`` input takes raw
            pixels in `input_range` at `input_size` and scales, fixes polarity
            and background, and resizes them; the card lists what the app must
            still do (framing by centre of mass). Not for part="decoder".
        input_size: (height, width) of the raw input with `preprocess` (default the model's).
        input_range: (lo, hi) of the raw pixels with `preprocess` (default 0..255, as float32).
        detector: a fitted `aezoo.AnomalyDetector`: adds its ``detect`` signature
            (SavedModel; ``part="detect"`` for TFLite/ONNX) and its score,
            threshold and false-positive rate to the card.
        card_extra: more fields for the artifact's card.

    Returns:
        The report dict (also written to ``PATH.report.json``).

    Raises:
        BackendError: the Keras backend is not TensorFlow.
        ExportError: a bad argument, an existing `path` without overwrite, an
            unwritable `path`, or an artifact that failed verification
            (`error.report` has the figures; the artifact is deleted, the report
            kept as ``PATH.failed.report.json``).

    Example:
        >>> report = aezoo.export(aezoo.load("conv_mnist"), "conv_mnist.tflite", format="tflite",
        ...                       quantize="int8", representative_data=x_train[:256])
        >>> report["passed"], report["relative_mse_change"]
    """
    detector_card = None
    if detector is not None:
        extra_functions = {**(extra_functions or {}), **detector.export_functions()}
        detector_card = _detector_card(detector)
    elif extra_functions and "detect" in extra_functions:
        detector_card = _detector_card(_closure_detector(extra_functions["detect"][0]))
    request = check_request(model, path, format, quantize, part, representative_data, int8_io, overwrite, opset,
                            per_channel, batch_size, extra_functions, tolerance, preprocess, input_size, input_range)
    request.card_fields = {"detector": detector_card, "extra": card_extra}
    if format == "onnx" and request.opset is None:
        request.opset = DEFAULT_OPSET
    held_out = _hold_out(request) if verify_data is None and quantize in CALIBRATED else None
    if held_out is not None:
        request.representative_data, verify_images, held_source = held_out
        x, _ = verification_data(model, verify_images)
        verify_source = held_source
    else:
        x, verify_source = verification_data(model, verify_data)
    representative = _representative_samples(request) if quantize in CALIBRATED else None

    parent, name = os.path.split(request.path)
    try:
        created = _makedirs(parent)
        _io.remove_stale(parent, extra=_legacy_work_dir)  # work directories of killed exports
        work = _io.make_work_dir(parent, name)
    except OSError as e:
        raise ExportError(f"cannot write the export to {parent}: {e.strerror or e}. "
                          f"Choose a directory you can write to.") from None
    done = False
    try:
        staged = os.path.join(work, name)
        details = convert(request, staged, work, representative)
        details["card"] = describe(request, staged, details)
        try:
            figures = verify(request, _RUNNERS[format](staged), x)
        except Exception as e:  # the runtime rejects the artifact: nothing is shipped
            raise ExportError(
                f"the {format} artifact of {model.name!r} (quantize={quantize}, part={part}) does not run in "
                f"its runtime: {type(e).__name__}: {e}. Nothing was written to {request.path}."
            ) from e
        report = make_report(request, staged, details, figures, verify_source, len(x),
                             None if representative is None else len(representative))
        try:
            result = ship(request, staged, report, work)
        except ExportError as e:
            done = e.report is not None  # the failed report is a finished file: keep the directories
            raise
        done = True
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not done:
            for d in reversed(created):
                with contextlib.suppress(OSError):
                    os.rmdir(d)
