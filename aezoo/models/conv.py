"""Convolutional autoencoder with a latent *vector* bottleneck."""

import keras
from keras import layers

from aezoo.errors import InputError
from aezoo.models.base import PACKAGE, Autoencoder


def check_conv_shape(input_shape, filters):
    """The strides (2 per stage) must divide height and width."""
    if len(input_shape) != 3:
        raise InputError(f"a conv autoencoder needs (height, width, channels) input; got {tuple(input_shape)}.")
    filters = [int(f) for f in filters]
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class ConvAutoencoder(Autoencoder):
    """Strided convolutions down to a latent vector, transposed convolutions up.

    Works on any HxWxC input whose height and width 2**len(filters) divides.

    Args:
        input_shape: (height, width, channels).
        latent_dim: size of the bottleneck vector.
        filters: channels of each stride-2 stage, e.g. (32, 64): 28x28 -> 7x7.
        kernel_size: convolution kernel size.
        convs_per_stage: convolutions per stage (the last one strides).
        activation: hidden activation.
        output_activation: activation of the reconstruction.

    Example:
        >>> model = ConvAutoencoder((32, 32, 3), latent_dim=64, filters=(32, 64, 128))
        >>> model.reconstruct(np.zeros((1, 32, 32, 3), "float32")).shape
        (1, 32, 32, 3)
    """

    family = "conv"

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, filters=(32, 64),
                 kernel_size=3, convs_per_stage=1, activation="relu",
                 output_activation="sigmoid", **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        self.filters, _ = check_conv_shape(self.image_shape, filters)
        self.kernel_size = int(kernel_size)
        self.convs_per_stage = int(convs_per_stage)
        if self.convs_per_stage < 1:
            raise InputError(f"convs_per_stage must be >= 1; got {convs_per_stage}.")
        self.activation = activation
        self.output_activation = output_activation
        self.encoder = build_conv_encoder(
            self.image_shape, self.filters, self.kernel_size, activation, self.latent_dim, self.convs_per_stage
        )
        self.decoder = build_conv_decoder(
            self.image_shape, self.filters, self.kernel_size, activation, self.latent_dim,
            output_activation, self.convs_per_stage,
        )
        self.build((None,) + self.image_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": list(self.filters),
            "kernel_size": self.kernel_size,
            "convs_per_stage": self.convs_per_stage,
            "activation": self.activation,
            "output_activation": self.output_activation,
        }
