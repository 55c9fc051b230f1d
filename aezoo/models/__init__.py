"""Autoencoder families, one module each.

Every module here except `base` and `blocks` is a family: importing this
package imports them all, and each registers itself with
`@register_family(name)`. Adding a family is adding its module (and its tests).
"""

import importlib
import pkgutil

from aezoo.models.base import FAMILIES, Autoencoder, register_family

_SHARED = ("base", "blocks")  # the contract and the shared bodies, not families

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    if _module not in _SHARED and not _module.startswith("_"):
        importlib.import_module(f"{__name__}.{_module}")

globals().update({cls.__name__: cls for cls in FAMILIES.values()})

__all__ = ["Autoencoder", "FAMILIES", "register_family", *sorted(cls.__name__ for cls in FAMILIES.values())]
