"""Blind masks: boolean arrays with odd sides whose centre pixel is the active pixel.

Users name box masks as ``WxH`` (2D) or ``WxHxD`` (3D): W along X, H along Y, D along Z. ``9x1`` is a
horizontal line of 9 pixels, ``1x17x1`` a Y line in 3D and ``1x1`` plain Noise2Void. Arrays are
indexed ``(H, W)`` / ``(D, H, W)``, i.e. in ``YX`` / ``ZYX`` order like the images.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import MaskError

#: the largest mask side accepted (the largest training patch is 4096 pixels)
MAX_SIDE = 4095
_SPEC = re.compile(r"^\s*(\d+)\s*[xX×*]\s*(\d+)\s*(?:[xX×*]\s*(\d+))?\s*$")


def box_mask(width: int, height: int, depth: int | None = None) -> np.ndarray:
    """A full box mask of ``width`` (X) by ``height`` (Y) [by ``depth`` (Z)] pixels.

    Returns
    -------
    np.ndarray
        bool, shape ``(height, width)`` or ``(depth, height, width)``.
    """
    sides = (height, width) if depth is None else (depth, height, width)
    if any(int(v) < 1 or int(v) > MAX_SIDE for v in sides):  # before allocating: 99999999x99999999 is 10 PB
        raise MaskError(f"mask sides must be between 1 and {MAX_SIDE} pixels, got {'x'.join(map(str, sides[::-1]))}")
    return validate_mask(np.ones(sides, dtype=bool))


def cross_mask(width: int, height: int) -> np.ndarray:
    """A 2D cross: a ``width``-long horizontal and a ``height``-long vertical line through the centre."""
    m = np.zeros((height, width), dtype=bool)
    m[height // 2, :] = True
    m[:, width // 2] = True
    return validate_mask(m)


def parse_mask_spec(spec: str) -> np.ndarray:
    """Parse ``'WxH'`` or ``'WxHxD'`` into a box mask (see :func:`box_mask`)."""
    if isinstance(spec, np.ndarray):
        return validate_mask(spec)
    m = _SPEC.match(str(spec))
    if not m:
        raise MaskError(
            f"mask spec {spec!r} is not of the form WxH or WxHxD (e.g. '9x1', '1x17x1', '1x1')"
        )
    w, h = int(m.group(1)), int(m.group(2))
    d = int(m.group(3)) if m.group(3) else None
    return box_mask(w, h, d)


def mask_to_spec(mask: np.ndarray) -> str | None:
    """The ``WxH[xD]`` name of a full box mask, or ``None`` for any other shape."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.all():
        return None
    sides = mask.shape[::-1]  # X, Y, Z
    return "x".join(str(s) for s in sides)


def describe_mask(mask: np.ndarray) -> str:
    """A short human name: the spec for boxes, otherwise ``'custom WxH (n px)'``."""
    spec = mask_to_spec(mask)
    if spec is not None:
        return spec
    sides = "x".join(str(s) for s in np.shape(mask)[::-1])
    return f"custom {sides} ({int(np.sum(mask))} px)"


def validate_mask(
    mask: np.ndarray,
    *,
    spatial_ndim: int | None = None,
    patch_shape: tuple[int, ...] | None = None,
) -> np.ndarray:
    """Check a blind mask and return it as a bool array.

    Parameters
    ----------
    mask : array_like
        Boolean (or 0/1) array with odd sides; its centre must be set.
    spatial_ndim : int, optional
        Number of spatial dimensions of the data (2 or 3). A 2D mask used on 3D data is lifted to
        ``(1, H, W)``; any other mismatch is an error.
    patch_shape : tuple of int, optional
        Spatial training patch shape; the mask may not be larger.
    """
    arr = np.asarray(mask)
    if arr.size == 0:
        raise MaskError("the blind mask is empty")
    if arr.ndim not in (2, 3):
        raise MaskError(f"a blind mask must be 2D or 3D, got {arr.ndim}D with shape {arr.shape}")
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise MaskError("a blind mask may contain only 0/1 or True/False values")
        arr = arr.astype(bool)
    even = [s for s in arr.shape if s % 2 == 0]
    if even:
        raise MaskError(
            f"blind mask sides must be odd so that the active pixel is at the centre; got "
            f"{'x'.join(map(str, arr.shape[::-1]))} (WxH{'xD' if arr.ndim == 3 else ''})"
        )
    if not arr.any():
        raise MaskError("the blind mask hides no pixel; it must at least contain its centre")
    centre = tuple(s // 2 for s in arr.shape)
    if not arr[centre]:
        arr = arr.copy()
        arr[centre] = True  # the active pixel is always hidden
    if spatial_ndim is not None:
        if arr.ndim == 2 and spatial_ndim == 3:
            arr = arr[None]
        elif arr.ndim != spatial_ndim:
            raise MaskError(
                f"the mask is {arr.ndim}D ({'x'.join(map(str, arr.shape[::-1]))}) but the data "
                f"has {spatial_ndim} spatial dimensions"
            )
    if patch_shape is not None:
        ps = tuple(patch_shape)[-arr.ndim:]
        if any(m > p for m, p in zip(arr.shape, ps)):
            raise MaskError(
                f"the mask ({'x'.join(map(str, arr.shape[::-1]))}) is larger than the training "
                f"patch ({'x'.join(map(str, ps[::-1]))}); use a larger patch or a smaller mask"
            )
    return arr


def load_mask(path: str | Path) -> np.ndarray:
    """Load a mask from ``.npy``, ``.tif``/``.tiff`` or a text file holding a ``WxH[xD]`` spec."""
    p = Path(path)
    if not p.exists():
        raise MaskError(f"mask file {str(p)!r} does not exist")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            arr = np.load(p, allow_pickle=False)
        elif suffix in (".tif", ".tiff"):
            import tifffile

            arr = tifffile.imread(p)
        else:
            return parse_mask_spec(p.read_text().strip())
    except MaskError:
        raise
    except Exception as exc:
        raise MaskError(f"cannot read mask file {str(p)!r}: {exc}") from exc
    return validate_mask(np.squeeze(arr) if np.ndim(arr) > 3 else arr)


def save_mask(path: str | Path, mask: np.ndarray) -> None:
    """Save a mask as ``.npy`` or ``.tif`` (uint8 0/1), chosen by the suffix."""
    arr = validate_mask(mask)
    p = Path(path)
    if p.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(p, arr.astype(np.uint8))
    else:
        np.save(p if p.suffix else p.with_suffix(".npy"), arr)
