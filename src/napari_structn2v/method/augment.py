"""Training augmentation: random flips and 90-degree turns in YX that keep the blind mask, applied
after masking.

The eight flips/transposes of the YX plane are coded as bit sets: 1 flips X, 2 flips Y, 4 then
swaps Y and X (a transpose; with a flip, a 90-degree turn). A transform may be used only when the
mask is the same after it (:func:`symmetric_transforms`): otherwise pixels the mask hides in one
orientation are visible in the other and their correlated noise leaks into the input. Test-time
averaging (:func:`~napari_structn2v.prediction.predict.tta_transforms`) uses the same selection.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: every code: identity, flip X, flip Y, both, and each of those followed by a transpose
ALL_TRANSFORMS = tuple(range(8))


def transform_array(a: np.ndarray, code: int) -> np.ndarray:
    """``a`` after transform ``code`` of its last two axes (flips first, then the transpose)."""
    if code & 1:
        a = np.flip(a, -1)
    if code & 2:
        a = np.flip(a, -2)
    if code & 4:
        a = np.swapaxes(a, -1, -2)
    return a


def symmetric_transforms(mask: np.ndarray, *, square: bool = True) -> tuple[int, ...]:
    """The codes (in increasing order) of the YX transforms that leave the centred ``mask``
    ``(H, W)`` or ``(D, H, W)`` unchanged; transposes only when ``square`` (the patches are).

    A horizontal line keeps ``(0, 1, 2, 3)`` (every flip), a square ``ALL_TRANSFORMS``, a diagonal
    ``(0, 3, 4, 7)`` (the half turn and the transposes), an L of two equal arms ``(0, 4)``.
    They form a group, so a random choice among them is a random symmetry of the mask.
    """
    m = np.asarray(mask, dtype=bool)
    codes = ALL_TRANSFORMS if square else ALL_TRANSFORMS[:4]
    return tuple(c for c in codes if np.array_equal(transform_array(m, c), m))


def apply_transform(t: torch.Tensor, code: int) -> torch.Tensor:
    """``t`` ``(..., Y, X)`` after transform ``code`` (as :func:`transform_array`)."""
    dims = [d for bit, d in ((1, -1), (2, -2)) if code & bit]
    if dims:
        t = t.flip(dims)
    if code & 4:
        t = t.transpose(-1, -2)
    return t


def augment(
    tensors: tuple[torch.Tensor, ...],
    *,
    generator: torch.Generator,
    transforms: Sequence[int] = ALL_TRANSFORMS[:4],
) -> tuple[torch.Tensor, ...]:
    """Apply one random transform among ``transforms`` (see :func:`symmetric_transforms`) to all
    ``tensors`` ``(B, C, [Z,] Y, X)`` alike.

    Called after masking, so the hidden pixels move with the data and stay aligned with the
    noise. ``generator`` is a CPU generator: the draw is read on the host, so no device work
    waits for it (a ``.item()`` on the device generator was one host sync per step). Eight
    codes are drawn and folded onto ``transforms``, so the 4 flips and the 8 symmetries of a
    square use the random stream as before.
    """
    r = int(torch.randint(0, 8, (1,), generator=generator).numpy()[0])
    code = transforms[r % len(transforms)]
    if code & 4 and tensors[0].shape[-1] != tensors[0].shape[-2]:
        code &= 3  # a transpose would change the patch shape
    return tuple(apply_transform(t, code) for t in tensors)
