"""Layer helpers for the dock widgets: layer pickers, add-or-update by name, notifications.

Everything here runs on the Qt main thread.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Image
from napari.utils import notifications
from qtpy.QtCore import QEvent, QSize, Qt, Signal
from qtpy.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ..axes import dark_axes, guess_axes, validate_axes
from ..errors import StructN2VError
from ._signals import Connections

if TYPE_CHECKING:
    import napari
    import napari.layers

_log = logging.getLogger(__name__)


# notifications -------------------------------------------------------------
def notify_error(message: str) -> None:
    """Show an error notification (never an exception dialog)."""
    notifications.show_error(message)


def notify_warning(message: str) -> None:
    """Show a warning notification."""
    notifications.show_warning(message)


def notify_info(message: str) -> None:
    """Show an info notification."""
    notifications.show_info(message)


def describe_error(exc: BaseException) -> str:
    """One sentence for the user: the message of a core error, or a hint for known failures."""
    if isinstance(exc, StructN2VError):
        return str(exc)
    text = str(exc)
    if "out of memory" in text.lower():
        return (
            "The GPU ran out of memory; reduce the batch size, patch size or tile size, "
            "or choose the CPU device."
        )
    return f"{type(exc).__name__}: {text}"


def report_error(exc: BaseException, prefix: str = "") -> str:
    """The one way the widgets report an error: a notification ``prefix`` + :func:`describe_error`
    (never a traceback or an exception dialog). Returns the sentence, for a status line."""
    message = describe_error(exc)
    notify_error(prefix + message)
    return message


# layer lookup ----------------------------------------------------------------
def find_layer(viewer: napari.Viewer, name: str) -> napari.layers.Layer | None:
    """The layer called ``name``, or None."""
    for layer in viewer.layers:
        if layer.name == name:
            return layer
    return None


def layer_array(layer: napari.layers.Layer) -> np.ndarray:
    """The layer's data as a numpy array (level 0 of a multiscale image)."""
    return np.asarray(layer_data(layer))


def layer_data(layer: napari.layers.Layer) -> Any:
    """The layer's data as it is (level 0 of a multiscale image): dask and zarr data stay lazy."""
    data = layer.data
    return data[0] if getattr(layer, "multiscale", False) else data


def layer_axes(layer: napari.layers.Layer) -> str:
    """Axes of a layer: ``metadata['axes']`` when valid, else guessed from shape and rgb."""
    shape = tuple(layer_data(layer).shape)  # no np.asarray: lazy (dask/zarr) layers stay unloaded
    meta = layer.metadata.get("axes") if isinstance(layer.metadata, dict) else None
    if isinstance(meta, str):
        try:
            return validate_axes(meta, len(shape))
        except StructN2VError as exc:  # metadata from elsewhere: guess instead
            _log.debug("layer %r: axes %r in its metadata ignored: %s", layer.name, meta, exc)
    try:
        return guess_axes(shape, rgb=bool(getattr(layer, "rgb", False)))
    except StructN2VError:
        return ""  # no guess: the user types the axes


def dark_layer_axes(layer: napari.layers.Layer, image_axes: str) -> str:
    """Axes of a dark-frame layer for an image with ``image_axes``: :func:`~napari_structn2v.axes.dark_axes`
    (a stack of dark frames for a 2D image is ``SYX``, whatever its own shape suggests), else the
    layer's own (:func:`layer_axes`)."""
    ndim = len(layer_data(layer).shape)
    return (dark_axes(ndim, image_axes) if image_axes else None) or layer_axes(layer)


#: metadata key marking display-only layers made by the plugin (autocorrelation, overlay, preview)
HELPER_KEY = "napari_structn2v_helper"


def is_helper(layer: napari.layers.Layer) -> bool:
    """True for the plugin's display-only layers, which the layer pickers leave out."""
    meta = getattr(layer, "metadata", None)
    return isinstance(meta, dict) and bool(meta.get(HELPER_KEY))


def add_or_update_image(
    viewer: napari.Viewer,
    name: str,
    data: np.ndarray,
    *,
    keep_active: bool = True,
    helper: bool = True,
    **kwargs: Any,
) -> napari.layers.Image:
    """Update the image layer called ``name`` in place, or add it.

    Re-runs reuse the layer instead of duplicating it. ``kwargs`` (scale, translate, colormap,
    contrast_limits, ...) are applied either way. With ``keep_active`` the previously active layer
    stays active, so that e.g. drawing on a Shapes layer is not interrupted. ``helper`` marks the
    layer as display-only (left out of the layer pickers).
    """
    previous = viewer.layers.selection.active
    layer = find_layer(viewer, name)
    if layer is not None and (not isinstance(layer, Image) or layer.ndim != np.ndim(data)):
        viewer.layers.remove(layer)
        layer = None
    if layer is None:
        layer = viewer.add_image(data, name=name, metadata={HELPER_KEY: helper}, **kwargs)
    else:
        layer.data = data
        for key, value in kwargs.items():
            # each set of scale, translate or contrast re-slices and repaints (30-60 ms): a preview
            # update that set all three again took 190-250 ms of the GUI thread while training
            if not _same_value(getattr(layer, key, None), value):
                setattr(layer, key, value)
    if keep_active and previous is not None and previous in viewer.layers:
        viewer.layers.selection.active = previous
    return layer


def _same_value(current: Any, value: Any) -> bool:
    """True when a layer attribute already holds ``value`` (numbers, sequences or names)."""
    if isinstance(current, str) or isinstance(value, str):
        return current == value or getattr(current, "name", None) == value
    try:
        return bool(np.array_equal(np.asarray(current, dtype=float), np.asarray(value, dtype=float)))
    except (TypeError, ValueError):
        return False


# pickers -------------------------------------------------------------------------
class _LayerWatcher:
    """Mixin: call ``self.refresh()`` whenever the viewer's layer list changes (a layer inserted,
    removed, moved or renamed)."""

    def _watch(self, viewer: napari.Viewer, kinds: Sequence[str]) -> None:
        self._viewer = viewer
        self._kinds = tuple(kinds)
        events = viewer.layers.events
        self._connections = Connections()
        for name in ("inserted", "removed", "moved", "renamed"):
            emitter = getattr(events, name, None)
            if emitter is not None:  # 'renamed' is in napari >= 0.4.19
                self._connections.connect(emitter, self._on_layers_changed)

    def _on_layers_changed(self, event: Any = None) -> None:
        self.refresh()

    def _matching(self) -> list[napari.layers.Layer]:
        return [
            layer
            for layer in self._viewer.layers
            if type(layer).__name__.lower() in self._kinds and not is_helper(layer)
        ]

    def disconnect_viewer(self) -> None:
        """Stop following the viewer's layers."""
        self._connections.release()


class LayerCombo(ComboBox, _LayerWatcher):
    """A magicgui ``ComboBox`` whose choices are the viewer's layers of some kinds (the plugin's
    display-only layers left out), reset whenever the layer list changes.

    Its value is the chosen layer (None when there is none, or the empty choice with ``allow_none``);
    the choice survives a rename of its layer. ``changed`` is magicgui's signal; put ``native`` in
    Qt layouts.
    """

    null_string = "(none)"

    def __init__(self, viewer: napari.Viewer, kinds: Sequence[str] = ("image",), *, allow_none: bool = False):
        self._viewer = viewer
        self._kinds = tuple(kinds)
        super().__init__(choices=self._layer_choices, nullable=allow_none)
        self._watch(viewer, kinds)

    def _layer_choices(self, widget: Any = None) -> list[tuple[str, napari.layers.Layer]]:
        return [(layer.name, layer) for layer in self._matching()]

    def refresh(self) -> None:
        """Re-list the layers in the layer list's order, keeping the chosen one when it still exists
        (also when renamed); ``changed`` is emitted only when the choice changes."""
        current = self.value
        with self.changed.blocked():
            self.native.clear()  # magicgui would keep the old order of the names it already has
            self.reset_choices()
            if current is not None and current in self.choices:
                self.value = current
        if self.value is not current:
            self.changed.emit(self.value)

    def layer(self) -> napari.layers.Layer | None:
        """The chosen layer, or None."""
        return self.value

    def currentText(self) -> str:  # noqa: N802 - the QComboBox name, kept for callers and tests
        """The chosen layer's name, or "" for none."""
        return self.value.name if self.value is not None else ""

    def set_layer(self, name: str) -> None:
        """Choose the layer called ``name`` (or the empty choice for "" with ``allow_none``)."""
        self.refresh()
        if not name and self._nullable:
            self.value = None
            return
        layer = find_layer(self._viewer, name)
        if layer is not None and layer in self.choices:
            self.value = layer


class LayerChecklist(QListWidget, _LayerWatcher):
    """A list of the viewer's layers of some kinds with a check box each (multiple choice).

    Hand-rolled on purpose: magicgui's multiple choice (``Select``, what ``list[Image]`` gives) is a
    list where a plain click selects one layer and drops the others, and choosing several needs
    Ctrl/Shift-click; training on several layers is common, and check boxes show and keep the choice.
    It follows the layer list like :class:`LayerCombo` (insert, remove, move, rename).
    """

    selection_changed = Signal()
    #: the check marks were changed by the user or by :meth:`set_checked` (not by a refresh)
    checks_changed = Signal()

    def __init__(
        self, viewer: napari.Viewer, kinds: Sequence[str] = ("image",), parent: QWidget | None = None
    ):
        super().__init__(parent)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setMaximumHeight(90)
        self.itemChanged.connect(lambda _item: (self.selection_changed.emit(), self.checks_changed.emit()))
        self._watch(viewer, kinds)
        self.refresh()

    def refresh(self) -> None:
        """Re-list the layers, keeping the check marks of those still present (also when renamed)."""
        checked = self.layers()
        first = self.count() == 0
        self.blockSignals(True)
        self.clear()
        layers = self._matching()
        for layer in layers:
            item = QListWidgetItem(layer.name)
            item.setData(Qt.ItemDataRole.UserRole, layer)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = any(layer is c for c in checked) or (first and not checked and layer is layers[0])
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.addItem(item)
        self.blockSignals(False)
        self.selection_changed.emit()

    def checked_names(self) -> list[str]:
        """Names of the checked layers, in list order."""
        return [
            self.item(i).text()
            for i in range(self.count())
            if self.item(i).checkState() == Qt.CheckState.Checked
        ]

    def layers(self) -> list[napari.layers.Layer]:
        """The checked layers (still in the viewer)."""
        items = (self.item(i) for i in range(self.count()))
        found = [it.data(Qt.ItemDataRole.UserRole) for it in items if it.checkState() == Qt.CheckState.Checked]
        return [layer for layer in found if layer is not None and layer in self._viewer.layers]

    def set_checked(self, names: Sequence[str]) -> None:
        """Check exactly the layers called ``names``."""
        self.refresh()
        self.blockSignals(True)
        for i in range(self.count()):
            item = self.item(i)
            on = item.text() in names
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
        self.blockSignals(False)
        self.selection_changed.emit()
        self.checks_changed.emit()


# docks that fit a laptop screen ----------------------------------------------------------------
class _FitWidthScrollArea(QScrollArea):
    """A vertical scroll area whose minimum width is its contents' minimum width, asked at layout
    time rather than at construction.

    Measured at construction, the Train dock's width missed 23-36 px: napari's stylesheet (larger
    paddings, spin-box buttons) applies only once the dock is shown, and with horizontal scrolling
    off the extra width was clipped ("Save model…", the spin boxes' "+" buttons). Asked here, the
    hint follows the style, and every style or layout change of the contents asks again.
    """

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt API
        hint = super().minimumSizeHint()
        inner = self.widget()
        if inner is None:
            return hint
        width = inner.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width()
        return QSize(max(hint.width(), width), hint.height())

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt API
        if obj is self.widget() and event.type() in (
            QEvent.Type.LayoutRequest, QEvent.Type.StyleChange, QEvent.Type.Polish,
        ):
            self.updateGeometry()  # the dock re-reads minimumSizeHint
        return super().eventFilter(obj, event)


def install_scroll_layout(widget: QWidget, layout: Any) -> Any:
    """Put ``layout`` into a frameless scroll area that fills ``widget``; returns the area.

    A dock's minimum height is then that of the scroll area (about 70 px), not of its contents
    (Train alone needed 671 px), so docks stacked in one column fit a 768 px screen. Its minimum
    width is always its contents' (see :class:`_FitWidthScrollArea`): nothing is cut on the right.
    """
    inner = QWidget()
    inner.setLayout(layout)
    area = _FitWidthScrollArea(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(inner)
    outer = QVBoxLayout(widget)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(area)
    return area


def hide_form_row(form: Any, field: QWidget) -> None:
    """Hide the row of ``field`` (a widget added with its label) in a QFormLayout."""
    label = form.labelForField(field)
    if label is not None:
        label.hide()
    field.hide()
