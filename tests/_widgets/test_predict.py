"""The Predict dock (napari_structn2v._widgets.predict): mistakes, dask/zarr layers tile by tile, the axes
from the picker and the model. Its BMZ export is tested in tests/bmz/test_export.py, beside the package
helpers it shares."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from tests._widgets.helpers import assert_unchanged, open_widget, snapshot
from tests.helpers import structured_image, untrained_model

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_predict_errors(viewer, qtbot, notes, tmp_path, monkeypatch, tiny_model):
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
    model = tiny_model
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
    from napari_structn2v._widgets.predict import TEMP_STORE_KEY
    from napari_structn2v.io import images as io
    from napari_structn2v.method.masks import box_mask

    model = untrained_model("ZYX", box_mask(1, 3, 1), high=[1000.0], spatial_ndim=3, base_filters=4, depth=1)  # halo 10
    img = (np.random.default_rng(0).random((12, 80, 90)) * 1000).astype(np.uint16)
    store = zarr.create_array(tmp_path / "in.zarr", shape=img.shape, chunks=(4, 32, 32), dtype="uint16")
    store[:] = img
    expected = model.predict(img, "ZYX", tile=48, tta=False)
    from napari_structn2v.prediction import predict as prediction

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


def test_predict_picker_choice_drives_the_axes(viewer, qtbot):
    viewer.add_image(structured_image(32), name="flat")
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="stack")
    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.value = viewer.layers["stack"]  # magicgui's value; 'changed' guesses the axes
    assert predict.axes_edit.text() == "ZYX"
    predict.image_combo.value = viewer.layers["flat"]
    assert predict.axes_edit.text() == "YX"


def test_predict_suggests_the_models_axes_and_reports_failure(viewer, qtbot, notes):
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train

    stack = np.stack([structured_image(64), structured_image(64)[::-1]])
    viewer.add_image(stack, name="stack")
    bad = stack.copy()
    bad[0, 3, 3] = np.nan
    viewer.add_image(bad, name="holes")
    before = snapshot(viewer)
    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.set_layer("stack")
    assert predict.axes_edit.text() == "ZYX"  # no model yet: a guess from the shape
    predict.state.model = train(
        stack, "SYX", "3x1",
        TrainConfig(steps=2, patch_size=32, batch_size=2, base_filters=8, device="cpu", val_fraction=0),
    )
    assert predict.axes_edit.text() == "SYX"  # was ZYX, which the 2D model then refused
    predict.device.setCurrentText("cpu")
    assert predict.start() is not None
    qtbot.waitUntil(lambda: not predict.running, timeout=30_000)
    assert predict.status.text().startswith("Done"), predict.status.text()
    predict.image_combo.set_layer("holes")
    assert predict.start() is None
    assert "NaN" in notes["error"][-1]
    assert predict.status.text().startswith("Failed") and "NaN" in predict.status.text()
    predict.axes_edit.setText("TYX")  # typed by the user: a new model does not replace it
    predict.state.model = copy.copy(predict.state.model)
    assert predict.axes_edit.text() == "TYX"
    assert_unchanged(viewer, before)


def test_predict_lazy_input_to_a_neighbour_slice_model(viewer, qtbot):
    """A lazy volume for a model that reads neighbouring Z slices: the data's channels count, not the
    network's 2k+1 inputs, and a lazy 2D image is refused for want of a Z axis (the in-memory rule)."""
    da = pytest.importorskip("dask.array")
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.errors import AxesError
    from napari_structn2v.training.loop import train

    vol = np.random.default_rng(3).random((5, 32, 32)).astype(np.float32)
    model = train(vol, "ZYX", "1x3x1", TrainConfig(steps=1, z_context=1, patch_size=32, batch_size=2,
                                                   base_filters=4, device="cpu"))
    assert model.config.architecture.in_channels == 3 and model.n_channels == 1
    predict = open_widget(viewer, "Predict", qtbot)
    assert predict._lazy_axes(model, da.from_array(vol, chunks=(1, 32, 32)), None) == "ZYX"
    with pytest.raises(AxesError, match="Z axis"):
        predict._lazy_axes(model, da.from_array(vol[0]), "YX")


def test_streamed_tiles_redraw_only_the_slice_on_view(viewer):
    """A redraw costs the GUI thread 25-140 ms; tiles of slices the user is not looking at need none
    (``force``: whatever the time since the last redraw, see the next test)."""
    from napari_structn2v._widgets._predict_output import PredictOutput
    from napari_structn2v.events import TileDone

    source = viewer.add_image(np.zeros((8, 16, 16), np.float32), name="vol")
    viewer.dims.set_current_step(0, 5)
    out = PredictOutput(viewer, source, (8, 16, 16))
    redraws = []
    out.layer.refresh = lambda *a, **k: redraws.append(1)
    tile = np.ones((2, 16, 16), np.float32)
    out.write(TileDone(0, 4, (slice(0, 2), slice(0, 16), slice(0, 16)), tile))
    out.refresh(force=True)
    assert not redraws  # slices 0-1: not on view, no redraw, yet the data is in the layer
    assert np.all(out.layer.data[0:2] == 1)
    out.write(TileDone(1, 4, (slice(4, 6), slice(0, 16), slice(0, 16)), tile))
    out.refresh(force=True)
    assert len(redraws) == 1  # slice 5 is on view
    out.refresh(force=True)
    assert len(redraws) == 1  # nothing new since


def test_a_large_slice_on_view_is_redrawn_less_often(viewer, monkeypatch):
    """Under Xvfb a redraw costs the GUI 25-140 ms whatever changed: a 2048 x 2048 stream redrawn
    every 250 ms kept its p99 gap over 100 ms, so a large slice waits longer between redraws,
    counted from the layer's creation (itself a draw); ``force`` (the end of a run) draws at once."""
    from napari_structn2v._widgets import _predict_output
    from napari_structn2v._widgets._predict_output import PredictOutput, refresh_interval_ms
    from napari_structn2v.events import TileDone

    assert [refresh_interval_ms(n * n) for n in (64, 512, 1024, 2048, 8192)] == [250, 250, 1000, 3000, 3000]
    clock = [100.0]
    monkeypatch.setattr(_predict_output.time, "perf_counter", lambda: clock[0])
    source = viewer.add_image(np.zeros((2048, 2048), np.float32), name="big")
    out = PredictOutput(viewer, source, (2048, 2048))
    assert out.refresh_ms == 3000
    redraws = []
    out.layer.refresh = lambda *a, **k: redraws.append(clock[0])
    tile = np.ones((256, 256), np.float32)
    for i in range(3):
        out.write(TileDone(i, 64, (slice(0, 256), slice(256 * i, 256 * (i + 1))), tile))
        out.refresh()
        clock[0] += 1.0
    assert redraws == []  # within 3 s of the layer's creation
    out.refresh()
    assert redraws == [103.0]  # 3 s on: the pending tiles are drawn
    out.write(TileDone(3, 64, (slice(256, 512), slice(0, 256)), tile))
    out.refresh()
    assert redraws == [103.0]
    out.refresh(force=True)
    assert redraws == [103.0, 103.0]


def test_the_new_layers_contrast_comes_from_a_sample_of_the_tiles(viewer, monkeypatch):
    """The percentiles of a whole 2048 x 2048 result cost the GUI thread 100 ms at the end of a run;
    a strided sample of each tile gives the same limits."""
    from napari_structn2v._widgets import _predict_output
    from napari_structn2v._widgets._predict_output import CONTRAST_SAMPLES_PER_TILE, PredictOutput
    from napari_structn2v.events import TileDone

    sizes = []
    limits = _predict_output._contrast_limits
    monkeypatch.setattr(_predict_output, "_contrast_limits", lambda v: (sizes.append(v.size), limits(v))[1])
    result = np.random.default_rng(0).gamma(2.0, 1.0, (1024, 1024)).astype(np.float32)
    source = viewer.add_image(np.zeros_like(result), name="img")
    out = PredictOutput(viewer, source, result.shape)
    for i in range(16):
        region = (slice(256 * (i // 4), 256 * (i // 4 + 1)), slice(256 * (i % 4), 256 * (i % 4 + 1)))
        out.write(TileDone(i, 16, region, result[region]))
    out.finish(stopped=False)
    assert sizes == [16 * CONTRAST_SAMPLES_PER_TILE]
    np.testing.assert_allclose(out.layer.contrast_limits, np.percentile(result, (0.5, 99.5)), rtol=0.05)


def test_the_slice_on_view_is_predicted_first(viewer, qtbot, tiny_model, monkeypatch):
    """With the viewer at z = 7 the first tile written covers slice 7 (it was slice 0: the slice the
    user looks at stayed grey for most of the run), and the result is the same."""
    from napari_structn2v._widgets._predict_output import PredictOutput

    written = []
    write = PredictOutput.write
    monkeypatch.setattr(PredictOutput, "write", lambda self, event: (written.append(event.region), write(self, event)))
    vol = np.random.default_rng(0).random((10, 48, 48)).astype(np.float32)
    viewer.add_image(vol, name="vol")
    viewer.dims.set_current_step(0, 7)
    predict = open_widget(viewer, "Predict", qtbot)
    predict.state.model = tiny_model
    predict.image_combo.set_layer("vol")
    predict.axes_edit.setText("ZYX")
    predict.device.setCurrentText("cpu")
    predict.tta.setChecked(False)
    assert predict.start() is not None
    # napari's activity bar comes with the click: made with the first tile, it was one of the
    # GUI's two longest gaps of a run
    activity = predict._activity
    assert activity is not None and not written
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    assert activity.total == predict.tiles_total == len(written) and predict._activity is None
    assert predict.status.text().startswith("Done"), predict.status.text()
    assert written[0][0] == slice(7, 8), written[:3]
    assert written[1][0].start in (6, 8)  # a 48 px slice is one tile: then a neighbour
    expected = tiny_model.predict(vol, "ZYX", tta=False, device="cpu")
    np.testing.assert_array_equal(viewer.layers["vol (StructN2V)"].data, expected)
