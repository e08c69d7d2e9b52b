"""Axes strings over ``STCZYX`` and conversion to the internal ``(N, C, [Z,] Y, X)`` layout."""
from __future__ import annotations

import numpy as np

from .errors import AxesError

ALLOWED = "STCZYX"
SPATIAL = "ZYX"


def validate_axes(axes: str, ndim: int | None = None) -> str:
    """Check an axes string and return it upper-cased.

    Parameters
    ----------
    axes : str
        Letters from ``S T C Z Y X``, each at most once, containing ``Y`` and ``X``.
    ndim : int, optional
        Number of dimensions of the array the axes describe.
    """
    if not isinstance(axes, str) or not axes:
        raise AxesError("axes must be a non-empty string such as 'YX', 'SYX' or 'ZYX'")
    ax = axes.upper()
    bad = sorted(set(ax) - set(ALLOWED))
    if bad:
        raise AxesError(f"axes {axes!r} contain {''.join(bad)!r}; use only the letters S, T, C, Z, Y, X")
    if len(set(ax)) != len(ax):
        raise AxesError(f"axes {axes!r} repeat a letter")
    if "Y" not in ax or "X" not in ax:
        raise AxesError(f"axes {axes!r} must contain both Y and X")
    if ndim is not None and len(ax) != ndim:
        raise AxesError(f"axes {axes!r} have {len(ax)} letters but the image has {ndim} dimensions")
    return ax


def spatial_axes(axes: str) -> str:
    """The spatial letters of ``axes`` in ZYX order (``'YX'`` or ``'ZYX'``)."""
    return "".join(a for a in SPATIAL if a in axes.upper())


def frame_axes(axes: str) -> str:
    """The axes of one frame of data with ``axes``: its spatial axes and C, in their order."""
    return "".join(a for a in axes if a in spatial_axes(axes) or a == "C")


def dark_axes(ndim: int, axes: str) -> str | None:
    """Axes of a dark frame with ``ndim`` dimensions for data with ``axes``: ``axes`` itself (as
    many dimensions), one frame (:func:`frame_axes`), or a stack of frames (``S`` first); None
    when none fits. A 3-frame stack for ``YX`` data is ``SYX``, not a volume."""
    frame = frame_axes(axes)
    if ndim == len(axes):
        return axes
    if ndim == len(frame):
        return frame
    if ndim == len(frame) + 1:
        return "S" + frame
    return None


def guess_axes(shape: tuple[int, ...], *, rgb: bool = False) -> str:
    """Guess axes for an array shape: 2D ``YX``; 3D ``ZYX`` (``YXC`` if rgb); 4D ``CZYX`` if the
    first axis is short (<= 4), else ``TZYX``; 5D ``TCZYX``."""
    nd = len(shape)
    if rgb:
        return {3: "YXC", 4: "SYXC"}.get(nd, "YXC")
    if nd == 2:
        return "YX"
    if nd == 3:
        return "ZYX"
    if nd == 4:
        return "CZYX" if shape[0] <= 4 else "TZYX"
    if nd == 5:
        return "TCZYX"
    raise AxesError(f"cannot guess axes for a {nd}-D array; give them explicitly")


def to_internal(image: np.ndarray, axes: str, *, z_as_sample: bool = False) -> tuple[np.ndarray, str]:
    """Move ``image`` from ``axes`` to ``(N, C, [Z,] Y, X)``.

    S and T are merged into N (in that order), and Z too with ``z_as_sample`` (a 2D network over
    the Z slices). Returns the array (a view where possible) and the permuted axes string before
    the reshape, which :func:`from_internal` uses to undo it.
    """
    ax = validate_axes(axes, np.ndim(image))
    samples = "STZ" if z_as_sample else "ST"
    order = [a for a in samples if a in ax] + [a for a in "CZYX" if a in ax and a not in samples]
    perm = [ax.index(a) for a in order]
    arr = np.transpose(image, perm)
    src = "".join(order)
    n = 1
    for a in samples:
        if a in src:
            n *= arr.shape[src.index(a)]
    c = arr.shape[src.index("C")] if "C" in src else 1
    n_sp = 2 if z_as_sample else len(spatial_axes(src))
    sp = arr.shape[len(src) - n_sp:]
    return arr.reshape((n, c, *sp)), src


def from_internal(arr: np.ndarray, axes: str, shape: tuple[int, ...]) -> np.ndarray:
    """Inverse of :func:`to_internal` for an output of the same size as the input ``shape``."""
    ax = validate_axes(axes, len(shape))
    order = [a for a in "STCZYX" if a in ax]
    perm = [ax.index(a) for a in order]
    permuted_shape = tuple(shape[p] for p in perm)
    out = arr.reshape(permuted_shape)
    inv = np.argsort(perm)
    return np.transpose(out, inv)


def full_key(key: object, ndim: int) -> tuple:
    """``key`` as one entry per axis of an ``ndim``-dimensional array: a lone index becomes a tuple,
    an Ellipsis and the missing trailing axes become full slices (for array-likes that index
    ``[...]`` themselves)."""
    key = key if isinstance(key, tuple) else (key,)
    if any(k is Ellipsis for k in key):
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    return key + (slice(None),) * (ndim - len(key))
