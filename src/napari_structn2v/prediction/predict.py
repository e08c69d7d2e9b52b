"""Tiled prediction with overlapping tiles, for any image size and axes, and the input checks.

Each tile is predicted with a context margin at least as large as the network's receptive-field
radius and aligned to the pooling grid; only its central part is written out (the geometry is
:mod:`~napari_structn2v.prediction.tiling`'s). Tiles therefore agree exactly with an untiled prediction (up to
float rounding) and leave no seams, and memory is bounded by the tile size.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import warnings
from collections.abc import Callable, Generator, Mapping, Sequence

import numpy as np
import torch

from ..axes import spatial_axes, validate_axes
from ..errors import AxesError, ConfigError, DataError, IntensityWarning, StructN2VWarning
from ..events import PredictDone, TileDone
from ..method.augment import symmetric_transforms
from ..nn.inference import forward_tta, inference_net, items_per_pass, resolve_precision
from ..nn.unet import context_of
from .tiling import TilePlan, TileRegion, check_tiling, pad_to_multiple, plan_tiles

#: an input whose robust intensity span (0.1-99.9 percentiles) is this many times wider or
#: narrower than the training span, or whose centre lies this many training spans away, is "far
#: outside" the normalisation. The network only saw inputs near [0, 1] after normalisation; uint16
#: data (0-10,704) into a model normalised on 0-1 is a factor 10^4 off and gave an output mean of -32.
INTENSITY_FACTOR = 10.0
#: values sampled per channel to estimate an input's intensity range (a strided sub-grid)
INTENSITY_SAMPLES = 1_000_000
#: values read at a time when a lazy input (zarr, dask, memmap) is checked block by block:
#: 4M float32 values are 16 MB, so checking a 512 MB volume never holds more than that
CHECK_BLOCK_VALUES = 4_000_000


def is_lazy(image: object) -> bool:
    """True for array-likes that are not plain in-memory arrays (zarr, dask, h5py, memmaps):
    those are read piece by piece and never converted whole."""
    if isinstance(image, np.memmap):
        return True
    return not isinstance(image, np.ndarray) and hasattr(image, "shape") and hasattr(image, "dtype")


def iter_blocks(shape: Sequence[int], max_values: int | None = None) -> Generator[tuple[slice, ...], None, None]:
    """Index tuples covering ``shape`` in blocks of at most about ``max_values`` values (default
    :data:`CHECK_BLOCK_VALUES`): whole trailing axes, and a range of the first axis that is not whole."""
    max_values = CHECK_BLOCK_VALUES if max_values is None else max_values
    shape = tuple(int(s) for s in shape)
    if not shape:
        yield ()
        return
    inner = 1
    lead = len(shape)  # axes [lead:] are taken whole
    while lead > 0 and inner * shape[lead - 1] <= max_values:
        lead -= 1
        inner *= shape[lead]
    if lead == 0:
        yield tuple(slice(None) for _ in shape)
        return
    split = lead - 1  # this axis is cut into ranges, the axes before it are taken one index at a time
    step = max(1, max_values // inner)
    for outer in np.ndindex(*shape[:split]):
        for a in range(0, shape[split], step):
            yield tuple(slice(i, i + 1) for i in outer) + (slice(a, min(a + step, shape[split])),) + tuple(
                slice(None) for _ in shape[split + 1:]
            )


def context_slices(z: int, k: int, n: int) -> list[int]:
    """The ``2k + 1`` slice indices a 2D network with Z context reads for slice ``z`` of ``n``
    (:func:`~napari_structn2v.nn.unet.context_of`: never ``z`` itself as its own neighbour).

    Needs ``n >= 2`` when ``k > 0`` (:class:`DataError` otherwise).
    """
    if k and n < 2:
        raise DataError("a model that uses neighbouring Z slices needs at least 2 slices")
    return context_of(z, k, n)


def resolve_axes(image_ndim: int, model_axes: str, axes: str | None, spatial_ndim: int, channels: int) -> str:
    """Axes of an image given to a model: ``axes`` if given, else the model's training axes with
    S/T dropped or added in front until they fit ``image_ndim``."""
    if axes is None:
        cand = model_axes.upper()
        for letter in "ST":
            if len(cand) > image_ndim and letter in cand:
                cand = cand.replace(letter, "")
        for letter in "ST":
            if len(cand) < image_ndim and letter not in cand:
                cand = letter + cand
        if len(cand) != image_ndim:
            raise AxesError(
                f"the image has {image_ndim} dimensions but the model was trained on "
                f"{model_axes!r}; give the image's axes explicitly"
            )
        axes = cand
    ax = validate_axes(axes, image_ndim)
    if len(spatial_axes(ax)) != spatial_ndim and not (spatial_ndim == 2 and "Z" in ax):  # 2D nets go slice by slice
        raise AxesError(
            f"the model is {spatial_ndim}D (trained on {model_axes!r}) but axes {ax!r} have "
            f"{len(spatial_axes(ax))} spatial dimensions"
        )
    if channels != 1 and "C" not in ax:
        raise AxesError(f"the model expects {channels} channels but axes {ax!r} have no C axis")
    return ax


#: the test-time averaging choices besides True (every mask-preserving transform) and False (one
#: pass): "half-turn" is the identity and the 180-degree turn (flip Y and X), 2 passes instead of
#: a line mask's 4. Every transform costs one full forward pass on a CPU (the 4 flips took 3.78x
#: one pass in 2D, 3.85x in 3D, ``benchmarks/results/speed_cpu_tta.md``), so TTA under 3x needs
#: fewer transforms; but fewer lose quality: after 400 steps the half turn was 0.22-0.33 dB below
#: the 4 flips on the six dev sets, and even 3 of the 4 lost 0.08-0.15 dB (``benchmarks/results/tta_quality_cpu.md``),
#: so the 4 flips stay the default and the half turn is a choice for a faster preview.
TTA_MODES = (True, False, "half-turn")
#: transform codes (:mod:`~napari_structn2v.method.augment`) of the "half-turn" mode: identity, flip X and Y
HALF_TURN_CODES = (0, 3)


def check_tta(tta: object) -> bool | str:
    """``tta`` as one of :data:`TTA_MODES` (a string in any case); :class:`ConfigError` otherwise."""
    if isinstance(tta, (bool, np.bool_)):
        return bool(tta)
    if isinstance(tta, str) and tta.strip().lower() in TTA_MODES:
        return tta.strip().lower()
    raise ConfigError("tta", f"must be True (every flip that keeps the mask), False (one pass) or 'half-turn' "
                             f"(the identity and the 180-degree turn, 2 passes), got {tta!r}")


def tta_transforms(mask: np.ndarray, enabled: bool | str = True) -> tuple[tuple, ...]:
    """The test-time transforms that keep the blind mask: flips of Y and X and Y/X transposes,
    each only when the mask is the same after it (as in training augmentation,
    :func:`~napari_structn2v.method.augment.symmetric_transforms`). A flipped diagonal or L mask would
    hide other pixels than the network learned to ignore, and a turn makes X-correlated noise
    Y-correlated. Each transform is the flipped dims, then ``"T"`` for a transpose; returns
    ``((),)`` when ``enabled`` is False. ``enabled="half-turn"`` keeps only the identity and the
    180-degree turn (when the mask keeps it; else one pass). See :data:`TTA_MODES`.
    """
    mode = check_tta(enabled)
    if mode is False:
        return ((),)
    codes = symmetric_transforms(np.asarray(mask, dtype=bool))
    if mode == "half-turn":
        codes = tuple(c for c in codes if c in HALF_TURN_CODES)
    return tuple(tuple(d for bit, d in ((1, -1), (2, -2)) if c & bit) + (("T",) if c & 4 else ()) for c in codes)


def check_dtype(image: np.ndarray, what: str = "the image") -> None:
    """Refuse arrays that are not real numbers: bool, complex, strings, objects."""
    dt = np.dtype(image.dtype if hasattr(image, "dtype") else np.asarray(image).dtype)  # lazy arrays stay lazy
    if dt == np.bool_:
        raise DataError(f"{what} is boolean (a mask?), not intensities; convert it to numbers first if that is meant")
    if np.issubdtype(dt, np.complexfloating):
        raise DataError(
            f"{what} is complex ({dt}); denoise the magnitude (np.abs) or the real part explicitly, "
            "nothing is dropped silently"
        )
    if not (np.issubdtype(dt, np.integer) or np.issubdtype(dt, np.floating)):
        raise DataError(f"{what} is not numeric (dtype {dt})")


def check_finite(image: np.ndarray, what: str = "the image") -> None:
    """Refuse NaN or infinite values (one NaN spreads over the receptive field: 1 in, 1,156 out)."""
    if not np.issubdtype(np.dtype(image.dtype), np.floating):
        return
    if is_lazy(image):  # block by block: a lazy volume is never loaded whole
        n = sum(int(np.size(b) - np.count_nonzero(np.isfinite(b))) for b in (np.asarray(image[k]) for k in iter_blocks(image.shape)))
    else:
        finite = np.isfinite(image)
        n = 0 if bool(finite.all()) else int(np.size(finite) - np.count_nonzero(finite))
    if n:
        raise DataError(f"{what} contains {n} NaN or infinite value(s); fill or crop them first")


def check_rgb_like(shape: tuple[int, ...], axes: str) -> None:
    """Refuse guessed axes that take a last axis of 3 or 4 (RGB/RGBA colour) as X."""
    if len(shape) >= 3 and shape[-1] in (3, 4) and axes[-1] == "X":
        raise AxesError(
            f"the image's last axis has {shape[-1]} values and looks like RGB colour, which the guessed "
            f"axes {axes!r} would take as X; give the axes explicitly (e.g. 'YXC' for colour)"
        )


def _robust_range(image: np.ndarray, axes: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel 0.1 and 99.9 percentiles of a strided sub-grid of about INTENSITY_SAMPLES values.

    Only the sub-grid is read (one strided index), so lazy inputs stay lazy."""
    n_ch = image.shape[axes.index("C")] if "C" in axes else 1
    per_ch = max(1, int(np.prod(image.shape)) // n_ch)
    step = max(1, int(math.ceil((per_ch / INTENSITY_SAMPLES) ** (1 / max(1, image.ndim - ("C" in axes))))))
    sub = np.asarray(image[tuple(slice(None) if a == "C" else slice(None, None, step) for a in axes)], dtype=np.float64)
    if "C" in axes:
        sub = np.moveaxis(sub, axes.index("C"), 0)
    sub = sub.reshape(n_ch, -1)
    lo, hi = np.percentile(sub, (0.1, 99.9), axis=1)
    return lo, hi


def intensity_mismatch(
    image: np.ndarray, axes: str, low: Sequence[float], high: Sequence[float], *, subject: str = "the image's"
) -> str | None:
    """A clause (``"<subject> intensities (a to b) lie far outside ..."``) if ``image``'s intensities
    lie far outside the normalisation ``low``-``high`` (see :data:`INTENSITY_FACTOR`), else None."""
    lo_i, hi_i = _robust_range(image, axes)
    low_a, high_a = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if lo_i.shape != low_a.shape:
        return None  # the channel check reports this
    span_t = np.where(high_a > low_a, high_a - low_a, 1.0)
    span_i = hi_i - lo_i
    ratio = span_i / span_t
    shift = np.abs((lo_i + hi_i) / 2 - (low_a + high_a) / 2) / span_t
    far = (ratio > INTENSITY_FACTOR) | ((span_i > 0) & (ratio < 1 / INTENSITY_FACTOR)) | (shift > INTENSITY_FACTOR)
    if not far.any():
        return None
    c = int(np.argmax(far))
    return (
        f"{subject} intensities ({lo_i[c]:.4g} to {hi_i[c]:.4g}) lie far outside the range the model was "
        f"normalised on ({low_a[c]:.4g} to {high_a[c]:.4g})"
    )


def check_input(
    image: np.ndarray,
    axes: str,
    *,
    low: Sequence[float],
    high: Sequence[float],
    guessed_axes: bool,
) -> None:
    """Check an image against a model before prediction.

    Refuses (:class:`DataError`/:class:`AxesError`) non-numeric, complex or boolean data, NaN or
    infinite values, a channel count other than the model's, and guessed axes that take an RGB
    last axis as X; warns (:class:`IntensityWarning`) when the intensities lie far outside the
    model's normalisation.
    """
    check_dtype(image)
    if any(s < 1 for s in image.shape):
        raise DataError(f"the image has an empty axis: shape {tuple(image.shape)}")
    if guessed_axes:
        check_rgb_like(tuple(image.shape), axes)
    n_ch = image.shape[axes.index("C")] if "C" in axes else 1
    if n_ch != len(low):
        raise DataError(f"the model expects {len(low)} channel(s), the image has {n_ch} (axes {axes!r})")
    check_finite(image)
    message = intensity_mismatch(image, axes, low, high)
    if message is not None:
        warnings.warn(f"{message}; the result is unreliable unless the data are on the training data's scale",
                      IntensityWarning, stacklevel=3)


def predict_tiles(
    net: torch.nn.Module, image: np.ndarray, axes: str, *, low: np.ndarray, high: np.ndarray,
    multiple: tuple[int, ...], radius: tuple[int, ...], tile: int | Sequence[int] = 256,
    overlap: int | Sequence[int] | None = None, device: torch.device, amp: bool = False,
    tta: Sequence[tuple[int, ...]] = ((),), should_stop: Callable[[], bool] | None = None,
    out: object | None = None, z_context: int = 0, precision: str | None = None, batch: int | None = None,
    focus: Mapping[str, float] | None = None, near: Mapping[str, float] | None = None,
) -> Generator[TileDone | PredictDone, None, np.ndarray]:
    """Predict ``image`` (axes ``axes``) tile by tile (:mod:`~napari_structn2v.prediction.tiling`); yields
    :class:`TileDone` per tile, in the plan's order, then :class:`PredictDone`.

    ``image`` may be any array-like indexable by a tuple of slices (numpy, memmap, zarr, dask,
    h5py): only one batch of tiles (plus their margins) is read at a time.

    Parameters
    ----------
    low, high : np.ndarray
        Per-channel normalisation (input ``(x - low) / (high - low)``; output mapped back).
    multiple, radius : tuple of int
        Pooling multiple and receptive-field radius of ``net`` per spatial axis.
    tile, overlap : int or sequence
        Tile side and total overlap of neighbours (see :func:`~napari_structn2v.prediction.tiling.tile_geometry`;
        default overlap: twice the receptive-field radius rounded up to the pooling multiple).
    amp : bool
        Kept for callers of earlier versions; the number format is ``precision``'s.
    tta : sequence of tuples
        Test-time augmentation: the tensor dims to flip for each pass (``"T"`` in a tuple transposes
        Y and X); the passes are averaged, in one batched forward pass per batch of tiles.
        See :func:`tta_transforms`.
    out : array-like, optional
        Where to write the result tile by tile (zarr, memmap, a layer's data; ``out[region] = tile``),
        same shape as ``image``, so the whole result is never held in memory. Default: new float32.
    z_context : int
        For a 2D network over Z slices: neighbours on each side as extra channels (:func:`context_slices`).
    precision : str, optional
        ``"auto"`` (default), ``"float32"``, ``"bfloat16"`` or ``"float16"``
        (:func:`~napari_structn2v.nn.inference.resolve_precision`).
    batch : int, optional
        Tiles per forward pass; default from the free device memory
        (:func:`~napari_structn2v.nn.inference.items_per_pass`).
    focus, near : mapping, optional
        The order of the tiles (axis letter -> data coordinate): those covering ``focus`` first, e.g.
        ``{"Z": 15}`` for the slice a viewer shows, then the rest by distance, ties nearest ``near``
        (:func:`~napari_structn2v.prediction.tiling.plan_tiles`). The result does not depend on it.

    Returns
    -------
    array-like
        ``out`` or a new float32 array: ``image``'s shape and axes, in its intensity scale.
    """
    ax = validate_axes(axes, image.ndim)
    check_tiling(tile, overlap, len(radius))  # a bad option is named before the image is looked at
    dtype = resolve_precision(precision, device)
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ConfigError("batch", f"must be a positive integer (tiles per forward pass), got {batch!r}")
    _check_image(image, ax, low)
    plan = plan_tiles(image.shape, ax, radius=radius, multiple=multiple, tile=tile, overlap=overlap,
                      z_context=z_context, context_rule=context_slices, focus=focus, near=near)
    _warn_group_norm(net, plan)
    out = _output_array(image, out)
    norm = _normalisation(low, high, len(radius))
    total = len(plan)
    runner = inference_net(net, device, dtype)
    regions = iter(plan)
    index, per_pass = 0, batch
    with torch.inference_mode(), _cudnn_autotune(device):
        while True:
            if should_stop is not None and should_stop():
                yield PredictDone(out, stopped=True)
                return out
            chunk = list(itertools.islice(regions, per_pass or 1))
            if not chunk:
                break
            blocks = [pad_to_multiple(_read_block(image, plan, r, *norm), multiple) for r in chunk]
            if per_pass is None:  # sized on the first tile (all tiles of a plan share its shape)
                per_pass = items_per_pass(runner, _to_device(blocks[:1], device), dtype, len(tta))
            for region, y in zip(chunk, _run_blocks(runner, blocks, device, dtype, tta, [r.crop for r in chunk])):
                y = _to_input_order(y * norm[1] + norm[0], plan)
                out[region.write] = y
                index += 1
                yield TileDone(index=index, total=total, region=region.write, data=y)
    yield PredictDone(out, stopped=False)
    return out


def _to_device(blocks: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """Equal-shaped ``(C, *S)`` blocks as one ``(B, C, *S)`` float32 tensor on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(np.stack(blocks)))
    return x.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else x.to(device)


def _run_blocks(net: torch.nn.Module, blocks: list[np.ndarray], device: torch.device, dtype: torch.dtype,
                tta: Sequence[tuple], crops: list[tuple[slice, ...]]) -> list[np.ndarray]:
    """The network's output for each block (mean over ``tta``), cropped on the device to ``crops``,
    as float32 ``(C, *S)`` arrays. Blocks of one shape share a forward pass."""
    result: list[np.ndarray | None] = [None] * len(blocks)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, b in enumerate(blocks):
        by_shape.setdefault(b.shape, []).append(i)
    for idx in by_shape.values():
        y = forward_tta(net, _to_device([blocks[i] for i in idx], device), tta, dtype)
        for j, i in enumerate(idx):
            result[i] = y[(j, slice(None), *crops[i])].cpu().numpy()
    return result


@contextlib.contextmanager
def _cudnn_autotune(device: torch.device):
    """cuDNN's kernel autotuning on CUDA: every tile of a plan has one shape, so the tuning of the
    first forward pass serves all the others."""
    if device.type != "cuda":
        yield
        return
    with torch.backends.cudnn.flags(enabled=True, benchmark=True):
        yield


def _warn_group_norm(net: torch.nn.Module, plan: TilePlan) -> None:
    """Warn when a network with group norms is split into tiles: a group norm takes its statistics
    over the whole tile, so the result depends on the tiling (an 8-filter net on 128^2: tiles of 64
    changed the output by up to 16 % of its range), where a batch norm's are fixed after training."""
    if len(plan) > math.prod(plan.shape[plan.axes.index(a)] for a in plan.outer) and any(
        isinstance(m, torch.nn.GroupNorm) for m in net.modules()
    ):
        warnings.warn(
            "this model normalises with group norms, whose statistics are taken per tile, so the result "
            "depends on the tile size and may show seams; predict each image as one tile (a tile at least "
            "as large as the image) for a result that does not",
            StructN2VWarning, stacklevel=3,
        )


def _check_image(image: np.ndarray, ax: str, low: Sequence[float]) -> None:
    """Refuse an empty axis and a channel count other than the model's."""
    if any(image.shape[ax.index(a)] < 1 for a in ax):
        raise DataError(f"the image has an empty axis: shape {image.shape}")
    n_ch = image.shape[ax.index("C")] if "C" in ax else 1
    if n_ch != len(low):
        raise DataError(f"the model expects {len(low)} channel(s), the image has {n_ch}")


def _output_array(image: np.ndarray, out: object | None) -> object:
    """``out`` if it has ``image``'s shape (:class:`DataError` if not), or a new float32 array."""
    if out is None:
        return np.zeros(image.shape, dtype=np.float32)
    if tuple(getattr(out, "shape", ())) != tuple(image.shape):
        raise DataError(f"the output array has shape {tuple(getattr(out, 'shape', ()))}, the image {tuple(image.shape)}")
    return out


def _normalisation(low: Sequence[float], high: Sequence[float], nd: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel offset and scale shaped ``(C, 1, ...)`` for ``(C, *S)`` blocks; a channel with
    ``high == low`` gets scale 1."""
    low_a = np.asarray(low, dtype=np.float32).reshape((-1,) + (1,) * nd)
    scale_a = (np.asarray(high, dtype=np.float32) - np.asarray(low, dtype=np.float32)).reshape((-1,) + (1,) * nd)
    return low_a, np.where(scale_a == 0, 1.0, scale_a).astype(np.float32)


def _tile_order(plan: TilePlan) -> list[str]:
    """The axes of a block as the network sees it: C (if any), then the spatial axes ZYX."""
    return (["C"] if "C" in plan.axes else []) + list(plan.spatial)


def _read_block(image, plan: TilePlan, region: TileRegion, low_a: np.ndarray, scale_a: np.ndarray) -> np.ndarray:
    """One tile read and normalised as ``(C, *S)`` float32; with a Z-context selection, the
    selected slices become channels (``C * len(z_select)``, channel-major as in training)."""
    ax, zsel = plan.axes, region.z_select
    block = np.asarray(image[region.read], dtype=np.float32)
    lead = [a for a in plan.outer if not (zsel is not None and a == "Z")]
    order = lead + (["Z"] if zsel is not None else []) + _tile_order(plan)
    block = np.transpose(block, [ax.index(a) for a in order])
    block = block.reshape(block.shape[len(lead):])
    if zsel is None:
        block = block if "C" in ax else block[None]
        return (block - low_a) / scale_a
    block = block if "C" in ax else block[:, None]  # (Zr, C, Y, X)
    block = ((block - low_a) / scale_a)[zsel]
    return np.ascontiguousarray(block.transpose(1, 0, 2, 3)).reshape(-1, *block.shape[2:])


def _to_input_order(y: np.ndarray, plan: TilePlan) -> np.ndarray:
    """A predicted ``(C, *S)`` tile in the input's axes order (sample axes of length 1)."""
    ax = plan.axes
    order = [a for a in ax if a in plan.outer] + _tile_order(plan)
    if "C" not in ax:
        y = y[0]
        order = [a for a in order if a != "C"]
    y = y.reshape((1,) * len(plan.outer) + y.shape)
    return np.transpose(y, [order.index(a) for a in ax]).astype(np.float32)
