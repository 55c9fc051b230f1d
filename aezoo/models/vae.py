"""Variational autoencoder (Kingma & Welling, 2014), dense or conv.

The model code uses keras.ops / keras.random only, so it trains on every
backend. `posterior`, `likelihood` and `log_likelihood` (IWAE, Burda et al.
2016) return or use tensorflow-probability distributions and need the
TensorFlow backend.
"""

import math
import warnings

import numpy as np
import keras
from keras import ops

from aezoo.errors import BackendError, InputError
from aezoo.models.base import Autoencoder, _whole, positive_whole, register_family
from aezoo.models.blocks import (BODIES, body_options, build_body, check_conv_shape, check_hidden, check_levels,
                                 check_norm)

LIKELIHOODS = ("bernoulli", "gaussian")
_EPS = 1e-6
_LOG_2PI = math.log(2 * math.pi)
IWAE_SAMPLES_PER_CALL = 4096   # images x importance samples per log_likelihood call in evaluation (memory bound)


class KLWarmup(keras.callbacks.Callback):
    """Linear KL warm-up for VAEs (Bowman et al. 2016; Sonderby et al. 2016):
    in epoch e (from 0) of a `epochs`-epoch warm-up the KL term is weighted by
    (e + 1) / (epochs + 1), then by 1. The weight is a Python float on the model
    (`kl_scale`), so the train function is rebuilt when it changes (once per
    warm-up epoch); it is derived from the epoch index, so a resumed run
    continues the schedule where it stopped."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = int(epochs)

    def on_epoch_begin(self, epoch, logs=None):
        scale = min(1.0, (epoch + 1) / (self.epochs + 1))
        if scale != self.model.kl_scale:
            self.model.kl_scale = scale
            self.model.make_train_function(force=True)

    def on_train_end(self, logs=None):
        self.model.kl_scale = 1.0


def _need_tensorflow(what):
    if keras.backend.backend() != "tensorflow":
        raise BackendError(
            f"{what} uses tensorflow-probability and needs the TensorFlow backend "
            f"(KERAS_BACKEND=tensorflow); the active backend is {keras.backend.backend()!r}. "
            "encode(), elbo(), sample() and interpolate() work on every backend."
        )
    import tensorflow_probability as tfp

    return tfp.distributions


@register_family("vae")
class VariationalAutoencoder(Autoencoder):
    """A VAE with a diagonal-Gaussian posterior and a standard-normal prior.

    `call(x, training=True)` samples z with the reparameterisation trick
    (keras.random + a SeedGenerator) and adds the KL term; at inference it
    decodes the posterior mean. The loss is the negative ELBO with a beta
    weight on the KL; `fit` reports `reconstruction_loss` and `kl_loss`
    (nats per example).

    Args:
        input_shape, latent_dim: as for every autoencoder.
        body: "dense", "conv" or "resnet" (the decoder mirrors the encoder).
            (`encoder_type`, its old name, still reads old saved configs, with a
            DeprecationWarning.)
        hidden: hidden sizes (dense).
        filters, kernel_size: stride-2 stages (conv).
        widths, blocks: resolution levels and residual blocks per level
            (resnet; see `aezoo.models.blocks`).
        norm: "batch" or "none" (dense: default "none", as v1; resnet:
            default "batch").
        activation: hidden activation.
        beta: weight of the KL term (1 = the ELBO).
        free_bits: nats per latent dimension below which the KL of that
            dimension is not penalised in training (Kingma et al. 2016, IAF,
            section 3 "free bits"; 0 = off). The reported `kl_loss`, `elbo`
            and IWAE figures always use the true KL.
        likelihood: "bernoulli" (pixels as probabilities) or "gaussian"
            with fixed standard deviation `gaussian_sigma`.
        seed: seed of the sampling noise.

    Note: `vae.encoder(x)` returns [mean, log_variance] concatenated,
    shape (batch, 2 * latent_dim); `encode(x)` returns the mean.

    Example:
        >>> vae = VariationalAutoencoder((28, 28, 1), latent_dim=16)
        >>> vae.sample(4).shape
        (4, 28, 28, 1)
    """

    allowed_losses = ("elbo",)
    default_loss = "elbo"
    recipe_options = ("kl_warmup_epochs",)
    generates = True
    latent_output = "mean"

    def __init__(self, input_shape=(28, 28, 1), latent_dim=16, body="dense",
                 hidden=None, filters=None, kernel_size=None, widths=None, blocks=None,
                 norm=None, activation="relu", beta=1.0, likelihood="bernoulli", gaussian_sigma=0.1,
                 free_bits=0.0, seed=None, encoder_type=None, **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        if encoder_type is not None:  # the v1 name of `body`
            warnings.warn("VariationalAutoencoder(encoder_type=...) is now body=...", DeprecationWarning,
                          stacklevel=2)
            body = encoder_type
        if likelihood not in LIKELIHOODS:
            raise InputError(f"unknown likelihood {likelihood!r}; expected one of {', '.join(LIKELIHOODS)}.")
        if float(beta) < 0:
            raise InputError(f"beta must be >= 0; got {beta}.")
        if float(gaussian_sigma) <= 0:
            raise InputError(f"gaussian_sigma must be > 0; got {gaussian_sigma}.")
        if float(free_bits) < 0:
            raise InputError(f"free_bits must be >= 0 nats per latent dimension; got {free_bits}.")
        if body not in BODIES:
            raise InputError(f"unknown body {body!r}; expected one of {', '.join(BODIES)}.")
        self.body = body
        self.activation = activation
        self.beta = float(beta)
        self.free_bits = float(free_bits)
        self.kl_scale = 1.0  # training-time KL weight on top of beta (KL warm-up sets it; see aezoo.training)
        self.likelihood_name = likelihood
        self.gaussian_sigma = float(gaussian_sigma)
        self.seed = seed
        given = body_options(body, keys=("hidden", "filters", "kernel_size", "widths", "blocks", "norm"),
                             hidden=hidden, filters=filters, kernel_size=kernel_size, widths=widths, blocks=blocks,
                             norm=norm)
        if body == "dense":
            self.hidden = check_hidden(given["hidden"])
            self.norm = check_norm(given["norm"])
            options = dict(hidden=self.hidden, norm=self.norm)
        elif body == "conv":
            self.filters, _ = check_conv_shape(self.image_shape, given["filters"])
            self.kernel_size = int(given["kernel_size"])
            options = dict(filters=self.filters, kernel_size=self.kernel_size)
        else:
            self.widths, self.blocks, _ = check_levels(self.image_shape, given["widths"], given["blocks"])
            self.norm = given["norm"]
            options = dict(widths=self.widths, blocks=self.blocks, norm=self.norm)
        self.encoder, self.decoder = build_body(body, self.image_shape, 2 * self.latent_dim, self.latent_dim,
                                                "sigmoid", activation=activation, **options)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.build((None,) + self.image_shape)

    def get_config(self):
        config = {**super().get_config(), "body": self.body}
        if self.body == "dense":
            config.update(hidden=list(self.hidden), norm=self.norm)
        elif self.body == "conv":
            config.update(filters=list(self.filters), kernel_size=self.kernel_size)
        else:
            config.update(widths=list(self.widths), blocks=list(self.blocks), norm=self.norm)
        config.update(activation=self.activation, beta=self.beta, likelihood=self.likelihood_name,
                      gaussian_sigma=self.gaussian_sigma, free_bits=self.free_bits, seed=self.seed)
        return config

    # -- the pieces of the ELBO (keras.ops, every backend) ----------------
    def posterior_params(self, x, training=False):
        """Mean and log-variance of q(z|x), each (batch, latent_dim)."""
        stats = self.encoder(x, training=training)
        return stats[:, : self.latent_dim], stats[:, self.latent_dim :]

    def code(self, encoder_output):
        """The posterior mean: the first latent_dim columns of the encoder's output."""
        return encoder_output[:, : self.latent_dim]

    def reparameterize(self, mean, log_var, seed=None):
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator if seed is None else seed,
                                  dtype=mean.dtype)
        return mean + ops.exp(0.5 * log_var) * eps

    @staticmethod
    def kl_divergence(mean, log_var):
        """KL(q(z|x) || N(0, I)) per example, in nats."""
        return -0.5 * ops.sum(1.0 + log_var - ops.square(mean) - ops.exp(log_var), axis=-1)

    def reconstruction_nll(self, x, mean_image):
        """-log p(x|z) per example (nats), given the decoder's mean image."""
        axes = tuple(range(1, len(self.image_shape) + 1))
        if self.likelihood_name == "bernoulli":
            p = ops.clip(mean_image, _EPS, 1.0 - _EPS)
            return -ops.sum(x * ops.log(p) + (1.0 - x) * ops.log(1.0 - p), axis=axes)
        sigma = self.gaussian_sigma
        per_pixel = 0.5 * ops.square((x - mean_image) / sigma) + math.log(sigma) + 0.5 * _LOG_2PI
        return ops.sum(per_pixel, axis=axes)

    def call(self, x, training=False):
        x = self._prepare(x)
        mean, log_var = self.posterior_params(x, training=training)
        z = self.reparameterize(mean, log_var) if training else mean
        self._last_kl = self.kl_per_dimension(mean, log_var)  # (batch, latent_dim), for compute_loss
        self.add_loss(ops.mean(ops.sum(self._last_kl, axis=-1)))
        return self.decoder(z, training=training)

    @staticmethod
    def kl_per_dimension(mean, log_var):
        """KL(q(z_i|x) || N(0, 1)) for every latent dimension i, in nats."""
        return -0.5 * (1.0 + log_var - ops.square(mean) - ops.exp(log_var))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Negative ELBO: reconstruction NLL + beta * KL (per example, batch mean).

        In training the KL term is weighted by `beta * kl_scale` (KL warm-up)
        and, with `free_bits`, each dimension's batch-mean KL counts as at least
        `free_bits` nats. The target is always the input `x`; a compiled loss
        is not used.
        """
        reconstruction = ops.mean(self.reconstruction_nll(x, y_pred))
        kl = sum(self.losses) if self.losses else ops.zeros(())
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        penalty = kl
        if training and self.free_bits > 0 and getattr(self, "_last_kl", None) is not None:
            per_dim = ops.mean(self._last_kl, axis=0)
            penalty = ops.sum(ops.maximum(per_dim, self.free_bits))
        weight = self.beta * (self.kl_scale if training else 1.0)
        return reconstruction + weight * penalty

    def elbo(self, x, seed=0):
        """Single-sample ELBO estimate per example (nats; higher is better)."""
        x = ops.convert_to_tensor(self._prepare(x))
        mean, log_var = self.posterior_params(x)
        z = self.reparameterize(mean, log_var, seed=seed)
        recon = self.decoder(z, training=False)
        return -(self.reconstruction_nll(x, recon) + self.kl_divergence(mean, log_var))

    # -- generation ----------------------------------------------------------
    def encode(self, x):
        """The posterior mean, shape (batch, latent_dim)."""
        return self._in_batches(lambda b: self.posterior_params(ops.convert_to_tensor(b))[0], self._prepare(x))

    def sample(self, n, seed=None):
        """Decode `n` draws from the prior: images (n, *input_shape)."""
        count = positive_whole(n, f"sample(n) needs a whole number n >= 1; got {n!r}.")
        z = keras.random.normal((count, self.latent_dim), seed=self.seed_generator if seed is None else seed)
        return self.decoder(z, training=False)

    def interpolate(self, a, b, steps=8):
        """Decode `steps` points on the line between the posterior means of
        images `a` and `b` (each one image, with or without batch axis)."""
        try:
            count = _whole(steps)
        except (TypeError, ValueError):
            count = 0
        if count < 2:
            raise InputError(f"interpolate needs a whole number of steps >= 2; got {steps!r}.")
        steps = count
        ends = []
        for img in (a, b):
            img = np.asarray(ops.convert_to_numpy(img))
            if img.ndim == len(self.image_shape):
                img = img[None]
            if img.shape[0] != 1:
                raise InputError(f"interpolate takes one image at each end; got a batch of {img.shape[0]}.")
            ends.append(self.encode(img))
        t = ops.reshape(ops.linspace(0.0, 1.0, int(steps)), (-1, 1))
        z = (1.0 - t) * ends[0] + t * ends[1]
        return self.decoder(z, training=False)

    # -- family hooks (see aezoo.models.base) ------------------------------------
    def loss_for(self, name):
        """The ELBO is computed by the model itself (`compute_loss`): no Keras loss."""
        if name != "elbo":
            return super().loss_for(name)
        return None

    def training_callbacks(self, recipe):
        epochs = int(recipe.get("kl_warmup_epochs") or 0)
        return [KLWarmup(epochs)] if epochs else []

    def evaluation_extras(self, x, *, metrics, predict, baseline=None, seed=0, batch_size=256, iwae_k=64):
        """The single-sample ELBO and, on TensorFlow, the IWAE NLL with `iwae_k` samples (nats per image)."""
        elbo = np.concatenate([np.asarray(self.elbo(x[i: i + batch_size], seed=seed + i))
                               for i in range(0, len(x), batch_size)])
        section = {"elbo": float(elbo.mean()), "likelihood": self.likelihood_name}
        if iwae_k:
            if keras.backend.backend() == "tensorflow":
                chunk = max(1, IWAE_SAMPLES_PER_CALL // int(iwae_k))
                ll = np.concatenate([np.asarray(self.log_likelihood(x[i: i + chunk], k=iwae_k, seed=seed + i))
                                     for i in range(0, len(x), chunk)])
                section.update(iwae_k=int(iwae_k), nll=float(-ll.mean()))
            else:
                section["nll"] = None
                section["note"] = "IWAE NLL uses tensorflow-probability: run with KERAS_BACKEND=tensorflow"
        return {"vae": section}

    @classmethod
    def format_extras(cls, report):
        v = report.get("vae")
        if not v:
            return []
        line = f"VAE: ELBO {v['elbo']:.2f} nats"
        if v.get("nll") is not None:
            line += f", IWAE NLL (k={v['iwae_k']}) {v['nll']:.2f} nats"
        elif v.get("note"):
            line += f" ({v['note']})"
        return [line]

    @classmethod
    def card_metrics(cls, report):
        v = report.get("vae")
        if not v:
            return {}
        out = {"elbo": v["elbo"]}
        if v.get("nll") is not None:
            out.update(iwae_nll=v["nll"], iwae_k=v["iwae_k"])
        return out

    def infer(self, images):
        """Decodes the posterior mean: deterministic, no random op."""
        mean, _ = self.posterior_params(images)
        return self.decoder(mean, training=False)

    def export_latents(self, images):
        mean, log_var = self.posterior_params(images)
        return {"mean": mean, "log_var": log_var}

    def export_functions(self):
        functions = super().export_functions()

        def sample(eps):  # feed eps ~ N(0, I): the artifact has no random op
            return {"images": self.decoder(eps, training=False)}

        functions["sample"] = (sample, {"eps": (self.latent_dim,)})
        return functions

    # -- tensorflow-probability views (TensorFlow backend) -------------------
    def posterior(self, x):
        """q(z|x) as a tfp MultivariateNormalDiag (batch of `latent_dim`-d)."""
        tfd = _need_tensorflow("posterior()")
        mean, log_var = self.posterior_params(ops.convert_to_tensor(self._prepare(x)))
        return tfd.MultivariateNormalDiag(loc=mean, scale_diag=ops.exp(0.5 * log_var))

    def prior(self):
        tfd = _need_tensorflow("prior()")
        return tfd.MultivariateNormalDiag(loc=ops.zeros(self.latent_dim), scale_diag=ops.ones(self.latent_dim))

    def likelihood(self, z):
        """p(x|z) as a tfp distribution over whole images."""
        tfd = _need_tensorflow("likelihood()")
        mean_image = self.decoder(z, training=False)
        ndims = len(self.image_shape)
        if self.likelihood_name == "bernoulli":
            p = ops.clip(mean_image, _EPS, 1.0 - _EPS)
            base = tfd.Bernoulli(logits=ops.log(p) - ops.log(1.0 - p), dtype="float32")
        else:
            base = tfd.Normal(loc=mean_image, scale=self.gaussian_sigma)
        return tfd.Independent(base, reinterpreted_batch_ndims=ndims)

    def log_likelihood(self, x, k=64, seed=0):
        """Importance-weighted (IWAE) estimate of log p(x) per example, with
        `k` samples from q(z|x) (k=1 gives the ELBO). Nats; higher is better."""
        import tensorflow as tf

        if int(k) < 1:
            raise InputError(f"log_likelihood needs k >= 1 samples; got {k}.")
        k = int(k)
        q = self.posterior(x)  # checks backend and input
        x = tf.convert_to_tensor(self._prepare(x))
        batch = tf.shape(x)[0]
        z = q.sample(k, seed=seed)  # (k, batch, latent)
        log_q = q.log_prob(z)
        log_prior = self.prior().log_prob(z)
        flat_z = tf.reshape(z, (-1, self.latent_dim))
        tiled_x = tf.reshape(tf.tile(x[None], [k] + [1] * (len(self.image_shape) + 1)),
                             (-1,) + self.image_shape)
        log_px = tf.reshape(self.likelihood(flat_z).log_prob(tiled_x), (k, batch))
        log_w = log_px + log_prior - log_q
        return tf.reduce_logsumexp(log_w, axis=0) - math.log(k)
