"""The common base of every aezoo autoencoder.

Every family builds two sub-models, `encoder` (image -> latent) and `decoder`
(latent -> image), and inherits from `Autoencoder`, which gives them one
interface: `encode`, `decode`, `call` (the reconstruction), `anomaly_score`,
`latent_dim`, `get_config`/`from_config`, and checks on what goes in.
"""

import numpy as np
import keras
from keras import ops

from aezoo.errors import InputError

PACKAGE = "aezoo"


def _is_concrete(x):
    """True for values we can inspect now (numpy, lists, eager tensors)."""
    if isinstance(x, (np.ndarray, list, tuple, float, int)):
        return True
    if isinstance(x, keras.KerasTensor):
        return False
    try:  # eager TF / JAX arrays convert; traced/symbolic ones raise
        ops.convert_to_numpy(x)
        return True
    except Exception:
        return False


def describe_expected(input_shape):
    dims = "x".join(str(d) for d in input_shape)
    return f"float32 images of shape (batch, {', '.join(map(str, input_shape))}) ({dims}) with values in [0, 1]"


def check_shape(shape, input_shape, what="input"):
    """Raise InputError unless `shape` is (batch, *input_shape)."""
    shape = tuple(shape)
    expected = tuple(input_shape)
    if len(shape) == len(expected) and all(
        s is None or s == e for s, e in zip(shape, expected)
    ):
        raise InputError(
            f"{what} has shape {shape}, which lacks the batch axis; expected "
            f"{describe_expected(expected)}. For one image use x[None]."
        )
    if len(shape) != len(expected) + 1 or any(
        s is not None and s != e for s, e in zip(shape[1:], expected)
    ):
        hint = ""
        if len(shape) == len(expected) + 1 and shape[-1] != expected[-1]:
            hint = f" (the model takes {expected[-1]} channel(s), got {shape[-1]})"
        raise InputError(
            f"{what} has shape {shape}; expected {describe_expected(expected)}{hint}."
        )


def validate_images(x, input_shape, what="input"):
    """Check a concrete batch of images and return it as a float32 numpy array.

    Raises `InputError` for: a missing batch axis, wrong height/width/channels,
    integer pixels (e.g. uint8 0..255), values far outside [0, 1], NaN or
    infinity, and an empty batch.
    """
    arr = np.asarray(ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x)
    if arr.dtype == object:
        raise InputError(f"{what} is not numeric; expected {describe_expected(input_shape)}.")
    check_shape(arr.shape, input_shape, what)
    if arr.shape[0] == 0:
        raise InputError(f"{what} is an empty batch (shape {arr.shape}); pass at least one image.")
    if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        raise InputError(
            f"{what} has integer dtype {arr.dtype}; expected float pixels in [0, 1]. "
            "Scale first, e.g. x.astype('float32') / 255."
        )
    arr = arr.astype("float32", copy=False)
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise InputError(f"{what} contains {bad} NaN or infinite value(s); expected finite pixels in [0, 1].")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -0.5 or hi > 1.5:
        raise InputError(
            f"{what} has values in [{lo:g}, {hi:g}]; expected pixels scaled to [0, 1]"
            + (" (it looks like 0..255: divide by 255)." if hi > 2 else ".")
        )
    return arr


class Autoencoder(keras.Model):
    """Base class: an encoder, a decoder and the interface around them.

    Subclasses set `self.encoder` and `self.decoder` in `__init__` (built
    sub-models) and list their constructor arguments in `get_config`.

    Args:
        input_shape: (height, width, channels) or (features,) of one example.
        latent_dim: size of the latent vector.
    """

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, **kwargs):
        super().__init__(**kwargs)
        input_shape = tuple(int(d) for d in input_shape)
        if not input_shape or any(d <= 0 for d in input_shape):
            raise InputError(f"input_shape must be positive sizes, e.g. (28, 28, 1); got {input_shape}.")
        if int(latent_dim) <= 0:
            raise InputError(f"latent_dim must be a positive integer; got {latent_dim}.")
        self.image_shape = input_shape
        self.latent_dim = int(latent_dim)

    # -- Keras plumbing ---------------------------------------------------
    def build(self, input_shape=None):
        if input_shape is not None:
            check_shape(input_shape, self.image_shape)
        # Sub-models are built at construction; nothing else to create.
        self.built = True

    def get_config(self):
        return {
            "name": self.name,
            "input_shape": list(self.image_shape),
            "latent_dim": self.latent_dim,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def _check_symbolic(self, x):
        """Shape and dtype checks that work on traced tensors too."""
        try:
            shape = tuple(x.shape)
        except ValueError:  # unknown rank (a traced tf.function input): nothing to check statically
            shape = None
        if shape is not None:
            check_shape(shape, self.image_shape)
        dtype = keras.backend.standardize_dtype(x.dtype)
        if "int" in dtype or dtype == "bool":
            raise InputError(
                f"input has integer dtype {dtype}; expected float pixels in [0, 1]. "
                "Scale first, e.g. x.astype('float32') / 255."
            )

    def _prepare(self, x):
        if _is_concrete(x):
            return validate_images(x, self.image_shape)
        self._check_symbolic(x)
        return x

    def call(self, x, training=False):
        self._check_symbolic(x)
        return self.decoder(self.encoder(x, training=training), training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # An autoencoder's target is its (clean) input: `fit(x)` needs no `y`.
        if y is None:
            y = x
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    # -- the autoencoder interface -----------------------------------------
    def encode(self, x):
        """Map images to latent vectors, shape (batch, latent_dim)."""
        return self.encoder(self._prepare(x), training=False)

    def decode(self, z):
        """Map latent vectors (batch, latent_dim) back to images in [0, 1]."""
        if _is_concrete(z):
            z = np.asarray(ops.convert_to_numpy(z), dtype="float32")
            if z.ndim != 2 or z.shape[1] != self.latent_dim or z.shape[0] == 0:
                raise InputError(
                    f"latent codes have shape {z.shape}; expected (batch, {self.latent_dim}) with batch >= 1."
                )
            if not np.isfinite(z).all():
                raise InputError("latent codes contain NaN or infinite values.")
        return self.decoder(z, training=False)

    def reconstruct(self, x):
        """Encode then decode (no noise, no sampling): the reconstruction of `x`."""
        return self(self._prepare(x), training=False)

    def anomaly_score(self, x):
        """Per-example reconstruction error (mean squared error over pixels).

        Higher means less like the training data. Returns shape (batch,).
        """
        x = self._prepare(x)
        recon = self(x, training=False)
        axes = tuple(range(1, len(self.image_shape) + 1))
        return ops.mean(ops.square(ops.convert_to_tensor(x) - recon), axis=axes)
