"""Tile geometry for tiled prediction: which part of an image each tile reads, keeps and writes.

Torch-free (numpy only). A tile is read with a context margin at least as large as the network's
receptive-field radius, rounded up to the pooling multiple, and only its core is written out, so
the cores of all tiles cover the image exactly once. :mod:`~napari_structn2v.prediction.predict` runs the
network over a :class:`TilePlan`; :mod:`~napari_structn2v.prediction.distributed` makes dask chunks of the
same cores.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..axes import spatial_axes
from ..errors import ConfigError, DataError

#: one axis split into tiles: ``(core_start, core_stop, read_start, read_stop)`` per tile
AxisTile = tuple[int, int, int, int]
#: a 2D network's Z-context rule ``(z, k, n) -> the 2k + 1 slices read for slice z of n``
ContextRule = Callable[[int, int, int], Sequence[int]]
#: a point of the image by axis letter, in data coordinates (pixels): ``{"Z": 15}``
Point = Mapping[str, float]


def check_point(point: object, axes: str, option: str) -> dict[str, float]:
    """``point`` (a mapping of axis letters of ``axes`` other than C to finite numbers, or None)
    as a dict; :class:`ConfigError` naming ``option`` otherwise."""
    if point is None:
        return {}
    if not isinstance(point, Mapping):
        raise ConfigError(option, f"must map axis letters to coordinates, e.g. {{'Z': 15}}, got {point!r}")
    out = {}
    for letter, value in point.items():
        a = str(letter).upper()
        if a not in axes or a == "C":
            raise ConfigError(option, f"names axis {letter!r}, which is not a spatial or sample axis of {axes!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ConfigError(option, f"needs a finite coordinate for {a}, got {value!r}")
        out[a] = float(value)
    return out


def check_tiling(tile: object, overlap: object, nd: int) -> None:
    """Refuse a ``tile`` that is not a positive integer (or ``nd`` of them) and an ``overlap``
    that is not None, a non-negative integer or ``nd`` of them (:class:`ConfigError`)."""
    for name, value, lo in (("tile", tile, 1), ("overlap", overlap, 0)):
        if value is None and name == "overlap":
            continue
        if isinstance(value, numbers.Number):
            items = [value]
        elif isinstance(value, (list, tuple)) and len(value) == nd:
            items = list(value)
        else:
            raise ConfigError(name, f"must be an integer or {nd} integers (one per spatial axis), got {value!r}")
        for v in items:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
                raise ConfigError(name, f"must be {'a positive' if lo else 'a non-negative'} integer, got {value!r}")


def context_margins(
    radius: Sequence[int], multiple: Sequence[int], overlap: int | Sequence[int] | None = None
) -> list[int]:
    """Context margin per spatial axis: the receptive-field ``radius`` (or half the ``overlap``)
    rounded up to the pooling ``multiple``."""
    if overlap is None:
        return [int(math.ceil(r / m) * m) for r, m in zip(radius, multiple)]
    ov = (int(overlap),) * len(radius) if np.isscalar(overlap) else tuple(overlap)
    return [int(math.ceil(o / 2 / m) * m) for o, m in zip(ov, multiple)]


def tile_geometry(
    radius: Sequence[int], multiple: Sequence[int], tile: int | Sequence[int], overlap: int | Sequence[int] | None
) -> tuple[list[int], list[int]]:
    """Context margin and tile side per spatial axis.

    Margins are :func:`context_margins`; an int ``tile`` is used for Y and X, and for Z capped at
    32 + twice the margin (a thin Z tile keeps a 3D tile's volume near a 2D one's).
    """
    nd = len(radius)
    margins = context_margins(radius, multiple, overlap)
    if np.isscalar(tile):
        tiles = [int(tile)] * nd
        if nd == 3:
            tiles[0] = min(int(tile), 32 + 2 * margins[0])
    else:
        tiles = [int(t) for t in tile]
    return margins, tiles


def axis_tiles(size: int, tile: int, margin: int, multiple: int) -> list[AxisTile]:
    """Split one axis of ``size`` into tiles of side ``tile``: ``(core_start, core_stop,
    read_start, read_stop)`` per tile.

    The cores cover ``0 .. size`` without gaps or overlaps. Their number is what a core of
    ``tile - 2 * margin`` (rounded down to the pooling ``multiple``) needs, and their length is
    spread evenly over them (rounded up to the multiple; the last one shorter), so no tile is
    spent on a sliver: 1024 px in tiles of 256 with a margin of 28 take 6 cores of 172 instead of
    5 of 200 and one of 24, 21 % fewer pixels through a 2D network.

    Every read range has the same length, ``core + 2 * margin``: a range that would cross an end
    of the axis is moved inwards (on the pooling grid), which gives it more context on the other
    side and no less than ``margin`` around its core. Tiles of one image then share one shape and
    run as one batch (the far end is padded to the pooling multiple, the same way in every tile
    and in a whole-image prediction). An axis no longer than ``tile`` is one tile.
    """
    if size <= tile:
        return [(0, size, 0, size)]
    core = tile - 2 * margin
    core = max(multiple, core - core % multiple)
    n = math.ceil(size / core)
    core = math.ceil(math.ceil(size / n) / multiple) * multiple
    span = core + 2 * margin
    last_start = math.ceil(max(0, size - span) / multiple) * multiple  # the last read range, on the pooling grid
    out = []
    for c0 in range(0, size, core):
        c1 = min(c0 + core, size)
        r0 = min(max(0, c0 - margin), last_start)
        out.append((c0, c1, r0, min(size, r0 + span)))
    return out


def core_sizes(size: int, tile: int, margin: int, multiple: int) -> tuple[int, ...]:
    """The lengths of the tiles' cores along one axis (:func:`axis_tiles`): dask chunks that
    match tiled prediction."""
    return tuple(c1 - c0 for c0, c1, _, _ in axis_tiles(size, tile, margin, multiple))


def covering_tile(sizes: Sequence[int], margins: Sequence[int], multiple: Sequence[int]) -> list[int]:
    """The tile side per axis that predicts a block of ``sizes`` as one tile: the block itself, or
    the smallest tile its margins allow."""
    return [max(int(s), 2 * m + mult) for s, m, mult in zip(sizes, margins, multiple)]


#: pixels at the end of a line whose mean fills the padding after it (:func:`pad_to_multiple`)
EDGE_MEAN_LENGTH = 16


def pad_to_multiple(x: np.ndarray, multiple: Sequence[int]) -> np.ndarray:
    """Pad the spatial axes of a normalised ``(C, *S)`` block at their end to multiples of
    ``multiple`` (the network's pooling multiple, ``2 ** depth``).

    Each line is continued by a constant, the mean of its last :data:`EDGE_MEAN_LENGTH` pixels, so
    no padded pixel repeats a neighbour whose noise is correlated with the last pixels' (a mirror,
    used before, put copies of them inside a line mask's reach). Measured on a 9x1-masked model,
    images 125 and 127 px wide, 3 seeds: residual lag-1 correlation along X over the last 3 columns
    0.590 / 0.414 (mirror 0.636 / 0.425), RMS error 0.0947 / 0.1092 (mirror 0.0961 / 0.1108); zeros
    were worse than both (RMS 0.136 / 0.190: a dark wall the network never saw in training). The
    constant depends only on the last pixels, so a tile at the image's end pads as the whole image does.
    """
    spatial = x.shape[1:]
    pads = [(0, 0)] + [(0, (-s) % m) for s, m in zip(spatial, multiple)]
    if not any(p[1] for p in pads):
        return x
    return np.pad(x, pads, mode="mean", stat_length=[(1, 1)] + [(1, EDGE_MEAN_LENGTH)] * len(spatial))


@dataclass(frozen=True)
class TileRegion:
    """One tile of a :class:`TilePlan`.

    ``read`` indexes the image (the tile with its margins), ``write`` the output (the tile's core),
    both in the image's axes; ``crop`` takes the core out of the read block along the network's
    spatial axes (ZYX order). ``z_select``, for a 2D network with Z context, lists the slices of
    the read Z range the network gets, in order; None otherwise.
    """

    read: tuple[slice, ...]
    write: tuple[slice, ...]
    crop: tuple[slice, ...]
    z_select: list[int] | None = None


@dataclass(frozen=True)
class TilePlan:
    """The tiles that cover an image of ``shape`` with axes ``axes``; iterate to get
    :class:`TileRegion` s, ``len()`` is their number. Built by :func:`plan_tiles`."""

    shape: tuple[int, ...]
    axes: str
    #: the network's spatial axes, ZYX order (a 2D network over a volume: ``"YX"``)
    spatial: str
    #: axes taken one index at a time, in the image's order: S, T, and Z for a 2D network over a volume
    outer: tuple[str, ...]
    #: :func:`axis_tiles` per letter of ``spatial``
    per_axis: tuple[tuple[AxisTile, ...], ...]
    z_context: int = 0
    context_rule: ContextRule | None = None
    #: tiles whose cores lie nearest this point come first (:func:`plan_tiles`); empty: C order
    focus: Point = field(default_factory=dict)
    #: the order among tiles equally near ``focus``: nearest this point first
    near: Point = field(default_factory=dict)

    def _outer_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[self.axes.index(a)] for a in self.outer)

    def __len__(self) -> int:
        return math.prod(self._outer_shape()) * math.prod(len(p) for p in self.per_axis)

    def __iter__(self) -> Iterator[TileRegion]:
        for oi, ti in self.order():
            yield self.region(oi, ti)

    def order(self) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
        """The ``(outer index, spatial tile index)`` of every tile, in the order they are predicted:
        sample by sample and within a sample in C order; with a ``focus``, sorted (stably) by the
        distance of each tile's core from it, then from ``near``."""
        pairs = [(oi, ti) for oi in np.ndindex(*self._outer_shape())
                 for ti in np.ndindex(*[len(p) for p in self.per_axis])]
        if self.focus or self.near:
            pairs.sort(key=lambda pair: (self._distance(self.focus, *pair), self._distance(self.near, *pair)))
        return pairs

    def _distance(self, point: Point, oi: tuple[int, ...], ti: tuple[int, ...]) -> float:
        """Squared distance (pixels) from ``point`` to the core of tile ``(oi, ti)`` along the
        point's axes (0 when the core covers it)."""
        total = 0.0
        for a, p in point.items():
            if a in self.outer:
                lo = hi = oi[self.outer.index(a)]
            else:
                d = self.spatial.index(a)
                c0, c1, _, _ = self.per_axis[d][ti[d]]
                lo, hi = c0, c1 - 1
            total += max(0.0, lo - p, p - hi) ** 2
        return total

    def region(self, oi: tuple[int, ...], ti: tuple[int, ...]) -> TileRegion:
        """The tile at index ``oi`` of the outer axes and ``ti`` of the spatial tiles."""
        parts = [self.per_axis[d][ti[d]] for d in range(len(self.spatial))]
        read, write, z_select = [], [], None
        for a in self.axes:
            if a in self.outer:
                k = oi[self.outer.index(a)]
                if a == "Z" and self.z_context:
                    idx = self.context_rule(k, self.z_context, self.shape[self.axes.index("Z")])
                    z0 = min(idx)
                    read.append(slice(z0, max(idx) + 1))
                    z_select = [i - z0 for i in idx]
                else:
                    read.append(slice(k, k + 1))
                write.append(slice(k, k + 1))
            elif a == "C":
                read.append(slice(None))
                write.append(slice(None))
            else:
                c0, c1, i0, i1 = parts[self.spatial.index(a)]
                read.append(slice(i0, i1))
                write.append(slice(c0, c1))
        crop = tuple(slice(c0 - i0, c1 - i0) for c0, c1, i0, _ in parts)
        return TileRegion(tuple(read), tuple(write), crop, z_select)


def plan_tiles(
    shape: Sequence[int],
    axes: str,
    *,
    radius: Sequence[int],
    multiple: Sequence[int],
    tile: int | Sequence[int],
    overlap: int | Sequence[int] | None = None,
    z_context: int = 0,
    context_rule: ContextRule | None = None,
    focus: Point | None = None,
    near: Point | None = None,
) -> TilePlan:
    """The tiles of an image of ``shape`` (upper-case ``axes``) for a network with receptive-field
    ``radius`` and pooling ``multiple`` per spatial axis (its ``len`` is the network's spatial
    dimensions; a 2D network over a volume goes slice by slice).

    ``tile`` and ``overlap`` are as in :func:`tile_geometry`. With ``z_context`` (a 2D network
    reading that many neighbouring slices on each side) each tile reads the Z range that
    ``context_rule(z, z_context, n_z)`` names.

    ``focus`` and ``near`` (axis letter -> data coordinate, e.g. ``{"Z": 15}`` and ``{"Y": 900,
    "X": 400}``) only change the order of the tiles, never what they hold: the tiles whose cores
    cover ``focus`` (the slice a viewer shows) come first, then the others by their distance from
    it; ties go nearest ``near`` (the middle of the view) first. Raises :class:`ConfigError` for a bad ``tile`` or
    ``overlap``, :class:`DataError` for a tile smaller than its overlap plus one pooling step or a
    Z context without a Z axis.
    """
    shape = tuple(int(s) for s in shape)
    nd = len(radius)
    check_tiling(tile, overlap, nd)
    sp = spatial_axes(axes)[-nd:]
    sample_letters = "ST" + ("Z" if nd < len(spatial_axes(axes)) else "")
    margins, tiles = tile_geometry(radius, multiple, tile, overlap)
    for i, (t, m, mult) in enumerate(zip(tiles, margins, multiple)):
        if t < 2 * m + mult:
            raise DataError(
                f"tile {t} along {sp[i]} is too small for the overlap {2 * m}; use a tile of at "
                f"least {2 * m + mult} or a smaller overlap"
            )
    sizes = [shape[axes.index(a)] for a in sp]
    per_axis = tuple(tuple(axis_tiles(s, t, m, mult)) for s, t, m, mult in zip(sizes, tiles, margins, multiple))
    outer = tuple(a for a in axes if a in sample_letters)
    if z_context and "Z" not in outer:
        raise DataError(
            f"this model denoises each Z slice with {z_context} neighbouring slice(s) on each side; "
            f"give it a volume with a Z axis (axes {axes!r} have none)"
        )
    if z_context and context_rule is None:
        raise ValueError("a Z context needs the context_rule that picks each slice's neighbours")
    focus_d, near_d = check_point(focus, axes, "focus"), check_point(near, axes, "near")
    return TilePlan(shape, axes, sp, outer, per_axis, z_context, context_rule, focus_d, near_d)
