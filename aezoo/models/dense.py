"""Dense (fully connected) autoencoder."""

import math

import keras
from keras import layers

from aezoo.errors import InputError
from aezoo.models.base import PACKAGE, Autoencoder


def build_dense_encoder(input_shape, hidden, activation, outputs, name="encoder"):
    """Flatten -> Dense(hidden...) -> Dense(outputs), as a built Sequential."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=tuple(input_shape)))
    model.add(layers.Flatten())
    for i, units in enumerate(hidden):
        model.add(layers.Dense(units, activation=activation, name=f"dense_{i}"))
    model.add(layers.Dense(outputs, name="latent"))
    return model


def build_dense_decoder(input_shape, hidden, activation, latent_dim, output_activation, name="decoder"):
    """Dense(reversed hidden...) -> Dense(prod(input_shape)) -> Reshape."""
    model = keras.Sequential(name=name)
    model.add(keras.Input(shape=(latent_dim,)))
    for i, units in enumerate(reversed(hidden)):
        model.add(layers.Dense(units, activation=activation, name=f"dense_{i}"))
    model.add(layers.Dense(math.prod(input_shape), activation=output_activation, name="pixels"))
    model.add(layers.Reshape(tuple(input_shape)))
    return model


def check_hidden(hidden):
    hidden = [int(h) for h in hidden]
    if any(h <= 0 for h in hidden):
        raise InputError(f"hidden sizes must be positive integers; got {hidden}.")
    return hidden


@keras.saving.register_keras_serializable(package=PACKAGE)
class DenseAutoencoder(Autoencoder):
    """A multilayer-perceptron autoencoder.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dim: size of the bottleneck.
        hidden: encoder hidden sizes; the decoder mirrors them.
        activation: hidden activation.
        output_activation: activation of the reconstruction ("sigmoid" keeps
            it in [0, 1]).

    Example:
        >>> model = DenseAutoencoder((28, 28, 1), latent_dim=16, hidden=(128,))
        >>> model.encode(np.zeros((2, 28, 28, 1), "float32")).shape
        (2, 16)
    """

    family = "dense"

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, hidden=(512, 256),
                 activation="relu", output_activation="sigmoid", **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        self.hidden = check_hidden(hidden)
        self.activation = activation
        self.output_activation = output_activation
        self.encoder = build_dense_encoder(self.image_shape, self.hidden, activation, self.latent_dim)
        self.decoder = build_dense_decoder(
            self.image_shape, self.hidden, activation, self.latent_dim, output_activation
        )
        self.build((None,) + self.image_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output_activation": self.output_activation,
        }
