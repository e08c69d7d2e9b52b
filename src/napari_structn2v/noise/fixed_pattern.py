"""Fixed-pattern noise of cameras: a pattern that is the same in every frame.

sCMOS and CCD cameras add offsets that do not change from frame to frame (column and row offsets,
pixel offsets, patterns correlated along a line). A blind-spot network cannot remove them: the
pattern is not noise from frame to frame, and a 2D net that reads neighbouring Z slices sees it at
the same pixel in every neighbour (once it is subtracted, the neighbours help again). A stack of dark frames shows it exactly: its mean over the
frames.

- :func:`estimate_fixed_pattern` finds it in a dark stack (frames correlate with each other at any
  Z/T distance: the autocorrelation does not fade along Z or T), and estimates it from the frames'
  mean, with the frame-to-frame noise that the mean still holds filtered out (:data:`PSD_SMOOTH`);
- :func:`subtract_pattern` removes it from in-memory images (training's data preparation), and
  :class:`PatternSubtracted` from any array-like as it is read (prediction, tile by tile).

Only the pattern's spatial variation is removed (its mean is zero), so intensities keep their
scale and a model's normalisation still applies.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..axes import full_key, to_internal, validate_axes
from ..errors import DataError

#: the pattern is reported when the two halves of the dark stack correlate more than this many
#: times the correlation that independent frames reach by chance (see :func:`_chance_level`) ...
N_SIGMA = 4.0
#: ... and more than this (0.02: a pattern holding about 1 % of a dark frame's variance with 4
#: frames; below that its removal changes PSNR by less than 0.05 dB)
MIN_CORRELATION = 0.02
#: side (frequency bins) of the box over which the power spectra are averaged before the Wiener
#: gain is formed: 3 keeps a column-offset pattern (all its power on one line of bins) at a gain
#: of 0.9+ with 4 frames, while one bin alone (chi^2 with 2 degrees of freedom) gives gains that
#: scatter from 0 to 1
PSD_SMOOTH = 3
#: the Wiener gain subtracts this many times the noise power: 2 halves the noise that chance
#: excesses of power let through (estimate off by 0.0054 instead of 0.0094 with 8 frames of
#: column/row offsets) and costs 20 % more error on a pattern correlated along X (0.032 vs 0.027)
OVERSUBTRACT = 2.0


@dataclass(frozen=True)
class FixedPattern:
    """A camera's fixed pattern, as :func:`estimate_fixed_pattern` found it in a dark stack.

    Attributes
    ----------
    pattern : np.ndarray or None
        float32 ``(Y, X)``, zero mean, in the dark frames' intensity units; None when none was found
        (or a single frame cannot show one).
    correlation : float
        Correlation of the means of the stack's two halves (even and odd frames); 0 with one frame.
    chance : float
        The correlation that independent frames reach by chance (one standard deviation).
    share : float
        Share of a dark frame's variance that repeats in every frame (0 when none was found).
    n_frames : int
        Frames in the dark stack (all axes but Y and X).
    """

    pattern: np.ndarray | None
    correlation: float = 0.0
    chance: float = 0.0
    share: float = 0.0
    n_frames: int = 1
    warnings: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """True when the stack holds a pattern that repeats in every frame."""
        return self.pattern is not None

    def report(self) -> str:
        """One line for the noise analysis report."""
        if self.n_frames < 2:
            return "fixed pattern: one dark frame cannot show noise that repeats in every frame (give a dark stack)"
        stat = f"frames correlate {self.correlation:+.3f}, chance level {self.chance:.3f}"
        if not self.found:
            return f"fixed pattern: none over {self.n_frames} dark frames ({stat})"
        return (
            f"fixed pattern: {self.share:.0%} of a dark frame's variance repeats in every one of the "
            f"{self.n_frames} frames ({stat}); it is subtracted before training and prediction and "
            f"the mask is suggested from the rest"
        )


def dark_frames(dark: np.ndarray, axes: str | None = None) -> np.ndarray:
    """A dark stack as ``(N, Y, X)`` float64 frames: every axis but Y and X is a frame
    (default axes: ``YX`` for 2D, ``ZYX`` for 3D, ``TZYX`` for 4D)."""
    arr = np.asarray(dark)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"the dark frames must be numeric, got dtype {arr.dtype}")
    if axes is None and arr.ndim not in (2, 3, 4):
        raise DataError(f"cannot tell the axes of {arr.ndim}-D dark frames; pass axes such as 'TYX'")
    ax = validate_axes(axes if axes is not None else "TZYX"[-arr.ndim:], arr.ndim)
    frames, _ = to_internal(arr, ax)
    frames = frames.reshape((-1, *frames.shape[-2:])).astype(np.float64)
    if frames.size == 0:
        raise DataError("the dark frames are empty")
    if not np.isfinite(frames).all():
        raise DataError("the dark frames contain NaN or infinite values")
    return frames


def estimate_fixed_pattern(dark: np.ndarray, axes: str | None = None, *, image_axes: str | None = None) -> FixedPattern:
    """Find and estimate the pattern that repeats in every frame of a dark stack.

    Parameters
    ----------
    dark : np.ndarray
        Dark frames (no light), the same size (Y, X) as the images; every axis but Y and X counts
        as a frame.
    axes : str, optional
        ``dark``'s axes over ``STCZYX`` (default ``YX``, ``ZYX``, ``TZYX`` by dimension).
    image_axes : str, optional
        The axes of the images to be denoised: with Z or T and a single dark frame, a warning says
        that repeating noise cannot be ruled out.

    Returns
    -------
    FixedPattern
        ``pattern`` is None when the frames do not correlate beyond chance.

    Notes
    -----
    Detection: the means of the even and the odd frames are two independent estimates of the
    pattern; their correlation is compared with its spread for independent frames (the
    autocorrelation of a dark stack with a pattern does not fade along Z or T).
    Estimate (:func:`_estimate`): the mean over all frames, with column and row offsets taken as
    line means and the rest Wiener-filtered: per spatial frequency it keeps the power above what
    the frames' own noise (their deviations from the mean, divided by the number of frames) puts
    into the mean. Subtracting the raw mean of ``n`` frames would add that noise, ``1 / n`` of a
    frame's variance, as a new fixed pattern. A pattern with the same spectrum as the frames' noise
    (pixel offsets, or offsets correlated along the read noise's axis) cannot be told from it by
    frequency: its estimate keeps about ``1 / n`` of the noise, so more dark frames help.
    """
    frames = dark_frames(dark, axes)
    frames = frames - frames.mean(axis=(1, 2), keepdims=True)  # offsets that drift per frame are no pattern
    n = frames.shape[0]
    warnings = []
    if n < 2:
        single = FixedPattern(None, n_frames=1)
        text = single_frame_warning(single, image_axes or "")
        return FixedPattern(None, n_frames=1, warnings=[text] if text else [])
    half_a, half_b = frames[0::2].mean(axis=0), frames[1::2].mean(axis=0)
    r = float(np.sum(half_a * half_b) / np.sqrt(np.sum(half_a**2) * np.sum(half_b**2) + 1e-300))
    mean = frames.mean(axis=0)
    deviations = frames - mean
    chance = _chance_level(_smooth(np.mean(np.abs(np.fft.fft2(deviations)) ** 2, axis=0)))
    if r < max(MIN_CORRELATION, N_SIGMA * chance):
        return FixedPattern(None, r, chance, 0.0, n, warnings)
    pattern = _estimate(mean, deviations)
    share = float(np.mean(pattern**2) / np.mean(frames**2))
    return FixedPattern(pattern.astype(np.float32), r, chance, share, n, warnings)


def _line_offsets(mean: np.ndarray, deviations: np.ndarray, axis: int) -> np.ndarray:
    """Offsets constant along ``axis`` (0: column offsets, 1: row offsets) of the frames' ``mean``,
    shrunk by the share of their variance that the frames' noise explains."""
    n = deviations.shape[0]
    offsets = mean.mean(axis=axis, keepdims=True)
    noise_var = float(np.mean(np.sum(deviations.mean(axis=axis + 1, keepdims=True) ** 2, axis=0))) / (n - 1) / n
    return max(0.0, 1.0 - noise_var / max(float(offsets.var()), 1e-300)) * offsets


def _estimate(mean: np.ndarray, deviations: np.ndarray) -> np.ndarray:
    """The pattern in the frames' ``mean``: column and row offsets (each averaged over a whole line
    of every frame), then the rest Wiener-filtered against the noise of the mean.

    Per spatial frequency the rest keeps ``1 - OVERSUBTRACT * noise / power`` of itself, with the
    noise power the deviations' divided by the number of frames, both averaged over
    :data:`PSD_SMOOTH` bins. Measured on 256 x 256 frames of read noise correlated along X
    (sigma 0.085) with column and row offsets (sigma 0.06, 0.02): the estimate is off by 0.0053
    (8 frames; 0.0067 with 4) where the plain mean is off by 0.036 (0.051).
    """
    n = deviations.shape[0]
    columns = _line_offsets(mean, deviations, 0)
    rows = _line_offsets(mean - columns, deviations, 1)
    rest = mean - columns - rows
    noise = deviations - deviations.mean(axis=1, keepdims=True) - deviations.mean(axis=2, keepdims=True)
    noise_psd = _smooth(np.mean(np.abs(np.fft.fft2(noise)) ** 2, axis=0) * n / (n - 1)) / n
    spectrum = np.fft.fft2(rest)
    power = np.maximum(_smooth(np.abs(spectrum) ** 2), 1e-300)
    gain = np.clip(1.0 - OVERSUBTRACT * noise_psd / power, 0.0, 1.0)
    gain[0, :] = gain[:, 0] = 0.0  # the line offsets (and the mean) are taken already
    pattern = columns + rows + np.fft.ifft2(gain * spectrum).real
    return pattern - pattern.mean()  # zero mean: the images keep their offset


def _smooth(psd: np.ndarray) -> np.ndarray:
    """A power spectrum averaged over :data:`PSD_SMOOTH` x :data:`PSD_SMOOTH` bins (periodic)."""
    from scipy import ndimage

    return ndimage.uniform_filter(psd, PSD_SMOOTH, mode="wrap")


def _chance_level(psd: np.ndarray) -> float:
    """Standard deviation of the correlation of two independent fields with power spectrum ``psd``:
    ``sqrt(sum psd^2) / sum psd`` (white noise: ``1 / sqrt(pixels)``; correlated noise has fewer
    independent pixels, so a larger chance level)."""
    total = float(np.sum(psd))
    return float(np.sqrt(np.sum(psd**2)) / total) if total > 0 else 0.0


def as_pattern(fixed: FixedPattern | np.ndarray | None) -> np.ndarray | None:
    """The ``(Y, X)`` float32 pattern of ``fixed`` (a :class:`FixedPattern` or an array), or None."""
    if fixed is None:
        return None
    pattern = fixed.pattern if isinstance(fixed, FixedPattern) else fixed
    if pattern is None:
        return None
    pattern = np.asarray(pattern, dtype=np.float32)
    if pattern.ndim != 2:
        raise DataError(f"a fixed pattern is one (Y, X) frame; got shape {pattern.shape}")
    if not np.isfinite(pattern).all():
        raise DataError("the fixed pattern contains NaN or infinite values")
    return pattern


def _check_size(shape: Sequence[int], axes: str, pattern: np.ndarray, what: str) -> tuple[int, int]:
    """Positions of Y and X in ``axes``; :class:`DataError` when ``shape``'s YX size is not the pattern's."""
    ax = axes.upper()
    if "Y" not in ax or "X" not in ax:
        raise DataError(f"a fixed pattern needs images with Y and X axes; {what} has axes {axes!r}")
    iy, ix = ax.index("Y"), ax.index("X")
    if (shape[iy], shape[ix]) != pattern.shape:
        raise DataError(
            f"the camera's fixed pattern is {pattern.shape[0]}x{pattern.shape[1]} (YxX) but {what} is "
            f"{shape[iy]}x{shape[ix]}: it is removed pixel by pixel, so give whole camera frames of "
            f"that size (or a dark stack cropped like the images)"
        )
    return iy, ix


def subtract_pattern(images: np.ndarray | Sequence[np.ndarray], axes: str, fixed: FixedPattern | np.ndarray | None
                     ) -> np.ndarray | list[np.ndarray]:
    """``images`` (an array or a sequence, each with ``axes``) minus the fixed pattern, float32;
    returned unchanged when there is none."""
    pattern = as_pattern(fixed)
    if pattern is None:
        return images
    many = not isinstance(images, np.ndarray) and isinstance(images, (list, tuple))
    items = list(images) if many else [images]
    out = []
    for i, image in enumerate(items):
        what = f"image {i}" if many else "the image"
        arr = np.asarray(image)
        iy, ix = _check_size(arr.shape, axes, pattern, what)
        out.append(np.asarray(arr, dtype=np.float32) - _broadcast(pattern, arr.ndim, iy, ix))
    return out if many else out[0]


def _broadcast(block: np.ndarray, ndim: int, iy: int, ix: int) -> np.ndarray:
    """A ``(y, x)`` block shaped to broadcast over an array of ``ndim`` dims with Y at ``iy``, X at ``ix``."""
    shape = [1] * ndim
    shape[iy], shape[ix] = block.shape
    return block.reshape(shape)


class PatternSubtracted:
    """An array-like that reads ``image`` minus the fixed pattern, piece by piece.

    Indexing with a tuple of slices and integers (as tiled prediction and dask do) reads that
    piece of ``image`` and subtracts the matching piece of the pattern, so a lazy image (zarr,
    dask, memmap) is never loaded whole. float32.
    """

    def __init__(self, image, axes: str, fixed: FixedPattern | np.ndarray) -> None:
        self.image = image
        self.pattern = as_pattern(fixed)
        if self.pattern is None:
            raise DataError("no fixed pattern to subtract")
        self.iy, self.ix = _check_size(image.shape, axes, self.pattern, "the image")
        self.shape = tuple(image.shape)
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[(slice(None),) * self.ndim]
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        key = full_key(key, self.ndim)
        if not all(isinstance(k, (slice, int, np.integer)) for k in key):
            raise TypeError("PatternSubtracted takes slices and integers only")
        block = np.asarray(self.image[key], dtype=np.float32)
        piece = self.pattern[key[self.iy], key[self.ix]]
        kept = [d for d, k in enumerate(key) if isinstance(k, slice)]  # the dims the block keeps
        if self.iy in kept and self.ix in kept:
            piece = _broadcast(piece, block.ndim, kept.index(self.iy), kept.index(self.ix))
        elif self.iy in kept or self.ix in kept:
            shape = [1] * block.ndim
            shape[kept.index(self.iy if self.iy in kept else self.ix)] = piece.size
            piece = piece.reshape(shape)
        return block - piece


def single_frame_warning(fixed: FixedPattern | np.ndarray | None, image_axes: str) -> str | None:
    """The warning for a :class:`FixedPattern` of one dark frame given for images with Z or T
    (repeating noise cannot be ruled out), else None."""
    if isinstance(fixed, FixedPattern) and fixed.n_frames < 2 and any(a in image_axes.upper() for a in "ZT"):
        return (
            "a single dark frame cannot show noise that repeats in every Z slice or time point "
            "(a camera's fixed pattern); give a stack of a few dark frames to rule it out"
        )
    return None


def training_pattern(fixed: FixedPattern | np.ndarray | None, axes: str, resume=None) -> np.ndarray | None:
    """The ``(Y, X)`` pattern training subtracts: ``fixed``'s, else a resumed model's (None: none).
    Warns (:class:`~napari_structn2v.errors.StructN2VWarning`) for a single dark frame and images
    with Z or T."""
    import warnings

    from ..errors import StructN2VWarning

    text = single_frame_warning(fixed, axes)
    if text is not None:
        warnings.warn(text, StructN2VWarning, stacklevel=3)
    pattern = as_pattern(fixed)
    if pattern is None and resume is not None:
        pattern = getattr(resume.config, "fixed_pattern", None)
    return pattern
