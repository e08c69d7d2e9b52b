"""Noise analysis: spatial autocorrelation, power spectrum and automatic blind-mask suggestion.

The estimate is built to survive real regions drawn on real images, whose two enemies are signal
(a cell edge, a gradient) and too few pixels:

- smooth signal is removed before correlating (each plane minus its Gaussian blur, sigma
  :data:`SIGNAL_SIGMA`), and the small offset this leaves on the autocorrelation is removed again;
- several regions are pooled (their pixel-pair sums add up);
- the mask grows along straight paths from the centre only (no detours through chance lags), and
  in regions holding signal its secondary axes must survive a finer removal (:data:`FINE_SIGMA`);
- every result carries its reliability (:class:`NoiseAnalysis` ``detectable``, ``contamination``,
  ``n_pixels``, ``reliable``, ``warnings``);
- :func:`find_background` picks the darkest, flattest tiles of a whole image as noise regions.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .axes import spatial_axes, to_internal, validate_axes
from .errors import DataError
from .masks import box_mask, mask_to_spec

#: sigma (pixels, Y and X) of the Gaussian blur subtracted from each plane to remove signal before
#: correlating. Measured (benchmarks/roi_robustness.py): without it, 64-96 px ROIs on the 2D sample
#: gave 9x5 ... 13x11 (signal gradients look like long-range correlation); with it they give 9x1-11x1.
SIGNAL_SIGMA = 4.0
#: residuals beyond this many robust sigmas are clipped (Gaussian noise: 1.2 % of pixels)
CLIP_SIGMA = 2.5
#: hysteresis of the mask rule: a lag joins a correlated region already seeded at
#: ``n_sigma`` x floor when it is at least this many floors (and ``min_corr``)
GROW_SIGMA = 2.0
#: reliability levels, see :attr:`NoiseAnalysis.reliable`
MAX_DETECTABLE = 0.3
#: measured on the ROIs of benchmarks/roi_robustness.py: 32 px ROIs of pure noise (the four dark
#: frames) give at most 0.067 (95 % under 0.03); every ROI on signal whose mask grew along a
#: second axis (9x7, 5x15x3, 7x15x11 ...) gave 0.12 or more
MAX_CONTAMINATION = 0.08
#: a mask extended along two or more axes needs a cleaner region: structured noise of
#: microscopes runs along one axis, signal along all. 95 % of those pure-noise ROIs stay under
#: 0.03; a Z-constant fibre across a 7x32x32 ROI gave 0.05-0.10 and masks like 5x13x5
MAX_CONTAMINATION_MULTI = 0.03
#: sigma (px) of the finer signal removal that must confirm a mask's secondary axes in regions
#: holding signal (contamination above MAX_CONTAMINATION, see :func:`_confirm_axes`). Measured
#: (benchmarks/roi_robustness.py): on signal it cut 17 of the 18 masks grown along a second axis
#: back to the dark frame's (3D sample: 32 px ROIs 76 -> 90 % agree, 64 px 22 -> 100 %). It is
#: no removal for pure noise: 11x1 lines lose 10 % of their variance to it (sigma 4: 2.5 %), and
#: noise correlated over 3 x 0.6 px (Gaussian) lost its 3 px along Y to it in 5 of 40 ROIs,
#: hence only in regions holding signal
FINE_SIGMA = 2.0


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


def _regions(noise: np.ndarray | Sequence[np.ndarray], axes: str | None) -> tuple[list[np.ndarray], str]:
    """One or several noise regions (same axes) as ``(N, [Z,] Y, X)`` float64 stacks."""
    if isinstance(noise, np.ndarray) or not isinstance(noise, (list, tuple)):
        items = [noise]
    else:
        items = list(noise)
        if not items:
            raise DataError("no noise region given")
    stacks, sp = [], None
    for item in items:
        stack, s = _as_stack(item, axes)
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


def _check_size(stacks: list[np.ndarray]) -> None:
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
    stacks, _ = _regions(noise, axes)
    _check_size(stacks)
    return _autocorrelation(stacks, max_lag, signal_sigma).astype(np.float32)


def _autocorrelation(stacks: list[np.ndarray], max_lag: int | tuple[int, ...], signal_sigma: float | None) -> np.ndarray:
    lags = _lags([s.shape[1:] for s in stacks], max_lag)
    prepared = []
    for stack in stacks:
        axes_f = tuple(range(1, stack.ndim))
        centred = stack - stack.mean(axis=axes_f, keepdims=True)
        if signal_sigma:
            centred = _clip_outliers(remove_signal(centred, signal_sigma))
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
    stack, _ = _as_stack(image, axes)
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
        bool box mask over the autocorrelation's axes (``(H, W)`` or ``(D, H, W)``).
    """
    ac = np.asarray(autocorr, dtype=np.float64)
    if ac.ndim not in (2, 3) or any(s % 2 == 0 for s in ac.shape):
        raise DataError("suggest_mask needs a centred 2D/3D autocorrelation with odd sides")
    fl = noise_floor(ac) if floor is None else float(floor)
    region = _star_region(ac, max(min_corr, n_sigma * fl), max(min_corr, GROW_SIGMA * fl))
    half = np.abs(np.argwhere(region) - np.asarray(ac.shape) // 2).max(axis=0)
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
    region = ((lowest >= grow) & (highest >= seed)) | (steps == 0)
    labels, _ = ndimage.label(region.reshape(ac.shape))
    return labels == labels[tuple(centre)]


def _contamination(stacks: list[np.ndarray], ac: np.ndarray, mask: np.ndarray) -> float:
    """Share of the regions' variance held by signal coarser than the blur (0: none).

    The blur of :func:`remove_signal` keeps a share of each YX plane's variance (its mean
    removed). Noise leaves it only what its own correlation predicts: the signal-removed
    autocorrelation ``ac`` summed over the suggested ``mask`` (lag 0 of Z), weighted by the
    autocorrelation of the blur kernel (about 0.025 for the 2D sample's 11x1 lines at sigma 4).
    The excess is signal: a gradient, a cell, the flank of a fibre.
    """
    kept = total = 0.0
    for stack in stacks:
        planes = stack - stack.mean(axis=(-2, -1), keepdims=True)
        kept += float(np.sum((planes - remove_signal(planes)) ** 2))
        total += float(np.sum(planes**2))
    if total <= 0:
        return 0.0
    plane = ac[ac.shape[0] // 2] if ac.ndim == 3 else ac
    hy, hx = mask.shape[-2] // 2, mask.shape[-1] // 2
    cy, cx = plane.shape[0] // 2, plane.shape[1] // 2
    window = plane[cy - hy : cy + hy + 1, cx - hx : cx + hx + 1]
    kernel = _blur_autocorrelation(max(hy, hx))
    c = kernel.size // 2
    weights = np.outer(kernel[c - hy : c + hy + 1], kernel[c - hx : c + hx + 1])
    return max(0.0, kept / total - float(np.sum(window * weights)))


def _blur_autocorrelation(half: int, sigma: float = SIGNAL_SIGMA) -> np.ndarray:
    """Autocorrelation of the 1-D Gaussian kernel of :func:`remove_signal`, lags ``-half..half``
    at least (the kernel sums to 1, so this is the share of white noise that the blur keeps)."""
    from scipy import ndimage

    delta = np.zeros(2 * (half + int(4 * sigma) + 1) + 1)
    delta[delta.size // 2] = 1
    g = ndimage.gaussian_filter1d(delta, sigma)
    return np.correlate(g, g, "full")


@dataclass
class NoiseAnalysis:
    """Result of :func:`analyze_noise`.

    Reliability
    -----------
    ``detectable`` is the smallest correlation the estimate can tell from chance
    (``n_sigma`` x ``floor``); ``contamination`` the share of the region's variance that is
    signal coarser than the blur of :func:`remove_signal`, beyond what the noise's own
    correlation puts there. The result is ``reliable`` when ``detectable`` is at most
    :data:`MAX_DETECTABLE` (0.3: 32x32 px regions of the 2D sample's dark frame give 0.25-0.39,
    median 0.32, so most are warned; 48x48 ones 0.17-0.24, 16x16 ones 0.4-0.95),
    ``contamination`` at most :data:`MAX_CONTAMINATION` (0.08), or
    :data:`MAX_CONTAMINATION_MULTI` (0.03) for a mask along two or more axes, and the correlation
    fades within the lags analysed. ``warnings`` says what is wrong otherwise, one sentence each.
    """

    autocorrelation: np.ndarray
    mask: np.ndarray
    spec: str | None
    threshold: float
    floor: float
    axes: str
    profiles: dict[str, np.ndarray] = field(default_factory=dict)
    n_pixels: int = 0
    n_regions: int = 1
    detectable: float = 0.0
    contamination: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def reliable(self) -> bool:
        """True when no reliability warning applies."""
        return not self.warnings

    def reliability(self) -> str:
        """One line: pixels, regions, detectable correlation, contamination, verdict."""
        verdict = "reliable" if self.reliable else "NOT reliable"
        regions = f" in {self.n_regions} regions" if self.n_regions > 1 else ""
        return (
            f"reliability: {self.n_pixels} px{regions}, finds correlations >= {self.detectable:.2f} "
            f"(needs <= {MAX_DETECTABLE}), signal {self.contamination:.2f} (needs <= {MAX_CONTAMINATION}): {verdict}"
        )

    def report(self) -> str:
        """A human-readable summary; its last line is the suggested mask spec."""
        lines = [f"noise autocorrelation over {self.axes}, lags +-{self.autocorrelation.shape[-1] // 2}"]
        for letter, prof in self.profiles.items():
            half = prof.size // 2
            vals = " ".join(f"{v:.2f}" for v in prof[half : half + 11])
            lines.append(f"  along {letter}, lag 0..{min(10, half)}: {vals}")
        lines.append(self.reliability())
        lines.append(
            f"significance threshold {self.threshold:.3f} (noise floor {self.floor:.4f}); "
            f"correlated extent (WxH{'xD' if self.autocorrelation.ndim == 3 else ''}):"
        )
        lines.append(self.spec or "x".join(map(str, self.mask.shape[::-1])))
        return "\n".join(lines)


def analyze_noise(
    noise: np.ndarray | Sequence[np.ndarray],
    *,
    axes: str | None = None,
    max_lag: int | tuple[int, ...] = 16,
    min_corr: float = 0.1,
    n_sigma: float = 4.0,
    signal_sigma: float | None = SIGNAL_SIGMA,
) -> NoiseAnalysis:
    """Autocorrelation, line profiles, suggested mask and reliability of noise regions.

    Parameters
    ----------
    noise : np.ndarray or sequence of np.ndarray
        A dark frame, an empty region, or several regions (pooled), each with ``axes``.
    axes : str, optional
        Axes of each region over ``STCZYX``; default ``YX`` (2D) or ``ZYX`` (3D).
    max_lag, min_corr, n_sigma
        See :func:`autocorrelation` and :func:`suggest_mask`.
    signal_sigma : float or None
        Sigma of the blur subtracted to remove signal (:func:`remove_signal`); None keeps the
        plain, mean-removed estimate (for frames known to hold only noise).

    Returns
    -------
    NoiseAnalysis
        Its ``warnings`` are empty when the estimate is reliable (see :class:`NoiseAnalysis`).
    """
    stacks, sp = _regions(noise, axes)
    _check_size(stacks)
    rule = dict(max_lag=max_lag, min_corr=min_corr, n_sigma=n_sigma)
    ac, floor, mask = _suggest(stacks, signal_sigma, **rule)
    ac = ac.astype(np.float32)
    removed, _, removed_mask = (ac, floor, mask) if signal_sigma == SIGNAL_SIGMA else _suggest(stacks, SIGNAL_SIGMA, **rule)
    contamination = _contamination(stacks, removed, removed_mask)
    unconfirmed = None
    if signal_sigma and contamination > MAX_CONTAMINATION:
        mask, unconfirmed = _confirm_axes(stacks, mask, rule), mask
        unconfirmed = None if unconfirmed.shape == mask.shape else unconfirmed
    n_pixels = int(sum(s.size for s in stacks))
    detectable = n_sigma * floor
    warnings = _warnings(sp, ac, mask, n_pixels, detectable, contamination, unconfirmed)
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
        n_pixels=n_pixels,
        n_regions=len(stacks),
        detectable=detectable,
        contamination=contamination,
        warnings=warnings,
    )


def _suggest(
    stacks: list[np.ndarray], sigma: float | None, *, max_lag: int | tuple[int, ...], min_corr: float, n_sigma: float
) -> tuple[np.ndarray, float, np.ndarray]:
    """Autocorrelation (signal removed with ``sigma``), its noise floor and suggested mask."""
    ac = _autocorrelation(stacks, max_lag, sigma)
    floor = noise_floor(ac, int(sum(s.size for s in stacks)))
    return ac, floor, suggest_mask(ac, min_corr=min_corr, n_sigma=n_sigma, floor=floor)


def _confirm_axes(stacks: list[np.ndarray], mask: np.ndarray, rule: dict) -> np.ndarray:
    """The mask without the secondary axes that a finer signal removal does not confirm.

    The longest axis stays. Any other axis stays extended only if the mask suggested after
    removing a blur of sigma :data:`FINE_SIGMA` extends along it too: the flanks of spots and
    fibres (2-4 px) fall to the finer removal, a noise correlation of a few pixels does not.
    """
    _, _, fine = _suggest(stacks, FINE_SIGMA, **rule)
    longest = int(np.argmax(mask.shape))
    keep = [n if i == longest or f > 1 else 1 for i, (n, f) in enumerate(zip(mask.shape, fine.shape))]
    return np.ones(keep, dtype=bool)


def _warnings(
    sp: str,
    ac: np.ndarray,
    mask: np.ndarray,
    n_pixels: int,
    detectable: float,
    contamination: float,
    unconfirmed: np.ndarray | None = None,
) -> list[str]:
    """The reliability warnings of an analysis (see :class:`NoiseAnalysis`), one sentence each."""
    warnings = []
    if detectable > MAX_DETECTABLE:
        warnings.append(
            f"too few pixels ({n_pixels}): only correlations above {detectable:.2f} can be told from "
            f"chance, so the mask may be too small; use a larger region (32x32 px or more), several "
            f"regions, or a dark frame"
        )
    extended = [letter for letter, n in zip(sp, mask.shape) if n > 1]
    if contamination > MAX_CONTAMINATION:
        cut = ""
        if unconfirmed is not None:
            gone = [letter for letter, n, m in zip(sp, mask.shape, unconfirmed.shape) if n < m]
            cut = (
                f"; along {' and '.join(sorted(gone, key='XYZ'.index))} the correlation fades when finer "
                f"structure is removed too (sigma {FINE_SIGMA:g} px), as signal's does, so the mask leaves "
                f"{'them' if len(gone) > 1 else 'it'} out ({mask_to_spec(unconfirmed)} with "
                f"{'them' if len(gone) > 1 else 'it'})"
            )
        warnings.append(
            f"the region holds signal ({contamination:.0%} of its variance is smooth structure that "
            f"the noise does not explain){cut}: the mask may take signal for noise; choose an empty area "
            f"or a dark frame"
        )
    elif len(extended) > 1 and contamination > MAX_CONTAMINATION_MULTI:
        longest = int(np.argmax(mask.shape))
        alone = np.ones([n if i == longest else 1 for i, n in enumerate(mask.shape)], dtype=bool)
        warnings.append(
            f"the mask extends along {' and '.join(sorted(extended, key='XYZ'.index))}, as signal in the "
            f"region ({contamination:.0%} of its variance) would make it; along {sp[longest]} alone it is "
            f"{mask_to_spec(alone)}; check with an empty area or a dark frame"
        )
    edge = [letter for letter, n, m in zip(sp, mask.shape, ac.shape) if m > 1 and n >= m]
    if edge:
        warnings.append(
            f"the correlation does not fade within the lags analysed along {', '.join(edge)} "
            f"(+-{ac.shape[sp.index(edge[0])] // 2}): signal, or a range too short; "
            f"choose an empty area{', a larger Z range' if 'Z' in edge else ''} or a dark frame"
        )
    return warnings


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
    ax = validate_axes(axes if axes is not None else _default_axes(arr.ndim), arr.ndim)
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
            stack, _ = _as_stack(region, ax)
            smooth = ndimage.gaussian_filter(stack, [0.0] * (stack.ndim - 2) + [SIGNAL_SIGMA] * 2, mode="reflect")
            corners.append((y, x))
            regions.append(region)
            means.append(stack.mean())
            flats.append(smooth.std())
    score = np.argsort(np.argsort(means)) + np.argsort(np.argsort(flats))
    n = min(len(regions), max(min_tiles, int(round(fraction * len(regions)))))
    keep = sorted(np.argsort(score, kind="stable")[:n])
    return Background([regions[i] for i in keep], ax, [corners[i] for i in keep], t)
