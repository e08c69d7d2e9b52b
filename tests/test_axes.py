"""Axis helpers (napari_structn2v.axes) not covered through their callers."""
from __future__ import annotations

import numpy as np
import pytest

from napari_structn2v.axes import full_key


@pytest.mark.parametrize(
    "key",
    [1, slice(2, 4), (1, slice(None)), (Ellipsis, 3), (0, Ellipsis, slice(1, 5)), (0, 1, 2, 3), Ellipsis],
)
def test_full_key_indexes_as_numpy_does(key):
    a = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    full = full_key(key, a.ndim)
    assert len(full) == a.ndim and Ellipsis not in full
    np.testing.assert_array_equal(a[full], a[key])
