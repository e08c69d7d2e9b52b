"""The plugin as napari sees it: every contribution of the manifest opens in a real viewer (Xvfb via
pytest-xvfb), the four docks fit a laptop screen together, and the whole 2D and 3D flows run across
them (noise analysis, mask, training, prediction).

Tiny data, CPU. Waits use qtbot.waitUntil on widget state, never sleeps."""
from __future__ import annotations

import time

import numpy as np
import pytest

from tests._widgets.helpers import (
    PLUGIN,
    TRAIN_KW,
    assert_unchanged,
    clipped_controls,
    open_widget,
    set_train,
    snapshot,
)
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QTimer


class GapMeter:
    """Longest gap between ticks of a 10 ms QTimer: how long the event loop was blocked."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.last = None
        self.longest = 0.0

    def _tick(self):
        now = time.perf_counter()
        if self.last is not None:
            self.longest = max(self.longest, now - self.last)
        self.last = now

    def __enter__(self):
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.stop()


@pytest.mark.parametrize("name", ["Noise analysis", "Blind mask", "Train", "Predict"])
def test_widget_opens_through_manifest(viewer, qtbot, name):
    from qtpy.QtWidgets import QWidget

    widget = open_widget(viewer, name, qtbot)
    assert isinstance(widget, QWidget)


@pytest.mark.parametrize("key, ndim", [("structured_noise_2d", 2), ("structured_noise_3d", 3)])
def test_sample_data_opens(viewer, key, ndim):
    layers = viewer.open_sample(PLUGIN, key)
    assert len(layers) == 2
    assert {layer.ndim for layer in viewer.layers} == {ndim}
    # the axes by name: napari 0.9 labels unnamed ones "-3", "-2", "-1", and the Z slider of the 3D
    # sample read "-3" at its left end; its range starts at 0
    assert viewer.dims.axis_labels == tuple("ZYX"[-ndim:])
    assert all(r.start == 0 for r in viewer.dims.range)


def test_opening_the_dock_never_imports_torch_on_the_gui_thread():
    """The Predict step guessed the image's axes through a module that imports torch: opening the
    StructN2V dock, the GUI thread then waited 2.1 s for the device probe's own torch import. With
    the probe's result given, nothing in the dock's construction may import torch."""
    import subprocess
    import sys

    code = (
        "import sys, concurrent.futures, numpy as np, napari\n"
        "from napari_structn2v._widgets import _devices\n"
        "done = concurrent.futures.Future(); done.set_result(['cpu'])\n"
        "_devices._probe = done; _devices._warm_started = True  # no background import\n"
        "viewer = napari.Viewer(show=False)\n"
        "viewer.add_image(np.zeros((3, 32, 32), np.float32), name='img')\n"
        "from napari_structn2v._widgets.structn2v import StructN2VWidget\n"
        "dock = StructN2VWidget(viewer)\n"
        "print('torch' in sys.modules, dock.predict.axes_edit.text())\n"
        "viewer.close()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["False", "ZYX"]


def test_whole_flow(viewer, qtbot, notes, tmp_path, record_property):
    viewer.add_image(structured_image(64), name="img")
    before = snapshot(viewer)

    # noise analysis: ROI rectangle over the pure-noise part -> autocorrelation in the dock
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    noise.roi_button.click()
    roi = viewer.layers["noise ROI"]
    assert roi.mode == "add_rectangle"
    roi.add_rectangles(np.array([[2.0, 36.0], [62.0, 62.0]]))
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    assert noise.acf_view.shows_analysis
    ac = np.asarray(noise.analysis.autocorrelation)
    assert np.unravel_index(np.argmax(ac), ac.shape) == tuple(s // 2 for s in ac.shape)
    assert noise.plot.points("X") == ac.shape[1] and noise.plot.points("Y") == ac.shape[0]

    # suggestion: a horizontal line, shown in the mask designer and over the autocorrelation
    designer = open_widget(viewer, "Blind mask")
    noise.suggest_button.click()
    mask = noise.state.mask
    assert mask.ndim == 2 and mask.shape[0] == 1 and mask.shape[1] > 1, mask.shape
    assert designer.width_spin.value() == mask.shape[1]
    # drawn over the autocorrelation in both docks, with no helper layers in the viewer
    assert np.array_equal(designer.acf_view._mask, mask) and np.array_equal(noise.acf_view._mask, mask)
    assert designer.acf_view.shows_analysis
    assert [layer.name for layer in viewer.layers] == ["img", "noise ROI"]

    # training: preview layer appears, loss plot fills, the UI keeps turning
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **TRAIN_KW)
    train.train_button.click()
    assert train.worker is not None
    assert "img (StructN2V preview)" in viewer.layers  # added at once, updated while training
    with GapMeter() as gaps:
        qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    assert "img (StructN2V preview)" in viewer.layers
    assert train.plot.points("train") > 0 and train.plot.points("validation") > 0
    assert train.state.model is not None
    assert gaps.longest < 0.25, f"event loop blocked {gaps.longest * 1000:.0f} ms"
    record_property("ui_gap_ms", round(gaps.longest * 1000, 1))
    print(f"\n[measure] longest UI gap during training: {gaps.longest * 1000:.1f} ms")

    # a long run stopped mid-way ends promptly and keeps its model
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 100_000})
    train.start()
    qtbot.waitUntil(lambda: train.progress.value() >= 3, timeout=30_000)
    train.stop_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=10_000)
    stop_s = train.finished_at - train.stop_requested_at
    assert stop_s < 1.5, f"stop took {stop_s:.2f} s"
    assert train.last_event is not None and train.last_event.stopped
    record_property("stop_to_idle_s", round(stop_s, 3))
    print(f"[measure] Stop to idle: {stop_s * 1000:.0f} ms")

    # predict: output aligned with the source and completely filled, tile by tile
    viewer.layers["img"].scale = (0.5, 0.5)
    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.set_layer("img")
    predict.tile.setValue(32)
    predict.overlap.setValue(16)
    predict.device.setCurrentText("cpu")
    predict.predict_button.click()
    assert "img (StructN2V)" in viewer.layers  # created at once
    qtbot.waitUntil(lambda: not predict.running, timeout=30_000)
    out = viewer.layers["img (StructN2V)"]
    src = viewer.layers["img"]
    assert out.data.shape == src.data.shape
    np.testing.assert_allclose(out.scale, src.scale)
    np.testing.assert_allclose(out.translate, src.translate)
    assert predict.tiles_total > 1 and predict.tiles_done == predict.tiles_total
    assert np.all(np.asarray(out.data) != 0), "output not filled completely"
    record_property("tiles_per_s", round(predict.tiles_per_s, 1))
    print(f"[measure] tiles/s streamed: {predict.tiles_per_s:.1f} ({predict.tiles_total} tiles of 32)")
    # a new output layer gets contrast limits from its own values, not the noisy source's
    lo, hi = np.percentile(np.asarray(out.data), (0.5, 99.5))
    np.testing.assert_allclose(out.contrast_limits, (lo, hi), rtol=1e-5)

    # re-run reuses the output layer and keeps the contrast the user set
    out.contrast_limits = (0.0, 0.25)
    n_layers = len(viewer.layers)
    predict.start()
    qtbot.waitUntil(lambda: not predict.running, timeout=30_000)
    assert len(viewer.layers) == n_layers
    np.testing.assert_allclose(out.contrast_limits, (0.0, 0.25))
    assert_unchanged(viewer, before)
    assert not notes["error"], notes["error"]

    # save and reload the model
    path = tmp_path / "model.pt"
    assert train.save_model(path) and path.exists()
    assert predict.load_model(path)


def test_3d_flow(viewer, qtbot, notes):
    from napari_structn2v.synthetic import make_sample

    s = make_sample("3d", seed=0, size=64)  # ZYX (32, 32, 32), noise correlated along Y
    img = s["noisy"].copy()
    img[:, :, 16:] = s["dark"][:, :, 16:]
    viewer.add_image(img, name="vol")
    before = snapshot(viewer)
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("vol")
    noise.z_range.setValue(3)
    noise.roi_button.click()
    roi = viewer.layers["noise ROI"]
    z = float(viewer.dims.point[0])
    roi.add_rectangles(np.array([[z, 1, 17], [z, 1, 31], [z, 31, 31], [z, 31, 17]], dtype=float))
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    ac = noise.analysis.autocorrelation
    assert ac.ndim == 3 and noise.acf_view.shows_analysis
    mask = noise.suggest()
    assert mask.ndim == 3 and mask.shape[1] > 1 and mask.shape[2] == 1, mask.shape

    train = open_widget(viewer, "Train", qtbot)
    assert train.axes_edit.text() == "ZYX"
    set_train(train, ["vol"], **{**TRAIN_KW, "steps": 6, "preview_every": 3, "val_every": 3, "patch": 16})
    train.patch_z.setValue(8)
    train.start()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    preview = viewer.layers["vol (StructN2V preview)"]
    assert preview.ndim == 3

    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.set_layer("vol")
    predict.tile.setValue(32)
    predict.overlap.setValue(16)
    predict.start()
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    out = viewer.layers["vol (StructN2V)"]
    assert out.data.shape == img.shape and np.all(np.asarray(out.data) != 0)
    assert_unchanged(viewer, before)


def test_four_docks_fit_a_laptop_screen(make_napari_viewer, qtbot):
    from qtpy.QtWidgets import QApplication

    viewer = make_napari_viewer(show=True)
    docks = [viewer.window.add_plugin_dock_widget(PLUGIN, name)[0]
             for name in ("Noise analysis", "Blind mask", "Train", "Predict")]
    window = docks[0].window()
    window.showNormal()
    window.resize(1366, 768)
    qtbot.waitUntil(lambda: window.isVisible(), timeout=5000)
    QApplication.processEvents()
    # each dock can shrink to a quarter of the screen; together they fit its height
    heights = [d.minimumSizeHint().height() for d in docks]
    assert sum(heights) < 768 - 100, heights
    assert max(d.minimumSizeHint().width() for d in docks) < 1366 // 2
    assert window.height() <= 768 and window.width() <= 1366, (window.width(), window.height())
    assert window.minimumSizeHint().height() <= 768
    # nothing cut on the right: napari's stylesheet widens the controls after the docks are built
    # (the Train dock's content was 23-36 px wider than its scroll area)
    qtbot.wait(100)
    for dock in docks:
        widget = dock.widget()
        assert not clipped_controls(widget, window), (dock.windowTitle(), clipped_controls(widget, window))
