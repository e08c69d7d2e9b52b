"""Z slices in training: when a 2D network runs over them, and how many neighbours it reads.

A volume whose noise is independent across Z gets a 2D network over its slices (the mask's
central YX plane); with ``TrainConfig.z_context`` that network also reads ``k`` slices on each
side of the one it denoises, as extra input channels.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..config import TrainConfig
from ..errors import DataError, StructN2VError
from ..method.masks import parse_mask_spec, validate_mask
from .data import prepare_arrays

if TYPE_CHECKING:
    from ..model import StructN2VModel


def over_slices(axes: str, mask: np.ndarray, z_net: str = "auto") -> bool:
    """True when data with ``axes`` get a 2D network over their Z slices (see ``TrainConfig.z_net``)."""
    if z_net not in ("auto", "2d", "3d"):
        raise StructN2VError(f"z_net must be 'auto', '2d' or '3d', got {z_net!r}")
    if "Z" not in axes.upper() or z_net == "3d":
        return False
    mask = np.asarray(mask, dtype=bool)
    return z_net == "2d" or mask.ndim == 2 or mask.shape[0] == 1


def prepare_with_context(images: np.ndarray | Sequence[np.ndarray], axes: str, slices: bool, want: int, *,
                         resuming: bool) -> tuple[list, str, int]:
    """Arrays for training, their spatial axes and the Z context actually used.

    ``slices``: a 2D network runs over the Z slices; ``want``: the Z context asked for.

    Z context needs volumes of at least ``2k + 1`` slices; it is reduced to what the thinnest
    volume allows (0: plain slices), except when resuming, where the model's context is fixed.
    """
    if not want:
        arrays, sp = prepare_arrays(images, axes, z_as_sample=slices)
        return arrays, sp, 0
    if "Z" not in axes.upper():
        raise DataError(f"the model reads neighbouring Z slices; these images (axes {axes!r}) have no Z axis")
    arrays, sp = prepare_arrays(images, axes, z_as_sample=False)
    context = min(want, (min(a.shape[2] for a in arrays) - 1) // 2)
    if resuming and context < want:
        raise DataError(f"the model reads {want} slices on each side of a slice; these volumes are thinner than {2 * want + 1} slices")
    if context:
        return arrays, sp, context
    arrays, sp = prepare_arrays(images, axes, z_as_sample=True)
    return arrays, sp, 0


def network_mask(axes: str, mask: np.ndarray | str, cfg: TrainConfig, resume: StructN2VModel | None) -> tuple[np.ndarray, bool, int]:
    """The blind mask as the network sees it, whether a 2D net runs over Z slices, and the Z
    context wanted (a resumed model keeps its own).

    A camera's fixed pattern, once its estimate is subtracted, does not cost the neighbour slices:
    what the estimate misses repeats in them, but on the camera volume (``benchmarks/fixed_pattern.py``,
    cam3d_x, 600 steps) neighbour slices gave 28.50 dB against 27.68 without them (8 dark frames)
    and 28.41 against 27.67 (3 dark frames); the same data without a pattern reached 28.45."""
    mask_arr = parse_mask_spec(mask) if isinstance(mask, str) else validate_mask(mask)
    slices = over_slices(axes, mask_arr, cfg.z_net) if resume is None else (resume.spatial_ndim == 2 and "Z" in axes.upper())
    z_extent = mask_arr.ndim == 3 and mask_arr.shape[0] > 1
    if slices and mask_arr.ndim == 3:
        mask_arr = mask_arr[mask_arr.shape[0] // 2]  # a slice's own pixels are all a 2D net sees
    want = resume.z_context if resume is not None else (cfg.z_context if slices and not z_extent else 0)
    return mask_arr, slices, want
