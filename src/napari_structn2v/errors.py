"""Exceptions and warnings for user mistakes: each carries one clear sentence for the CLI and the GUI."""
from __future__ import annotations


class StructN2VError(ValueError):
    """Base class for every error caused by user input (bad mask, axes, file, data)."""


class MaskError(StructN2VError):
    """The blind mask is invalid for this data."""


class AxesError(StructN2VError):
    """The axes string does not describe the array."""


class DataError(StructN2VError):
    """The image data cannot be used (too small, empty, not finite, ...)."""


class ModelFileError(StructN2VError):
    """A model file is missing, corrupt, or not a napari-structn2v model."""


class ConfigError(StructN2VError):
    """A setting is out of range or of the wrong type.

    ``field`` names the setting (a :class:`~napari_structn2v.config.TrainConfig` field or an
    argument), ``problem`` is the rest of the sentence; the CLI rewrites ``field`` as its option.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem


class OutputError(StructN2VError):
    """An output file cannot be written: it would replace an input or an existing file, its folder
    does not exist or is not writable, or its extension names no known format."""


class OutputExistsError(OutputError):
    """A file appeared at the output while the result was being written: it was left as it is,
    and the result was saved next to it under another name (``saved_to``)."""

    def __init__(self, message: str, saved_to: str | None = None) -> None:
        super().__init__(message)
        self.saved_to = saved_to


class ResourceError(StructN2VError):
    """The job does not fit in the memory of the chosen device."""


class StructN2VWarning(UserWarning):
    """Base class of the package's warnings (the CLI prints them as ``warning: ...``)."""


class IntensityWarning(StructN2VWarning):
    """The input's intensities lie far outside the range the model was normalised on."""


class MetadataWarning(StructN2VWarning):
    """A file's metadata (its stored axes) cannot be used and are ignored."""
