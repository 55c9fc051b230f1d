"""The bodies that families share: dense (MLP), conv (plain strided
convolutions, the v1 body), resnet (residual stages with normalisation) and a
small U-Net (for denoising: skips at every level, no vector bottleneck).

A family picks its body by name (`body=`) and passes the body's own keyword
arguments; `build_body` returns the (encoder, decoder) pair.

Everything here is built from `keras.layers` only (every backend), and from
ops that the TFLite converter maps to builtins: Conv2D, Conv2DTranspose,
BatchNormalization (folded into the convolution before it at export),
SiLU (LOGISTIC + MUL), Add, Concatenate, Dense, Reshape.

Why BatchNorm and not GroupNorm: on a 2-core CPU GroupNorm at full resolution
was the slowest part of a residual autoencoder (issue 9 notes), and GroupNorm
stays as a chain of reshape/mean/variance ops in TFLite, where BatchNorm with
the convolution-then-normalise order folds away at inference.

Resolution levels: `widths[0]` channels at full resolution (the stem), then
each further entry halves height and width with a stride-2 convolution.
`blocks[i]` residual blocks (two 3x3 convolutions each, with an identity skip)
follow at level i. A 28x28 image with widths (32, 64, 128) goes
28x28x32 -> 14x14x64 -> 7x7x128.
"""

import math

import keras
from keras import layers

from aezoo.errors import InputError

NORMS = ("batch", "none")
BODIES = ("dense", "conv", "resnet")       # encoder/decoder pairs through a latent vector
BODY_KEYS = {
    "dense": ("hidden", "activation", "norm"),
    "conv": ("filters", "kernel_size", "convs_per_stage", "activation"),
    "resnet": ("widths", "blocks", "activation", "norm"),
}


# -- dense -------------------------------------------------------------------

def check_hidden(hidden):
    try:
        hidden = [int(h) for h in hidden]
    except (TypeError, ValueError):
        raise InputError(f"hidden sizes must be a list of positive integers; got {hidden!r}.") from None
    if any(h <= 0 for h in hidden):
        raise InputError(f"hidden sizes must be positive integers; got {hidden}.")
    return hidden


def add_dense_norm_act(model, units, activation, norm, name):
    """Dense -> activation (norm "none": the v1 layer, bias and activation in one),
    or Dense without bias -> BatchNorm -> activation (folded into the Dense at export)."""
    if norm == "none":
        model.add(layers.Dense(units, activation=activation, name=name))
        return
    model.add(layers.Dense(units, use_bias=False, name=name))
    model.add(batch_norm(f"{name}_norm"))
    model.add(layers.Activation(activation, name=f"{name}_act"))


def build_dense_encoder(input_shape, hidden, activation, outputs, norm="none", name="encoder"):
    """Flatten -> Dense(hidden...) [-> BatchNorm] -> Dense(outputs), as a built Sequential."""
    check_norm(norm)
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=tuple(input_shape)))
    model.add(layers.Flatten())
    for i, units in enumerate(hidden):
        add_dense_norm_act(model, units, activation, norm, f"dense_{i}")
    model.add(layers.Dense(outputs, name="latent"))
    return model


def build_dense_decoder(input_shape, hidden, activation, latent_dim, output_activation, norm="none",
                        name="decoder"):
    """Dense(reversed hidden...) [-> BatchNorm] -> Dense(prod(input_shape)) -> Reshape."""
    check_norm(norm)
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(latent_dim,)))
    for i, units in enumerate(reversed(hidden)):
        add_dense_norm_act(model, units, activation, norm, f"dense_{i}")
    model.add(layers.Dense(math.prod(input_shape), activation=output_activation, name="pixels"))
    model.add(layers.Reshape(tuple(input_shape)))
    return model


# -- conv (plain strided convolutions, v1) --------------------------------------

def check_conv_shape(input_shape, filters):
    """The strides (2 per stage) must divide height and width."""
    if len(input_shape) != 3:
        raise InputError(f"a conv autoencoder needs (height, width, channels) input; got {tuple(input_shape)}.")
    try:
        filters = [int(f) for f in filters]
    except (TypeError, ValueError):
        raise InputError(f"filters must be a non-empty list of positive integers; got {filters!r}.") from None
    if not filters or any(f <= 0 for f in filters):
        raise InputError(f"filters must be a non-empty list of positive integers; got {filters}.")
    factor = 2 ** len(filters)
    h, w, _ = input_shape
    if h % factor or w % factor:
        raise InputError(
            f"input {h}x{w} is not divisible by the total stride {factor} of {len(filters)} "
            f"stride-2 stages; use sizes divisible by {factor} or fewer filters."
        )
    return filters, (h // factor, w // factor)


def build_conv_encoder(input_shape, filters, kernel_size, activation, outputs,
                       convs_per_stage=1, name="encoder"):
    """Per stage: (convs_per_stage - 1) stride-1 convs, then a stride-2 conv;
    then Flatten -> Dense(outputs)."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=tuple(input_shape)))
    for i, f in enumerate(filters):
        for j in range(convs_per_stage - 1):
            model.add(layers.Conv2D(f, kernel_size, padding="same", activation=activation, name=f"conv_{i}_{j}"))
        model.add(layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation, name=f"down_{i}"))
    model.add(layers.Flatten())
    model.add(layers.Dense(outputs, name="latent"))
    return model


def build_conv_decoder(input_shape, filters, kernel_size, activation, latent_dim,
                       output_activation, convs_per_stage=1, name="decoder"):
    """Dense -> Reshape to the smallest feature map -> per stage a stride-2
    transposed conv (then stride-1 convs) -> a conv to the input channels."""
    _, (h, w) = check_conv_shape(input_shape, filters)
    channels = input_shape[-1]
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(latent_dim,)))
    model.add(layers.Dense(h * w * filters[-1], activation=activation, name="project"))
    model.add(layers.Reshape((h, w, filters[-1])))
    for i, f in enumerate(reversed(filters)):
        model.add(layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", activation=activation, name=f"up_{i}"))
        for j in range(convs_per_stage - 1):
            model.add(layers.Conv2D(f, kernel_size, padding="same", activation=activation, name=f"conv_{i}_{j}"))
    model.add(layers.Conv2D(channels, kernel_size, padding="same", activation=output_activation, name="pixels"))
    return model


# -- resnet and U-Net -------------------------------------------------------------


def check_levels(input_shape, widths, blocks):
    """Validate a residual/U-Net body; returns (widths, blocks, smallest (h, w))."""
    if len(input_shape) != 3:
        raise InputError(f"a convolutional body needs (height, width, channels) input; got {tuple(input_shape)}.")
    try:
        widths = [int(w) for w in widths]
        blocks = [int(b) for b in blocks]
    except (TypeError, ValueError):
        raise InputError(f"widths and blocks must be lists of integers; got {widths!r} and {blocks!r}.") from None
    if not widths or any(w <= 0 for w in widths):
        raise InputError(f"widths must be a non-empty list of positive integers; got {widths}.")
    if len(blocks) != len(widths) or any(b < 0 for b in blocks):
        raise InputError(
            f"blocks must give a count >= 0 for each of the {len(widths)} levels in widths {widths}; got {blocks}."
        )
    factor = 2 ** (len(widths) - 1)
    h, w, _ = input_shape
    if h % factor or w % factor:
        raise InputError(
            f"input {h}x{w} is not divisible by {factor}, the total stride of {len(widths)} levels "
            f"(widths {widths}); use sizes divisible by {factor} or fewer levels."
        )
    return widths, blocks, (h // factor, w // factor)


def batch_norm(name, zero=False):
    """The BatchNormalization layer of every body. zero=True starts a residual branch
    at zero, so each block starts as the identity (Goyal et al., 2017, "Accurate,
    large minibatch SGD", sec. 5.1)."""
    return layers.BatchNormalization(momentum=0.9, gamma_initializer="zeros" if zero else "ones", name=name)


def _norm(x, norm, name, zero=False):
    return batch_norm(name, zero)(x) if norm == "batch" else x


def conv_norm_act(x, filters, activation, norm, name, strides=1, transpose=False, kernel_size=3):
    """Conv (or transposed conv) -> norm -> activation."""
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    x = conv(filters, kernel_size, strides=strides, padding="same", use_bias=norm == "none", name=f"{name}_conv")(x)
    x = _norm(x, norm, f"{name}_norm")
    return layers.Activation(activation, name=f"{name}_act")(x)


def residual_block(x, activation, norm, name):
    """x + (conv-norm-act-conv-norm)(x), then the activation."""
    filters = x.shape[-1]
    h = conv_norm_act(x, filters, activation, norm, f"{name}_a")
    h = layers.Conv2D(filters, 3, padding="same", use_bias=norm == "none", name=f"{name}_b_conv")(h)
    h = _norm(h, norm, f"{name}_b_norm", zero=True)
    x = layers.Add(name=f"{name}_add")([x, h])
    return layers.Activation(activation, name=f"{name}_out")(x)


def build_resnet_encoder(input_shape, outputs, widths, blocks, activation="silu", norm="batch", name="encoder"):
    """Images -> stem -> [stride-2 conv, residual blocks] per level -> Flatten -> Dense(outputs)."""
    widths, blocks, _ = check_levels(input_shape, widths, blocks)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = conv_norm_act(inputs, widths[0], activation, norm, "stem")
    for level, (width, count) in enumerate(zip(widths, blocks)):
        if level:
            x = conv_norm_act(x, width, activation, norm, f"down{level}", strides=2)
        for b in range(count):
            x = residual_block(x, activation, norm, f"level{level}_block{b}")
    x = layers.Flatten(name="flatten")(x)
    z = layers.Dense(outputs, name="latent")(x)
    return keras.Model(inputs, z, name=name)


def build_resnet_decoder(input_shape, latent_dim, widths, blocks, activation="silu", norm="batch",
                         output_activation="sigmoid", name="decoder"):
    """The mirror image: Dense -> smallest map -> [residual blocks, stride-2
    transposed conv] per level -> a 3x3 conv to the image channels."""
    widths, blocks, (h, w) = check_levels(input_shape, widths, blocks)
    inputs = keras.Input(shape=(int(latent_dim),), name="z")
    x = layers.Dense(h * w * widths[-1], name="project")(inputs)
    x = layers.Reshape((h, w, widths[-1]), name="unflatten")(x)
    x = _norm(x, norm, "project_norm")
    x = layers.Activation(activation, name="project_act")(x)
    for level in reversed(range(len(widths))):
        for b in range(blocks[level]):
            x = residual_block(x, activation, norm, f"level{level}_block{b}")
        if level:
            x = conv_norm_act(x, widths[level - 1], activation, norm, f"up{level}", strides=2, transpose=True)
    out = layers.Conv2D(input_shape[-1], 3, padding="same", activation=output_activation, name="pixels")(x)
    return keras.Model(inputs, out, name=name)


def check_norm(norm):
    if norm not in NORMS:
        raise InputError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}.")
    return norm


def build_unet(input_shape, widths, blocks, activation="silu", norm="batch", output_activation="sigmoid",
               residual_output=False, name="unet"):
    """A small U-Net (Ronneberger et al., 2015): images -> images, with skip
    connections at every level and no vector bottleneck.

    Returns (network, features): `network` maps images to images; `features`
    maps images to the globally average-pooled deepest feature map, shape
    (batch, widths[-1]) — a descriptor for feature extraction and anomaly
    scores (a U-Net has no latent vector to decode from).

    With `residual_output`, the network predicts the noise and subtracts it
    from its input (the DnCNN formulation, Zhang et al. 2017), then clips to
    [0, 1]; otherwise the last convolution uses `output_activation`.
    """
    widths, blocks, _ = check_levels(input_shape, widths, blocks)
    inputs = keras.Input(shape=tuple(input_shape), name="images")
    x = conv_norm_act(inputs, widths[0], activation, norm, "stem")
    skips = []
    for level, (width, count) in enumerate(zip(widths, blocks)):
        if level:
            skips.append(x)
            x = conv_norm_act(x, width, activation, norm, f"down{level}", strides=2)
        for b in range(count):
            x = residual_block(x, activation, norm, f"enc{level}_block{b}")
    deepest = x
    for level in reversed(range(1, len(widths))):
        x = conv_norm_act(x, widths[level - 1], activation, norm, f"up{level}", strides=2, transpose=True)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level - 1]])
        x = conv_norm_act(x, widths[level - 1], activation, norm, f"fuse{level}")
        for b in range(blocks[level - 1]):
            x = residual_block(x, activation, norm, f"dec{level - 1}_block{b}")
    if residual_output:
        noise = layers.Conv2D(input_shape[-1], 3, padding="same", name="noise")(x)
        out = layers.Subtract(name="subtract_noise")([inputs, noise])
        out = layers.ReLU(max_value=1.0, name="pixels")(out)  # clip to [0, 1]
    else:
        out = layers.Conv2D(input_shape[-1], 3, padding="same", activation=output_activation, name="pixels")(x)
    network = keras.Model(inputs, out, name=name)
    pooled = layers.GlobalAveragePooling2D(name="pool")(deepest)
    features = keras.Model(inputs, pooled, name="encoder")
    return network, features


# -- one entry point -------------------------------------------------------------

def body_config(body, config):
    """The keys of `config` that `body` uses, checked; unknown keys raise."""
    if body not in BODY_KEYS:
        raise InputError(f"unknown body {body!r}; expected one of {', '.join(BODY_KEYS)}.")
    unknown = set(config) - set(BODY_KEYS[body])
    if unknown:
        raise InputError(f"body {body!r} takes {', '.join(BODY_KEYS[body])}; got unknown key(s) {sorted(unknown)}.")
    return dict(config)


BODY_DEFAULTS = {
    "dense": {"hidden": (512, 256), "norm": "none"},  # v1's dense body had no normalisation
    "conv": {"filters": (32, 64), "kernel_size": 3, "convs_per_stage": 1},
    "resnet": {"widths": (32, 64, 128), "blocks": (0, 1, 1), "norm": "batch"},
}


def body_options(body, keys=None, **given):
    """The options of `body` among `given` (None: not given, take the default).

    A given option that belongs to another body raises: `filters` on a resnet
    body would otherwise be ignored without a word. `keys` narrows what the
    caller's body takes (e.g. the VAE's conv body has no convs_per_stage).
    """
    passed = {k: v for k, v in given.items() if v is not None}
    allowed = [k for k in BODY_KEYS.get(body, ()) if k != "activation" and (keys is None or k in keys)]
    wrong = sorted(set(passed) - set(allowed))
    if wrong:
        raise InputError(f"body {body!r} takes {', '.join(allowed)}; got {', '.join(wrong)}, "
                         f"which belong to another body (set body= to use them).")
    return {k: passed.get(k, BODY_DEFAULTS[body][k]) for k in allowed}


def build_body(body, input_shape, encoder_outputs, latent_dim, output_activation="sigmoid", *, hidden=(512, 256),
               filters=(32, 64), kernel_size=3, convs_per_stage=1, widths=(32, 64, 128), blocks=(0, 1, 1),
               activation="relu", norm=None):
    """(encoder, decoder) of body `body`: images -> `encoder_outputs` numbers, and
    latent_dim numbers -> images with `output_activation`."""
    if body == "dense":
        hidden, norm = check_hidden(hidden), norm or BODY_DEFAULTS["dense"]["norm"]
        return (build_dense_encoder(input_shape, hidden, activation, encoder_outputs, norm),
                build_dense_decoder(input_shape, hidden, activation, latent_dim, output_activation, norm))
    if body == "conv":
        filters, _ = check_conv_shape(input_shape, filters)
        if int(convs_per_stage) < 1:
            raise InputError(f"convs_per_stage must be >= 1; got {convs_per_stage}.")
        return (build_conv_encoder(input_shape, filters, int(kernel_size), activation, encoder_outputs,
                                   int(convs_per_stage)),
                build_conv_decoder(input_shape, filters, int(kernel_size), activation, latent_dim, output_activation,
                                   int(convs_per_stage)))
    if body == "resnet":
        norm = check_norm(norm or BODY_DEFAULTS["resnet"]["norm"])
        return (build_resnet_encoder(input_shape, encoder_outputs, widths, blocks, activation, norm),
                build_resnet_decoder(input_shape, latent_dim, widths, blocks, activation, norm, output_activation))
    raise InputError(f"unknown body {body!r}; expected one of {', '.join(BODIES)}.")
