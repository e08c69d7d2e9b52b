"""Tile geometry (napari_structn2v.prediction.tiling): no network, no torch."""
import subprocess
import sys

import numpy as np
import pytest

from napari_structn2v.errors import ConfigError, DataError
from napari_structn2v.prediction.tiling import (
    axis_tiles,
    check_tiling,
    context_margins,
    core_sizes,
    covering_tile,
    pad_to_multiple,
    plan_tiles,
    tile_geometry,
)


def _mirror(z: int, k: int, n: int) -> list[int]:
    """A stand-in Z-context rule: neighbours mirrored at the ends (enough for geometry)."""
    return [abs(z + d) if z + d < n else 2 * (n - 1) - (z + d) for d in range(-k, k + 1)]


@pytest.mark.parametrize("size", [1, 7, 64, 65, 100, 129, 250, 257])
@pytest.mark.parametrize(("tile", "margin", "multiple"), [(64, 8, 4), (64, 16, 8), (48, 20, 4), (96, 0, 16)])
def test_axis_tiles_cover_the_axis_once_with_margins(size, tile, margin, multiple):
    parts = axis_tiles(size, tile, margin, multiple)
    written = np.zeros(size, int)
    for c0, c1, i0, i1 in parts:
        written[c0:c1] += 1
        assert 0 <= i0 <= c0 < c1 <= i1 <= size  # the read range holds the core, inside the axis
        assert c0 - i0 >= min(margin, c0) or size <= tile  # a full margin, except at the start
        assert i1 - c1 >= min(margin, size - c1) or size <= tile  # and except at the end
        assert i1 - i0 <= tile  # a tile is never larger than asked
        assert i0 % multiple == 0  # reads start on the pooling grid: tiles agree with a whole-image run
    assert (written == 1).all()  # no gaps, no overlaps
    cores = [c1 - c0 for c0, c1, _, _ in parts]
    assert all(c % multiple == 0 for c in cores[:-1])  # on the pooling grid; only the last is shorter
    padded = {-(-(i1 - i0) // multiple) * multiple for _, _, i0, i1 in parts}
    assert len(padded) == 1  # one shape for every tile (after padding to the multiple): one batch
    if len(parts) > 1:  # the cores are spread evenly: the last is no shorter than a pooling step less than the others
        assert cores[-1] > cores[0] - len(parts) * multiple
    assert core_sizes(size, tile, margin, multiple) == tuple(cores) and sum(cores) == size


def test_axis_tiles_edges_and_a_small_axis():
    assert axis_tiles(50, 64, 16, 4) == [(0, 50, 0, 50)]  # no longer than a tile: one tile, no margins
    # 4 cores of at most 32 are needed; 100 spread over 4 is 25, 28 on the grid of 4; every read is 28 + 2 * 16
    assert axis_tiles(100, 64, 16, 4) == [(0, 28, 0, 60), (28, 56, 12, 72), (56, 84, 40, 100), (84, 100, 40, 100)]
    # 1024 px, tiles of 256, margin 28: 6 cores of 172 (the last 164), not 5 of 200 and a sliver of 24
    assert [c1 - c0 for c0, c1, _, _ in axis_tiles(1024, 256, 28, 4)] == [172] * 5 + [164]
    # a core below one pooling step is raised to it
    assert axis_tiles(10, 4, 2, 4) == [(0, 4, 0, 8), (4, 8, 2, 10), (8, 10, 4, 10)]


def test_margins_and_tile_sides():
    assert context_margins((13, 13), (4, 4)) == [16, 16]  # the radius rounded up to the pooling grid
    assert context_margins((13, 13), (4, 4), overlap=20) == [12, 12]  # half the overlap, rounded up
    assert context_margins((5, 13, 13), (2, 4, 4), overlap=(6, 8, 40)) == [4, 4, 20]
    assert tile_geometry((13, 13), (4, 4), 96, None) == ([16, 16], [96, 96])
    assert tile_geometry((6, 13, 13), (2, 4, 4), 256, None) == ([6, 16, 16], [44, 256, 256])  # Z: 32 + 2 * margin
    assert tile_geometry((6, 13, 13), (2, 4, 4), (20, 40, 50), 0) == ([0, 0, 0], [20, 40, 50])
    assert covering_tile((30, 100), (16, 16), (4, 4)) == [36, 100]


@pytest.mark.parametrize(
    ("tile", "overlap", "match"),
    [(0, None, "positive"), (64.0, None, "integer"), ((64,), None, "2 integers"), (True, None, "positive"),
     (64, -1, "non-negative"), (64, (8, 8, 8), "2 integers")],
)
def test_check_tiling_names_the_bad_option(tile, overlap, match):
    with pytest.raises(ConfigError, match=match):
        check_tiling(tile, overlap, 2)
    check_tiling(64, None, 2)
    check_tiling((64, 32), [0, 8], 2)


@pytest.mark.parametrize(
    ("shape", "axes", "radius", "multiple", "tile", "overlap"),
    [
        ((150, 213), "YX", (13, 13), (4, 4), 96, None),
        ((97, 131), "XY", (13, 13), (4, 4), (48, 80), (8, 24)),
        ((2, 100, 120), "SYX", (13, 13), (4, 4), 64, 32),
        ((2, 3, 33, 35, 2), "TZYXC", (13, 13), (4, 4), 64, 8),  # a 2D network over Z: slice by slice
        ((20, 70, 90), "ZYX", (6, 13, 13), (2, 4, 4), 40, 16),
        ((5, 7, 9), "ZYX", (6, 13, 13), (2, 4, 4), 40, 8),  # smaller than one tile
    ],
)
def test_written_regions_cover_the_image_exactly_once(shape, axes, radius, multiple, tile, overlap):
    plan = plan_tiles(shape, axes, radius=radius, multiple=multiple, tile=tile, overlap=overlap)
    written = np.zeros(shape, int)
    image = np.arange(np.prod(shape)).reshape(shape)
    regions = list(plan)
    assert len(regions) == len(plan) >= 1
    for r in regions:
        written[r.write] += 1
        block = image[r.read]
        assert all(b >= w for b, w in zip(block.shape, image[r.write].shape))
        # the crop of the read block along the network's axes is the written core
        kept = block[tuple(r.crop[plan.spatial.index(a)] if a in plan.spatial else slice(None) for a in axes)]
        np.testing.assert_array_equal(kept, image[r.write])
        assert r.z_select is None
    assert (written == 1).all()
    assert plan.outer == tuple(a for a in axes if a in "ST" or (a == "Z" and len(radius) == 2))


def test_sizes_not_divisible_by_the_tile_get_even_cores_and_full_edge_tiles():
    plan = plan_tiles((130, 100), "YX", radius=(13, 13), multiple=(4, 4), tile=64, overlap=16)
    assert [len(p) for p in plan.per_axis] == [3, 3]  # cores of at most 64 - 16
    assert [c1 - c0 for c0, c1, _, _ in plan.per_axis[0]] == [44, 44, 42]  # 130 / 3 on the grid of 4
    assert [c1 - c0 for c0, c1, _, _ in plan.per_axis[1]] == [36, 36, 28]  # not 48, 48 and 4
    last = list(plan)[-1]  # the corner tile: read as long as the others, moved inwards
    assert last.write == (slice(88, 130), slice(72, 100)) and last.read == (slice(72, 130), slice(48, 100))
    assert last.crop == (slice(16, 58), slice(24, 52))
    assert {tuple(-(-(s.stop - s.start) // 4) * 4 for s in r.read) for r in plan} == {(60, 52)}  # one shape


def test_z_context_reads_the_neighbours_range():
    plan = plan_tiles((7, 48, 48), "ZYX", radius=(13, 13), multiple=(4, 4), tile=64, overlap=16,
                      z_context=2, context_rule=_mirror)
    regions = list(plan)
    assert len(regions) == 7  # one tile per slice
    for z, r in enumerate(regions):
        idx = _mirror(z, 2, 7)
        assert r.write[0] == slice(z, z + 1)
        assert r.read[0] == slice(min(idx), max(idx) + 1)
        assert [r.read[0].start + i for i in r.z_select] == idx
    with pytest.raises(DataError, match="Z axis"):
        plan_tiles((48, 48), "YX", radius=(13, 13), multiple=(4, 4), tile=64, z_context=1, context_rule=_mirror)


def test_a_tile_smaller_than_its_overlap_is_refused():
    with pytest.raises(DataError, match="tile 16 along Y is too small for the overlap 32; use a tile of at least 36"):
        plan_tiles((128, 128), "YX", radius=(13, 13), multiple=(4, 4), tile=16, overlap=32)


def test_pad_to_multiple_pads_the_end_only():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    padded = pad_to_multiple(x, (4, 4))
    assert padded.shape == (2, 8, 8)
    np.testing.assert_array_equal(padded[:, :5, :6], x)
    # each line continued by the mean of its last pixels, never copies of them, whose correlated
    # noise would sit inside a line mask's reach a second time
    np.testing.assert_allclose(padded[:, :5, 6:], np.repeat(x.mean(axis=2, keepdims=True), 2, axis=2))
    np.testing.assert_allclose(padded[:, 5:, :6], np.repeat(x.mean(axis=1, keepdims=True), 3, axis=1))
    block = x[:, :4, :4]
    assert pad_to_multiple(block, (4, 4)) is block  # already on the grid: untouched
    one = pad_to_multiple(x[:, :1, :1], (4, 4))  # longer padding than the block: its one value
    assert one.shape == (2, 4, 4) and np.array_equal(one, np.broadcast_to(x[:, :1, :1], (2, 4, 4)))


def test_tiling_does_not_import_torch():
    code = "import sys, napari_structn2v.prediction.tiling; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def _cores(plan):
    return [r.write for r in plan]


def test_focus_puts_the_tiles_covering_it_first_then_by_distance():
    # a 2D network over a 40-slice volume: slice 15 first, then 14 and 16, 13 and 17, ...
    plan = plan_tiles((40, 100, 120), "ZYX", radius=(8, 8), multiple=(4, 4), tile=64)
    per_slice = len(plan) // 40
    ordered = plan_tiles((40, 100, 120), "ZYX", radius=(8, 8), multiple=(4, 4), tile=64, focus={"Z": 15})
    slices = [r.write[0].start for r in ordered]
    assert slices[:per_slice] == [15] * per_slice
    assert sorted(slices[per_slice : 3 * per_slice]) == [14] * per_slice + [16] * per_slice
    assert [abs(z - 15) for z in slices] == sorted(abs(z - 15) for z in slices)
    # the same tiles, each once: only the order changed
    assert sorted(map(str, _cores(ordered))) == sorted(map(str, _cores(plan))) and len(ordered) == len(plan)
    assert slices != sorted(slices)


def test_focus_along_a_tiled_axis_and_near_within_it():
    # a 3D network: Z is split into tiles; the ones whose core covers z = 50 come first
    plan = plan_tiles((90, 100, 100), "ZYX", radius=(4, 8, 8), multiple=(2, 4, 4), tile=64, focus={"Z": 50})
    first = next(iter(plan)).write
    assert first[0].start <= 50 < first[0].stop
    covering = [r for r in plan if r.write[0].start <= 50 < r.write[0].stop]
    assert [r.write for r in plan][: len(covering)] == [r.write for r in covering]
    # near: among the tiles of the focused slice, the one holding (y, x) = (90, 95) first
    plan2 = plan_tiles((40, 100, 120), "ZYX", radius=(8, 8), multiple=(4, 4), tile=64,
                       focus={"Z": 3}, near={"Y": 90, "X": 95})
    w = next(iter(plan2)).write
    assert w[0].start == 3 and w[1].start <= 90 < w[1].stop and w[2].start <= 95 < w[2].stop


def test_focus_is_checked():
    kw = {"radius": (8, 8), "multiple": (4, 4), "tile": 64}
    with pytest.raises(ConfigError, match="focus"):
        plan_tiles((100, 120), "YX", focus={"Z": 3}, **kw)
    with pytest.raises(ConfigError, match="near"):
        plan_tiles((100, 120), "YX", near={"Y": float("nan")}, **kw)
    with pytest.raises(ConfigError, match="focus"):
        plan_tiles((100, 120), "YX", focus=[3], **kw)
