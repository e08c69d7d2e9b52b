"""The StructN2V dock (napari_structn2v._widgets.structn2v): one dock for the workflow, Auto-denoise on
both samples in a real viewer at 1366x768, its stop with a reason, Stop, and no control clipped."""
from __future__ import annotations

import numpy as np
import pytest

from tests._widgets.helpers import PLUGIN, assert_unchanged, clipped_controls, snapshot

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def laptop_viewer(make_napari_viewer, qtbot, sample=None):
    """A shown viewer in a 1366x768 window with the StructN2V dock (and a sample, if named)."""
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1366, 768)
    if sample:
        viewer.open_sample(PLUGIN, sample)
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "StructN2V")
    qtbot.waitUntil(lambda: widget.isVisible(), timeout=5000)
    QApplication.processEvents()
    return viewer, dock, widget


def fast(widget, seconds=5):
    """The shortest budget and one prediction pass: the tests check the flow, not the quality."""
    widget.budget_unit.setCurrentText("seconds")
    widget.budget.setValue(seconds)
    widget.predict.tta.setChecked(False)
    widget.train.device.setCurrentText("cpu")


def test_the_dock_is_called_structn2v_in_the_manifest():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest(PLUGIN)
    names = [w.display_name for w in manifest.contributions.widgets]
    assert names[0] == "StructN2V"


@pytest.mark.parametrize("sample, out_ndim", [("structured_noise_2d", 2), ("structured_noise_3d", 3)])
def test_auto_denoise_on_the_samples(make_napari_viewer, qtbot, notes, monkeypatch, sample, out_ndim):
    from napari_structn2v._widgets._predict_output import PredictOutput

    written = []  # the regions in the order they reach the output layer
    write = PredictOutput.write
    monkeypatch.setattr(PredictOutput, "write", lambda self, event: (written.append(event.region), write(self, event)))
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot, sample)
    before = snapshot(viewer)
    image = widget.image_combo.layer()
    assert image is not None and "structured noise" in image.name
    assert widget.dark_combo.layer() is not None and "dark" in widget.dark_combo.layer().name  # offered
    fast(widget)
    assert widget.auto_button.text() == "Auto-denoise"
    widget.auto_button.click()
    assert widget.running
    if out_ndim == 3:  # moved during training: prediction starts at the slice on view then
        z = image.data.shape[0] * 2 // 3
        viewer.dims.set_current_step(0, z)
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    if out_ndim == 3:
        assert written[0][0].start <= z < written[0][0].stop, written[:2]
        # the Z slider still starts at 0 and is labelled Z (napari's default label "-3" read as a start)
        assert viewer.dims.range[0].start == 0 and viewer.dims.axis_labels[0] == "Z"
        sliders = viewer.window._qt_viewer.dims.slider_widgets
        assert sliders[0].axis_label.text() == "Z"
    assert not notes["error"], notes["error"]
    done = widget.result_event
    assert done is not None and done.image is not None and not done.stopped
    out = viewer.layers[f"{image.name} (StructN2V)"]
    assert out.data.shape == image.data.shape and out.ndim == out_ndim
    np.testing.assert_allclose(np.asarray(out.data), done.image)
    assert np.std(out.data) > 0
    # one state: the mask it chose, and the model, are the other steps' (and docks')
    assert widget.state.mask is not None and np.array_equal(widget.state.mask, done.analysis.mask)
    assert widget.state.model is done.model
    assert widget.noise.acf_view.shows_analysis and "Denoised into" in widget.status.text()
    assert widget.progress.value() == 100
    assert_unchanged(viewer, before)
    # no helper layers: only the user's two and the result
    assert len(viewer.layers) == 3, [layer.name for layer in viewer.layers]


def test_auto_denoise_without_a_dark_frame_uses_the_background(make_napari_viewer, qtbot, notes):
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot, "structured_noise_2d")
    widget.dark_combo.value = None
    assert widget.state.dark == ""
    fast(widget)
    widget.start()
    qtbot.waitUntil(lambda: not widget.running, timeout=120_000)
    assert not notes["error"], notes["error"]
    done = widget.result_event
    assert done.analysis.corners and done.analysis.analysis.reliable
    mask = done.analysis.analysis.mask
    assert mask.shape[0] == 1 and mask.shape[1] >= 7  # a line along X, as the sample's noise


def test_auto_denoise_stops_with_the_reason_when_the_mask_cannot_be_trusted(make_napari_viewer, qtbot, notes):
    """An image with no background (texture everywhere) and no dark frame: no training, one clear
    message in the status line and a notification, the untrustworthy analysis shown."""
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot)
    yy, xx = np.mgrid[:128, :128]
    rng = np.random.default_rng(0)
    texture = (np.sin(xx / 3.0) * np.cos(yy / 5.0) + 1.5 + 0.05 * rng.standard_normal((128, 128))).astype(np.float32)
    viewer.add_image(texture, name="texture")
    widget.image_combo.set_layer("texture")
    widget.dark_combo.value = None
    fast(widget)
    widget.start()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert "Auto-denoise stopped" in widget.status.text() and "dark frame" in widget.status.text()
    assert notes["error"] and "cannot be trusted" in notes["error"][-1]
    assert widget.state.model is None and "texture (StructN2V)" not in viewer.layers
    assert widget.noise.acf_view.shows_analysis


def test_stop_during_auto_denoise_still_denoises_with_the_model_so_far(make_napari_viewer, qtbot, notes):
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot, "structured_noise_2d")
    fast(widget, seconds=60)
    widget.start()
    qtbot.waitUntil(lambda: widget.train.plot.points("train") > 3, timeout=60_000)
    widget.stop_button.click()
    qtbot.waitUntil(lambda: not widget.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    done = widget.result_event
    assert done.stopped and done.image is not None and done.model is not None
    assert "2D structured noise (StructN2V)" in viewer.layers


def test_auto_denoise_refuses_bad_input_with_a_notification(make_napari_viewer, qtbot, notes):
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot)
    assert widget.start() is None and "Choose the image" in notes["error"][-1]
    viewer.add_image(np.zeros((40, 40), np.float32), name="img")
    widget.image_combo.set_layer("img")
    widget.axes_edit.setText("ZYX")
    assert widget.start() is None and "ZYX" in notes["error"][-1]
    widget.axes_edit.setText("YX")
    widget.dark_combo.set_layer("img")
    assert widget.start() is None and "cannot be the image" in notes["error"][-1]


def test_every_step_fits_a_laptop_screen_with_nothing_clipped(make_napari_viewer, qtbot):
    """At 1366x768, in every tab: each button, combo, spin box, check box and line edit lies inside
    its dock's visible width, and the step's action buttons are visible without scrolling."""
    from qtpy.QtCore import QPoint
    from qtpy.QtWidgets import QAbstractScrollArea, QApplication

    viewer, dock, widget = laptop_viewer(make_napari_viewer, qtbot, "structured_noise_2d")
    window = viewer.window._qt_window
    assert window.width() <= 1366 and window.height() <= 768
    actions = {
        0: [widget.noise.roi_button, widget.noise.background_button, widget.noise.analyze_button,
            widget.noise.suggest_button],
        1: [*widget.mask.preset_buttons.values()],
        2: [widget.train.train_button, widget.train.stop_button, widget.train.save_button],
        3: [widget.predict.predict_button, widget.predict.stop_button],
    }
    for index in range(widget.tabs.count()):
        widget.tabs.setCurrentIndex(index)
        qtbot.wait(50)
        QApplication.processEvents()
        page = widget.tabs.currentWidget()
        assert not clipped_controls(page, window), (index, clipped_controls(page, window))
        viewport = page.findChild(QAbstractScrollArea).viewport()
        for button in actions[index]:
            top = button.mapTo(viewport, QPoint(0, 0)).y()
            assert 0 <= top and top + button.height() <= viewport.height(), (index, button.text(), top,
                                                                            viewport.height())
    for control in (widget.auto_button, widget.budget, widget.budget_unit, widget.stop_button):
        right = control.mapTo(widget, QPoint(0, 0)).x() + control.width()
        assert right <= widget.width(), (control, right, widget.width())
    assert dock.width() < 1366 // 2


def test_a_sample_opened_after_the_dock_offers_its_dark_frame(make_napari_viewer, qtbot):
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot)
    viewer.open_sample(PLUGIN, "structured_noise_2d")
    assert widget.image_combo.currentText() == "2D structured noise"
    assert widget.dark_combo.currentText() == "2D dark frame" and widget.state.dark == "2D dark frame"
    assert widget.noise.mode_dark.isChecked()


def test_closing_the_viewer_during_auto_denoise_stops_it(make_napari_viewer, qtbot, notes):
    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot, "structured_noise_2d")
    fast(widget, seconds=60)
    worker = widget.start()
    qtbot.waitUntil(lambda: widget.train.plot.points("train") > 0, timeout=60_000)
    with qtbot.waitSignal(worker.finished, timeout=20_000):
        viewer.close()


def test_a_dark_stack_for_a_2d_image_is_read_as_frames(make_napari_viewer, qtbot):
    # its own shape guessed ZYX: the mask came out 3D (11x1x1) and training on the 2D image refused it
    from napari_structn2v.synthetic import correlated_noise, make_sample

    viewer, _dock, widget = laptop_viewer(make_napari_viewer, qtbot)
    viewer.add_image(make_sample("2d", seed=0, size=64)["noisy"], name="img")
    viewer.add_image(np.stack([correlated_noise((64, 64), axis=-1, rng=i) for i in range(4)]), name="dark stack")
    widget.image_combo.set_layer("img")
    widget.dark_combo.set_layer("dark stack")
    _image, axes, dark, dark_axes, _config = widget._inputs()
    assert axes == "YX" and dark.shape == (4, 64, 64) and dark_axes == "SYX"
