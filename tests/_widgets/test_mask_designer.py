"""The Blind mask dock (napari_structn2v._widgets.mask_designer): presets, the grid, mask files."""
from __future__ import annotations

import numpy as np
import pytest

from tests._widgets.helpers import open_widget

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_mask_designer_presets_grid_and_files(viewer, qtbot, notes, tmp_path):
    designer = open_widget(viewer, "Blind mask")
    state = designer.state
    designer.width_spin.setValue(7)
    designer.preset_horizontal()
    assert state.mask.shape == (1, 7) and state.mask.all()
    designer.height_spin.setValue(5)
    assert state.mask.shape == (5, 7) and state.mask.all()
    designer.preset_cross()
    assert state.mask.sum() == 7 + 5 - 1
    designer.preset_vertical()
    assert state.mask.shape == (5, 1)
    designer.preset_n2v()
    assert state.mask.shape == (1, 1)
    designer.preset_suggested()  # nothing suggested yet
    assert notes["warning"]
    # grid: toggle a neighbour on, the centre stays on
    designer.width_spin.setValue(3)
    designer.height_spin.setValue(3)
    designer._on_toggle(0, 0)
    assert not state.mask[0, 0] and state.mask[1, 1]
    designer.grid.toggled.emit(0, 0)
    assert state.mask[0, 0]
    # 3D
    designer.three_d.setChecked(True)
    designer.depth_spin.setValue(3)
    assert state.mask.shape == (3, 3, 3)
    # files
    path = tmp_path / "mask.tif"
    designer.preset_n2v()
    designer.three_d.setChecked(False)
    designer.preset_horizontal()
    saved = state.mask.copy()
    assert designer.save_mask(path)
    designer.preset_n2v()
    assert designer.load_mask(path)
    np.testing.assert_array_equal(state.mask, saved)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.ones((2, 4)))
    assert not designer.load_mask(bad)
    assert notes["error"]
    np.testing.assert_array_equal(state.mask, saved)
