"""Exceptions for user mistakes: each carries one clear sentence for the CLI and the GUI."""
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
