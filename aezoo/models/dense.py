"""Dense (fully connected) autoencoder."""

from aezoo.models.base import Autoencoder, register_family
from aezoo.models.blocks import build_dense_decoder, build_dense_encoder, check_hidden, check_norm

__all__ = ["DenseAutoencoder", "build_dense_encoder", "build_dense_decoder", "check_hidden"]


@register_family("dense")
class DenseAutoencoder(Autoencoder):
    """A multilayer-perceptron autoencoder.

    Args:
        input_shape: shape of one example, e.g. (28, 28, 1).
        latent_dim: size of the bottleneck.
        hidden: encoder hidden sizes; the decoder mirrors them.
        activation: hidden activation.
        norm: "none" (v1) or "batch": BatchNorm between each hidden Dense and
            its activation (folded into the Dense at export).
        output_activation: activation of the reconstruction ("sigmoid" keeps
            it in [0, 1]).

    Example:
        >>> model = DenseAutoencoder((28, 28, 1), latent_dim=16, hidden=(128,))
        >>> model.encode(np.zeros((2, 28, 28, 1), "float32")).shape
        (2, 16)
    """

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, hidden=(512, 256),
                 activation="relu", output_activation="sigmoid", norm="none", **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        self.hidden = check_hidden(hidden)
        self.activation = activation
        self.output_activation = output_activation
        self.norm = check_norm(norm)
        self.encoder = build_dense_encoder(self.image_shape, self.hidden, activation, self.latent_dim, self.norm)
        self.decoder = build_dense_decoder(
            self.image_shape, self.hidden, activation, self.latent_dim, output_activation, self.norm
        )
        self.build((None,) + self.image_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden": list(self.hidden),
            "activation": self.activation,
            "output_activation": self.output_activation,
            "norm": self.norm,
        }
