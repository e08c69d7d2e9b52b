"""Background tiles: the darkest, flattest tiles of a whole image, to analyse as noise regions."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .axes import validate_axes
from .errors import DataError
from .noise_autocorr import SIGNAL_SIGMA, as_stack, default_axes


@dataclass
class Background:
    """Result of :func:`find_background`: the chosen tiles of an image as noise regions."""

    regions: list[np.ndarray]
    axes: str
    corners: list[tuple[int, int]]
    tile: int


def find_background(
    image: np.ndarray,
    *,
    axes: str | None = None,
    tile: int = 32,
    fraction: float = 0.2,
    min_tiles: int = 4,
) -> Background:
    """The darkest, flattest ``tile`` x ``tile`` YX tiles of an image, as noise regions.

    The image is cut into a grid of YX tiles, each spanning all other axes (S, T, C, Z). Each tile
    is ranked by its mean (dark: no fluorescence) and by the spread of its blurred version
    (flat: no structure, see :func:`remove_signal`); the best ``fraction`` of tiles by the sum of
    both ranks are kept, at least ``min_tiles`` (all of them in a small image), since a single
    32x32 tile is too few pixels for a reliable estimate.

    Returns
    -------
    Background
        ``regions`` (arrays in the image's ``axes``), their YX ``corners`` and the ``tile`` side.
    """
    from scipy import ndimage

    arr = np.asarray(image)
    ax = validate_axes(axes if axes is not None else default_axes(arr.ndim), arr.ndim)
    h, w = arr.shape[ax.index("Y")], arr.shape[ax.index("X")]
    t = int(min(tile, h, w))
    if t < 8:
        raise DataError(f"the image ({h}x{w}) is too small to find background tiles; give a dark frame")
    corners, means, flats, regions = [], [], [], []
    for y in range(0, h - t + 1, t):
        for x in range(0, w - t + 1, t):
            index = [slice(None)] * arr.ndim
            index[ax.index("Y")], index[ax.index("X")] = slice(y, y + t), slice(x, x + t)
            region = arr[tuple(index)]
            stack, _ = as_stack(region, ax)
            smooth = ndimage.gaussian_filter(stack, [0.0] * (stack.ndim - 2) + [SIGNAL_SIGMA] * 2, mode="reflect")
            corners.append((y, x))
            regions.append(region)
            means.append(stack.mean())
            flats.append(smooth.std())
    score = np.argsort(np.argsort(means)) + np.argsort(np.argsort(flats))
    n = min(len(regions), max(min_tiles, int(round(fraction * len(regions)))))
    keep = sorted(np.argsort(score, kind="stable")[:n])
    return Background([regions[i] for i in keep], ax, [corners[i] for i in keep], t)
