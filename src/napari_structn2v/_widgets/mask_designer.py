"""Blind mask designer dock widget: sizes, a clickable grid, presets, overlay, save/load."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QRectF, QSize, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ._layers import (
    HELPER_KEY,
    describe_error,
    find_layer,
    install_scroll_layout,
    notify_error,
    notify_warning,
)
from ._state import get_state
from ._worker import CleanupMixin

if TYPE_CHECKING:
    import napari

MAX_SIDE = 63


def overlay_layer_name(source: str) -> str:
    return f"mask outline: {source}"


class MaskGrid(QWidget):
    """Clickable editor of one 2D plane of a bool mask; the centre (active pixel) stays on."""

    toggled = Signal(int, int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._plane = np.ones((1, 1), dtype=bool)
        self._centre: tuple[int, int] | None = (0, 0)
        self.setMinimumSize(120, 120)
        self.setMaximumHeight(320)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip("Click a cell to hide (on) or keep (off) that neighbour of the active pixel")

    def set_plane(self, plane: np.ndarray, centre: tuple[int, int] | None) -> None:
        self._plane = np.asarray(plane, dtype=bool)
        self._centre = centre
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(220, 220)

    def _geometry(self) -> tuple[float, float, float]:
        h, w = self._plane.shape
        cell = max(2.0, min((self.width() - 2) / w, (self.height() - 2) / h, 36.0))
        x0 = (self.width() - cell * w) / 2
        y0 = (self.height() - cell * h) / 2
        return cell, x0, y0

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#262930"))
        cell, x0, y0 = self._geometry()
        h, w = self._plane.shape
        grid_pen = QPen(QColor("#5a5f6b"))
        for y in range(h):
            for x in range(w):
                r = QRectF(x0 + x * cell, y0 + y * cell, cell, cell)
                if (y, x) == self._centre:
                    color = QColor("#ff5252")
                elif self._plane[y, x]:
                    color = QColor("#4fc3f7")
                else:
                    color = QColor("#1b1d22")
                p.fillRect(r, color)
                if cell >= 5:
                    p.setPen(grid_pen)
                    p.drawRect(r)
        p.end()

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        cell, x0, y0 = self._geometry()
        pos = event.pos()
        x = int((pos.x() - x0) // cell)
        y = int((pos.y() - y0) // cell)
        h, w = self._plane.shape
        if 0 <= x < w and 0 <= y < h and (y, x) != self._centre:
            self.toggled.emit(y, x)


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
        preset_row = QHBoxLayout()
        for name, slot in presets:
            button = QPushButton(name)
            button.clicked.connect(slot)
            preset_row.addWidget(button)
            self.preset_buttons[name] = button
        self.overlay_check = QCheckBox("Show over the autocorrelation")
        self.overlay_check.setChecked(True)
        self.save_button = QPushButton("Save mask…")
        self.load_button = QPushButton("Load mask…")

        sizes = QGridLayout()
        sizes.addWidget(QLabel("W"), 0, 0)
        sizes.addWidget(self.width_spin, 0, 1)
        sizes.addWidget(QLabel("H"), 0, 2)
        sizes.addWidget(self.height_spin, 0, 3)
        sizes.addWidget(self.three_d, 1, 0, 1, 2)
        sizes.addWidget(QLabel("D"), 1, 2)
        sizes.addWidget(self.depth_spin, 1, 3)
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
        layout.addWidget(self.overlay_check)
        layout.addLayout(files)
        layout.addStretch(1)
        install_scroll_layout(self, layout)

        for spin in (self.width_spin, self.height_spin, self.depth_spin):
            spin.valueChanged.connect(self._on_sizes)
        self.three_d.toggled.connect(self._on_sizes)
        self.plane_spin.valueChanged.connect(self._refresh_grid)
        self.grid.toggled.connect(self._on_toggle)
        self.overlay_check.toggled.connect(self.update_overlay)
        self.save_button.clicked.connect(self._save_dialog)
        self.load_button.clicked.connect(self._load_dialog)
        self.state.events.mask.connect(self._on_state_mask)
        self.state.events.analysis.connect(self.update_overlay)

        if self.state.mask is None:
            self.set_mask(np.ones((1, 1), dtype=bool))
        else:
            self._on_state_mask(self.state.mask)

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
        from ..errors import StructN2VError
        from ..masks import validate_mask

        try:
            arr = validate_mask(mask)
        except StructN2VError as exc:
            notify_error(describe_error(exc))
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
        from ..masks import describe_mask

        dims = "W x H x D" if arr.ndim == 3 else "W x H"
        self.spec_label.setText(f"Mask: {describe_mask(arr)} ({dims}), {int(arr.sum())} hidden px")
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
        from ..masks import box_mask

        self.depth_spin.setEnabled(self.three_d.isChecked())
        w, h = self._odd(self.width_spin), self._odd(self.height_spin)
        depth = self._odd(self.depth_spin) if self.three_d.isChecked() else None
        self.set_mask(box_mask(w, h, depth))

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
        from ..masks import box_mask

        w = self._odd(self.width_spin)
        self.set_mask(self._lift(box_mask(w if w > 1 else 9, 1)))

    def preset_vertical(self) -> None:
        """A vertical line 1 x H (noise correlated along Y)."""
        from ..masks import box_mask

        h = self._odd(self.height_spin)
        self.set_mask(self._lift(box_mask(1, h if h > 1 else 9)))

    def preset_cross(self) -> None:
        """Horizontal and vertical line through the centre."""
        from ..masks import cross_mask

        w, h = self._odd(self.width_spin), self._odd(self.height_spin)
        self.set_mask(self._lift(cross_mask(w if w > 1 else 9, h if h > 1 else 9)))

    def preset_suggested(self) -> None:
        """The mask suggested by the last noise analysis."""
        if self.state.suggested_mask is None:
            notify_warning("No suggestion yet: analyse the noise and press 'Suggest mask' first.")
            return
        self.set_mask(self.state.suggested_mask)

    # overlay -----------------------------------------------------------------------
    def update_overlay(self, *args: Any) -> None:
        """Draw the mask over the autocorrelation layer of the last analysed image."""
        from .noise_analysis import autocorr_layer_name

        source = self.state.analysis_source
        if not source or self.state.mask is None:
            return
        name = overlay_layer_name(source)
        ac_layer = find_layer(self.viewer, autocorr_layer_name(source))
        if not self.overlay_check.isChecked() or ac_layer is None:
            existing = find_layer(self.viewer, name)
            if existing is not None:
                existing.visible = False
            return
        overlay = mask_overlay(self.mask, tuple(ac_layer.data.shape))
        rects = outline_rectangles(overlay, np.asarray(ac_layer.scale), np.asarray(ac_layer.translate))
        existing = find_layer(self.viewer, name)
        if existing is not None and (type(existing).__name__ != "Shapes" or existing.ndim != overlay.ndim):
            self.viewer.layers.remove(existing)
            existing = None
        previous = self.viewer.layers.selection.active
        if existing is None:
            # outlines, not a wash: the autocorrelation under the hidden pixels stays readable
            self.viewer.add_shapes(
                rects, shape_type="rectangle", name=name, edge_color="cyan", face_color="transparent",
                edge_width=max(1.0, float(ac_layer.scale[-1]) / 6), metadata={HELPER_KEY: True},
            )
        else:
            existing.data = rects
            existing.visible = True
        if previous is not None and previous in self.viewer.layers:
            self.viewer.layers.selection.active = previous

    # files -------------------------------------------------------------------------
    def save_mask(self, path: str | Path) -> bool:
        """Save the current mask (``.npy`` or ``.tif``); False and a notification on failure."""
        from ..masks import save_mask

        try:
            save_mask(path, self.mask)
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            notify_error(f"Cannot save the mask: {describe_error(exc)}")
            return False
        return True

    def load_mask(self, path: str | Path) -> bool:
        """Load a mask file and make it the shared mask; False and a notification on failure."""
        from ..masks import load_mask

        try:
            mask = load_mask(path)
        except Exception as exc:  # noqa: BLE001 - never an exception dialog
            notify_error(describe_error(exc))
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

    # cleanup -----------------------------------------------------------------------
    def cleanup(self) -> None:
        """Disconnect from the shared state."""
        try:
            self.state.events.mask.disconnect(self._on_state_mask)
            self.state.events.analysis.disconnect(self.update_overlay)
        except Exception:  # noqa: BLE001
            pass



def mask_overlay(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``mask`` centred in a float32 array of ``shape`` (cropped if larger), for display.

    A 3D mask over a 2D autocorrelation shows its central plane; a 2D mask over a 3D
    autocorrelation sits on the central plane.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3 and len(shape) == 2:
        m = m[m.shape[0] // 2]
    elif m.ndim == 2 and len(shape) == 3:
        m = m[None]
    out = np.zeros(shape, dtype=np.float32)
    src, dst = [], []
    for n, s in zip(m.shape, shape):
        cm, cs = n // 2, s // 2
        half = min(cm, cs)
        src.append(slice(cm - half, cm + half + 1))
        dst.append(slice(cs - half, cs + half + 1))
    out[tuple(dst)] = m[tuple(src)]
    return out


def outline_rectangles(plane_mask: np.ndarray, scale: np.ndarray, translate: np.ndarray) -> list[np.ndarray]:
    """World-coordinate rectangles around the runs of hidden pixels of each row of a mask image.

    ``plane_mask`` is the mask placed in the autocorrelation's array (:func:`mask_overlay`);
    a 3D one gives rectangles on each of its Z planes.
    """
    m = np.asarray(plane_mask) > 0.5
    rects = []
    for idx in zip(*np.nonzero(m[..., :, :].any(axis=-1))):
        row = m[idx]
        lead, y = idx[:-1], idx[-1]
        x = 0
        while x < row.size:
            if not row[x]:
                x += 1
                continue
            x0 = x
            while x < row.size and row[x]:
                x += 1
            corners = [(y - 0.5, x0 - 0.5), (y + 0.5, x - 0.5)]
            data = np.array([[*lead, *c] for c in corners], dtype=float)
            rects.append(data * scale + translate)
    return rects
