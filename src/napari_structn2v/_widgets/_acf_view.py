"""The autocorrelation, its lag axes and the blind mask's outline, drawn inside the dock.

The analysis used to open three layers beside the image (autocorrelation, a lag-0 cross, the mask
outline) and a fourth for the power spectrum, which landed below the canvas; in 3D their Z lags
made the dims slider start at -3. Here nothing is added to the viewer: the centre plane of the
autocorrelation is painted with its lags labelled, the mask drawn over it as cyan outlines, and the
power spectrum (when asked for) beside it. Main thread only.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from qtpy.QtCore import QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QImage, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QWidget

#: pixels of margin for the lag labels (left, bottom) and the titles (top)
MARGIN_LEFT, MARGIN_BOTTOM, MARGIN_TOP = 30, 18, 16


def _rgba(values: np.ndarray, colormap: str, lo: float, hi: float) -> QImage:
    """``values`` (2D) mapped through a napari colormap between ``lo`` and ``hi``, as a QImage."""
    from napari.utils.colormaps import ensure_colormap

    scaled = np.clip((np.asarray(values, dtype=float) - lo) / max(hi - lo, 1e-12), 0.0, 1.0)
    rgba = (ensure_colormap(colormap).map(scaled.ravel()).reshape(*scaled.shape, 4) * 255).astype(np.uint8)
    rgba = np.ascontiguousarray(rgba)
    image = QImage(rgba.data, rgba.shape[1], rgba.shape[0], 4 * rgba.shape[1], QImage.Format.Format_RGBA8888)
    return image.copy()  # own the pixels: ``rgba`` is freed on return


def centre_plane(array: np.ndarray) -> np.ndarray:
    """The YX plane of lag 0 along Z of a 2D or 3D autocorrelation (or mask)."""
    a = np.asarray(array)
    return a if a.ndim == 2 else a[a.shape[0] // 2]


class AutocorrView(QWidget):
    """The autocorrelation's centre plane with lag axes, the mask's outline and the power spectrum.

    :meth:`set_analysis` takes a :class:`~napari_structn2v.noise.analysis.NoiseAnalysis` (or None),
    :meth:`set_mask` the blind mask, :meth:`set_spectrum` a power spectrum (or None).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._ac: np.ndarray | None = None
        self._ac_image: QImage | None = None
        self._mask: np.ndarray | None = None
        self._spectrum: QImage | None = None
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setToolTip(
            "Autocorrelation of the noise (lag 0 in the centre, lags in pixels) with the blind mask's "
            "outline in cyan: the mask should cover the bright lags"
        )

    # data in ------------------------------------------------------------------------
    def set_analysis(self, analysis: Any) -> None:
        """Show ``analysis.autocorrelation`` (its centre plane along Z), or nothing for None."""
        if analysis is None:
            self._ac = self._ac_image = None
        else:
            self._ac = centre_plane(np.asarray(analysis.autocorrelation, dtype=np.float32))
            self._ac_image = _rgba(self._ac, "magma", 0.0, 1.0)
        self.update()

    def set_mask(self, mask: Any) -> None:
        """Outline ``mask`` (its centre plane along Z) over the autocorrelation; None: no outline."""
        self._mask = None if mask is None else centre_plane(np.asarray(mask, dtype=bool))
        self.update()

    def set_spectrum(self, spectrum: Any) -> None:
        """Show a power spectrum (log scale, centre plane along Z) beside the autocorrelation."""
        if spectrum is None:
            self._spectrum = None
        else:
            ps = centre_plane(np.asarray(spectrum, dtype=np.float64))
            finite = ps[np.isfinite(ps)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
            self._spectrum = _rgba(np.where(np.isfinite(ps), ps, lo), "viridis", lo, hi if hi > lo else lo + 1)
        self.update()

    @property
    def shows_analysis(self) -> bool:
        """True when an autocorrelation is drawn."""
        return self._ac_image is not None

    @property
    def shows_spectrum(self) -> bool:
        """True when a power spectrum is drawn."""
        return self._spectrum is not None

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt API
        return QSize(260, 200)

    # drawing ------------------------------------------------------------------------
    def _panels(self) -> tuple[QRectF, QRectF | None]:
        """Square areas for the autocorrelation and (when shown) the spectrum."""
        h = self.height() - MARGIN_TOP - MARGIN_BOTTOM
        w = self.width() - MARGIN_LEFT - 6
        if self._spectrum is not None:
            side = max(10.0, min(h, (w - 12) / 2))
            return QRectF(MARGIN_LEFT, MARGIN_TOP, side, side), QRectF(MARGIN_LEFT + side + 12, MARGIN_TOP, side, side)
        side = max(10.0, min(h, w))
        return QRectF(MARGIN_LEFT, MARGIN_TOP, side, side), None

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt API
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#262930"))
        fg = QColor("#d0d0d0")
        p.setPen(fg)
        if self._ac_image is None or self._ac is None:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No noise analysed yet")
            p.end()
            return
        area, spectrum_area = self._panels()
        p.drawText(QPointF(area.left(), 12), "Autocorrelation (lags in px)")
        p.drawImage(area, self._ac_image)  # scaled without smoothing: one cell per lag
        ny, nx = self._ac.shape
        cell_w, cell_h = area.width() / nx, area.height() / ny
        self._draw_lag_axes(p, area, ny, nx, cell_w, cell_h)
        if self._mask is not None:
            self._draw_mask(p, area, ny, nx, cell_w, cell_h)
        if spectrum_area is not None and self._spectrum is not None:
            p.setPen(fg)
            p.drawText(QPointF(spectrum_area.left(), 12), "Power spectrum (log)")
            p.drawImage(spectrum_area, self._spectrum)
        p.end()

    @staticmethod
    def _draw_lag_axes(p: QPainter, area: QRectF, ny: int, nx: int, cell_w: float, cell_h: float) -> None:
        """Tick labels at lag -L, 0 and +L along X (below) and Y (left)."""
        p.setPen(QColor("#d0d0d0"))
        hx, hy = nx // 2, ny // 2
        for lag in (-hx, 0, hx):
            x = area.left() + (lag + hx + 0.5) * cell_w
            p.drawText(QRectF(x - 15, area.bottom() + 2, 30, 14), Qt.AlignmentFlag.AlignHCenter, f"{lag:+d}" if lag else "0")
        for lag in (-hy, 0, hy):
            y = area.top() + (lag + hy + 0.5) * cell_h
            p.drawText(QRectF(0, y - 7, MARGIN_LEFT - 3, 14), Qt.AlignmentFlag.AlignRight, f"{lag:+d}" if lag else "0")
        p.drawText(QPointF(area.right() + 4, area.bottom() - 2), "X")
        p.drawText(QPointF(2, area.top() - 3), "Y")

    def _draw_mask(self, p: QPainter, area: QRectF, ny: int, nx: int, cell_w: float, cell_h: float) -> None:
        """A cyan outline around each hidden lag, clipped to the lags shown."""
        mask = self._mask
        my, mx = mask.shape
        oy, ox = ny // 2 - my // 2, nx // 2 - mx // 2  # the mask's centre on lag 0
        p.setPen(QPen(QColor("cyan"), max(1.0, min(cell_w, cell_h) / 6)))
        p.setBrush(Qt.BrushStyle.NoBrush)
        for y, x in zip(*np.nonzero(mask)):
            gy, gx = y + oy, x + ox
            if 0 <= gy < ny and 0 <= gx < nx:
                p.drawRect(QRectF(area.left() + gx * cell_w, area.top() + gy * cell_h, cell_w, cell_h))
