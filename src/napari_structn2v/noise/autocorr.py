"""Noise statistics: the spatial autocorrelation of noise regions, its estimation noise, and the
power spectrum.

Smooth signal is removed before correlating (each plane minus its Gaussian blur, sigma
:data:`SIGNAL_SIGMA`) and the small offset this leaves on the autocorrelation is removed again;
several regions are pooled (their pixel-pair sums add up). :mod:`~napari_structn2v.noise.analysis` builds
the analysis on these.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..axes import spatial_axes, to_internal, validate_axes
from ..errors import DataError

#: sigma (pixels, Y and X) of the Gaussian blur subtracted from each plane to remove signal before
#: correlating. Measured (benchmarks/roi_robustness.py): without it, 64-96 px ROIs on the 2D sample
#: gave 9x5 ... 13x11 (signal gradients look like long-range correlation); with it they give 9x1-11x1.
SIGNAL_SIGMA = 4.0
#: residuals beyond this many robust sigmas are clipped (Gaussian noise: 1.2 % of pixels)
CLIP_SIGMA = 2.5


def default_axes(ndim: int) -> str:
    """The axes of a region given without them: ``YX`` for 2D, ``ZYX`` for 3D (else :class:`DataError`)."""
    if ndim == 2:
        return "YX"
    if ndim == 3:
        return "ZYX"
    raise DataError(f"cannot analyse a {ndim}-D array without axes; pass axes such as 'SYX' or 'TZYX'")


def as_stack(noise: np.ndarray, axes: str | None) -> tuple[np.ndarray, str]:
    """One noise region as an ``(N, [Z,] Y, X)`` float64 stack and its spatial axes; refuses
    non-numeric, empty and non-finite data (:class:`DataError`)."""
    arr = np.asarray(noise)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"noise data must be numeric, got dtype {arr.dtype}")
    ax = validate_axes(axes if axes is not None else default_axes(arr.ndim), arr.ndim)
    stack, _ = to_internal(arr, ax)
    stack = stack.reshape((-1, *stack.shape[2:])).astype(np.float64)
    if stack.size == 0:
        raise DataError("the noise region is empty")
    if not np.isfinite(stack).all():
        raise DataError("the noise region contains NaN or infinite values")
    return stack, spatial_axes(ax)


def as_stacks(noise: np.ndarray | Sequence[np.ndarray], axes: str | None) -> tuple[list[np.ndarray], str]:
    """One or several noise regions (same axes) as ``(N, [Z,] Y, X)`` float64 stacks."""
    if isinstance(noise, np.ndarray) or not isinstance(noise, (list, tuple)):
        items = [noise]
    else:
        items = list(noise)
        if not items:
            raise DataError("no noise region given")
    stacks, sp = [], None
    for item in items:
        stack, s = as_stack(item, axes)
        if sp is not None and s != sp:
            raise DataError(f"the noise regions mix {sp} and {s} data; give regions with the same axes")
        sp = s
        stacks.append(stack)
    return stacks, sp or "YX"


def remove_signal(stack: np.ndarray, sigma: float = SIGNAL_SIGMA) -> np.ndarray:
    """Each ``(..., Y, X)`` plane minus its Gaussian blur (``sigma`` px, reflected borders).

    The blur holds the smooth signal (gradients, the flanks of cells) and little of the noise: for
    noise correlated over ``k`` pixels it takes about ``k / (8 pi sigma^2)`` of the variance
    (1 % for the 2D sample's 11-pixel lines at sigma 4).
    """
    from scipy import ndimage

    arr = np.asarray(stack, dtype=np.float64)
    sig = [0.0] * (arr.ndim - 2) + [float(sigma), float(sigma)]
    return arr - ndimage.gaussian_filter(arr, sig, mode="reflect")


def _clip_outliers(residual: np.ndarray, k: float = CLIP_SIGMA) -> np.ndarray:
    """Clip values beyond ``k`` robust sigmas (1.4826 x MAD): small bright structures that the
    blur cannot remove (spots, thin fibres) are outliers of the noise's distribution."""
    med = np.median(residual)
    sigma = 1.4826 * np.median(np.abs(residual - med))
    if sigma <= 0:
        return residual
    return np.clip(residual, med - k * sigma, med + k * sigma)


def _lags(shapes: list[tuple[int, ...]], max_lag: int | tuple[int, ...]) -> tuple[int, ...]:
    nd = len(shapes[0])
    lags = (max_lag,) * nd if np.isscalar(max_lag) else tuple(max_lag)
    if len(lags) != nd:
        raise DataError(f"max_lag has {len(lags)} values for {nd} spatial axes")
    # lags beyond half the largest region have too few pixel pairs to mean anything
    return tuple(int(min(max(lag, 0), max((s[i] - 1) // 2 for s in shapes))) for i, lag in enumerate(lags))


def _pair_sums(stacks: list[np.ndarray], lags: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Summed products and pair counts at lags ``-lag..lag`` over all images of all regions."""
    nd = len(lags)
    size = tuple(2 * lag + 1 for lag in lags)
    total = np.zeros(size)
    count = np.zeros(size)
    for stack in stacks:
        shape = stack.shape[1:]
        fshape = tuple(s + lag + 1 for s, lag in zip(shape, lags))
        axes_f = tuple(range(1, nd + 1))
        spec = np.fft.rfftn(stack, s=fshape, axes=axes_f)
        prod = np.fft.irfftn(np.abs(spec) ** 2, s=fshape, axes=axes_f).sum(axis=0)
        own = tuple(range(nd))
        ones = np.fft.rfftn(np.ones(shape), s=fshape, axes=own)
        pairs = np.rint(np.fft.irfftn(np.abs(ones) ** 2, s=fshape, axes=own)) * stack.shape[0]
        # wrap-around indices: lag -k sits at fshape - k, which the roll brings to the front
        crop = tuple(np.arange(-lag, lag + 1) % f for lag, f in zip(lags, fshape))
        total += prod[np.ix_(*crop)]
        count += np.maximum(pairs[np.ix_(*crop)], 0)
    return total, count


def _normalised(total: np.ndarray, count: np.ndarray) -> np.ndarray:
    acov = total / np.maximum(count, 1)
    zero = acov[tuple(s // 2 for s in acov.shape)]
    if zero <= 1e-300:
        raise DataError("the noise region is constant; it has no noise to analyse")
    return acov / zero


def check_region_size(stacks: list[np.ndarray]) -> None:
    """Refuse regions that are all too small to correlate (:class:`DataError`)."""
    if all(min(s.shape[-2:]) < 2 for s in stacks):
        raise DataError(f"the noise region {stacks[0].shape[1:]} is too small; draw at least 8x8 pixels")


def autocorrelation(
    noise: np.ndarray | Sequence[np.ndarray],
    *,
    axes: str | None = None,
    max_lag: int | tuple[int, ...] = 16,
    signal_sigma: float | None = None,
) -> np.ndarray:
    """Normalised spatial autocorrelation of noise, pooled over one or several regions.

    The mean of each image is removed (and, with ``signal_sigma``, its smooth signal, see
    :func:`remove_signal`). The autocovariance comes from zero-padded FFTs: the pixel-pair
    products at each lag are summed over all images of all regions and divided by the number of
    pairs (unbiased), then divided by the value at zero lag. With ``signal_sigma`` the small
    offset that the blur subtraction leaves at all lags (the median over lags) is removed before
    normalising, so that a dark frame gives the same mask with or without it.

    Parameters
    ----------
    noise : np.ndarray or sequence of np.ndarray
        Noise (a dark frame, an empty region, or a list of them with the same axes).
    axes : str, optional
        Axes of each region over ``STCZYX``; default ``YX`` for 2D and ``ZYX`` for 3D.
    max_lag : int or tuple of int
        Largest lag kept along each spatial axis (ZYX order if a tuple), further limited to half
        the largest region.
    signal_sigma : float, optional
        Remove signal first: subtract a Gaussian blur of this sigma (px) from each YX plane.

    Returns
    -------
    np.ndarray
        float32 over the spatial axes (``YX`` or ``ZYX``), ``2 * lag + 1`` per axis, centred,
        1 at the centre (zero lag).
    """
    stacks, _ = as_stacks(noise, axes)
    check_region_size(stacks)
    return stack_autocorrelation(stacks, max_lag, signal_sigma).astype(np.float32)


def stack_autocorrelation(
    stacks: list[np.ndarray], max_lag: int | tuple[int, ...], signal_sigma: float | None, clip: bool | None = None
) -> np.ndarray:
    """:func:`autocorrelation` of stacks from :func:`as_stacks`, float64. ``clip``: clip outliers
    (:func:`_clip_outliers`; default: with ``signal_sigma`` only), e.g. a camera's hot pixels."""
    lags = _lags([s.shape[1:] for s in stacks], max_lag)
    prepared = []
    for stack in stacks:
        axes_f = tuple(range(1, stack.ndim))
        centred = stack - stack.mean(axis=axes_f, keepdims=True)
        if signal_sigma:
            centred = remove_signal(centred, signal_sigma)
        if bool(signal_sigma) if clip is None else clip:
            centred = _clip_outliers(centred)
        prepared.append(centred)
    ac = _normalised(*_pair_sums(prepared, lags))
    if signal_sigma and ac.size > 1:
        base = float(np.median(np.delete(ac.ravel(), ac.size // 2)))
        if base < 1:
            ac = (ac - base) / (1 - base)
    return ac


def power_spectrum(image: np.ndarray, *, axes: str | None = None) -> np.ndarray:
    """Centred log10 power spectrum of an image (mean removed), averaged over non-spatial axes.

    Structured noise shows as bright bands: noise correlated along X is broad along the X
    frequency axis and narrow along Y (Broaddus et al. 2020, Fig. 3).

    Returns
    -------
    np.ndarray
        float32, same spatial shape as the input, zero frequency at the centre.
    """
    stack, _ = as_stack(image, axes)
    axes_f = tuple(range(1, stack.ndim))
    centred = stack - stack.mean(axis=axes_f, keepdims=True)
    power = (np.abs(np.fft.fftn(centred, axes=axes_f)) ** 2).mean(axis=0) / np.prod(stack.shape[1:])
    return np.log10(np.fft.fftshift(power) + 1e-12).astype(np.float32)


def noise_floor(autocorr: np.ndarray, n_pixels: int | None = None) -> float:
    """Estimation noise of an autocorrelation at uncorrelated lags.

    1.4826 x the MAD of all lags but 0, and at least ``1 / sqrt(n_pixels)`` when the number of
    pixels behind the estimate is given: the standard error of a white-noise autocorrelation,
    which the MAD of a small region's few lags can underestimate.
    """
    ac = np.asarray(autocorr, dtype=np.float64)
    values = np.delete(ac.ravel(), ac.size // 2)
    mad = float(1.4826 * np.median(np.abs(values - np.median(values)))) if values.size else 0.0
    return max(mad, 1 / np.sqrt(n_pixels)) if n_pixels else mad

