"""The mask designer's clickable grid: one 2D plane of the blind mask, cell by cell."""
from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QRectF, QSize, Signal
from qtpy.QtGui import QColor, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget


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
