"""Errors that aezoo raises for bad input: each says what was expected."""


class AezooError(ValueError):
    """Base class: a problem with what the user asked for (not a bug in aezoo)."""


class UnknownModelError(AezooError, KeyError):
    """A registry name that does not exist."""

    def __str__(self):  # KeyError would otherwise quote the message
        return self.args[0] if self.args else ""


class InputError(AezooError):
    """Images of the wrong shape, dtype or range."""


class RecipeError(AezooError):
    """A recipe or a recipe override that does not make sense."""


class DatasetError(AezooError):
    """A dataset that is missing or malformed."""


class WeightsError(AezooError):
    """Pretrained weights that are missing, unreachable or corrupt."""


class BackendError(AezooError):
    """A feature that needs a Keras backend other than the active one."""


class ExportError(AezooError):
    """An export that cannot be done as asked, or whose artifact failed verification.

    When verification fails, `report` holds the figures (also written next to
    the would-be artifact as ``PATH.failed.report.json``)."""

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report
