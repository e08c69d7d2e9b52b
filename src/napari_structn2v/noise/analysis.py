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

This module holds the analysis and its reliability; the statistics are
:mod:`~napari_structn2v.noise.autocorr`'s, the mask rule :mod:`~napari_structn2v.noise.mask_rule`'s and
the background tiles :mod:`~napari_structn2v.noise.background`'s. Their public names are importable
from here too.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from ..method.masks import describe_mask, mask_to_spec
from .autocorr import (
    CLIP_SIGMA,
    SIGNAL_SIGMA,
    as_stacks,
    autocorrelation,
    check_region_size,
    default_axes,
    noise_floor,
    power_spectrum,
    remove_signal,
    stack_autocorrelation,
)
from .background import Background, find_background
from .fixed_pattern import FixedPattern, estimate_fixed_pattern, subtract_pattern
from .mask_rule import GROW_SIGMA, suggest_mask

__all__ = [
    "CLIP_SIGMA", "FINE_SIGMA", "GROW_SIGMA", "MAX_CONTAMINATION", "MAX_CONTAMINATION_MULTI", "MAX_DETECTABLE",
    "SIGNAL_SIGMA", "Background", "FixedPattern", "NoiseAnalysis", "analyze_noise", "autocorrelation", "find_background",
    "estimate_fixed_pattern", "noise_floor", "power_spectrum", "remove_signal", "suggest_mask",
]

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


def _contamination(stacks: list[np.ndarray], ac: np.ndarray, mask: np.ndarray) -> float:
    """Share of the regions' variance held by signal coarser than the blur (0: none).

    The blur of :func:`remove_signal` keeps a share of each YX plane's variance (its mean
    removed). Noise leaves it only what its own correlation predicts: the signal-removed
    autocorrelation ``ac`` summed over the suggested ``mask``'s lags (lag 0 of Z), weighted by the
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
    hidden = mask[mask.shape[0] // 2] if mask.ndim == 3 else mask
    hy, hx = mask.shape[-2] // 2, mask.shape[-1] // 2
    cy, cx = plane.shape[0] // 2, plane.shape[1] // 2
    window = plane[cy - hy : cy + hy + 1, cx - hx : cx + hx + 1]
    kernel = _blur_autocorrelation(max(hy, hx))
    c = kernel.size // 2
    weights = np.outer(kernel[c - hy : c + hy + 1], kernel[c - hx : c + hx + 1])
    # over the mask's lags only: elsewhere the noise is uncorrelated, and the estimate's small
    # negative offset there (-0.03 to -0.07 beside a diagonal line) would hide the noise's share
    return max(0.0, kept / total - float(np.sum((window * weights)[hidden])))


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
    fixed_pattern: FixedPattern | None = None

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
        """A human-readable summary; its last line is the suggested mask spec (``custom WxH (n px)``
        after a drawing of the mask for a shape that is not a box)."""
        lines = [f"noise autocorrelation over {self.axes}, lags +-{self.autocorrelation.shape[-1] // 2}"]
        if self.fixed_pattern is not None:
            lines.append(self.fixed_pattern.report())
        for letter, prof in self.profiles.items():
            half = prof.size // 2
            vals = " ".join(f"{v:.2f}" for v in prof[half : half + 11])
            lines.append(f"  along {letter}, lag 0..{min(10, half)}: {vals}")
        lines.append(self.reliability())
        lines.append(
            f"significance threshold {self.threshold:.3f} (noise floor {self.floor:.4f}); "
            f"correlated extent (WxH{'xD' if self.autocorrelation.ndim == 3 else ''}):"
        )
        if self.spec is None:  # a shape no WxH spec names: draw it ('#' hidden), planes from Z = top
            for plane in self.mask.reshape(-1, *self.mask.shape[-2:]):
                lines.extend("  " + "".join("#" if v else "." for v in row) for row in plane)
        lines.append(self.spec or describe_mask(self.mask))
        return "\n".join(lines)


def analyze_noise(
    noise: np.ndarray | Sequence[np.ndarray],
    *,
    axes: str | None = None,
    max_lag: int | tuple[int, ...] = 16,
    min_corr: float = 0.1,
    n_sigma: float = 4.0,
    signal_sigma: float | None = SIGNAL_SIGMA,
    dark: bool = False,
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
    dark : bool
        ``noise`` is one array of dark frames (no light): look for a camera's fixed pattern, the
        noise that repeats in every frame (:func:`~napari_structn2v.noise.fixed_pattern.estimate_fixed_pattern`,
        every axis but Y and X a frame); when found it is removed before the analysis, so the mask
        is the one for what remains, and the result carries it as ``fixed_pattern`` (with one
        frame: a :class:`~napari_structn2v.noise.fixed_pattern.FixedPattern` without a pattern).

    Returns
    -------
    NoiseAnalysis
        Its ``warnings`` are empty when the estimate is reliable (see :class:`NoiseAnalysis`).
    """
    fixed = None
    if dark:
        if not hasattr(noise, "shape"):
            raise DataError("a fixed pattern is looked for in one array of dark frames, not in several regions")
        fixed = estimate_fixed_pattern(noise, axes)
        noise = subtract_pattern(noise, axes or default_axes(np.ndim(noise)), fixed)
    stacks, sp = as_stacks(noise, axes)
    check_region_size(stacks)
    rule = dict(max_lag=max_lag, min_corr=min_corr, n_sigma=n_sigma)
    ac, floor, mask = _suggest(stacks, signal_sigma, **rule)
    ac = ac.astype(np.float32)
    removed, _, removed_mask = (ac, floor, mask) if signal_sigma == SIGNAL_SIGMA else _suggest(stacks, SIGNAL_SIGMA, **rule)
    contamination = _contamination(stacks, removed, removed_mask)
    # a dark frame large and clean enough to be reliable as it is (the levels were measured on
    # signal-removed estimates) is analysed without the removal, which only biases it there
    if dark and signal_sigma == SIGNAL_SIGMA and contamination <= MAX_CONTAMINATION and n_sigma * floor <= MAX_DETECTABLE:
        ac, floor, mask = _dark_estimate(stacks, rule, (ac, floor, mask))
    unconfirmed = None
    if signal_sigma and contamination > MAX_CONTAMINATION:
        mask, unconfirmed = _confirm_axes(stacks, mask, rule), mask
        unconfirmed = None if unconfirmed.shape == mask.shape else unconfirmed
    n_pixels = int(sum(s.size for s in stacks))
    detectable = n_sigma * floor
    warnings = _warnings(sp, ac, mask, n_pixels, detectable, contamination, unconfirmed)
    return NoiseAnalysis(
        autocorrelation=ac,
        mask=mask,
        spec=mask_to_spec(mask),
        threshold=max(min_corr, n_sigma * floor),
        floor=floor,
        axes=sp,
        profiles=_profiles(ac, sp),
        n_pixels=n_pixels,
        n_regions=len(stacks),
        detectable=detectable,
        contamination=contamination,
        warnings=warnings,
        fixed_pattern=fixed,
    )


def _dark_estimate(stacks: list[np.ndarray], rule: dict, removed: tuple) -> tuple[np.ndarray, float, np.ndarray]:
    """For dark frames: the plain estimate (mean removed, outliers clipped), unless its correlation
    does not fade within the lags analysed (a dark frame with shading); else ``removed``.

    Removing signal biases the autocorrelation low by about the noise's summed correlation times
    the blur's autocorrelation, which cut masks short: a Gaussian blob of noise (sigma 1.2 px)
    got 5x5, and 7x7 trained to 26.94 dB against 25.53; the Y lines of dense2d_y got 1x17, and
    1x19 trained to 29.30 dB against 29.17 (1500 steps; benchmarks/noise_models.py). A dark frame
    has no signal to remove. Every other development set's dark frame gives the same mask either way.
    """
    ac, floor, mask = _suggest(stacks, None, clip=True, **rule)
    if _unfaded(mask, ac):
        return removed
    return ac.astype(np.float32), floor, mask


def _unfaded(mask: np.ndarray, ac: np.ndarray) -> list[int]:
    """The axes along which the mask reaches the end of the lags analysed: the correlation does
    not fade within them (signal, shading, or too short a range)."""
    return [i for i, (n, m) in enumerate(zip(mask.shape, ac.shape)) if m > 1 and n >= m]


def _profiles(ac: np.ndarray, sp: str) -> dict[str, np.ndarray]:
    """The autocorrelation along each spatial axis through the centre, X first."""
    centre = tuple(s // 2 for s in ac.shape)
    profiles = {}
    for i, letter in enumerate(sp):
        idx = list(centre)
        idx[i] = slice(None)
        profiles[letter] = ac[tuple(idx)].copy()
    return dict(sorted(profiles.items(), key=lambda kv: "XYZ".index(kv[0])))


def _suggest(
    stacks: list[np.ndarray], sigma: float | None, *, max_lag: int | tuple[int, ...], min_corr: float, n_sigma: float,
    clip: bool | None = None,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Autocorrelation (signal removed with ``sigma``), its noise floor and suggested mask."""
    ac = stack_autocorrelation(stacks, max_lag, sigma, clip)
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
    # an axis left out keeps the mask's middle plane (a box's is all of it; a cross's, its line)
    keep = tuple(
        slice(None) if i == longest or f > 1 else slice(n // 2, n // 2 + 1)
        for i, (n, f) in enumerate(zip(mask.shape, fine.shape))
    )
    return np.ascontiguousarray(mask[keep])


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
        # a diagonal or a cross has no line along one axis to offer instead
        instead = f"; along {sp[longest]} alone it is {mask_to_spec(alone)}" if mask.all() else ""
        warnings.append(
            f"the mask extends along {' and '.join(sorted(extended, key='XYZ'.index))}, as signal in the "
            f"region ({contamination:.0%} of its variance) would make it{instead}; check with an empty area "
            f"or a dark frame"
        )
    edge = [sp[i] for i in _unfaded(mask, ac)]
    if edge:
        warnings.append(
            f"the correlation does not fade within the lags analysed along {', '.join(edge)} "
            f"(+-{ac.shape[sp.index(edge[0])] // 2}): signal, or a range too short; "
            f"choose an empty area{', a larger Z range' if 'Z' in edge else ''} or a dark frame"
        )
    return warnings

