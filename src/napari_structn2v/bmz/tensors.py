"""The tensors of a bioimage.io package: axes, halo, valid sizes, normalisation, test input, cover.

Plain numpy (torch and bioimageio are not imported): :mod:`~napari_structn2v.bmz.export` writes these into
the package and :mod:`~napari_structn2v.bmz.spec` describes them in rdf.yaml.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..prediction.tiling import context_margins

if TYPE_CHECKING:
    from ..model import StructN2VModel

#: largest test-tensor side: 256 px in 2D, 96 px in 3D (a 96^3 float32 tensor is 3.4 MB)
TEST_SIDE_2D = 256
TEST_SIDE_3D = 96
#: largest test-tensor depth of a Z-context model (at least ``2 * z_context + 1`` slices)
TEST_SLICES_CONTEXT = 8


def package_space(model: StructN2VModel) -> tuple[str, tuple[int, ...]]:
    """Spatial axes of the package's tensors (ZYX order) and their size steps: the network's, and
    for a Z-context model Z in front of them (a 2D network over whole volumes; any number of slices)."""
    arch = model.config.architecture
    if getattr(model, "z_context", 0):
        return "ZYX", (1, *arch.multiple)
    return "ZYX"[-arch.spatial_ndim:], tuple(arch.multiple)


def halo(model: StructN2VModel) -> tuple[int, ...]:
    """Output halo per spatial axis of the package's tensors (ZYX order): the receptive-field
    radius rounded up to the pooling multiple, the same context margin our own tiled prediction
    uses; for a Z-context model Z comes first, with a halo of ``z_context`` slices."""
    arch = model.config.architecture
    yx = tuple(context_margins(arch.receptive_radius(), arch.multiple))
    k = int(getattr(model, "z_context", 0))
    return (k, *yx) if k else yx


def min_input_shape(model: StructN2VModel) -> tuple[int, ...]:
    """Smallest valid input side per spatial axis: ``2 * halo + multiple`` (the spec requires
    more than ``2 * halo``; the network requires multiples of the pooling factor); for a
    Z-context model ``2 * z_context + 1`` slices, so that a tile has one slice with all its neighbours."""
    return tuple(2 * h + m for h, m in zip(halo(model), package_space(model)[1]))


def normalisation(model: StructN2VModel) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``low`` and ``high - low`` (float64) of the model's fixed normalisation; a
    constant channel (``high == low``) gets scale 1, as in prediction, so it passes through."""
    low = np.asarray(model.config.low, dtype=np.float64)
    scale = np.asarray(model.config.high, dtype=np.float64) - low
    return low, np.where(scale == 0, 1.0, scale)


def make_test_input(model: StructN2VModel, image: np.ndarray | None, axes: str | None) -> np.ndarray:
    """The test input ``(1, C, [Z,] Y, X)`` float32: the first sample of ``image`` (or the built-in
    synthetic sample mapped to the model's intensity range), padded or centre-cropped to a valid size.
    A Z-context model gets a volume (at most ``TEST_SLICES_CONTEXT`` slices)."""
    arch = model.config.architecture
    sp, steps = package_space(model)
    mins = min_input_shape(model)
    cap = TEST_SIDE_2D if arch.spatial_ndim == 2 else TEST_SIDE_3D
    caps = {a: TEST_SLICES_CONTEXT if len(sp) > arch.spatial_ndim and a == "Z" else cap for a in sp}
    x = _synthetic_sample(model, len(sp)) if image is None else _first_sample(model, image, axes, caps, mins)
    x = np.asarray(x, dtype=np.float32)
    for d, (a, mn, step) in enumerate(zip(sp, mins, steps)):
        axis, cap = d + 1, caps[a]
        size = x.shape[axis]
        if size < mn:  # mirror small images up to the smallest valid size
            pad = [(0, 0)] * x.ndim
            before = (mn - size) // 2
            pad[axis] = (before, mn - size - before)
            x = np.pad(x, pad, mode="reflect" if size > 1 else "edge")
            size = mn
        target = mn + step * ((min(size, max(cap, mn)) - mn) // step)
        start = (size - target) // 2
        x = np.take(x, np.arange(start, start + target), axis=axis)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def _synthetic_sample(model: StructN2VModel, nd: int) -> np.ndarray:
    """The built-in synthetic sample ``(C, [Z,] Y, X)``, mapped to each channel's ``low``-``high``."""
    from ..synthetic import make_sample

    low = np.asarray(model.config.low, dtype=np.float32)
    high = np.asarray(model.config.high, dtype=np.float32)
    noisy = make_sample("2d" if nd == 2 else "3d", seed=0)["noisy"]
    return np.stack([noisy * (h - lo) + lo for lo, h in zip(low, high)])


def _first_sample(
    model: StructN2VModel, image: np.ndarray, axes: str | None, caps: dict[str, int], mins: tuple[int, ...]
) -> np.ndarray:
    """``image``'s first sample as ``(C, [Z,] Y, X)``, centre-cropped to at most ``caps`` (but not
    below ``mins``) per package axis; a 2D network's Z axis, when it is no package axis, at its
    middle slice."""
    from ..axes import to_internal

    sp = package_space(model)[0]
    image = image if hasattr(image, "shape") else np.asarray(image)
    ax = model.resolve_axes(image.ndim, axes)
    # index before converting: a lazy (dask, zarr) layer is read only where the test tensor lies
    index, kept = [], ""
    for a, size in zip(ax, image.shape):
        if a in "ST":
            index.append(0)
            continue
        if a not in sp and a != "C":  # Z for a 2D network over the slices: the middle one
            index.append(size // 2)
            continue
        if a == "C":
            index.append(slice(None))
        else:
            keep = min(size, max(caps[a], mins[sp.index(a)]))
            index.append(slice((size - keep) // 2, (size - keep) // 2 + keep))
        kept += a
    return to_internal(np.asarray(image[tuple(index)]), kept)[0][0]


def cover(noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
    """uint8 image ``noisy | denoised`` (first channel, middle Z slice), both in the noisy image's
    0.5-99.5 percentile range so that the comparison is fair."""
    a, b = noisy[0, 0], denoised[0, 0]
    if a.ndim == 3:
        a, b = a[a.shape[0] // 2], b[b.shape[0] // 2]
    lo, hi = np.percentile(a, (0.5, 99.5))
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    gap = np.full((a.shape[0], max(2, a.shape[1] // 64)), 255.0)  # a white line between the halves
    both = np.concatenate([(a - lo) * scale, gap, (b - lo) * scale], axis=1)
    return np.clip(both, 0, 255).astype(np.uint8)
