"""The Noise analysis dock (napari_structn2v._widgets.noise_analysis): ROIs, dark frames, background
search, reliability, analysis off the GUI thread and debounced."""
from __future__ import annotations

import numpy as np
import pytest

from tests._widgets.helpers import assert_unchanged, open_widget, snapshot
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


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
    assert not noise.acf_view.shows_analysis
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
    # drawn in the dock, never as layers (they cluttered the list and took over the dims slider)
    assert noise.acf_view.shows_analysis and noise.acf_view.shows_spectrum
    assert len(viewer.layers) == 2
    noise.spectrum_check.setChecked(False)
    noise.analyze()
    assert not noise.acf_view.shows_spectrum and len(viewer.layers) == 2


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
    assert noise.acf_view.shows_analysis and not notes["error"]
    assert noise.analysis.mask.shape[-2] == 1 and noise.analysis.mask.shape[-1] > 1  # a horizontal line


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


def test_noise_analysis_is_debounced_by_superqt(viewer, qtbot):
    from superqt.utils._throttler import ThrottledCallable

    from napari_structn2v._widgets.noise_analysis import DEBOUNCE_MS

    viewer.add_image(structured_image(32), name="img")
    noise = open_widget(viewer, "Noise analysis")
    assert isinstance(noise._debounced_analyze, ThrottledCallable)
    noise.mode_dark.setChecked(True)
    runs = []
    noise.analyze = lambda: runs.append(1)
    for _ in range(10):  # a burst of ROI edits
        noise.schedule()
    assert runs == []
    qtbot.waitUntil(lambda: runs == [1], timeout=5000)
    qtbot.wait(2 * DEBOUNCE_MS)
    assert runs == [1]


def test_roi_crop_of_a_lazy_layer_reads_only_the_rectangle(viewer, monkeypatch):
    """A dask layer: the ROI's pixels equal the in-memory crop, and the whole array is never loaded."""
    da = pytest.importorskip("dask.array")
    from napari_structn2v._widgets._noise_roi import roi_crop

    img = np.random.default_rng(1).random((6, 64, 80)).astype(np.float32)
    whole = []
    to_numpy = da.Array.__array__

    def spy(self, *args, **kwargs):
        if self.shape == img.shape:
            whole.append(self.shape)
        return to_numpy(self, *args, **kwargs)

    monkeypatch.setattr(da.Array, "__array__", spy)
    source = viewer.add_image(da.from_array(img, chunks=(1, 32, 32)), name="lazy", metadata={"axes": "ZYX"})
    roi = viewer.add_shapes([[[2, 10, 20], [2, 10, 50], [2, 40, 50], [2, 40, 20]]], shape_type="rectangle")
    crop, axes = roi_crop(viewer, roi, source, np.asarray(roi.data[0], dtype=float), 0)
    assert axes == "YX" and crop.shape[0] >= 30 and crop.shape[1] >= 30
    assert not whole, "the whole layer was loaded"
    eager = viewer.add_image(img, name="eager", metadata={"axes": "ZYX"})
    expected, _ = roi_crop(viewer, roi, eager, np.asarray(roi.data[0], dtype=float), 0)
    np.testing.assert_array_equal(crop, expected)


def test_drawing_a_roi_with_the_mouse_raises_no_false_error(make_napari_viewer, qtbot, notes):
    """A rectangle dragged with real mouse events for over the debounce time: napari adds it on the
    press (1 px) and grows it while the button is down; only the finished rectangle is analysed."""
    from tests._widgets.helpers import canvas_point, drag

    viewer = make_napari_viewer(show=True)
    viewer.add_image(structured_image(128), name="img")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("img")
    viewer.reset_view()
    roi = noise.add_roi_layer()
    qtbot.wait(50)
    start, end = canvas_point(viewer, (10, 10)), canvas_point(viewer, (60, 90))
    drag(qtbot, viewer, start, end, steps=12, hold_ms=50)  # 0.6 s with the button down
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=5000)
    assert len(roi.data) == 1 and not notes["error"], notes["error"]
    ys, xs = np.asarray(roi.data[0])[:, -2], np.asarray(roi.data[0])[:, -1]
    assert ys.max() - ys.min() > 30 and xs.max() - xs.min() > 50
    assert noise.analysis.n_pixels > 30 * 50
    qtbot.waitUntil(lambda: roi.mode == "pan_zoom", timeout=2000)


def test_find_background_on_the_3d_sample_is_reliable_and_agrees_with_train(viewer, qtbot, notes):
    layers = viewer.open_sample("napari-structn2v", "structured_noise_3d")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer(layers[0].name)
    noise.mode_roi.setChecked(True)
    background = noise.find_background()
    assert background is not None
    zs = {float(np.asarray(r)[0, 0]) for r in viewer.layers["noise ROI"].data}
    assert zs == {z + background.depth // 2 for z in background.z_starts}  # each on its slab
    qtbot.waitUntil(lambda: noise.analysis is not None, timeout=10_000)
    assert noise.analysis.reliable and "Reliable" in noise.verdict.text()
    assert "2D network over the slices" in noise.verdict.text() and "nothing to change" in noise.verdict.text()
    assert "SYX" not in noise.verdict.text()  # no advice to retrain as SYX: Train does the 2D net itself
    assert not notes["error"], notes["error"]


def test_a_diagonal_suggestion_reaches_the_mask_designer(viewer, qtbot, notes):
    from tests.noise.test_analysis import _diagonal_noise

    # a 2-frame dark stack for a 2D image: frames (SYX), not a volume that gave an 11x11x1 mask
    dark = _diagonal_noise((2, 96, 96), seed=1).astype(np.float32)
    viewer.add_image(dark[0] + 0.5, name="img")
    viewer.add_image(dark, name="dark")
    noise = open_widget(viewer, "Noise analysis")
    designer = open_widget(viewer, "Blind mask")
    noise.source_combo.set_layer("img")
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer("dark")
    analysis = noise.analyze()
    assert analysis is not None and not notes["error"]
    noise.suggest_button.click()
    mask = noise.state.mask
    n = mask.shape[0]
    assert mask.ndim == 2 and n >= 7 and np.array_equal(mask, np.eye(n, dtype=bool))  # not face connectivity's 1x1
    assert f"Suggested mask: custom {n}x{n} ({n} px)" in noise.report.text()
    assert np.array_equal(designer.acf_view._mask, mask) and np.array_equal(designer.mask, mask)
    assert f"custom {n}x{n} ({n} px)" in designer.spec_label.text()
