"""Artifacts that describe themselves: the card inside every exported file.

Every artifact that `aezoo.export` writes carries a card (JSON) that an app
can read without TensorFlow and without aezoo:

===============  ================================================================
format           where the card is
===============  ================================================================
``.tflite``      the flatbuffer's metadata map, entry ``aezoo_card`` (a buffer of
                 UTF-8 JSON); read with the ``flatbuffers`` schema that
                 ``ai-edge-litert`` ships (`read_card`), or in Kotlin with
                 ``org.tensorflow.lite.schema.Model`` (export/README.md)
``.onnx``        ``metadata_props``: ``aezoo_card`` (the JSON) plus flat keys
                 ``aezoo.entry``, ``aezoo.version``, ``aezoo.inputs``,
                 ``aezoo.outputs``; onnxruntime's
                 ``session.get_modelmeta().custom_metadata_map``
SavedModel       ``assets/aezoo_card.json`` (a tracked asset: ``loaded.aezoo_card``
                 is its `tf.saved_model.Asset`), a plain file for everyone else
===============  ================================================================

The card (`CARD_FORMAT`, version `CARD_VERSION`) holds: the entry, its
version and family, the weights it was exported from, the artifact's format,
part, signature(s), quantization and batch; per signature its inputs and
outputs **in their index order** (name, index, shape, dtype, value range,
layout, meaning, and the int8 scale / zero point where the tensor is
quantized); the preprocessing (`aezoo.preprocessing.Preprocessor.describe`:
what the graph does and what the app must do); and the anomaly detector's
score, threshold and false-positive rate where the artifact has one.

Outputs have stable names and a stable order in every format (`stabilize_tflite`
renames the TFLite tensors to their signature names and orders the subgraph's
outputs; `stabilize_onnx` orders the graph outputs): the order in which the
family returns them, e.g. ``mean`` then ``log_var`` for a VAE encoder.

No TensorFlow is imported by `read_card` (a test runs it with TensorFlow blocked).
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import numpy as np

CARD_KEY = "aezoo_card"
CARD_FILE = "aezoo_card.json"
CARD_FORMAT = "aezoo.card"
CARD_VERSION = 1
TFLITE_ALIGNMENT = 16     # byte alignment of the re-packed TFLite buffers (the schema's force_align)

# What each named tensor means (inputs and outputs of the exported signatures).
MEANINGS = {
    "images": "images, (batch, height, width, channels)",
    "z": "latent codes, (batch, latent_dim): what encode gives (a VAE's posterior mean)",
    "eps": "standard-normal noise, (batch, latent_dim): draw it on the device; the artifact has no random op",
    "reconstruction": "the reconstruction of the input images, in [0, 1]",
    "latent": "the latent code of each image, (batch, latent_dim)",
    "mean": "the posterior mean of q(z|x), (batch, latent_dim): the VAE's code",
    "log_var": "the posterior log-variance of q(z|x) (natural log), (batch, latent_dim); std = exp(0.5 * log_var)",
    "score": "the per-image anomaly score: higher is more unusual",
    "is_anomaly": "score > the detector's threshold (bool)",
}
RANGES = {"images": [0.0, 1.0], "reconstruction": [0.0, 1.0]}

__all__ = ["build_card", "read_card", "output_order", "stabilize_tflite", "stabilize_onnx", "embed_tflite",
           "embed_onnx", "savedmodel_asset", "card_summary", "CARD_KEY", "CARD_FILE"]


# --------------------------------------------------------------------------- the card


def output_order(functions: dict, signature: str) -> list[str]:
    """The output names of export function `signature`, in the order the family returns them.

    Runs the function once on a zero batch of one (Keras, cheap).

    Example:
        >>> output_order(vae.export_functions(), "encode")
        ['mean', 'log_var']
    """
    import keras

    fn, inputs = functions[signature]
    feed = [keras.ops.zeros((1,) + tuple(shape), dtype="float32") for shape in inputs.values()]
    return list(fn(*feed))


def _tensor(name: str, index: int, shape, dtype: str, quantization=None, meaning=None, range_=None) -> dict:
    out = {"name": name, "index": index, "shape": [None if s is None or int(s) < 0 else int(s) for s in shape],
           "dtype": dtype, "meaning": meaning or MEANINGS.get(name, name)}
    if name in ("images", "reconstruction"):
        out["layout"] = "NHWC"
    if range_ is not None or name in RANGES:
        out["range"] = range_ if range_ is not None else RANGES[name]
    if quantization is not None and float(quantization[0]) != 0.0:
        scale, zero = float(quantization[0]), int(quantization[1])
        out["quantization"] = {"scale": scale, "zero_point": zero,
                               "real_value": "scale * (q - zero_point)"}
    return out


def build_card(model, *, format: str, quantize: str = "none", part: str = "full", signatures: dict[str, str] | None = None,
               functions: dict, batch_size: int | None = None, int8_io: bool = False, per_channel: bool = False,
               details: dict | None = None, preprocessing: dict | None = None, detector: dict | None = None,
               extra: dict | None = None) -> dict:
    """The card of an artifact (JSON-ready).

    Args:
        model: the exported aezoo autoencoder (its `zoo_entry`, `zoo_version`,
            `preset_path` say where it came from).
        format, quantize, part, batch_size, int8_io, per_channel: the export's settings.
        signatures: the signatures the artifact holds -> their export function
            (one for TFLite/ONNX, every one for a SavedModel).
        functions: the export functions (name -> (fn, {input: shape})).
        details: the converter's details (TFLite: ``inputs``/``outputs`` with dtype and
            quantization, keyed by name).
        preprocessing: `Preprocessor.describe(...)` (the graph's steps and the app's).
        detector: {"score", "threshold", "fpr", ...} of a baked-in anomaly detector.
        extra: more top-level fields.

    Returns:
        The card dict.

    Example:
        >>> card = build_card(model, format="onnx", signatures={"encode": "encode"},
        ...                   functions=model.export_functions())
    """
    from aezoo._io import AEZOO_VERSION as __version__

    entry = getattr(model, "zoo_entry", None) or {}
    details = details or {}
    in_details, out_details = details.get("inputs") or {}, details.get("outputs") or {}
    sigs = {}
    for signature, function in (signatures or {}).items():
        _, inputs = functions[function]
        order = output_order(functions, function)
        prep_input = (preprocessing or {}).get("input") if (preprocessing or {}).get("in_graph") else None
        ins = []
        for i, (name, shape) in enumerate(inputs.items()):
            d = in_details.get(name, {}) if isinstance(in_details, dict) else {}
            full = d.get("shape") or [batch_size if batch_size else -1, *shape]
            range_ = prep_input["range"] if (prep_input and name == "images") else None
            if prep_input and name == "images" and not d.get("shape"):
                full = [batch_size if batch_size else -1, *prep_input["size"], prep_input["channels"]]
            ins.append(_tensor(name, i, full, d.get("dtype", "float32"), d.get("quantization"),
                               range_=range_ or ([0.0, 1.0] if name == "images" else None)))
        outs = []
        for i, name in enumerate(order):
            d = out_details.get(name, {}) if isinstance(out_details, dict) else {}
            outs.append(_tensor(name, i, d.get("shape") or [batch_size if batch_size else -1],
                                d.get("dtype", "bool" if name == "is_anomaly" else "float32"), d.get("quantization")))
        sigs[signature] = {"inputs": ins, "outputs": outs}
    card = {
        "format": CARD_FORMAT,
        "card_version": CARD_VERSION,
        "entry": entry.get("name") or getattr(model, "name", None),
        "version": entry.get("version", getattr(model, "zoo_version", None)),
        "family": getattr(model, "family", None),
        "weights": getattr(model, "weights_source", None) or ("pretrained" if getattr(model, "zoo_version", None)
                                                              else None),
        "preset": getattr(model, "preset_path", None),
        "input_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "artifact": {"format": format, "part": part, "signatures": list(sigs), "quantize": quantize,
                     "batch": batch_size or "dynamic", "int8_io": bool(int8_io),
                     "int8_weight_scales": ("per-channel" if per_channel else "per-tensor")
                     if quantize in ("int8", "int16x8") else None},
        "signatures": sigs,
        "preprocessing": preprocessing,
        "detector": detector,
        "made_by": f"aezoo {__version__}",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if extra:
        card.update(extra)
    return card


def _dumps(card: dict) -> str:
    return json.dumps(card, sort_keys=False, separators=(",", ":"), default=float)


# --------------------------------------------------------------------------- TFLite


def _aligned_builder(size: int):
    """A flatbuffers Builder whose byte vectors start on `TFLITE_ALIGNMENT` bytes
    (the TFLite schema's ``force_align: 16`` on buffer data, which the generated
    Python packer does not apply)."""
    import flatbuffers

    class Builder(flatbuffers.Builder):
        def StartVector(self, elemSize, numElems, alignment):  # noqa: N802 (flatbuffers' name)
            if elemSize == 1:
                alignment = max(alignment, TFLITE_ALIGNMENT)
            return super().StartVector(elemSize, numElems, alignment)

    return Builder(size)


def stabilize_tflite(model_obj, order: list[str] | None) -> None:
    """Name every signature tensor of a TFLite model (`ModelT`) after its signature key
    and put the subgraph's outputs in `order` (others after, as they were)."""
    for sig in model_obj.signatureDefs or []:
        sub = model_obj.subgraphs[sig.subgraphIndex]
        for tm in list(sig.inputs or []) + list(sig.outputs or []):
            name = tm.name.decode() if isinstance(tm.name, bytes) else tm.name
            sub.tensors[tm.tensorIndex].name = name.encode()
        if order:
            by_name = {(tm.name.decode() if isinstance(tm.name, bytes) else tm.name): tm.tensorIndex
                       for tm in sig.outputs or []}
            wanted = [by_name[n] for n in order if n in by_name]
            rest = [t for t in sub.outputs if t not in wanted]
            sub.outputs = wanted + rest
            sig.outputs = sorted(sig.outputs, key=lambda tm: sub.outputs.index(tm.tensorIndex))


def embed_tflite(path: str | os.PathLike, card: dict, order: list[str] | None = None) -> None:
    """Rewrite the .tflite at `path`: stable tensor names and output order, and the card
    in the metadata map (`CARD_KEY`). Written to a temp file, then renamed."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    from aezoo import _io

    data = bytearray(Path(path).read_bytes())
    model_obj = flatbuffer_utils.read_model_from_bytearray(data)
    stabilize_tflite(model_obj, order)
    model_obj.metadata = [m for m in (model_obj.metadata or []) if _name(m.name) != CARD_KEY]
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(_dumps(card).encode("utf-8"), dtype=np.uint8)
    model_obj.buffers.append(buffer)
    meta = schema.MetadataT()
    meta.name = CARD_KEY.encode()
    meta.buffer = len(model_obj.buffers) - 1
    model_obj.metadata.append(meta)
    builder = _aligned_builder(len(data) + 4096)
    builder.Finish(model_obj.Pack(builder), file_identifier=b"TFL3")
    _io.write_bytes(path, bytes(builder.Output()))


def _name(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _tflite_card(data: bytes) -> dict | None:
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(data, 0)
    for i in range(model.MetadataLength()):
        meta = model.Metadata(i)
        if _name(meta.Name()) == CARD_KEY:
            buffer = model.Buffers(meta.Buffer())
            return json.loads(buffer.DataAsNumpy().tobytes().decode("utf-8"))
    return None


# --------------------------------------------------------------------------- ONNX


def stabilize_onnx(proto, order: list[str] | None) -> None:
    """Put an ONNX graph's outputs in `order` (others after, as they were)."""
    if not order:
        return
    outputs = list(proto.graph.output)
    by_name = {o.name: o for o in outputs}
    wanted = [by_name[n] for n in order if n in by_name]
    rest = [o for o in outputs if o.name not in order]
    copies = [type(o)() for o in wanted + rest]
    for new, old in zip(copies, wanted + rest):
        new.CopyFrom(old)
    del proto.graph.output[:]
    proto.graph.output.extend(copies)


def embed_onnx(proto, card: dict, order: list[str] | None = None) -> None:
    """Order the outputs and put the card into an ONNX ModelProto's metadata_props (in place)."""
    stabilize_onnx(proto, order)
    keep = [p for p in proto.metadata_props if not (p.key == CARD_KEY or p.key.startswith("aezoo."))]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    (signature,) = card["signatures"].values() if len(card["signatures"]) == 1 else (None,)
    flat = {CARD_KEY: _dumps(card), "aezoo.entry": str(card.get("entry")), "aezoo.version": str(card.get("version"))}
    if signature is not None:
        flat["aezoo.inputs"] = ",".join(t["name"] for t in signature["inputs"])
        flat["aezoo.outputs"] = ",".join(t["name"] for t in signature["outputs"])
    for key, value in flat.items():
        proto.metadata_props.add(key=key, value=value)


# --------------------------------------------------------------------------- SavedModel


def savedmodel_asset(archive, card: dict, work: str | os.PathLike):
    """Attach the card to a `keras.export.ExportArchive` before `write_out`: a
    tracked `tf.saved_model.Asset` (``loaded.aezoo_card``), copied by the saver into
    ``assets/aezoo_card.json``. Returns the asset."""
    import tensorflow as tf

    from aezoo import _io

    source = Path(work) / "card" / CARD_FILE
    _io.write_text(source, json.dumps(card, indent=1, default=float) + "\n")
    asset = tf.saved_model.Asset(str(source))
    setattr(archive._tf_trackable, CARD_KEY, asset)   # Keras keeps the saved object there
    return asset


# --------------------------------------------------------------------------- reading


def read_card(path: str | os.PathLike) -> dict:
    """The card of an exported artifact, read without TensorFlow.

    Args:
        path: a ``.tflite`` file, an ``.onnx`` file or a SavedModel directory.

    Returns:
        The card dict.

    Raises:
        ExportError: no card in the artifact (e.g. exported by aezoo 0.1) or not an artifact.

    Example:
        >>> card = read_card("conv_vae_mnist_encoder.tflite")
        >>> [o["name"] for o in card["signatures"]["encode"]["outputs"]]
        ['mean', 'log_var']
    """
    from aezoo.errors import ExportError

    path = Path(path)
    card = None
    if path.is_dir():
        for candidate in (path / "assets" / CARD_FILE, path / "assets.extra" / CARD_FILE):
            if candidate.is_file():
                card = json.loads(candidate.read_text())
                break
    elif path.suffix == ".tflite" and path.is_file():
        card = _tflite_card(path.read_bytes())
    elif path.suffix == ".onnx" and path.is_file():
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
        value = next((p.value for p in proto.metadata_props if p.key == CARD_KEY), None)
        card = json.loads(value) if value is not None else None
    elif not path.exists():
        raise ExportError(f"{path} does not exist.")
    else:
        raise ExportError(f"{path} is not an exported artifact (a .tflite, an .onnx or a SavedModel directory).")
    if card is None:
        raise ExportError(f"{path} carries no aezoo card (exported before aezoo put one in every artifact?).")
    return card


def card_summary(card: dict) -> str:
    """One line about a card: entry, version, format, quantization, signatures and their outputs in order.

    Example:
        >>> card_summary(read_card("m.tflite"))
        'conv_vae_mnist v1; tflite; none; encode(images) -> mean, log_var'
    """
    parts = [f"{card.get('entry')} v{card.get('version')}", card["artifact"]["format"],
             card["artifact"]["quantize"]]
    for name, sig in card["signatures"].items():
        parts.append(f"{name}({', '.join(t['name'] for t in sig['inputs'])}) -> "
                     f"{', '.join(t['name'] for t in sig['outputs'])}")
    return "; ".join(parts)
