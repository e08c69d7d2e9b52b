"""A small line-plot widget drawn with QPainter (no plotting dependency)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QPainter, QPainterPath, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

_COLORS = ("#4fc3f7", "#ffb74d", "#aed581", "#f06292")


class LinePlot(QWidget):
    """Plot a few named series of (x, y) points with axes labels and a legend.

    Parameters
    ----------
    title : str
        Text drawn at the top left.
    log_y : bool
        Plot ``log10(y)`` (for losses); non-positive values are dropped.
    """

    def __init__(self, title: str = "", *, log_y: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.log_y = log_y
        self._series: dict[str, tuple[list[float], list[float]]] = {}
        self._hlines: list[tuple[float, str]] = []
        self.setMinimumHeight(140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    # data -----------------------------------------------------------------
    def clear(self) -> None:
        """Remove every series and reference line."""
        self._series.clear()
        self._hlines.clear()
        self.update()

    def set_series(self, name: str, x: Sequence[float], y: Sequence[float]) -> None:
        """Replace the points of series ``name``."""
        self._series[name] = ([float(v) for v in x], [float(v) for v in y])
        self.update()

    def append(self, name: str, x: float, y: float, *, redraw: bool = True) -> None:
        """Add one point to series ``name`` (created if new)."""
        xs, ys = self._series.setdefault(name, ([], []))
        xs.append(float(x))
        ys.append(float(y))
        if redraw:
            self.update()

    def set_hline(self, y: float, label: str = "") -> None:
        """Draw a dashed horizontal reference line (e.g. a threshold)."""
        self._hlines = [(float(y), label)]
        self.update()

    def points(self, name: str) -> int:
        """Number of points in series ``name`` (0 if absent)."""
        return len(self._series.get(name, ((), ()))[0])

    # drawing --------------------------------------------------------------
    def _xy(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = self._series[name]
        x, y = np.asarray(xs, float), np.asarray(ys, float)
        if self.log_y:
            ok = y > 0
            x, y = x[ok], np.log10(y[ok])
        ok = np.isfinite(x) & np.isfinite(y)
        return x[ok], y[ok]

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor("#262930"))
        fg = QColor("#d0d0d0")
        p.setPen(fg)
        m_left, m_right, m_top, m_bottom = 52, 8, 18, 18
        area = QRectF(m_left, m_top, self.width() - m_left - m_right, self.height() - m_top - m_bottom)
        p.drawText(QPointF(4, 13), self.title)
        data = {n: self._xy(n) for n in self._series}
        data = {n: d for n, d in data.items() if d[0].size}
        p.setPen(QPen(QColor("#808080")))
        p.drawRect(area)
        if not data or area.width() < 10 or area.height() < 10:
            p.end()
            return
        xs = np.concatenate([d[0] for d in data.values()])
        ys = np.concatenate([d[1] for d in data.values()] + [np.array([h for h, _ in self._hlines])])
        x0, x1 = float(xs.min()), float(xs.max())
        y0, y1 = float(ys.min()), float(ys.max())
        if x1 <= x0:
            x0, x1 = x0 - 1, x1 + 1
        if y1 <= y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        pad = 0.05 * (y1 - y0)
        y0, y1 = y0 - pad, y1 + pad

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                area.left() + (x - x0) / (x1 - x0) * area.width(),
                area.bottom() - (y - y0) / (y1 - y0) * area.height(),
            )

        p.setPen(fg)
        fmt = (lambda v: f"1e{v:.1f}") if self.log_y else (lambda v: f"{v:.2f}")
        p.drawText(QPointF(2, area.top() + 10), fmt(y1))
        p.drawText(QPointF(2, area.bottom()), fmt(y0))
        p.drawText(QPointF(area.left(), self.height() - 4), f"{x0:g}")
        p.drawText(QPointF(area.right() - 40, self.height() - 4), f"{x1:g}")
        for h, label in self._hlines:
            p.setPen(QPen(QColor("#a0a0a0"), 1, Qt.PenStyle.DashLine))
            a, b = to_px(x0, h), to_px(x1, h)
            p.drawLine(a, b)
            if label:
                p.drawText(QPointF(area.right() - 70, a.y() - 2), label)
        legend_x = area.left() + 6
        for i, (name, (x, y)) in enumerate(data.items()):
            color = QColor(_COLORS[i % len(_COLORS)])
            p.setPen(QPen(color, 1.6))
            if x.size == 1:
                p.drawEllipse(to_px(x[0], y[0]), 2.5, 2.5)
            else:
                path = QPainterPath(to_px(x[0], y[0]))
                for xi, yi in zip(x[1:], y[1:]):
                    path.lineTo(to_px(xi, yi))
                p.drawPath(path)
            p.drawText(QPointF(legend_x, area.top() + 12), name)
            legend_x += 8 * len(name) + 14
        p.end()
