"""Noise analysis: spatial autocorrelation, power spectrum and automatic blind-mask suggestion."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .axes import spatial_axes, to_internal, validate_axes
from .errors import DataError
from .masks import box_mask, mask_to_spec


def _default_axes(ndim: int) -> str:
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "ZYX"
    raise DataError(f"cannot analyse a {ndim}-D array without axes; pass axes such as 'SYX' or 'TZYX'")


def _as_stack(noise: np.ndarray, axes: str | None) -> tuple[np.ndarray, str]:
    arr = np.asarray(noise)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"noise data must be numeric, got dtype {arr.dtype}")
    ax = validate_axes(axes if axes is not None else _default_axes(arr.ndim), arr.ndim)
    stack, _ = to_internal(arr, ax)
    stack = stack.reshape((-1, *stack.shape[2:])).astype(np.float64)
    if stack.size == 0:
        raise DataError("the noise region is empty")
    if not np.isfinite(stack).all():
        raise DataError("the noise region contains NaN or infinite values")
    return stack, spatial_axes(ax)


def autocorrelation(
    noise: np.ndarray,
    *,
    axes: str | None = None,
    max_lag: int | tuple[int, ...] = 16,
) -> np.ndarray:
    """Normalised spatial autocorrelation of pure noise.

    The mean of each image is removed, the autocovariance is computed with zero-padded FFTs and
    divided by the number of overlapping pixel pairs at each lag (unbiased), averaged over the
    non-spatial axes (S, T, C), and divided by its value at zero lag.

    Parameters
    ----------
    noise : np.ndarray
        Pure noise (a dark frame or an empty region), axes given by ``axes``.
    axes : str, optional
        Axes of ``noise`` over ``STCZYX``; default ``YX`` for 2D and ``ZYX`` for 3D.
    max_lag : int or tuple of int
        Largest lag kept along each spatial axis (ZYX order if a tuple). Lags are further limited
        to half the region size so that every kept lag has enough pixel pairs.

    Returns
    -------
    np.ndarray
        float32 over the spatial axes (``YX`` or ``ZYX``), shape ``2 * lag + 1`` per axis, centred,
        with value 1 at the centre (zero lag).
    """
    stack, sp = _as_stack(noise, axes)
    shape = stack.shape[1:]
    if min(shape) < 2 and any(s < 2 for s in shape[-2:]):
        raise DataError(f"the noise region {shape} is too small; draw at least 8x8 pixels")
    lags = (max_lag,) * len(shape) if np.isscalar(max_lag) else tuple(max_lag)
    if len(lags) != len(shape):
        raise DataError(f"max_lag has {len(lags)} values for {len(shape)} spatial axes")
    lags = tuple(int(min(max(lag, 0), (s - 1) // 2)) for lag, s in zip(lags, shape))
    fshape = tuple(s + lag + 1 for s, lag in zip(shape, lags))
    axes_f = tuple(range(1, len(shape) + 1))
    centred = stack - stack.mean(axis=axes_f, keepdims=True)
    spec = np.fft.rfftn(centred, s=fshape, axes=axes_f)
    acov = np.fft.irfftn(np.abs(spec) ** 2, s=fshape, axes=axes_f).mean(axis=0)
    own = tuple(range(len(shape)))
    ones = np.fft.rfftn(np.ones(shape), s=fshape, axes=own)
    counts = np.fft.irfftn(np.abs(ones) ** 2, s=fshape, axes=own)
    acov = np.fft.fftshift(acov / np.maximum(np.rint(counts), 1))
    centre = tuple(f // 2 for f in fshape)
    crop = tuple(slice(c - lag, c + lag + 1) for c, lag in zip(centre, lags))
    out = acov[crop]
    zero = out[tuple(lag for lag in lags)]
    if zero <= 0:
        raise DataError("the noise region is constant; it has no noise to analyse")
    return (out / zero).astype(np.float32)


def power_spectrum(image: np.ndarray, *, axes: str | None = None) -> np.ndarray:
    """Centred log10 power spectrum of an image (mean removed), averaged over non-spatial axes.

    Structured noise shows as bright bands: noise correlated along X is broad along the X
    frequency axis and narrow along Y (Broaddus et al. 2020, Fig. 3).

    Returns
    -------
    np.ndarray
        float32, same spatial shape as the input, zero frequency at the centre.
    """
    stack, _ = _as_stack(image, axes)
    axes_f = tuple(range(1, stack.ndim))
    centred = stack - stack.mean(axis=axes_f, keepdims=True)
    power = (np.abs(np.fft.fftn(centred, axes=axes_f)) ** 2).mean(axis=0) / np.prod(stack.shape[1:])
    return np.log10(np.fft.fftshift(power) + 1e-12).astype(np.float32)


def noise_floor(autocorr: np.ndarray) -> float:
    """Robust spread of the autocorrelation at uncorrelated lags (1.4826 x MAD of all lags but 0)."""
    ac = np.asarray(autocorr, dtype=np.float64)
    values = np.delete(ac.ravel(), ac.size // 2)
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def suggest_mask(
    autocorr: np.ndarray,
    *,
    min_corr: float = 0.1,
    n_sigma: float = 4.0,
) -> np.ndarray:
    """Suggest a blind mask from a normalised autocorrelation.

    Rule: a lag is *significantly correlated* if its autocorrelation is at least
    ``max(min_corr, n_sigma * floor)``, where ``floor`` is :func:`noise_floor` (the estimation
    noise of the autocorrelation at uncorrelated lags). The lags connected to the centre
    (face connectivity) form the correlated region; the suggestion is the smallest box, symmetric
    about the centre, that covers it. White noise gives a 1x1 mask (plain N2V).

    ``min_corr`` keeps tiny but statistically significant correlations (on large noise frames
    even 0.02 is significant) from growing the mask: hiding a neighbour that shares under 10 %
    of the noise removes more signal information than it stops leakage.

    Returns
    -------
    np.ndarray
        bool box mask over the autocorrelation's axes (``(H, W)`` or ``(D, H, W)``).
    """
    from scipy import ndimage

    ac = np.asarray(autocorr, dtype=np.float64)
    if ac.ndim not in (2, 3) or any(s % 2 == 0 for s in ac.shape):
        raise DataError("suggest_mask needs a centred 2D/3D autocorrelation with odd sides")
    threshold = max(min_corr, n_sigma * noise_floor(ac))
    significant = ac >= threshold
    centre = tuple(s // 2 for s in ac.shape)
    significant[centre] = True
    labels, _ = ndimage.label(significant)
    region = labels == labels[centre]
    coords = np.argwhere(region) - np.asarray(centre)
    half = np.abs(coords).max(axis=0)
    sides = [int(2 * h + 1) for h in half]
    if ac.ndim == 2:
        return box_mask(sides[1], sides[0])
    return box_mask(sides[2], sides[1], sides[0])


@dataclass
class NoiseAnalysis:
    """Result of :func:`analyze_noise`."""

    autocorrelation: np.ndarray
    mask: np.ndarray
    spec: str | None
    threshold: float
    floor: float
    axes: str
    profiles: dict[str, np.ndarray] = field(default_factory=dict)

    def report(self) -> str:
        """A human-readable summary; its last line is the suggested mask spec."""
        lines = [f"noise autocorrelation over {self.axes}, lags +-{self.autocorrelation.shape[-1] // 2}"]
        for letter, prof in self.profiles.items():
            half = prof.size // 2
            vals = " ".join(f"{v:.2f}" for v in prof[half : half + 11])
            lines.append(f"  along {letter}, lag 0..{min(10, half)}: {vals}")
        lines.append(
            f"significance threshold {self.threshold:.3f} (noise floor {self.floor:.4f}); "
            f"correlated extent (WxH{'xD' if self.autocorrelation.ndim == 3 else ''}):"
        )
        lines.append(self.spec or "x".join(map(str, self.mask.shape[::-1])))
        return "\n".join(lines)


def analyze_noise(
    noise: np.ndarray,
    *,
    axes: str | None = None,
    max_lag: int | tuple[int, ...] = 16,
    min_corr: float = 0.1,
    n_sigma: float = 4.0,
) -> NoiseAnalysis:
    """Autocorrelation, line profiles and suggested mask of pure noise (see :func:`suggest_mask`)."""
    ac = autocorrelation(noise, axes=axes, max_lag=max_lag)
    sp = spatial_axes(axes.upper()) if axes else ("YX" if ac.ndim == 2 else "ZYX")
    mask = suggest_mask(ac, min_corr=min_corr, n_sigma=n_sigma)
    floor = noise_floor(ac)
    centre = tuple(s // 2 for s in ac.shape)
    profiles = {}
    for i, letter in enumerate(sp):
        idx = list(centre)
        idx[i] = slice(None)
        profiles[letter] = ac[tuple(idx)].copy()
    return NoiseAnalysis(
        autocorrelation=ac,
        mask=mask,
        spec=mask_to_spec(mask),
        threshold=max(min_corr, n_sigma * floor),
        floor=floor,
        axes=sp,
        profiles=dict(sorted(profiles.items(), key=lambda kv: "XYZ".index(kv[0]))),
    )


def background_blocks(image: np.ndarray, *, axes: str | None = None, block: int = 32, fraction: float = 0.2) -> tuple[np.ndarray, str]:
    """The darkest ``fraction`` of ``block``-sized YX tiles of an image, stacked as ``S(Z)YX``.

    Used when no dark frame is given: empty background is the best stand-in for pure noise,
    and each tile's own mean is removed by :func:`autocorrelation`, so slow signal gradients do not
    count as correlation.
    """
    stack, sp = _as_stack(image, axes)
    h, w = stack.shape[-2:]
    b = int(min(block, h, w))
    if b < 8:
        raise DataError(f"the image ({h}x{w}) is too small to find background tiles; give a dark frame")
    tiles = []
    for y in range(0, h - b + 1, b):
        for x in range(0, w - b + 1, b):
            tiles.append(stack[..., y : y + b, x : x + b].reshape((-1, *stack.shape[1:-2], b, b)))
    tiles_arr = np.concatenate(tiles, axis=0)
    means = tiles_arr.reshape(tiles_arr.shape[0], -1).mean(axis=1)
    keep = np.argsort(means)[: max(1, int(round(fraction * len(means))))]
    return tiles_arr[keep], "S" + sp
