"""Synthetic structured-noise data for the demo, the napari sample data and the tests.

The noise model is the one of the development benchmark:
``noisy = clean + sigma_s * corr(w) + sigma_p * e`` with ``w``, ``e`` independent standard normal
fields and ``corr`` a 1-D convolution along one axis with the normalised kernel
``exp(-|k| / decay)``, ``|k| <= half_len``.
"""
from __future__ import annotations

import numpy as np


def correlated_noise(
    shape: tuple[int, ...],
    *,
    axis: int = -1,
    half_len: int = 4,
    decay: float = 2.0,
    sigma_s: float = 0.15,
    sigma_p: float = 0.05,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Noise correlated along ``axis`` plus pixel-independent noise (float32, ``shape``)."""
    from scipy import ndimage

    rng = np.random.default_rng(rng)
    k = np.arange(-half_len, half_len + 1)
    kernel = np.exp(-np.abs(k) / decay)
    kernel /= np.sqrt(np.sum(kernel**2))
    w = rng.standard_normal(shape)
    corr = ndimage.convolve1d(w, kernel, axis=axis, mode="wrap")
    e = rng.standard_normal(shape)
    return (sigma_s * corr + sigma_p * e).astype(np.float32)


def clean_image(shape: tuple[int, ...], *, rng: np.random.Generator | None = None) -> np.ndarray:
    """A smooth cell-like test image in [0, 1]: blurred blobs of several sizes plus thin fibres."""
    from scipy import ndimage

    rng = np.random.default_rng(rng)
    img = np.zeros(shape, dtype=np.float64)
    n_px = int(np.prod(shape))
    for size, density in ((14.0, 1 / 1400), (7.0, 1 / 1400), (2.0, 1 / 2500)):
        pts = np.zeros(shape)
        n = max(3, int(n_px * density / (4 if len(shape) == 3 else 1)))
        idx = tuple(rng.integers(0, s, n) for s in shape)
        pts[idx] = rng.uniform(0.5, 1.0, n)
        sigma = (max(size / 3, 0.8),) * len(shape)
        if len(shape) == 3:
            sigma = (sigma[0] / 2, *sigma[1:])
        blob = ndimage.gaussian_filter(pts, sigma) * (2 * np.pi) ** (len(shape) / 2) * np.prod(sigma)
        img += blob
    # a few straight fibres through the field of view
    yy, xx = np.meshgrid(np.arange(shape[-2]), np.arange(shape[-1]), indexing="ij")
    fibres = np.zeros(shape[-2:])
    for _ in range(4):
        angle = rng.uniform(0, np.pi)
        c = rng.uniform(0, shape[-1])
        dist = np.abs(np.cos(angle) * xx + np.sin(angle) * yy - c)
        fibres += 0.35 * np.exp(-(dist**2) / 2.0)
    img = img + fibres
    img = ndimage.gaussian_filter(img, 0.7)
    lo, hi = np.percentile(img, (0.5, 99.8))
    return np.clip((img - lo) / (hi - lo + 1e-12), 0, 1).astype(np.float32)


def make_sample(kind: str = "2d", *, seed: int = 0, size: int = 256) -> dict:
    """A clean image, its structured-noise version and a dark frame with the same noise.

    Parameters
    ----------
    kind : {"2d", "3d"}
        ``"2d"``: ``YX`` ``size x size``, noise correlated along X (camera read-out lines).
        ``"3d"``: ``ZYX`` ``(32, size // 2, size // 2)``, noise correlated along Y (laser scanning).
    seed : int
        Seed of the generator; the same seed gives the same arrays.

    Returns
    -------
    dict
        ``noisy``, ``clean``, ``dark`` (float32 arrays), ``axes`` (str), ``noise_axis`` ("X"/"Y").
    """
    rng = np.random.default_rng(seed)
    if kind == "2d":
        shape, axis, axes, params = (size, size), -1, "YX", dict(half_len=4, decay=2.0)
    elif kind == "3d":
        shape, axis, axes, params = (32, size // 2, size // 2), -2, "ZYX", dict(half_len=6, decay=3.0)
    else:
        raise ValueError(f"kind must be '2d' or '3d', got {kind!r}")
    clean = clean_image(shape, rng=rng)
    noisy = clean + correlated_noise(shape, axis=axis, rng=rng, **params)
    dark = correlated_noise(shape, axis=axis, rng=rng, **params)
    return {
        "noisy": noisy.astype(np.float32),
        "clean": clean,
        "dark": dark,
        "axes": axes,
        "noise_axis": "X" if axis == -1 else "Y",
    }


def fixed_pattern(
    shape: tuple[int, int],
    *,
    sigma_column: float = 0.06,
    sigma_row: float = 0.02,
    sigma_line: float = 0.0,
    axis: int = -1,
    half_len: int = 4,
    decay: float = 2.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """An sCMOS-like fixed pattern ``(Y, X)`` float32, zero mean: column offsets (``sigma_column``,
    the same down each column), row offsets (``sigma_row``), and optionally a pattern correlated
    along ``axis`` as :func:`correlated_noise`'s (``sigma_line``). A camera adds the same one to
    every frame."""
    rng = np.random.default_rng(rng)
    pattern = sigma_column * rng.standard_normal(shape[-1])[None, :] + sigma_row * rng.standard_normal(shape[-2])[:, None]
    if sigma_line:
        pattern = pattern + correlated_noise(shape, axis=axis, half_len=half_len, decay=decay, sigma_s=sigma_line,
                                             sigma_p=0.0, rng=rng)
    return (pattern - pattern.mean()).astype(np.float32)


def camera_noise(
    clean: np.ndarray,
    *,
    photons: float = 30.0,
    background: float = 3.0,
    pattern: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    **read: float,
) -> np.ndarray:
    """What a camera records of ``clean`` (in [0, 1], frames along the leading axes), float32, in
    ``clean``'s units: shot noise at ``photons`` per unit intensity over a ``background`` of photons
    (subtracted again), read noise :func:`correlated_noise` (``read``: its keywords), and ``pattern``
    (``(Y, X)``, from :func:`fixed_pattern`) added to every frame. ``clean = 0`` gives dark frames."""
    rng = np.random.default_rng(rng)
    clean = np.asarray(clean, dtype=np.float64)
    shot = rng.poisson(clean * photons + background) / photons - background / photons
    out = shot + correlated_noise(clean.shape, rng=rng, **read)
    if pattern is not None:
        out = out + pattern
    return out.astype(np.float32)
