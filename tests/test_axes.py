"""Axis helpers (napari_structn2v.axes) not covered through their callers."""
from __future__ import annotations

import numpy as np
import pytest

from napari_structn2v.axes import dark_axes, full_key


@pytest.mark.parametrize(
    "key",
    [1, slice(2, 4), (1, slice(None)), (Ellipsis, 3), (0, Ellipsis, slice(1, 5)), (0, 1, 2, 3), Ellipsis],
)
def test_full_key_indexes_as_numpy_does(key):
    a = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    full = full_key(key, a.ndim)
    assert len(full) == a.ndim and Ellipsis not in full
    np.testing.assert_array_equal(a[full], a[key])


@pytest.mark.parametrize("ndim, axes, expected", [
    (3, "YX", "SYX"),  # a stack of dark frames for 2D data: frames, not a volume
    (2, "YX", "YX"),
    (3, "SYX", "SYX"),
    (2, "TYX", "YX"),
    (3, "ZYX", "ZYX"),
    (4, "ZYX", "SZYX"),
    (4, "TZYX", "TZYX"),
    (5, "YX", None),
])
def test_dark_axes_follow_the_data(ndim, axes, expected):
    assert dark_axes(ndim, axes) == expected
