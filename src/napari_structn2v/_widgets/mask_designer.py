"""Blind mask designer dock widget: sizes, a clickable grid, presets, overlay, save/load.

The grid is ``_mask_grid``'s; the mask is drawn over the last autocorrelation by ``_acf_view``.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..errors import StructN2VError
from ..method import masks
from ._acf_view import AutocorrView
from ._layers import install_scroll_layout, notify_warning, report_error
from ._mask_grid import MaskGrid
from ._state import get_state
from ._worker import CleanupMixin

if TYPE_CHECKING:
    import napari

MAX_SIDE = 63


class BlindMaskWidget(CleanupMixin, QWidget):
    """Design the blind mask: box sizes, free-form grid, presets; drawn over the autocorrelation.

    The mask lives in the shared state (``state.mask``); every change made here is pushed there,
    and masks set elsewhere (e.g. "Suggest mask") are shown here.
    """

    def __init__(self, napari_viewer: napari.Viewer, parent: QWidget | None = None):
        super().__init__(parent)
        self.viewer = napari_viewer
        self.state = get_state(napari_viewer)
        self._updating = False
        self._build_controls()
        self._build_layout()
        for spin in (self.width_spin, self.height_spin, self.depth_spin):
            spin.valueChanged.connect(self._on_sizes)
        self.three_d.toggled.connect(self._on_sizes)
        self.plane_spin.valueChanged.connect(self._refresh_grid)
        self.grid.toggled.connect(self._on_toggle)
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button.clicked.connect(self._load_dialog)
        self._listen(self.state.events.mask, self._on_state_mask)
        self._listen(self.state.events.analysis, self.update_overlay)
        if self.state.mask is None:
            self.set_mask(np.ones((1, 1), dtype=bool))
        else:
            self._on_state_mask(self.state.mask)

    def _build_controls(self) -> None:
        """The size boxes, the grid and its plane, the preset, overlay and file buttons."""
        self.width_spin = self._side_spin("Width (X)")
        self.height_spin = self._side_spin("Height (Y)")
        self.depth_spin = self._side_spin("Depth (Z)")
        self.three_d = QCheckBox("3D mask")
        self.plane_spin = QSpinBox()
        self.plane_spin.setToolTip("Z plane of a 3D mask shown in the grid (0 = centre)")
        self.grid = MaskGrid()
        self.spec_label = QLabel()
        presets = [
            ("N2V 1×1", self.preset_n2v),
            ("Horizontal", self.preset_horizontal),
            ("Vertical", self.preset_vertical),
            ("Cross", self.preset_cross),
            ("Suggested", self.preset_suggested),
        ]
        self.preset_buttons: dict[str, QPushButton] = {}
        for name, slot in presets:
            button = QPushButton(name)
            button.clicked.connect(slot)
            self.preset_buttons[name] = button
        self.acf_view = AutocorrView()
        self.save_button = QPushButton("Save mask…")
        self.load_button = QPushButton("Load mask…")

    def _build_layout(self) -> None:
        """Sizes, presets, grid, plane, description, overlay and files, in a scroll area."""
        sizes = QGridLayout()
        sizes.addWidget(QLabel("W"), 0, 0)
        sizes.addWidget(self.width_spin, 0, 1)
        sizes.addWidget(QLabel("H"), 0, 2)
        sizes.addWidget(self.height_spin, 0, 3)
        sizes.addWidget(self.three_d, 1, 0, 1, 2)
        sizes.addWidget(QLabel("D"), 1, 2)
        sizes.addWidget(self.depth_spin, 1, 3)
        preset_row = QHBoxLayout()
        for button in self.preset_buttons.values():
            preset_row.addWidget(button)
        plane_row = QHBoxLayout()
        plane_row.addWidget(QLabel("Z plane"))
        plane_row.addWidget(self.plane_spin)
        files = QHBoxLayout()
        files.addWidget(self.save_button)
        files.addWidget(self.load_button)
        layout = QVBoxLayout()  # scrolls: see install_scroll_layout
        layout.addLayout(sizes)
        layout.addLayout(preset_row)
        layout.addWidget(self.grid, 1)
        layout.addLayout(plane_row)
        layout.addWidget(self.spec_label)
        layout.addWidget(self.acf_view)
        layout.addLayout(files)
        layout.addStretch(1)
        install_scroll_layout(self, layout)

    @staticmethod
    def _side_spin(tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(1, MAX_SIDE)
        spin.setSingleStep(2)
        spin.setValue(1)
        spin.setToolTip(f"{tip}; odd, so that the active pixel is the centre")
        return spin

    # mask in / out -----------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        """The current mask (bool, ``(H, W)`` or ``(D, H, W)``)."""
        return np.asarray(self.state.mask, dtype=bool)

    def set_mask(self, mask: np.ndarray) -> bool:
        """Validate ``mask`` and make it the shared mask; False (and a notification) if invalid."""
        try:
            arr = masks.validate_mask(mask)
        except StructN2VError as exc:
            report_error(exc)
            return False
        if self.state.mask is not None and np.array_equal(np.shape(self.state.mask), arr.shape) and np.array_equal(
            self.state.mask, arr
        ):
            self._on_state_mask(arr)
        else:
            self.state.mask = arr
        return True

    def _on_state_mask(self, mask: Any) -> None:
        if mask is None:
            return
        arr = np.asarray(mask, dtype=bool)
        self._updating = True
        try:
            self.width_spin.setValue(arr.shape[-1])
            self.height_spin.setValue(arr.shape[-2])
            self.three_d.setChecked(arr.ndim == 3)
            self.depth_spin.setValue(arr.shape[0] if arr.ndim == 3 else 1)
            self.depth_spin.setEnabled(arr.ndim == 3)
            depth = arr.shape[0] if arr.ndim == 3 else 1
            self.plane_spin.setRange(-(depth // 2), depth // 2)
            self.plane_spin.setEnabled(depth > 1)
        finally:
            self._updating = False
        dims = "W x H x D" if arr.ndim == 3 else "W x H"
        self.spec_label.setText(f"Mask: {masks.describe_mask(arr)} ({dims}), {int(arr.sum())} hidden px")
        self._refresh_grid()
        self.update_overlay()

    def _refresh_grid(self, *args: Any) -> None:
        arr = self.mask
        if arr.ndim == 3:
            z = arr.shape[0] // 2 + self.plane_spin.value()
            plane = arr[int(np.clip(z, 0, arr.shape[0] - 1))]
            centre = (arr.shape[1] // 2, arr.shape[2] // 2) if z == arr.shape[0] // 2 else None
        else:
            plane = arr
            centre = (arr.shape[0] // 2, arr.shape[1] // 2)
        self.grid.set_plane(plane, centre)

    def _on_sizes(self, *args: Any) -> None:
        if self._updating:
            return
        self.depth_spin.setEnabled(self.three_d.isChecked())
        w, h = self._odd(self.width_spin), self._odd(self.height_spin)
        depth = self._odd(self.depth_spin) if self.three_d.isChecked() else None
        self.set_mask(masks.box_mask(w, h, depth))

    @staticmethod
    def _odd(spin: QSpinBox) -> int:
        value = spin.value()
        return value if value % 2 else value + 1

    def _on_toggle(self, y: int, x: int) -> None:
        arr = self.mask.copy()
        if arr.ndim == 3:
            z = int(np.clip(arr.shape[0] // 2 + self.plane_spin.value(), 0, arr.shape[0] - 1))
            arr[z, y, x] = not arr[z, y, x]
        else:
            arr[y, x] = not arr[y, x]
        self.set_mask(arr)

    # presets -----------------------------------------------------------------------
    def _lift(self, mask: np.ndarray) -> np.ndarray:
        return mask[None] if self.three_d.isChecked() else mask

    def preset_n2v(self) -> None:
        """Plain Noise2Void: only the active pixel."""
        self.set_mask(self._lift(np.ones((1, 1), dtype=bool)))

    def preset_horizontal(self) -> None:
        """A horizontal line W x 1 (noise correlated along X)."""
        w = self._odd(self.width_spin)
        self.set_mask(self._lift(masks.box_mask(w if w > 1 else 9, 1)))

    def preset_vertical(self) -> None:
        """A vertical line 1 x H (noise correlated along Y)."""
        h = self._odd(self.height_spin)
        self.set_mask(self._lift(masks.box_mask(1, h if h > 1 else 9)))

    def preset_cross(self) -> None:
        """Horizontal and vertical line through the centre."""
        w, h = self._odd(self.width_spin), self._odd(self.height_spin)
        self.set_mask(self._lift(masks.cross_mask(w if w > 1 else 9, h if h > 1 else 9)))

    def preset_suggested(self) -> None:
        """The mask suggested by the last noise analysis."""
        if self.state.suggested_mask is None:
            notify_warning("No suggestion yet: analyse the noise and press 'Suggest mask' first.")
            return
        self.set_mask(self.state.suggested_mask)

    # overlay -----------------------------------------------------------------------
    def update_overlay(self, *args: Any) -> None:
        """Draw the mask over the last noise analysis' autocorrelation (in the dock)."""
        self.acf_view.set_analysis(self.state.analysis)
        self.acf_view.set_mask(self.state.mask)

    # files -------------------------------------------------------------------------
    def save_mask(self, path: str | Path) -> bool:
        """Save the current mask (``.npy`` or ``.tif``); False and a notification on failure."""
        try:
            masks.save_mask(path, self.mask)
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            report_error(exc, "Cannot save the mask: ")
            return False
        return True

    def load_mask(self, path: str | Path) -> bool:
        """Load a mask file and make it the shared mask; False and a notification on failure."""
        try:
            mask = masks.load_mask(path)
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            report_error(exc)
            return False
        return self.set_mask(mask)

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save blind mask", "mask.npy", "Mask (*.npy *.tif *.tiff)")
        if path:
            self.save_mask(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load blind mask", "", "Mask (*.npy *.tif *.tiff *.txt)")
        if path:
            self.load_mask(path)
