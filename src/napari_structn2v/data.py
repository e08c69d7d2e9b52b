"""Training data: percentile normalisation, validation split and random patch sampling."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .axes import spatial_axes, to_internal, validate_axes
from .errors import DataError


def prepare_arrays(images: np.ndarray | Sequence[np.ndarray], axes: str, *, z_as_sample: bool = False) -> tuple[list[np.ndarray], str]:
    """Validate images and move each to ``(N, C, [Z,] Y, X)`` float32.

    All images share ``axes``; they may differ in size. With ``z_as_sample`` the Z slices become
    samples (``(N * Z, C, Y, X)``, for a 2D network). Returns the arrays and the spatial axes.
    """
    arrays = [images] if isinstance(images, np.ndarray) or hasattr(images, "__array__") and not isinstance(images, (list, tuple)) else list(images)
    if not arrays:
        raise DataError("no training images given")
    ax = validate_axes(axes)
    out = []
    for i, img in enumerate(arrays):
        arr = np.asarray(img)
        if arr.ndim != len(ax):
            raise DataError(
                f"image {i + 1} has {arr.ndim} dimensions {arr.shape} but axes {ax!r} have {len(ax)}"
            )
        if not np.issubdtype(arr.dtype, np.number) or arr.dtype == bool or np.iscomplexobj(arr):
            raise DataError(f"image {i + 1} is not real-valued numbers (dtype {arr.dtype})")
        if arr.size == 0:
            raise DataError(f"image {i + 1} is empty (shape {arr.shape})")
        internal, _ = to_internal(arr, ax, z_as_sample=z_as_sample)
        internal = np.ascontiguousarray(internal, dtype=np.float32)
        if not np.isfinite(internal).all():
            raise DataError(f"image {i + 1} contains NaN or infinite values")
        out.append(internal)
    channels = {a.shape[1] for a in out}
    if len(channels) > 1:
        raise DataError(f"the training images have different channel counts: {sorted(channels)}")
    return out, "YX" if z_as_sample else spatial_axes(ax)


def percentiles(arrays: list[np.ndarray], pmin: float, pmax: float, max_samples: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``pmin``/``pmax`` percentiles over all arrays (subsampled when large)."""
    c = arrays[0].shape[1]
    low, high = np.zeros(c), np.zeros(c)
    rng = np.random.default_rng(0)
    for ch in range(c):
        vals = np.concatenate([a[:, ch].ravel() for a in arrays])
        if vals.size > max_samples:
            vals = rng.choice(vals, max_samples, replace=False)
        low[ch], high[ch] = np.percentile(vals, (pmin, pmax))
        if high[ch] <= low[ch]:
            high[ch] = low[ch] + max(1.0, abs(low[ch]))  # constant image: avoid division by zero
    return low, high


def normalize(arrays: list[np.ndarray], low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    shape = (1, -1) + (1,) * (arrays[0].ndim - 2)
    lo = np.asarray(low, dtype=np.float32).reshape(shape)
    sc = (np.asarray(high, dtype=np.float32) - np.asarray(low, dtype=np.float32)).reshape(shape)
    return [(a - lo) / sc for a in arrays]


def split_validation(arrays: list[np.ndarray], fraction: float, patch: tuple[int, ...]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out the bottom ``fraction`` of the Y rows of every image (at least one patch high).

    Images too small for both a training and a validation patch are used for training only; if
    no image can be split, the validation list is empty.
    """
    if fraction <= 0:
        return arrays, []
    train, val = [], []
    py = patch[-2]
    for a in arrays:
        h = a.shape[-2]
        v = max(py, int(round(h * fraction)))
        if h - v >= py:
            train.append(a[..., : h - v, :])
            val.append(a[..., h - v :, :])
        else:
            train.append(a)
    return train, val


def check_patch(arrays: list[np.ndarray], patch: tuple[int, ...], sp: str) -> None:
    for i, a in enumerate(arrays):
        small = [f"{letter}={s}" for letter, s, p in zip(sp, a.shape[2:], patch) if s < p]
        if small:
            raise DataError(
                f"image {i + 1} ({', '.join(small)}) is smaller than the training patch "
                f"{'x'.join(map(str, patch))}; use a smaller patch size"
            )


class PatchSampler:
    """Random patches from arrays of any size, uniformly over all valid patch positions.

    Arrays are ``(N, C, *S)`` float32 (already normalised); they are kept as torch tensors on
    ``device`` when they fit (``max_device_bytes``), so sampling costs no host transfer.
    """

    def __init__(self, arrays: list[np.ndarray], patch: tuple[int, ...], *, rng: np.random.Generator, device: torch.device, max_device_bytes: int = 2 << 30):
        self.patch = tuple(patch)
        self.rng = rng
        self.device = device
        total = sum(a.nbytes for a in arrays)
        store = device if (device.type != "cpu" and total <= max_device_bytes) else torch.device("cpu")
        self.tensors = [torch.from_numpy(np.ascontiguousarray(a)).to(store) for a in arrays]
        counts = np.array([a.shape[0] * np.prod([s - p + 1 for s, p in zip(a.shape[2:], patch)]) for a in arrays], dtype=np.float64)
        self.weights = counts / counts.sum()

    def sample(self, batch: int) -> torch.Tensor:
        """``(batch, C, *patch)`` float32 on the sampler's device."""
        which = self.rng.choice(len(self.tensors), size=batch, p=self.weights)
        out = []
        for w in which:
            t = self.tensors[w]
            n = self.rng.integers(t.shape[0])
            corner = [self.rng.integers(s - p + 1) for s, p in zip(t.shape[2:], self.patch)]
            sl = tuple(slice(c, c + p) for c, p in zip(corner, self.patch))
            out.append(t[(n, slice(None), *sl)])
        return torch.stack(out).to(self.device, non_blocking=True)

    def fixed_batches(self, n_patches: int, batch: int) -> list[torch.Tensor]:
        """A fixed list of batches (for validation), drawn once."""
        patches = self.sample(n_patches)
        return [patches[i : i + batch] for i in range(0, n_patches, batch)]
