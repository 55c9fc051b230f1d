"""Autoencoder families, one module each."""

from aezoo.models.base import Autoencoder
from aezoo.models.conv import ConvAutoencoder
from aezoo.models.dense import DenseAutoencoder
from aezoo.models.denoising import DenoisingAutoencoder
from aezoo.models.vae import VariationalAutoencoder

FAMILIES = {
    "dense": DenseAutoencoder,
    "conv": ConvAutoencoder,
    "denoising": DenoisingAutoencoder,
    "vae": VariationalAutoencoder,
}

__all__ = ["Autoencoder", "ConvAutoencoder", "DenseAutoencoder", "DenoisingAutoencoder",
           "VariationalAutoencoder", "FAMILIES"]
