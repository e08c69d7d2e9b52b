"""The blind-mask rule: the correlated extent of a normalised noise autocorrelation as a mask.

The mask grows along straight paths from the centre only (no detours through lags that are high by
chance), with a hysteresis: a strict seed keeps white noise at 1x1, a looser growth finds where a
real correlation ends. A region that fills much of its bounding box (a line, a blob) becomes that
box; a thin one (a diagonal line, a cross) stays its own shape.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from ..method.masks import box_mask
from .autocorr import noise_floor

#: hysteresis of the mask rule: a lag joins a correlated region already seeded at
#: ``n_sigma`` x floor when it is at least this many floors (and ``min_corr``)
GROW_SIGMA = 2.0
#: a correlated region filling at least this share of its bounding box is suggested as the box.
#: Measured on 2D nuclei, 1500 steps (benchmarks/noise_models.py): a diagonal line (fill 0.09)
#: 28.48 dB as itself, 25.30 as its 11x11 box; X and Y lines at once (a cross, fill 0.21) 28.13
#: against 25.94; a line turned 30 degrees (fill 0.38; rasterised thick, with weak correlations
#: beside it) 27.16 against 27.40 for its 9x5 box (means of 3 seeds). Lines and blobs fill 0.75-1
BOX_FILL = 0.3


def suggest_mask(
    autocorr: np.ndarray,
    *,
    min_corr: float = 0.1,
    n_sigma: float = 4.0,
    floor: float | None = None,
) -> np.ndarray:
    """Suggest a blind mask from a normalised autocorrelation.

    Rule (a hysteresis, as in edge detection, along straight paths from the centre): a lag is
    *correlated* when every lag on the straight path from the centre to it is at least
    ``max(min_corr, GROW_SIGMA * floor)`` and one of them is at least
    ``max(min_corr, n_sigma * floor)`` (significant), and it is face-connected to the centre
    through correlated lags. ``floor`` is the estimation noise
    (:func:`noise_floor` of ``autocorr`` if not given). The suggestion is the smallest box,
    symmetric about the centre, that covers the region. White noise gives 1x1 (plain N2V).

    The strict seed keeps white noise at 1x1; the looser growth finds where a real correlation
    drops under ``min_corr`` without the bias of a high threshold: 32x32 background ROIs of the
    2D sample have a floor of about 0.074, and growing only to 4 floors (0.3) cut their 11x1
    lines to 7x1 (16 of 19; 9x1-11x1 in 17 of 19 at 2 floors).
    ``min_corr`` keeps tiny but significant correlations from growing the mask: hiding a neighbour
    that shares under 10 % of the noise removes more signal information than it stops leakage.

    Returns
    -------
    np.ndarray
        bool mask over the autocorrelation's axes (``(H, W)`` or ``(D, H, W)``), odd sides.
    """
    ac = np.asarray(autocorr, dtype=np.float64)
    if ac.ndim not in (2, 3) or any(s % 2 == 0 for s in ac.shape):
        raise DataError("suggest_mask needs a centred 2D/3D autocorrelation with odd sides")
    fl = noise_floor(ac) if floor is None else float(floor)
    region = _star_region(ac, max(min_corr, n_sigma * fl), max(min_corr, GROW_SIGMA * fl))
    region |= region[(slice(None, None, -1),) * ac.ndim]
    centre = np.asarray(ac.shape) // 2
    half = np.abs(np.argwhere(region) - centre).max(axis=0)
    shape = region[tuple(slice(c - h, c + h + 1) for c, h in zip(centre, half))]
    if shape.mean() < BOX_FILL:
        return np.ascontiguousarray(shape)
    sides = [int(2 * h + 1) for h in half]
    if ac.ndim == 2:
        return box_mask(sides[1], sides[0])
    return box_mask(sides[2], sides[1], sides[0])


def _star_region(ac: np.ndarray, seed: float, grow: float) -> np.ndarray:
    """Lags whose straight path from the centre stays at least ``grow`` and reaches ``seed``,
    and that are face-connected to the centre through such lags.

    Every lag on the path (rounded to the grid, the centre excluded) must be correlated, so the
    region cannot wander off an axis through lags that are high by chance: a 32 px ROI of
    dev2d_x grew 17x3 through such a detour (0.11, 0.13, 0.15 beside the 11x1 line). The
    connectivity keeps a path from jumping diagonally onto a parallel chance ridge (3x27x3 from
    a 32 px ROI of the 3D sample's dark frame, whose lags one step off the line reached 0.15).

    A correlation along a diagonal (scan rotation, a rotated or registered image) has its lags
    touching only at corners, so face connectivity leaves the centre alone: 1x1, plain N2V, which
    kept the noise (19.74 dB against 28.48 for the diagonal line on 2D nuclei, 1500 steps).
    The region is connected through corners instead when that reaches a lag that is significant on
    its own (``seed``), which a chance ridge beside a line (0.15 against a seed of 0.28 in
    32 px ROIs) is not.
    """
    from scipy import ndimage

    centre = np.asarray(ac.shape) // 2
    offsets = np.indices(ac.shape).reshape(ac.ndim, -1).T - centre
    steps = np.abs(offsets).max(axis=1)
    lowest = np.full(len(offsets), np.inf)
    highest = np.full(len(offsets), -np.inf)
    for j in range(1, int(steps.max(initial=0)) + 1):
        on = steps >= j
        frac = offsets[on] * (j / steps[on])[:, None]
        point = (np.sign(frac) * np.floor(np.abs(frac) + 0.5)).astype(int) + centre
        values = ac[tuple(point.T)]
        lowest[on] = np.minimum(lowest[on], values)
        highest[on] = np.maximum(highest[on], values)
    region = (((lowest >= grow) & (highest >= seed)) | (steps == 0)).reshape(ac.shape)
    faces, _ = ndimage.label(region)
    near = faces == faces[tuple(centre)]
    corners, _ = ndimage.label(region, structure=np.ones((3,) * ac.ndim))
    reach = corners == corners[tuple(centre)]
    return reach if (reach & ~near & (ac >= seed)).any() else near

