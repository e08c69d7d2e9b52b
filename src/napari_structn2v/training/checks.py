"""Input checks shared by the training core and the Train dock widget (torch-free).

They read shapes and settings only, so the widget can check a user's choice on the GUI thread,
before any data is copied or torch is imported, with the message training itself would give.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import TrainConfig
from ..errors import DataError, StructN2VError


def from_torch(data: Any) -> Any:
    """``data`` with torch tensors (one, or a list or tuple of them) as numpy arrays (copied to
    the CPU); anything else as it is. Torch-free: a tensor is recognised by its type's module."""
    if isinstance(data, (list, tuple)):
        return type(data)(from_torch(d) for d in data)
    if type(data).__module__.split(".")[0] == "torch" and hasattr(data, "detach"):
        return data.detach().cpu().numpy()
    return data


def patch_shape(config: TrainConfig, ndim: int) -> tuple[int, ...]:
    """The training patch of a ``ndim``-D network: ``(Y, X)`` or ``(Z, Y, X)``."""
    return (config.patch_size,) * 2 if ndim == 2 else (config.patch_size_z, config.patch_size, config.patch_size)


def check_train_settings(config: TrainConfig) -> None:
    """Raise :class:`StructN2VError` for budgets, batch and fractions that training cannot use."""
    if config.steps is not None and config.steps < 1 or config.batch_size < 1:
        raise StructN2VError("steps and batch size must be at least 1")
    if not 0 < config.masked_fraction <= 0.5:
        raise StructN2VError(f"masked_fraction must be in (0, 0.5], got {config.masked_fraction}")
    if not 0 <= config.val_fraction < 0.5:
        raise StructN2VError(f"val_fraction must be in [0, 0.5), got {config.val_fraction}")


def check_patch_multiple(patch: Sequence[int], multiple: Sequence[int], depth: int) -> None:
    """Raise :class:`StructN2VError` unless every side of ``patch`` is a multiple of ``multiple``
    (the U-Net's pooling factor to the power ``depth``)."""
    if any(p % m for p, m in zip(patch, multiple)):
        raise StructN2VError(
            f"patch {'x'.join(map(str, patch))} must be a multiple of {'x'.join(map(str, multiple))} "
            f"for a depth-{depth} U-Net"
        )


def check_patch_fits(sizes: Sequence[Sequence[int]], patch: Sequence[int], axes: str) -> None:
    """Raise :class:`DataError` for the first image smaller than the training ``patch``.

    Parameters
    ----------
    sizes : sequence of sequences of int
        For each image, its sizes along ``axes``.
    patch : sequence of int
        The patch sides along ``axes``.
    axes : str
        The patch's axes, e.g. ``"YX"`` or ``"ZYX"``; they name the sides that are too small.
    """
    for i, shape in enumerate(sizes):
        small = [f"{letter}={s}" for letter, s, p in zip(axes, shape, patch) if s < p]
        if small:
            raise DataError(
                f"image {i + 1} ({', '.join(small)}) is smaller than the training patch "
                f"{'x'.join(map(str, patch))}; use a smaller patch size"
            )
