"""Convolutional autoencoder with a latent *vector* bottleneck.

Two bodies: ``body="conv"`` (v1: plain stride-2 convolutions, `filters` per
stage) and ``body="resnet"`` (v2: a stem, then per resolution level a stride-2
convolution and residual blocks with BatchNorm and SiLU; `widths` and `blocks`
per level). Both end in Flatten -> Dense(latent_dim); the decoder mirrors them.
"""

from aezoo.errors import InputError
from aezoo.models.base import Autoencoder, register_family
from aezoo.models.blocks import (body_options, build_body, build_conv_decoder, build_conv_encoder,
                                 check_conv_shape, check_levels)

__all__ = ["ConvAutoencoder", "build_conv_encoder", "build_conv_decoder", "check_conv_shape"]
CONV_BODIES = ("conv", "resnet")


@register_family("conv")
class ConvAutoencoder(Autoencoder):
    """Convolutions down to a latent vector, transposed convolutions up.

    Args:
        input_shape: (height, width, channels).
        latent_dim: size of the bottleneck vector.
        body: "conv" (plain strided convolutions) or "resnet" (residual levels).
        filters, kernel_size, convs_per_stage: the "conv" body: channels of each
            stride-2 stage (e.g. (32, 64): 28x28 -> 7x7), kernel size, and
            convolutions per stage (the last one strides).
        widths, blocks, norm: the "resnet" body: channels per resolution level
            (full resolution first; each further level halves the size),
            residual blocks per level, and "batch" or "none" normalisation.
        activation: hidden activation (e.g. "relu", "silu").
        output_activation: activation of the reconstruction.

    Example:
        >>> model = ConvAutoencoder((32, 32, 3), latent_dim=64, body="resnet",
        ...                         widths=(32, 64, 128), blocks=(0, 1, 1), activation="silu")
        >>> model.reconstruct(np.zeros((1, 32, 32, 3), "float32")).shape
        (1, 32, 32, 3)
    """

    def __init__(self, input_shape=(28, 28, 1), latent_dim=32, body="conv", filters=None,
                 kernel_size=None, convs_per_stage=None, widths=None, blocks=None, norm=None,
                 activation="relu", output_activation="sigmoid", **kwargs):
        super().__init__(input_shape=input_shape, latent_dim=latent_dim, **kwargs)
        if body not in CONV_BODIES:
            raise InputError(f"unknown body {body!r} for a conv autoencoder; expected one of {', '.join(CONV_BODIES)}.")
        self.body = body
        self.activation = activation
        self.output_activation = output_activation
        given = body_options(body, filters=filters, kernel_size=kernel_size, convs_per_stage=convs_per_stage,
                             widths=widths, blocks=blocks, norm=norm)
        if body == "conv":
            self.filters, _ = check_conv_shape(self.image_shape, given["filters"])
            self.kernel_size = int(given["kernel_size"])
            self.convs_per_stage = int(given["convs_per_stage"])
            options = dict(filters=self.filters, kernel_size=self.kernel_size, convs_per_stage=self.convs_per_stage)
        else:
            self.widths, self.blocks, _ = check_levels(self.image_shape, given["widths"], given["blocks"])
            self.norm = given["norm"]
            options = dict(widths=self.widths, blocks=self.blocks, norm=self.norm)
        self.encoder, self.decoder = build_body(body, self.image_shape, self.latent_dim, self.latent_dim,
                                                output_activation, activation=activation, **options)
        self.build((None,) + self.image_shape)

    def get_config(self):
        config = {**super().get_config(), "body": self.body}
        if self.body == "conv":
            config.update(filters=list(self.filters), kernel_size=self.kernel_size,
                          convs_per_stage=self.convs_per_stage)
        else:
            config.update(widths=list(self.widths), blocks=list(self.blocks), norm=self.norm)
        config.update(activation=self.activation, output_activation=self.output_activation)
        return config
