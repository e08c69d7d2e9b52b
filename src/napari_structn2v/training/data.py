"""Training data: percentile normalisation, validation split and random patch sampling.

In-memory images (numpy arrays) are converted once to ``(N, C, [Z,] Y, X)`` float32, as before.
Lazy images (zarr, dask, h5py, memory maps) become :class:`LazyImage` views of that layout that
read only what is asked for: percentiles come from a bounded sample, patches are read on demand,
so training memory does not grow with the data. The sampler draws the same random numbers for
both, so a lazy and an in-memory training with the same seed see the same patches.
"""
from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ..axes import full_key, spatial_axes, to_internal, validate_axes
from ..errors import DataError
from ..io.ome_zarr import CHUNK_LIMITS
from ..prediction.predict import check_finite, is_lazy

#: bytes of source blocks a training sampler keeps (LRU) for lazy images: 256 MB hold 128 zarr chunks
#: of 16 x 256 x 256 uint16 (2 MB each), half of a 64 x 2048 x 2048 uint16 volume
PATCH_CACHE_BYTES = 256 << 20
#: block sides for sources without chunks (memmaps, h5py without chunking): those of our zarr outputs
DEFAULT_BLOCK = CHUNK_LIMITS


class BlockCache:
    """Blocks of lazy sources, least recently used dropped first, at most ``max_bytes`` in all.

    A block larger than ``max_bytes`` is returned but not kept. ``hits``/``misses`` count lookups.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self.blocks: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.nbytes = 0
        self.hits = self.misses = 0

    def get(self, key: tuple, load: Callable[[], np.ndarray]) -> np.ndarray:
        """The block under ``key``, read with ``load()`` (and kept) when it is not here."""
        block = self.blocks.get(key)
        if block is not None:
            self.hits += 1
            self.blocks.move_to_end(key)
            return block
        self.misses += 1
        block = load()
        if block.nbytes <= self.max_bytes:
            self.blocks[key] = block
            self.nbytes += block.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self.blocks.popitem(last=False)
                self.nbytes -= old.nbytes
        return block

    def clear(self) -> None:
        self.blocks.clear()
        self.nbytes = 0


def block_shape(source, axes: str, max_bytes: int) -> tuple[int, ...]:
    """Block sides for ``source``: its chunks (zarr, dask, h5py) or :data:`DEFAULT_BLOCK`, halved
    along the longest side until a block is at most an eighth of ``max_bytes`` (so the cache
    keeps at least 8 blocks: a 3D patch spans up to 8)."""
    chunks = getattr(source, "chunksize", None) or getattr(source, "chunks", None)  # dask: chunksize
    if not chunks or len(chunks) != len(source.shape) or not all(isinstance(c, (int, np.integer)) for c in chunks):
        chunks = [s if a == "C" else DEFAULT_BLOCK.get(a, 1) for a, s in zip(axes, source.shape)]
    block = [max(1, min(int(c), int(s))) for c, s in zip(chunks, source.shape)]
    itemsize = np.dtype(source.dtype).itemsize
    while int(np.prod(block)) * itemsize > max_bytes // 8 and max(block) > 1:
        i = int(np.argmax(block))
        block[i] = (block[i] + 1) // 2
    return tuple(block)


def read_cached(source, key: tuple, block: Sequence[int], cache: BlockCache) -> np.ndarray:
    """``np.asarray(source[key])`` (``key``: one int or step-1 slice per axis), assembled from the
    blocks of the grid ``block`` that it touches, each read once and kept in ``cache``."""
    ranges, squeeze = [], []
    for i, (k, s) in enumerate(zip(key, source.shape)):
        if isinstance(k, slice):
            start, stop, _ = k.indices(s)
            ranges.append((start, max(start, stop)))
        else:
            ranges.append((int(k), int(k) + 1))
            squeeze.append(i)
    out = np.empty([b - a for a, b in ranges], dtype=source.dtype)
    per_axis = [range(a // b, (max(a, c - 1)) // b + 1) if c > a else range(0) for (a, c), b in zip(ranges, block)]
    for idx in itertools.product(*per_axis):
        lo = [i * b for i, b in zip(idx, block)]
        hi = [min(s, x + b) for x, b, s in zip(lo, block, source.shape)]
        data = cache.get((id(source), idx), lambda lo=lo, hi=hi: np.asarray(source[tuple(map(slice, lo, hi))]))
        inter = [(max(a, x), min(c, y)) for (a, c), x, y in zip(ranges, lo, hi)]
        out[tuple(slice(p - a, q - a) for (p, q), (a, _) in zip(inter, ranges))] = data[
            tuple(slice(p - x, q - x) for (p, q), x in zip(inter, lo))
        ]
    return out.squeeze(axis=tuple(squeeze)) if squeeze else out


class LazyImage:
    """A lazy image seen as ``(N, C, *S)`` float32, read on demand (``self[n, :, y0:y1, x0:x1]``).

    Parameters
    ----------
    source : array-like
        Anything indexable by a tuple of ints and slices (zarr, dask, h5py, memmap).
    axes : str
        The source's axes; S and T (and Z with ``z_as_sample``) are merged into N in that order,
        as :func:`~napari_structn2v.axes.to_internal` does.
    """

    def __init__(self, source, axes: str, *, z_as_sample: bool = False, low=None, scale=None, crop=None):
        self.source = source
        self.axes = validate_axes(axes, len(source.shape))
        samples = "STZ" if z_as_sample else "ST"
        self.sample_axes = [a for a in samples if a in self.axes]
        self.spatial = [a for a in "ZYX" if a in self.axes and a not in samples]
        size = dict(zip(self.axes, source.shape))
        self.sample_shape = tuple(size[a] for a in self.sample_axes)
        self.crop = tuple(crop) if crop is not None else tuple((0, size[a]) for a in self.spatial)
        n = int(np.prod(self.sample_shape)) if self.sample_axes else 1
        c = size.get("C", 1)
        self.shape = (n, c, *(b - a for a, b in self.crop))
        self.ndim = len(self.shape)
        self.dtype = np.dtype(np.float32)
        self.low, self.scale = low, scale
        self.cache: BlockCache | None = None
        self.block: tuple[int, ...] = ()

    def with_cache(self, cache: BlockCache) -> LazyImage:
        """The same view, reading through ``cache`` in blocks of the source's chunks."""
        return self._replace(cache=cache, block=block_shape(self.source, self.axes, cache.max_bytes))

    def _read(self, key: tuple) -> np.ndarray:
        if self.cache is None or any(isinstance(k, slice) and k.step not in (None, 1) for k in key):
            return np.asarray(self.source[key])
        return read_cached(self.source, key, self.block, self.cache)

    def _replace(self, **kw) -> LazyImage:
        new = object.__new__(LazyImage)
        new.__dict__.update(self.__dict__)
        new.__dict__.update(kw)
        new.shape = (self.shape[0], self.shape[1], *(b - a for a, b in new.crop))
        return new

    def normalized(self, low: np.ndarray, high: np.ndarray) -> LazyImage:
        """The same view, normalised on read: ``(x - low) / (high - low)`` per channel."""
        shape = (-1,) + (1,) * len(self.spatial)
        lo = np.asarray(low, dtype=np.float32).reshape(shape)
        sc = (np.asarray(high, dtype=np.float32) - np.asarray(low, dtype=np.float32)).reshape(shape)
        return self._replace(low=lo, scale=sc)

    def crop_axis(self, axis: int, start: int, stop: int) -> LazyImage:
        """The view restricted to ``start:stop`` of internal axis ``axis`` (a spatial one, >= 2)."""
        crop = list(self.crop)
        a0 = crop[axis - 2][0]
        crop[axis - 2] = (a0 + start, a0 + stop)
        return self._replace(crop=tuple(crop))

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4

    def __array__(self, dtype=None, copy=None):
        data = self[:]
        return data if dtype is None else data.astype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        key = full_key(key, self.ndim)
        nkey, ckey, skeys = key[0], key[1], key[2:]
        if not isinstance(ckey, slice):
            ckey = slice(int(ckey), int(ckey) + 1)
        src_sp = []
        for k, (a0, a1) in zip(skeys, self.crop):
            start, stop, step = (k if isinstance(k, slice) else slice(int(k), int(k) + 1)).indices(a1 - a0)
            src_sp.append(slice(a0 + start, a0 + max(start, stop), step))
        ns = [int(nkey) % self.shape[0]] if not isinstance(nkey, slice) else range(*nkey.indices(self.shape[0]))
        blocks = []
        order = (["C"] if "C" in self.axes else []) + self.spatial
        rest = [a for a in self.axes if a not in self.sample_axes]
        for n in ns:
            idx = dict(zip(self.sample_axes, np.unravel_index(n, self.sample_shape))) if self.sample_axes else {}
            src_key = tuple(
                int(idx[a]) if a in idx else ckey if a == "C" else src_sp[self.spatial.index(a)] for a in self.axes
            )
            block = self._read(src_key).astype(np.float32, copy=False)
            block = np.transpose(block, [rest.index(a) for a in order])
            if "C" not in self.axes:
                block = block[None][ckey]
            if self.low is not None:
                block = (block - self.low[ckey]) / self.scale[ckey]
            blocks.append(block)
        if not isinstance(nkey, slice):
            out = blocks[0]
        else:
            out = np.stack(blocks) if blocks else np.zeros((0, *self.shape[1:]), np.float32)
        if not isinstance(key[1], slice):
            out = out[:, 0] if isinstance(nkey, slice) else out[0]
        return out


def prepare_arrays(images: np.ndarray | Sequence[np.ndarray], axes: str, *, z_as_sample: bool = False) -> tuple[list[np.ndarray], str]:
    """Validate images and move each to ``(N, C, [Z,] Y, X)`` float32.

    All images share ``axes``; they may differ in size. With ``z_as_sample`` the Z slices become
    samples (``(N * Z, C, Y, X)``, for a 2D network). Returns the arrays and the spatial axes.
    Lazy images (zarr, dask, h5py, memmaps) are not loaded: they are checked block by block and
    returned as :class:`LazyImage` views.
    """
    single = isinstance(images, np.ndarray) or is_lazy(images) or hasattr(images, "__array__") and not isinstance(images, (list, tuple))
    arrays = [images] if single else list(images)
    if not arrays:
        raise DataError("no training images given")
    ax = validate_axes(axes)
    out = []
    for i, img in enumerate(arrays):
        if is_lazy(img):
            out.append(_prepare_lazy(img, ax, i, z_as_sample))
            continue
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


def _prepare_lazy(img, ax: str, i: int, z_as_sample: bool) -> LazyImage:
    """The checks of :func:`prepare_arrays` for a lazy image, block by block."""
    if len(img.shape) != len(ax):
        raise DataError(f"image {i + 1} has {len(img.shape)} dimensions {tuple(img.shape)} but axes {ax!r} have {len(ax)}")
    dt = np.dtype(img.dtype)
    if not np.issubdtype(dt, np.number) or dt == np.bool_ or np.issubdtype(dt, np.complexfloating):
        raise DataError(f"image {i + 1} is not real-valued numbers (dtype {dt})")
    if int(np.prod(img.shape)) == 0:
        raise DataError(f"image {i + 1} is empty (shape {tuple(img.shape)})")
    try:
        check_finite(img)
    except DataError:
        raise DataError(f"image {i + 1} contains NaN or infinite values") from None
    return LazyImage(img, ax, z_as_sample=z_as_sample)


def _sample_values(arrays: list, ch: int, max_samples: int, rng: np.random.Generator) -> np.ndarray:
    """About ``max_samples`` values of channel ``ch``, read as random blocks of the lazy arrays
    (whole arrays when they hold fewer values): memory stays at ``max_samples`` values."""
    sizes = np.array([a.shape[0] * int(np.prod(a.shape[2:])) for a in arrays], dtype=np.float64)
    if sizes.sum() <= max_samples:
        return np.concatenate([np.asarray(a[:, ch : ch + 1]).ravel() for a in arrays])
    parts, got = [], 0
    while got < max_samples:
        a = arrays[rng.choice(len(arrays), p=sizes / sizes.sum())]
        sp = a.shape[2:]
        block = [min(s, 64) for s in sp]  # 64^2 or 64^3 values per read: about a chunk
        corner = [int(rng.integers(s - b + 1)) for s, b in zip(sp, block)]
        vals = np.asarray(a[(int(rng.integers(a.shape[0])), slice(ch, ch + 1), *(slice(c, c + b) for c, b in zip(corner, block)))]).ravel()
        parts.append(vals)
        got += vals.size
    return np.concatenate(parts)[:max_samples]


def percentiles(arrays: list[np.ndarray], pmin: float, pmax: float, max_samples: int = 2_000_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``pmin``/``pmax`` percentiles over all arrays (subsampled when large).

    With lazy arrays (:class:`LazyImage`) at most ``max_samples`` values are read: all of them
    when the arrays hold no more (the result is then the in-memory one), else random blocks.
    """
    c = arrays[0].shape[1]
    low, high = np.zeros(c), np.zeros(c)
    rng = np.random.default_rng(0)
    lazy = any(isinstance(a, LazyImage) for a in arrays)
    for ch in range(c):
        if lazy:
            vals = _sample_values(arrays, ch, max_samples, rng)
        else:
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
    return [a.normalized(low, high) if isinstance(a, LazyImage) else (a - lo) / sc for a in arrays]


def split_validation(arrays: list[np.ndarray], fraction: float, patch: tuple[int, ...], *,
                     multiple: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out the bottom ``fraction`` of the Y rows of every image for validation.

    The held-out rows are ``round(fraction * rows)`` rounded up to ``multiple`` (the network's
    size multiple along Y), at least ``multiple``; validation patches are then as high as the
    held-out strip when it is lower than a patch (:func:`validation_patch`). It used to be at
    least one patch high: a 128-row image with 64-px patches lost half its rows to validation
    at any fraction, a 256-row one a quarter at 10 %. Images whose training part would be lower
    than a patch are used for training only; if no image can be split, the validation list is
    empty.
    """
    if fraction <= 0:
        return arrays, []
    train, val = [], []
    py = patch[-2]
    for a in arrays:
        h = a.shape[-2]
        v = max(1, -(-round(h * fraction) // multiple)) * multiple
        if h - v >= py and isinstance(a, LazyImage):
            train.append(a.crop_axis(a.ndim - 2, 0, h - v))
            val.append(a.crop_axis(a.ndim - 2, h - v, h))
        elif h - v >= py:
            train.append(a[..., : h - v, :])
            val.append(a[..., h - v :, :])
        else:
            train.append(a)
    return train, val


def validation_patch(val: list[np.ndarray], patch: tuple[int, ...]) -> tuple[int, ...]:
    """``patch`` no higher (Y) than the lowest validation strip of :func:`split_validation`."""
    if not val:
        return tuple(patch)
    return (*patch[:-2], min(patch[-2], *(a.shape[-2] for a in val)), patch[-1])


class PatchSampler:
    """Random patches from arrays of any size, uniformly over all valid patch positions.

    Arrays are ``(N, C, *S)`` float32 (already normalised); they are kept as torch tensors on
    ``device`` when they fit (``max_device_bytes``), so sampling costs no host transfer. Lazy
    arrays (:class:`LazyImage`) stay where they are and each patch is read when drawn, through one
    :class:`BlockCache` of ``cache_bytes`` (default :data:`PATCH_CACHE_BYTES`) for all of them; the
    random draws are the same, so the patches are too.
    """

    def __init__(
        self, arrays: list[np.ndarray], patch: tuple[int, ...], *, rng: np.random.Generator, device: torch.device,
        max_device_bytes: int = 2 << 30, cache_bytes: int | None = None,
    ):
        self.patch = tuple(patch)
        self.rng = rng
        self.device = device
        total = sum(a.nbytes for a in arrays if not isinstance(a, LazyImage))
        store = device if (device.type != "cpu" and total <= max_device_bytes) else torch.device("cpu")
        self.store = store
        self.cache = BlockCache(PATCH_CACHE_BYTES if cache_bytes is None else cache_bytes)
        self.tensors = [
            a.with_cache(self.cache) if isinstance(a, LazyImage) else torch.from_numpy(np.ascontiguousarray(a)).to(store)
            for a in arrays
        ]
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
            patch = t[(n, slice(None), *sl)]
            out.append(torch.from_numpy(patch).to(self.store) if isinstance(t, LazyImage) else patch)
        batch = torch.stack(out)
        if batch.device.type == "cpu" and self.device.type == "cuda":
            # only a copy from pinned memory runs in the background; from pageable memory
            # non_blocking copies synchronously (lazy data and data too large for the GPU)
            batch = batch.pin_memory()
        return batch.to(self.device, non_blocking=True)

    def fixed_batches(self, n_patches: int, batch: int) -> list[torch.Tensor]:
        """A fixed list of batches (for validation), drawn once."""
        patches = self.sample(n_patches)
        return [patches[i : i + batch] for i in range(0, n_patches, batch)]
