"""The Train dock (napari_structn2v._widgets.train): mistakes, stop on close, resume, time budgets, slices
of volumes, RGB layers, throttled redraws, saving the model and the loss CSV."""
from __future__ import annotations

import csv
import time

import numpy as np
import pytest

from tests._widgets.helpers import TRAIN_KW, assert_unchanged, open_widget, set_train, snapshot
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_train_errors(viewer, qtbot, notes):
    from napari_structn2v.method.masks import box_mask

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


def start_long_training(viewer, qtbot):
    """A Train dock running a 100 000-step job that has made its first steps."""
    viewer.add_image(structured_image(64), name="img")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 100_000})
    worker = train.start()
    qtbot.waitUntil(lambda: train.progress.value() >= 2, timeout=30_000)
    return train, worker


def test_closing_widget_stops_training(viewer, qtbot, notes):
    train, worker = start_long_training(viewer, qtbot)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.window.remove_dock_widget(train)
    assert train.worker is None


def test_closing_viewer_stops_training(make_napari_viewer, qtbot, notes):
    viewer = make_napari_viewer()
    _train, worker = start_long_training(viewer, qtbot)
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        viewer.close()


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


def test_train_redraws_go_through_superqt_throttles(viewer, qtbot):
    from superqt.utils._throttler import ThrottledCallable

    from napari_structn2v._widgets.train import REDRAW_MS
    from napari_structn2v.events import TrainStep

    train = open_widget(viewer, "Train", qtbot)
    assert isinstance(train._redraw, ThrottledCallable) and isinstance(train._preview_throttle, ThrottledCallable)
    redraws = []
    train.plot.update = lambda: redraws.append(time.perf_counter())
    t0 = time.perf_counter()
    for step in range(1, 201):
        train._on_event(TrainStep(step=step, total_steps=200, loss=1.0 / step, lr=1e-3, elapsed_s=0.0, eta_s=1.0,
                                  patches_per_s=10.0))
    elapsed = time.perf_counter() - t0
    qtbot.waitUntil(lambda: train.progress.value() == 200, timeout=5000)  # the last step is never dropped
    assert "step 200/200" in train.status.text()
    assert 2 <= len(redraws) <= 3 + elapsed / (REDRAW_MS / 1000), (len(redraws), elapsed)


def test_save_loss_as_csv_button(viewer, qtbot, notes, monkeypatch, tmp_path):
    from qtpy.QtWidgets import QFileDialog

    viewer.add_image(structured_image(64), name="img")
    train = open_widget(viewer, "Train", qtbot)
    assert not train.loss_button.isEnabled()  # no model yet
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 4, "preview_every": 0, "val_every": 2})
    train.start()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert train.loss_button.isEnabled()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "loss"), "CSV (*.csv)"))
    train.loss_button.click()
    rows = list(csv.reader((tmp_path / "loss.csv").read_text().splitlines()))
    assert rows[0] == ["step", "train_loss", "val_loss"] and [r[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert rows[2][2] and rows[4][2] and not rows[1][2]  # validations at steps 2 and 4
    assert "Loss history saved" in notes["info"][-1]
    train.ask_yes_no = lambda *a: False  # an existing file is replaced only when the user agrees
    (tmp_path / "loss.csv").write_text("keep")
    train.loss_button.click()
    assert (tmp_path / "loss.csv").read_text() == "keep" and "kept as it was" in notes["info"][-1]
    del train.state.model.config.training["history"]["loss"]  # a model saved before the history was stored
    assert not train.save_loss_csv(tmp_path / "old.csv")
    assert "no loss history" in notes["error"][-1] and not (tmp_path / "old.csv").exists()


def test_rgb_layer_trains_with_the_default_preview(viewer, qtbot, notes):
    img = structured_image(64)
    viewer.add_image(np.stack([img, img[::-1], img[:, ::-1]], axis=-1), name="rgb", rgb=True)
    train = open_widget(viewer, "Train", qtbot)
    assert train.axes_edit.text() == "YXC"
    set_train(train, ["rgb"], **{**TRAIN_KW, "steps": 4, "preview_every": 2})
    assert train.start() is not None, notes["error"]  # was IndexError in the preview crop
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    preview = viewer.layers["rgb (StructN2V preview)"]
    assert preview.data.shape == (64, 64, 3) and len(preview.scale) == 2
    assert train.state.model.n_channels == 3


def test_save_model_asks_before_replacing(viewer, qtbot, notes, tmp_path, tiny_model):
    from napari_structn2v.model import load_model

    train_widget = open_widget(viewer, "Train", qtbot)
    train_widget.state.model = tiny_model
    path = tmp_path / "model.pt"
    path.write_bytes(b"the user's earlier model")
    questions = []
    train_widget.ask_yes_no = lambda parent, title, text: questions.append(text) or False
    assert train_widget.save_model(path) is False
    assert path.read_bytes() == b"the user's earlier model" and len(questions) == 1
    train_widget.ask_yes_no = lambda parent, title, text: True
    assert train_widget.save_model(path) is True
    assert load_model(path).axes == "YX"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
    new = tmp_path / "new.pt"
    train_widget.ask_yes_no = lambda *a: pytest.fail("asked about a new file")
    assert train_widget.save_model(new) and new.exists()


def test_status_names_no_neighbours_for_a_mask_along_z(viewer, qtbot, notes):
    """A 2D net forced over the slices of a mask that extends along Z reads no neighbour slices
    (their noise is correlated with the centre's); the status line says what the core does."""
    viewer.add_image(np.random.default_rng(0).random((6, 40, 40)).astype(np.float32), name="vol")
    train = open_widget(viewer, "Train", qtbot)
    train.state.mask = np.ones((3, 5, 1), bool)  # extends along Z
    set_train(train, ["vol"], **{**TRAIN_KW, "steps": 2, "preview_every": 0})
    train.axes_edit.setText("ZYX")
    train.z_net.setCurrentText("2d")
    train.z_context.setValue(2)
    assert train.start() is not None
    assert "2D network over the Z slices" in train.status.text()
    assert "neighbouring" not in train.status.text()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    assert train.state.model.z_context == 0


def test_a_time_budgets_bar_keeps_its_range(viewer, qtbot, notes):
    """A time budget's step total is an estimate that changes every step; a new range at each
    redraw re-laid the dock out (training's p99 GUI gap 48 ms under Xvfb, 35 with a fixed range).
    The bar counts per mille of the estimate and ends full."""
    viewer.add_image(structured_image(64), name="img")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **TRAIN_KW)
    train.budget_unit.setCurrentText("seconds")
    train.steps.setValue(2)
    ranges = []
    set_range = train.progress.setRange
    train.progress.setRange = lambda lo, hi: (ranges.append((lo, hi)), set_range(lo, hi))[1]
    assert train.start() is not None
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert ranges[0] == (0, 0) and set(ranges[1:]) == {(0, 1000)}, ranges[:5]
    assert train.progress.format() == "%p %" and train.progress.value() == 1000
    train.budget_unit.setCurrentText("steps")
    train.steps.setValue(3)
    assert train.start() is not None
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert train.progress.format() == "%v / %m steps" and train.progress.value() == train.progress.maximum() == 3


def test_train_for_seconds_allows_a_30_s_first_try(viewer, qtbot):
    train = open_widget(viewer, "Train", qtbot)
    train.budget_unit.setCurrentText("seconds")
    assert train.steps.value() == 30 and train.steps.minimum() <= 10
    cfg = train.config()
    assert cfg.steps is None and cfg.max_time_s == 30.0


def test_preview_never_shows_the_untrained_network(viewer, qtbot, notes, monkeypatch):
    """The core previews step 1 (a fresh network: a flat square over the image); the layer keeps the
    input's crop until a preview from a trained step arrives. Each preview here is filled with its
    step number, so the test sees which steps were shown."""
    from napari_structn2v.events import Preview
    from napari_structn2v.training import loop as training

    monkeypatch.setattr(training, "_preview", lambda run, step, image: Preview(
        step=run.at(step), image=np.full(image.shape, run.at(step), np.float32)))
    img = structured_image(64)
    viewer.add_image(img, name="img")
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["img"], **{**TRAIN_KW, "steps": 8, "preview_every": 4})
    seen = []
    original = train._show_preview
    train._show_preview = lambda image: (seen.append(np.array(image)), original(image))
    train.start()
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    np.testing.assert_allclose(seen[0], img)  # first the input's crop (the image is 64 px)
    shown_steps = {float(s.flat[0]) for s in seen[1:]}
    assert 1.0 not in shown_steps and shown_steps and shown_steps <= {4.0, 8.0}, shown_steps


def test_dark_stack_with_a_fixed_pattern_is_subtracted_in_training(viewer, qtbot, notes):
    """A dark-frame layer of several frames: the Noise dock finds the camera's fixed pattern and
    says so, and the Train dock trains with it subtracted (the model stores it)."""
    from napari_structn2v.synthetic import camera_noise, clean_image, fixed_pattern

    rng = np.random.default_rng(0)
    pattern = fixed_pattern((64, 64), rng=rng)
    viewer.add_image(camera_noise(clean_image((4, 64, 64), rng=rng), rng=rng, pattern=pattern), name="vol")
    viewer.add_image(camera_noise(np.zeros((8, 64, 64)), rng=rng, pattern=pattern), name="dark")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("vol")
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer("dark")
    analysis = noise.analyze()
    assert analysis is not None and analysis.fixed_pattern.found, notes["error"]
    assert "Fixed pattern:" in noise.verdict.text()
    noise.suggest()
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["vol"], **{**TRAIN_KW, "steps": 2, "preview_every": 0})
    train.axes_edit.setText("ZYX")
    assert train.start() is not None
    assert any("fixed pattern" in m for m in notes["info"])
    qtbot.waitUntil(lambda: not train.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    np.testing.assert_array_equal(train.state.model.config.fixed_pattern, analysis.fixed_pattern.pattern)
    assert train.state.model.z_context == 1  # subtracted, the pattern leaves the neighbour slices useful


def test_fixed_pattern_of_another_frame_size_is_one_clear_error(viewer, qtbot, notes):
    """Dark frames of a 64x64 camera and a 48x48 image: Train says so and starts nothing."""
    from napari_structn2v.synthetic import camera_noise, clean_image, fixed_pattern

    rng = np.random.default_rng(0)
    pattern = fixed_pattern((64, 64), rng=rng)
    viewer.add_image(clean_image((4, 48, 48), rng=rng), name="vol")
    viewer.add_image(camera_noise(np.zeros((8, 64, 64)), rng=rng, pattern=pattern), name="dark")
    noise = open_widget(viewer, "Noise analysis")
    noise.source_combo.set_layer("vol")
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer("dark")
    assert noise.analyze().fixed_pattern.found
    train = open_widget(viewer, "Train", qtbot)
    set_train(train, ["vol"], **{**TRAIN_KW, "steps": 2, "preview_every": 0})
    train.axes_edit.setText("ZYX")
    assert train.start() is None and not train.running
    assert any("fixed pattern is 64x64" in m and "48x48" in m for m in notes["error"]), notes["error"]
