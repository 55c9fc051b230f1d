"""Denoising autoencoder: corrupt in training, reconstruct the clean input."""

import numpy as np
import keras
from keras import layers, ops

from aezoo.errors import InputError, RecipeError
from aezoo.models.base import PACKAGE, Autoencoder, register_family
from aezoo.models.blocks import body_config as check_body_config, build_body, build_unet, check_norm

NOISE_KINDS = ("gaussian", "masking", "salt_and_pepper")
BODIES = ("dense", "conv", "resnet", "unet")
UNET_KEYS = ("widths", "blocks", "activation", "norm", "residual_output")


def corrupt(x, kind, level, seed):
    """Corrupt images in [0, 1] with `kind` noise at `level`.

    gaussian: add N(0, level^2), clip to [0, 1]; masking: zero each pixel with
    probability `level`; salt_and_pepper: set each pixel to 0 or 1 (equally
    likely) with probability `level`. `seed` is an int or a SeedGenerator.
    """
    if kind == "gaussian":
        noisy = x + level * keras.random.normal(ops.shape(x), seed=seed, dtype=x.dtype)
        return ops.clip(noisy, 0.0, 1.0)
    u = keras.random.uniform(ops.shape(x), seed=seed, dtype=x.dtype)
    if kind == "masking":
        return ops.where(u < level, ops.zeros_like(x), x)
    if kind == "salt_and_pepper":
        x = ops.where(u < level / 2, ops.zeros_like(x), x)
        return ops.where(u > 1 - level / 2, ops.ones_like(x), x)
    raise InputError(f"unknown noise {kind!r}; expected one of {', '.join(NOISE_KINDS)}.")


def check_noise(kind, level):
    if kind not in NOISE_KINDS:
        raise InputError(f"unknown noise {kind!r}; expected one of {', '.join(NOISE_KINDS)}.")
    level = float(level)
    upper = float("inf") if kind == "gaussian" else 1.0
    if not 0.0 <= level <= upper:
        raise InputError(f"noise_level for {kind} must be in [0, {upper}]; got {level}.")
    return kind, level


@keras.saving.register_keras_serializable(package=PACKAGE)
class Corruption(layers.Layer):
    """Applies `corrupt` in training only; the identity at inference."""

    def __init__(self, kind="gaussian", level=0.2, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.kind, self.level = check_noise(kind, level)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=False):
        if not training or self.level == 0:
            return x
        return corrupt(x, self.kind, self.level, self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "level": self.level, "seed": self.seed}


@register_family("denoising")
class DenoisingAutoencoder(Autoencoder):
    """An autoencoder trained to undo corruption.

    Corruption is applied inside `call(x, training=True)`, so plain
    `model.fit(clean)` trains a denoiser; at inference `denoise(noisy)`
    cleans images.

    Bodies: "dense", "conv" and "resnet" go through a latent vector of
    `latent_dim` numbers, like the other families. "unet" is fully
    convolutional (a small U-Net with a skip at every resolution, no vector
    bottleneck): judged on PSNR, not on compression. Its `encode` gives the
    average-pooled deepest feature map (`latent_dim` must equal the last
    width), and it has no `decode`: its output is not a function of a vector.

    Args:
        input_shape, latent_dim: as for every autoencoder.
        body: "dense", "conv", "resnet" or "unet".
        body_config: keyword arguments of the body (see `aezoo.models.blocks`):
            dense: hidden, activation; conv: filters, kernel_size,
            convs_per_stage, activation; resnet: widths, blocks, activation,
            norm; unet: widths, blocks, activation, norm, residual_output
            (predict the noise and subtract it, as DnCNN does).
        noise: "gaussian", "masking" or "salt_and_pepper".
        noise_level: std-dev (gaussian) or probability (the others).
        seed: seed of the training noise.

    A zoo entry states its noise once, in its recipe's ``corruption``
    ({"noise": ..., "level": ...}); `config_for_recipe` turns it into
    `noise` and `noise_level` when the entry is built or trained.

    Example:
        >>> model = DenoisingAutoencoder((28, 28, 1), 32, body="conv", noise_level=0.3)
        >>> model.denoise(noisy_images)
    """

    recipe_options = ("corruption",)

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, body="conv", body_config=None,
                 noise="gaussian", noise_level=0.2, seed=None, **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        if body not in BODIES:
            raise InputError(f"unknown body {body!r}; expected one of {', '.join(BODIES)}.")
        self.body = body
        self.body_config = dict(body_config or {})
        self.noise, self.noise_level = check_noise(noise, noise_level)
        self.seed = seed
        if body == "unet":
            unknown = set(self.body_config) - set(UNET_KEYS)
            if unknown:
                raise InputError(f"body 'unet' takes {', '.join(UNET_KEYS)}; got unknown key(s) {sorted(unknown)}.")
            options = {"widths": (32, 64, 128), "blocks": (1, 1, 1), "activation": "silu", "norm": "batch",
                       "residual_output": True, **self.body_config}
            check_norm(options["norm"])
            if int(options["widths"][-1]) != self.latent_dim:
                raise InputError(
                    f"a U-Net denoiser's features are its deepest map, average-pooled: latent_dim must equal the "
                    f"last width {options['widths'][-1]}; got latent_dim={self.latent_dim}."
                )
            self.network, self.encoder = build_unet(self.image_shape, **options)
            self.decoder = None
        else:
            options = {"activation": "relu", **check_body_config(body, self.body_config)}
            self.network = None
            self.encoder, self.decoder = build_body(body, self.image_shape, self.latent_dim, self.latent_dim,
                                                    **options)
        self.corruption = Corruption(self.noise, self.noise_level, seed, name="corruption")
        self.build((None,) + self.image_shape)

    def call(self, x, training=False):
        x = self._prepare(x)
        x = self.corruption(x, training=training)
        if self.network is not None:
            return self.network(x, training=training)
        return self.decoder(self.encoder(x, training=training), training=training)

    def decode(self, z):
        if self.network is not None:
            raise InputError(
                "a U-Net denoiser has no decoder: its skip connections carry the image, so its output is not "
                "a function of a latent vector. Use denoise(noisy) or reconstruct(x)."
            )
        return super().decode(z)

    def denoise(self, x):
        """Reconstruct clean images from noisy ones (same as `reconstruct`)."""
        return self.reconstruct(x)

    def corrupt(self, x, seed=0):
        """Apply this model's training noise to `x` (for tests and demos)."""
        return corrupt(ops.convert_to_tensor(self._prepare(x)), self.noise, self.noise_level, seed)

    # -- family hooks (see aezoo.models.base) ------------------------------------
    def scored_pairs(self, x, seed):
        """(noisy, clean): validation and the export check must score denoising, and the
        Corruption layer is the identity outside training, so plain images would score
        clean reconstruction (near-identity for a denoiser). The noise is fixed by `seed`:
        the same noisy copies every epoch. An array is corrupted once, as a whole (as
        `evaluation_extras` corrupts the test split); a batch traced in tf.data (a
        user's Dataset) is drawn with `seed` itself, so every batch of one size gets
        the same noise field."""
        if self.noise_level == 0:
            return x
        noisy = self.corrupt(x, seed=seed)
        return (np.asarray(noisy), x) if isinstance(x, np.ndarray) else (noisy, x)

    @classmethod
    def check_recipe(cls, recipe):
        corruption = recipe.get("corruption")
        if corruption is None:
            return
        if not isinstance(corruption, dict) or set(corruption) != {"noise", "level"}:
            raise RecipeError(f"recipe corruption must be {{'noise': ..., 'level': ...}}; got {corruption!r}.")
        try:
            check_noise(corruption["noise"], corruption["level"])
        except (TypeError, ValueError) as e:
            raise RecipeError(f"recipe corruption: {e}") from None

    @classmethod
    def config_for_recipe(cls, config, recipe):
        """The noise comes from the recipe's corruption (stated once, there); a
        config that also states it must agree."""
        config = dict(config)
        corruption = recipe.get("corruption")
        if corruption:
            for key, value in (("noise", corruption["noise"]), ("noise_level", corruption["level"])):
                if key in config and config[key] != value:
                    raise RecipeError(
                        f"config {key}={config[key]!r} disagrees with the recipe's corruption "
                        f"({corruption['noise']} {corruption['level']}); state the noise once, in the recipe's "
                        "corruption (override it with corruption.level=..., not the config)."
                    )
                config[key] = value
        return config

    def evaluation_extras(self, x, *, metrics, predict, baseline=None, seed=0, batch_size=256, iwae_k=64):
        """PSNR of the noisy input, of the denoised output and of PCA on the noisy input,
        at this model's noise with a fixed seed."""
        noisy = np.asarray(self.corrupt(x, seed=seed))
        denoised = predict(noisy)
        section = {"noise": self.noise, "level": self.noise_level, "seed": seed,
                   "psnr_noisy": metrics(x, noisy)["psnr"],
                   **{f"{k}_denoised": v for k, v in metrics(x, denoised).items()}}
        if baseline is not None:
            section["psnr_pca"] = metrics(x, baseline.reconstruct(noisy))["psnr"]
        return {"denoising": section}

    @classmethod
    def format_extras(cls, report):
        dn = report.get("denoising")
        if not dn:
            return []
        return [f"denoising ({dn['noise']} {dn['level']}): PSNR noisy {dn['psnr_noisy']:.2f} dB -> "
                f"denoised {dn['psnr_denoised']:.2f} dB" + (f" (PCA {dn['psnr_pca']:.2f} dB)" if "psnr_pca" in dn else "")]

    @classmethod
    def card_metrics(cls, report):
        d = report.get("denoising")
        if not d:
            return {}
        out = {"denoise_noise": f"{d['noise']} {d['level']}", "denoise_psnr_noisy": d["psnr_noisy"],
               "denoise_psnr": d["psnr_denoised"], "denoise_ssim": d["ssim_denoised"]}
        if "psnr_pca" in d:
            out["denoise_psnr_pca"] = d["psnr_pca"]
        return out

    def showcase(self, x, seed=0):
        noisy = np.asarray(self.corrupt(x, seed=seed))
        return [(f"+{self.noise} {self.noise_level}", noisy), ("denoised", np.asarray(self.denoise(noisy)))]

    def infer(self, images):
        if self.network is not None:
            return self.network(images, training=False)
        return super().infer(images)

    def export_functions(self):
        functions = super().export_functions()
        if self.decoder is None:  # a U-Net: no latent vector to decode from
            functions.pop("decode")
        return functions

    def export_parts(self):
        parts = super().export_parts()
        if self.decoder is None:
            parts.pop("decoder")
        return parts

    def get_config(self):
        return {
            **super().get_config(),
            "body": self.body,
            "body_config": self.body_config,
            "noise": self.noise,
            "noise_level": self.noise_level,
            "seed": self.seed,
        }
