"""The common base of every aezoo autoencoder, and the family registry.

Every family builds two sub-models, `encoder` (image -> latent) and `decoder`
(latent -> image), and inherits from `Autoencoder`, which gives them one
interface: `encode`, `decode`, `call` (the reconstruction), `anomaly_score`,
`latent_dim`, `get_config`/`from_config`, and checks on what goes in.

A family registers itself where it is defined, with `@register_family("name")`
(torchvision's `@register_model()`), and answers for its own behaviour through
the hooks below; nothing outside the family asks "is this a VAE?":

=========================  =====================================================
hook                       who asks
=========================  =====================================================
``allowed_losses``,        recipes (which losses fit), registry (the loss of a
``default_loss``,          recipe given without one), training (the Keras loss)
``loss_for``
``recipe_options``,        recipes: the family-only recipe keys it uses
``check_recipe``           ("corruption", "kl_warmup_epochs") and their checks
``takes_corruption``       whether training corrupts the input (denoisers)
``config_for_recipe``      registry/training: the model config a recipe implies
                           (a denoiser's noise comes from the recipe's corruption)
``training_callbacks``     training (a VAE's KL warm-up)
``scored_pairs``           training (validation) and deploy (export checks):
                           what the model is scored on (a denoiser: fixed noisy
                           copies of the images as inputs, the clean ones as targets)
``evaluation_extras``,     evaluation and model cards: family metrics (denoising
``format_extras``,         PSNR, ELBO and IWAE NLL), their text and card fields
``card_metrics``
``generates``, ``sample``  CLI ``sample``, demo: whether the family generates
``showcase``               CLI ``reconstruct``, demo: labelled rows of images
``infer``,                 deploy: the deterministic inference graph, the
``export_functions``,      exported signatures (the VAE posterior split, the
``export_parts``,          anomaly score), which parts a single-part artifact
``latent_output``          can hold, and the latent output that decode takes
``code``                   tasks (features, embedding, latent-kNN anomaly
                           scores): the code in the encoder's output, as a
                           graph op (a VAE's posterior mean)
=========================  =====================================================
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import numpy as np
import keras
from keras import ops

from aezoo.errors import InputError

PACKAGE = "aezoo"

FAMILIES: dict[str, type] = {}  # family name -> Autoencoder subclass, filled by @register_family


def register_family(name: str) -> Callable[[type], type]:
    """Class decorator: make an `Autoencoder` subclass the family `name` (and
    Keras-serializable as ``aezoo>ClassName``).

    Example:
        >>> @register_family("sparse")
        ... class SparseAutoencoder(DenseAutoencoder):
        ...     ...
        >>> aezoo.register("my_sparse", "sparse", {"latent_dim": 64})
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise InputError(f"a family name is letters, digits and underscores; got {name!r}.")

    def decorate(cls: type) -> type:
        if not (isinstance(cls, type) and issubclass(cls, Autoencoder)):
            raise TypeError(f"@register_family({name!r}) decorates an Autoencoder subclass; got {cls!r}.")
        if name in FAMILIES and FAMILIES[name].__qualname__ != cls.__qualname__:
            raise InputError(f"family {name!r} is already registered by {FAMILIES[name].__name__}.")
        cls.family = name
        FAMILIES[name] = cls
        return keras.saving.register_keras_serializable(package=PACKAGE)(cls)

    return decorate


def _whole(value) -> int:
    """`value` as an int when it is a whole number (7, 7.0, np.int64(7)); else ValueError.
    Strings, bools and fractions are refused rather than converted."""
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise ValueError(value)
    as_int = int(value)
    if as_int != value:
        raise ValueError(value)
    return as_int


def positive_whole(value, message: str) -> int:
    """`value` as a whole number >= 1, else InputError(message)."""
    try:
        number = _whole(value)
    except (TypeError, ValueError):
        number = 0
    if number <= 0:
        raise InputError(message)
    return number


def reconstruction_error(x, recon, ndims: int):
    """Per-example mean squared error over the last `ndims` axes (keras.ops: any backend, traceable)."""
    axes = tuple(range(1, ndims + 1))
    return ops.mean(ops.square(ops.convert_to_tensor(x) - recon), axis=axes)


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
        from aezoo.preprocessing import guess_range

        low, top = guess_range(arr)  # 0..16 (scikit-learn's digits), 0..255, 0..65535, -1..1, ...
        scale = f"divide by {top:g}" if low == 0 else f"map it with (x - {low:g}) / {top - low:g}"
        raise InputError(
            f"{what} has values in [{lo:g}, {hi:g}]; expected pixels scaled to [0, 1] (it looks like "
            f"{low:g}..{top:g}: {scale}, or pass the images through model.preprocess(x), which scales them)."
        )
    return arr


class Autoencoder(keras.Model):
    """Base class: an encoder, a decoder and the interface around them.

    Subclasses set `self.encoder` and `self.decoder` in `__init__` (built
    sub-models), list their constructor arguments in `get_config`, register
    with `@register_family(name)` and override the hooks (see the module
    docstring) where the family differs.

    Args:
        input_shape: (height, width, channels) or (features,) of one example.
        latent_dim: size of the latent vector.
    """

    # -- what a family declares --------------------------------------------
    family: ClassVar[str] = ""                                 # set by @register_family
    allowed_losses: ClassVar[tuple[str, ...]] = ("mse", "bce")  # recipe losses it trains with
    default_loss: ClassVar[str] = "mse"                        # for a recipe given without a loss
    recipe_options: ClassVar[tuple[str, ...]] = ()             # family-only recipe keys it uses
    generates: ClassVar[bool] = False                          # sample(n) draws new images
    latent_output: ClassVar[str] = "latent"                    # the encode output that decode takes
    inference_batch: int = 1024  # images per call in encode/reconstruct/anomaly_score (flat memory)

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, **kwargs):
        super().__init__(**kwargs)
        try:
            shape = tuple(_whole(d) for d in input_shape)
        except (TypeError, ValueError):
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise InputError(f"input_shape must be positive whole sizes, e.g. (28, 28, 1); got {input_shape!r}.")
        size = positive_whole(latent_dim, f"latent_dim must be a positive integer; got {latent_dim!r}.")
        self.image_shape = shape
        self.latent_dim = size

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
        """Concrete images (numpy, lists, eager tensors) are fully checked (shape,
        dtype, range, NaN) and returned as float32 numpy; symbolic ones (traced
        inside fit/predict or tf.function) get the shape and dtype checks."""
        if _is_concrete(x):
            return validate_images(x, self.image_shape)
        self._check_symbolic(x)
        return x

    def call(self, x, training=False):
        x = self._prepare(x)
        return self.decoder(self.encoder(x, training=training), training=training)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Keras `predict` (reconstructions), after the same checks as `reconstruct`
        for arrays and lists (a tf.data.Dataset or generator is checked by shape
        and dtype as it is traced)."""
        if _is_concrete(x) and not isinstance(x, (int, float)):
            x = validate_images(x, self.image_shape, what="predict input")
        return super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)

    def _in_batches(self, fn, x):
        """fn(x) over a concrete batch in slices of `inference_batch` images, the
        outputs concatenated: memory for activations stays flat however many images."""
        size = int(self.inference_batch)
        if not isinstance(x, np.ndarray) or len(x) <= size:
            return fn(x)
        parts = [fn(x[i: i + size]) for i in range(0, len(x), size)]
        if isinstance(parts[0], (tuple, list)):
            return type(parts[0])(ops.concatenate([p[k] for p in parts], axis=0) for k in range(len(parts[0])))
        return ops.concatenate(parts, axis=0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # An autoencoder's target is its (clean) input: `fit(x)` needs no `y`.
        if y is None:
            y = x
        return super().compute_loss(
            x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training
        )

    # -- the autoencoder interface -----------------------------------------
    def code(self, encoder_output):
        """The latent code in the encoder's output (a tensor op, for models built on the encoder)."""
        return encoder_output

    def encode(self, x):
        """Map images to latent vectors, shape (batch, latent_dim)."""
        return self._in_batches(lambda b: self.encoder(b, training=False), self._prepare(x))

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

    def preprocess(self, x, check: bool = True, **options):
        """Your images -> this model's input (`aezoo.preprocessing`): uint8 or any range,
        PIL images, file paths, any size; polarity, background and framing as the
        model's dataset; warns (`UnusualInputWarning`) about images that still look
        unlike the training data.

        Args:
            x: images: arrays, PIL images, paths, or a list of them.
            check: score the result with the model's anomaly score against its stored threshold
                (`aezoo.preprocessing.stored_check`) and warn.
            **options: value_range=, polarity=, framing= (`Preprocessor.__call__`).

        Returns:
            float32 (N, H, W, C) in [0, 1].

        Example:
            >>> model.reconstruct(model.preprocess(["digit.jpg"]))
        """
        from aezoo.preprocessing import preprocess_for_model

        return preprocess_for_model(self, x, check=check, **options)

    def reconstruct(self, x):
        """Encode then decode (no noise, no sampling): the reconstruction of `x`."""
        return self._in_batches(lambda b: self(b, training=False), self._prepare(x))

    def anomaly_score(self, x):
        """Per-example reconstruction error (mean squared error over pixels).

        Higher means less like the training data. Returns shape (batch,).
        """
        ndims = len(self.image_shape)
        return self._in_batches(lambda b: reconstruction_error(b, self(b, training=False), ndims), self._prepare(x))

    def sample(self, n, seed=None):
        """Generative families draw `n` new images; the others refuse."""
        generative = sorted(name for name, cls in FAMILIES.items() if cls.generates)
        raise InputError(
            f"{self.name} is a {type(self).__name__} (family {self.family!r}), which does not generate images; "
            f"only the {', '.join(generative) or 'generative'} family can sample (e.g. vae_mnist)."
        )

    # -- hooks: training ---------------------------------------------------
    @classmethod
    def takes_corruption(cls) -> bool:
        """Whether training corrupts the input (a recipe's `corruption` applies)."""
        return "corruption" in cls.recipe_options

    @classmethod
    def check_recipe(cls, recipe: dict) -> None:
        """Family-specific checks of a complete recipe; raise ValueError (InputError)
        saying what was expected. The generic checks (loss in `allowed_losses`,
        family-only keys) are done by `aezoo.recipes.validate`."""

    @classmethod
    def config_for_recipe(cls, config: dict, recipe: dict) -> dict:
        """The model config that `config` trained with `recipe` means (a copy).
        Families whose recipe carries model settings (a denoiser's noise) fill them in here."""
        return dict(config)

    def loss_for(self, name: str):
        """The Keras loss for recipe loss `name` (None: the model computes its own)."""
        losses = {"mse": keras.losses.MeanSquaredError, "bce": keras.losses.BinaryCrossentropy}
        if name not in losses or name not in self.allowed_losses:
            raise InputError(f"loss {name!r} does not fit family {self.family!r}; expected one of "
                             f"{', '.join(self.allowed_losses)}.")
        return losses[name]()

    def training_callbacks(self, recipe: dict) -> list:
        """Extra Keras callbacks the family needs to train with `recipe`."""
        return []

    def scored_pairs(self, x, seed: int):
        """What the model is scored on, made from images `x` (a numpy array, or a
        batch traced in tf.data): `x` itself (the target is the input), or an
        (inputs, targets) pair. Training validates on it; an export is checked on it."""
        return x

    # -- hooks: evaluation and cards -----------------------------------------
    def evaluation_extras(self, x, *, metrics: Callable, predict: Callable, baseline=None, seed: int = 0,
                          batch_size: int = 256, iwae_k: int = 64) -> dict[str, dict]:
        """Family metrics on images `x`, as {section: figures} for the evaluation report.

        Args:
            metrics: `aezoo.evaluation.image_metrics(x, y)` -> {"mse", "bce", "psnr", "ssim"}.
            predict: images -> reconstructions (numpy, batched).
            baseline: the fitted PCA baseline (`.reconstruct(x)`), or None.
        """
        return {}

    @classmethod
    def format_extras(cls, report: dict) -> list[str]:
        """Lines of text for the family's sections of an evaluation report."""
        return []

    @classmethod
    def card_metrics(cls, report: dict) -> dict[str, Any]:
        """Flat model-card metrics from the family's sections of an evaluation report."""
        return {}

    def showcase(self, x, seed: int = 0) -> list[tuple[str, np.ndarray]]:
        """Labelled image rows that show what the model does to images `x`:
        the inputs it is fed (when they are not `x`), then its output (last)."""
        return [("reconstruction", np.asarray(self.reconstruct(x)))]

    # -- hooks: export --------------------------------------------------------
    def infer(self, images):
        """The deterministic inference graph (no training noise, no sampling, no
        added losses): images -> reconstructions. Traceable: what export runs."""
        return self.decoder(self.encoder(images, training=False), training=False)

    def export_latents(self, images) -> dict:
        """Named latent outputs of the `encode` signature."""
        return {"latent": self.encoder(images, training=False)}

    def export_functions(self) -> dict[str, tuple[Callable, dict[str, tuple]]]:
        """The exported signatures: name -> (fn, {input name: shape without the batch}).

        Each `fn` takes its one input positionally and returns {output name: tensor}."""
        images = {"images": tuple(self.image_shape)}
        latents = {"z": (self.latent_dim,)}

        def reconstruct(images):
            return {"reconstruction": self.infer(images)}

        def encode(images):
            return self.export_latents(images)

        def decode(z):
            return {"images": self.decoder(z, training=False)}

        def score(images):
            return {"score": reconstruction_error(images, self.infer(images), len(self.image_shape))}

        return {"reconstruct": (reconstruct, images), "encode": (encode, images), "decode": (decode, latents),
                "score": (score, images), "serving_default": (reconstruct, images)}

    def export_parts(self) -> dict[str, str]:
        """part -> signature, for artifacts that hold one part (TFLite, ONNX)."""
        return {"full": "reconstruct", "encoder": "encode", "decoder": "decode"}
