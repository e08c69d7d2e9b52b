"""Dock widgets in a real napari viewer (Xvfb via pytest-xvfb): the whole flow and the errors.

Tiny data, CPU. Waits use qtbot.waitUntil on widget state, never sleeps.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from qtpy.QtCore import QTimer

PLUGIN = "napari-structn2v"
TRAIN_KW = dict(steps=30, patch=32, batch=4, preview_every=10, base_filters=8, val_every=10)


# helpers ------------------------------------------------------------------------------------
@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notes(monkeypatch):
    """Record error/warning notifications instead of showing them."""
    from napari.utils import notifications

    seen: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    monkeypatch.setattr(notifications, "show_error", lambda m: seen["error"].append(str(m)))
    monkeypatch.setattr(notifications, "show_warning", lambda m: seen["warning"].append(str(m)))
    monkeypatch.setattr(notifications, "show_info", lambda m: seen["info"].append(str(m)))
    return seen


def open_widget(viewer, name, qtbot=None):
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    if qtbot is not None and hasattr(widget, "devices_ready"):
        # the device list is probed (and torch imported) in the background when the widget opens
        qtbot.waitUntil(lambda: widget.devices_ready, timeout=60_000)
    return widget


def structured_image(size: int = 64) -> np.ndarray:
    """Horizontally correlated noise over an image whose right part is pure noise."""
    from napari_structn2v.synthetic import make_sample

    s = make_sample("2d", seed=1, size=size)
    img = s["noisy"].copy()
    img[:, size // 2 :] = s["dark"][:, size // 2 :]
    return img.astype(np.float32)


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


# tests --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["Noise analysis", "Blind mask", "Train", "Predict"])
def test_widget_opens_through_manifest(viewer, qtbot, name):
    from qtpy.QtWidgets import QWidget

    widget = open_widget(viewer, name, qtbot)
    assert isinstance(widget, QWidget)


def test_widgets_share_one_state(viewer, qtbot):
    noise = open_widget(viewer, "Noise analysis")
    train = open_widget(viewer, "Train", qtbot)
    assert noise.state is train.state


@pytest.mark.parametrize("key, ndim", [("structured_noise_2d", 2), ("structured_noise_3d", 3)])
def test_sample_data_opens(viewer, key, ndim):
    layers = viewer.open_sample(PLUGIN, key)
    assert len(layers) == 2
    assert {layer.ndim for layer in viewer.layers} == {ndim}


def test_whole_flow(viewer, qtbot, notes, tmp_path, record_property):
    viewer.add_image(structured_image(64), name="img")
    before = snapshot(viewer)

    # noise analysis: ROI rectangle over the pure-noise part -> autocorrelation layer
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    noise.roi_button.click()
    roi = viewer.layers["noise ROI"]
    assert roi.mode == "add_rectangle"
    roi.add_rectangles(np.array([[2.0, 36.0], [62.0, 62.0]]))
    qtbot.waitUntil(lambda: "autocorrelation: img" in viewer.layers, timeout=5000)
    ac = np.asarray(viewer.layers["autocorrelation: img"].data)
    assert np.unravel_index(np.argmax(ac), ac.shape) == tuple(s // 2 for s in ac.shape)
    assert noise.plot.points("X") == ac.shape[1] and noise.plot.points("Y") == ac.shape[0]

    # suggestion: a horizontal line, shown in the mask designer and over the autocorrelation
    designer = open_widget(viewer, "Blind mask")
    noise.suggest_button.click()
    mask = noise.state.mask
    assert mask.ndim == 2 and mask.shape[0] == 1 and mask.shape[1] > 1, mask.shape
    assert designer.width_spin.value() == mask.shape[1]
    outline = viewer.layers["mask outline: img"]
    assert type(outline).__name__ == "Shapes" and len(outline.data) == 1  # one row run: 1 rectangle
    ac_layer = viewer.layers["autocorrelation: img"]
    width = np.ptp(outline.data[0][:, -1]) / ac_layer.scale[-1]
    assert width == pytest.approx(mask.shape[1])
    assert "lag 0: img" in viewer.layers

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


def test_noise_roi_errors(viewer, qtbot, notes):
    viewer.add_image(structured_image(64), name="img")
    before = snapshot(viewer)
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    noise.analyze()  # no ROI yet
    assert len(notes["error"]) == 1
    noise.roi_button.click()
    roi = viewer.layers["noise ROI"]
    roi.add_rectangles(np.array([[200.0, 200.0], [240.0, 240.0]]))  # outside
    assert noise.analyze() is None
    assert "outside" in notes["error"][-1]
    roi.data = [np.array([[2.0, 40.0], [2.0, 44.0], [5.0, 44.0], [5.0, 40.0]])]  # too small
    assert noise.analyze() is None
    assert "too small" in notes["error"][-1]
    assert "autocorrelation: img" not in viewer.layers
    assert_unchanged(viewer, before)
    noise.suggest()
    assert notes["warning"]


def test_noise_dark_frame_and_spectrum(viewer, qtbot, notes):
    from napari_structn2v.synthetic import make_sample

    s = make_sample("2d", seed=0, size=64)
    viewer.add_image(s["noisy"], name="img")
    viewer.add_image(s["dark"], name="dark")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer("dark")
    noise.spectrum_check.setChecked(True)
    analysis = noise.analyze()
    assert analysis is not None and not notes["error"]
    assert "autocorrelation: img" in viewer.layers and "power spectrum: img" in viewer.layers
    # re-analysis reuses the layers
    n = len(viewer.layers)
    noise.analyze()
    assert len(viewer.layers) == n


def test_large_noise_region_is_analysed_off_the_gui_thread(viewer, qtbot, notes, monkeypatch):
    from napari_structn2v._widgets import noise_analysis
    from napari_structn2v.synthetic import correlated_noise

    monkeypatch.setattr(noise_analysis, "ASYNC_PIXELS", 1000)  # everything counts as large
    viewer.add_image(np.zeros((64, 64), np.float32), name="img")
    viewer.add_image(correlated_noise((4, 64, 64), axis=-1, rng=3), name="dark")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer("dark")
    assert noise.analyze() is None and noise.busy  # returns at once, a worker runs
    noise.analyze()  # a second request while busy runs once the first ends
    qtbot.waitUntil(lambda: not noise.busy and noise.analysis is not None, timeout=30_000)
    qtbot.waitUntil(lambda: not noise.busy, timeout=30_000)
    assert "autocorrelation: img" in viewer.layers and not notes["error"]
    assert noise.analysis.mask.shape[-2] == 1 and noise.analysis.mask.shape[-1] > 1  # a horizontal line


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


def test_train_errors(viewer, qtbot, notes):
    from napari_structn2v.masks import box_mask

    viewer.add_image(structured_image(64), name="img")
    before = snapshot(viewer)
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, [], **TRAIN_KW)
    assert train.start() is None  # no layer chosen
    assert "at least one image layer" in notes["error"][-1]
    set_train(train, ["img"], **TRAIN_KW)
    train.axes_edit.setText("ZYX")  # wrong axes
    assert train.start() is None
    assert "axes" in notes["error"][-1]
    train.axes_edit.setText("YX")
    train.state.mask = box_mask(41, 1)  # larger than the 32 patch
    assert train.start() is None
    assert "larger than the training patch" in notes["error"][-1]
    assert train.resume() is None  # nothing to resume
    assert train.save_model("x.pt") is False
    assert len(notes["error"]) == 5
    assert not train.running and train.train_button.isEnabled()
    assert_unchanged(viewer, before)
    assert list(viewer.layers) == [viewer.layers["img"]]


def test_predict_errors(viewer, qtbot, notes, tmp_path, monkeypatch):
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training import train

    viewer.add_image(structured_image(64), name="img")
    viewer.add_image(np.zeros((8, 32, 32), np.float32), name="stack")
    before = snapshot(viewer)
    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.set_layer("img")
    assert predict.start() is None  # no model
    bad = tmp_path / "corrupt.pt"
    bad.write_bytes(b"not a model at all")
    assert not predict.load_model(bad)  # corrupt model file
    assert predict.state.model is None
    model = train(
        structured_image(64), "YX", "3x1",
        TrainConfig(steps=2, patch_size=32, batch_size=2, base_filters=8, device="cpu", val_fraction=0),
    )
    predict.state.model = model
    predict.image_combo.set_layer("stack")
    predict.axes_edit.setText("CYX")  # 8 channels for a 1-channel model (ZYX would go slice by slice)
    assert predict.start() is None
    assert "channel" in notes["error"][-1]
    assert "stack (StructN2V)" not in viewer.layers

    # CUDA out of memory inside the worker: a notification, the UI recovers
    def oom(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        yield  # pragma: no cover

    monkeypatch.setattr(type(model), "predict_iter", oom)
    predict.image_combo.set_layer("img")
    predict.axes_edit.setText("YX")
    assert predict.start() is not None
    qtbot.waitUntil(lambda: not predict.running, timeout=10_000)
    assert "out of memory" in notes["error"][-1]
    assert predict.predict_button.isEnabled()
    assert len(notes["error"]) == 4
    assert_unchanged(viewer, before)


def test_predict_dask_layer_fills_a_zarr_layer(viewer, qtbot, notes, tmp_path, monkeypatch):
    """A dask/zarr-backed layer is read tile by tile into a zarr-backed output layer (issue 10)."""
    zarr = pytest.importorskip("zarr")
    da = pytest.importorskip("dask.array")
    import torch

    from napari_structn2v import io
    from napari_structn2v._widgets.predict import TEMP_STORE_KEY
    from napari_structn2v.masks import box_mask
    from napari_structn2v.model_io import StructN2VModel, new_model_config
    from napari_structn2v.unet import UNet, UNetConfig

    torch.manual_seed(0)
    arch = UNetConfig(spatial_ndim=3, in_channels=1, out_channels=1, base_filters=4, depth=1)  # halo 10
    model = StructN2VModel(UNet(arch).eval(), new_model_config("ZYX", box_mask(1, 3, 1), [0.0], [1000.0], arch, {}))
    img = (np.random.default_rng(0).random((12, 80, 90)) * 1000).astype(np.uint16)
    store = zarr.create_array(tmp_path / "in.zarr", shape=img.shape, chunks=(4, 32, 32), dtype="uint16")
    store[:] = img
    expected = model.predict(img, "ZYX", tile=48, tta=False)
    from napari_structn2v import prediction

    monkeypatch.setattr(prediction, "INTENSITY_SAMPLES", 2000)  # as if large: the range check reads a sample
    whole = []  # dask arrays of the image's full shape turned into numpy: a load of the whole input
    to_numpy = da.Array.__array__

    def spy(self, *args, **kwargs):
        if self.shape == img.shape:
            whole.append(self.shape)
        return to_numpy(self, *args, **kwargs)

    monkeypatch.setattr(da.Array, "__array__", spy)
    viewer.add_image(da.from_zarr(store), name="vol", scale=(2.0, 0.5, 0.5), contrast_limits=(0, 1000))
    predict = open_widget(viewer, "Predict", qtbot)
    predict.state.model = model
    predict.image_combo.set_layer("vol")
    assert predict.axes_edit.text() == "ZYX"
    predict.tile.setValue(48)
    predict.device.setCurrentText("cpu")
    predict.tta.setChecked(False)
    assert predict.start() is not None
    out = viewer.layers["vol (StructN2V)"]
    assert isinstance(out.data, zarr.Array)  # on disk from the start, filled tile by tile
    temp = out.metadata[TEMP_STORE_KEY]
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    assert predict.tiles_total > 1 and predict.tiles_done == predict.tiles_total
    np.testing.assert_allclose(out.data[:], expected, atol=1e-6)
    lo, hi = np.percentile(expected, (0.5, 99.5))  # limits from a sample of the tiles, near the exact ones
    assert abs(out.contrast_limits[0] - lo) < 0.05 * (hi - lo) and abs(out.contrast_limits[1] - hi) < 0.05 * (hi - lo)
    # a re-run into a chosen folder: the same layer, a kept OME-Zarr store, the temporary one removed
    predict.out_folder.setText(str(tmp_path / "results"))
    assert predict.start() is not None
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    assert viewer.layers["vol (StructN2V)"] is out and TEMP_STORE_KEY not in out.metadata
    assert not Path(temp).exists()
    kept = io.open_image(tmp_path / "results" / "vol_structn2v.ome.zarr")
    assert kept.axes == "ZYX" and kept.scale == (2.0, 0.5, 0.5)
    np.testing.assert_allclose(kept.data[:], expected, atol=1e-6)
    assert not whole, "the whole input was loaded"
    assert not notes["error"] and not notes["warning"], notes


def test_closing_widget_stops_training(viewer, qtbot, notes):
    viewer.add_image(structured_image(64), name="img")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 100_000})
    worker = train.start()
    qtbot.waitUntil(lambda: train.progress.value() >= 2, timeout=30_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.window.remove_dock_widget(train)
    assert train.worker is None


def test_closing_viewer_stops_training(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    viewer.add_image(structured_image(64), name="img")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 100_000})
    worker = train.start()
    qtbot.waitUntil(lambda: train.progress.value() >= 2, timeout=30_000)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.close()


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
    qtbot.waitUntil(lambda: "autocorrelation: vol" in viewer.layers, timeout=5000)
    ac = viewer.layers["autocorrelation: vol"].data
    assert ac.ndim == 3
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


def test_train_two_layers_then_resume(viewer, qtbot, notes):
    viewer.add_image(structured_image(64), name="a")
    viewer.add_image(structured_image(64)[::-1].copy(), name="b")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["a", "b"], **{**TRAIN_KW, "steps": 4, "preview_every": 0})
    assert train.resume_button.isEnabled() is False
    train.start()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    first = train.state.model
    assert first is not None and train.last_event.step == 4
    assert train.resume_button.isEnabled()
    train.resume_button.click()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert train.last_event.step == 8 and not train.last_event.stopped
    assert not notes["error"], notes["error"]
    assert "a (StructN2V preview)" not in viewer.layers


def test_train_for_minutes_sets_a_time_budget(viewer, qtbot):
    train = open_widget(viewer, "Train", qtbot)
    assert train.config().steps == 1500 and train.config().max_time_s is None
    train.budget_unit.setCurrentText("minutes")
    train.steps.setValue(2)
    cfg = train.config()
    assert cfg.steps is None and cfg.max_time_s == 120.0
    train.budget_unit.setCurrentText("steps")
    assert train.config().steps == 1500 and train.config().max_time_s is None


def test_dark_picker_never_defaults_to_the_image(viewer, notes):
    from napari_structn2v.synthetic import make_sample

    s = make_sample("2d", seed=0, size=64)
    viewer.add_image(s["noisy"], name="img")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    assert noise.dark_combo.currentText() == ""
    noise.mode_dark.setChecked(True)
    assert noise.analyze() is None and notes["error"]  # nothing chosen: an error, not the image
    viewer.add_image(s["dark"], name="camera dark")
    assert noise.dark_combo.currentText() == "camera dark"  # a layer named 'dark' is offered
    noise.dark_combo.set_layer("img")
    assert noise.analyze() is None and "cannot be the image" in notes["error"][-1]


def test_rois_are_pooled_and_reliability_shown(viewer, qtbot, notes):
    viewer.add_image(structured_image(64), name="img")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    roi = noise.add_roi_layer()
    roi.add_rectangles(np.array([[2.0, 36.0], [12.0, 46.0]]))  # 10x10: too few pixels
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    assert not noise.analysis.reliable and "Too few pixels" in noise.verdict.text()
    assert "NOT reliable" in noise.report.text()
    roi.add_rectangles(np.array([[2.0, 34.0], [62.0, 62.0]]))
    qtbot.waitUntil(lambda: noise.analysis.n_regions == 2, timeout=5000)
    assert noise.analysis.n_pixels == 10 * 10 + 60 * 28
    assert noise.analysis.reliable and "Reliable" in noise.verdict.text()


def test_roi_layer_returns_to_pan_zoom(viewer, qtbot):
    viewer.add_image(structured_image(64), name="img")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    roi = noise.add_roi_layer()
    assert roi.mode == "add_rectangle"
    roi.add_rectangles(np.array([[2.0, 36.0], [62.0, 62.0]]))
    qtbot.waitUntil(lambda: roi.mode == "pan_zoom", timeout=2000)


def test_find_background_button(viewer, qtbot, notes):
    from napari_structn2v.synthetic import make_sample

    viewer.add_image(make_sample("2d", seed=0, size=128)["noisy"], name="img")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    background = noise.find_background()
    assert background is not None and len(viewer.layers["noise ROI"].data) == len(background.regions) >= 4
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    assert noise.analysis.n_regions == len(background.regions)
    assert noise.analysis.mask.shape[0] == 1 and noise.analysis.mask.shape[1] >= 7


def test_3d_default_z_range_sees_z_and_advises_2d(viewer, qtbot, notes):
    from napari_structn2v.synthetic import correlated_noise

    viewer.add_image(correlated_noise((16, 48, 48), axis=-2, rng=3), name="vol")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("vol")
    assert noise.z_range.value() >= 2
    roi = noise.add_roi_layer()
    z = float(viewer.dims.point[0])
    roi.add_rectangles(np.array([[z, 2, 2], [z, 2, 46], [z, 46, 46], [z, 46, 2]], dtype=float))
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    assert noise.analysis.autocorrelation.ndim == 3 and noise.analysis.mask.shape[0] == 1
    assert "independent across Z" in noise.verdict.text()


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


def test_volume_with_a_2d_mask_trains_over_slices(viewer, qtbot, notes):
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((6, 40, 40)).astype(np.float32), name="vol")
    train = open_widget(viewer, "Train", qtbot)
    train.state.mask = np.ones((5, 1), bool)  # a Y line with no Z extent
    set_train(train, ["vol"], **{**TRAIN_KW, "steps": 3, "preview_every": 0})
    train.axes_edit.setText("ZYX")
    train.z_context.setValue(2)
    assert train.start() is not None
    assert "2D network over the Z slices, reading 2 neighbouring" in train.status.text()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    assert train.state.model.spatial_ndim == 2 and train.state.model.axes == "ZYX"
    assert train.state.model.z_context == 2  # the widget's setting reached the model
    assert any("Only 3 training steps" in w for w in notes["warning"])  # a 3-step model is flagged
