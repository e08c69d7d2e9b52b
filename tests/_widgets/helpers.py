"""Plain helpers of the widget tests: open a dock through the manifest, fill the Train dock, check that
the user's layers are unchanged."""
from __future__ import annotations

import numpy as np

PLUGIN = "napari-structn2v"
TRAIN_KW = dict(steps=30, patch=32, batch=4, preview_every=10, base_filters=8, val_every=10)


def open_widget(viewer, name, qtbot=None):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    if qtbot is not None and hasattr(widget, "devices_ready"):
        # the device list is probed (and torch imported) in the background when the widget opens
        qtbot.waitUntil(lambda: widget.devices_ready, timeout=60_000)
    return widget


def set_train(widget, layer_names, *, steps, patch, batch, preview_every, base_filters, val_every):
    widget.layers.set_checked(layer_names)
    widget.steps.setValue(steps)
    widget.patch.setValue(patch)
    widget.batch.setValue(batch)
    widget.preview_every.setValue(preview_every)
    widget.base_filters.setValue(base_filters)
    widget.val_every.setValue(val_every)
    widget.device.setCurrentText("cpu")


def snapshot(viewer):
    return {layer.name: np.array(layer.data, copy=True) for layer in viewer.layers}


def assert_unchanged(viewer, before, names=None):
    names = names if names is not None else before.keys()
    for name in names:
        assert name in viewer.layers, f"layer {name!r} lost"
        np.testing.assert_array_equal(np.asarray(viewer.layers[name].data), before[name])


def canvas_widget(viewer):
    """The Qt widget of the viewer's vispy canvas (what the user's mouse events reach)."""
    return viewer.window._qt_viewer.canvas.native


def drag(qtbot, viewer, start, end, *, steps=8, hold_ms=40):
    """Drag with the left button from ``start`` to ``end`` (canvas pixels) with real Qt mouse events:
    a press, ``steps`` moves ``hold_ms`` apart, and a release, as a user's drag arrives."""
    from qtpy.QtCore import QEvent, QPointF, Qt
    from qtpy.QtGui import QMouseEvent
    from qtpy.QtWidgets import QApplication

    widget = canvas_widget(viewer)

    def send(kind, x, y, buttons):
        pos = QPointF(float(x), float(y))
        glob = QPointF(widget.mapToGlobal(pos.toPoint()))
        event = QMouseEvent(kind, pos, glob, Qt.MouseButton.LeftButton if kind != QEvent.Type.MouseMove
                            else Qt.MouseButton.NoButton, buttons, Qt.KeyboardModifier.NoModifier)
        QApplication.sendEvent(widget, event)

    send(QEvent.Type.MouseButtonPress, *start, Qt.MouseButton.LeftButton)
    for i in range(1, steps + 1):
        x = start[0] + (end[0] - start[0]) * i / steps
        y = start[1] + (end[1] - start[1]) * i / steps
        qtbot.wait(hold_ms)
        send(QEvent.Type.MouseMove, x, y, Qt.MouseButton.LeftButton)
    send(QEvent.Type.MouseButtonRelease, *end, Qt.MouseButton.NoButton)


def canvas_point(viewer, world_yx):
    """Canvas pixel (x, y) showing the world point ``world_yx`` (2D view): napari's camera puts
    ``camera.center`` at the canvas centre, ``camera.zoom`` canvas pixels per world unit."""
    widget = canvas_widget(viewer)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera  # napari 0.9 moved it
    cy, cx = camera.center[-2:]
    zoom = float(camera.zoom)
    return (widget.width() / 2 + (world_yx[1] - cx) * zoom, widget.height() / 2 + (world_yx[0] - cy) * zoom)


def clipped_controls(page, window) -> list[tuple]:
    """The buttons, combos, spin boxes and line edits of ``page`` (a dock or a tab) that stick out of
    the visible width of its scroll area (or of the page itself when it does not scroll)."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QAbstractButton, QAbstractScrollArea, QAbstractSpinBox, QComboBox, QLineEdit

    area = page.findChild(QAbstractScrollArea)
    frame = area.viewport() if area is not None else page
    out = []
    for control in page.findChildren((QAbstractButton, QComboBox, QAbstractSpinBox, QLineEdit)):
        if not control.isVisibleTo(page) or control.window() is not window:
            continue
        left = control.mapTo(frame, QPoint(0, 0)).x()
        if left < 0 or left + control.width() > frame.width():
            out.append((type(control).__name__, getattr(control, "text", lambda: "")(), left,
                        left + control.width(), frame.width()))
    return out
