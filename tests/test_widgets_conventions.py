"""napari conventions (issue 11): magicgui layer pickers that follow the layer list, superqt's
throttle and debounce instead of hand-made timers, the Layers-menu command, the Train dock's loss CSV."""
# ruff: noqa: F811 - the fixtures imported from test_widgets are redefined as test arguments
from __future__ import annotations

import csv
import time

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from test_widgets import (
    PLUGIN,
    TRAIN_KW,
    notes,  # noqa: F401 - fixture
    open_widget,
    set_train,
    structured_image,
    viewer,  # noqa: F401 - fixture
)

MENU_COMMAND = "napari-structn2v.denoise_with_saved_model"


def names(combo) -> list[str]:
    return [layer.name if layer is not None else "" for layer in combo.choices]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny trained model (2 steps, CPU) in a file."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training import train

    cfg = TrainConfig(steps=2, patch_size=32, batch_size=2, base_filters=4, depth=1, device="cpu", val_fraction=0)
    model = train(structured_image(64), "YX", "3x1", cfg)
    return model.save(tmp_path_factory.mktemp("menu") / "tiny.pt")


# 1. magicgui layer pickers ------------------------------------------------------------------------
def test_layer_pickers_are_magicgui_and_follow_the_layer_list(viewer, qtbot):
    from magicgui.widgets import ComboBox

    from napari_structn2v._widgets._layers import add_or_update_image

    viewer.add_image(structured_image(32), name="a")
    predict = open_widget(viewer, "Predict", qtbot)
    noise = open_widget(viewer, "Noise analysis")
    train = open_widget(viewer, "Train", qtbot)
    pickers = (predict.image_combo, noise.source_combo, noise.dark_combo)
    assert all(isinstance(p, ComboBox) for p in pickers)
    viewer.add_image(structured_image(32), name="b")  # inserted
    assert names(predict.image_combo) == ["a", "b"] and names(noise.dark_combo) == ["", "a", "b"]
    predict.image_combo.set_layer("b")
    train.layers.set_checked(["a", "b"])
    viewer.layers["b"].name = "b renamed"  # renamed: listed under the new name, still chosen and checked
    assert names(predict.image_combo) == ["a", "b renamed"] and predict.image_combo.currentText() == "b renamed"
    assert predict.image_combo.native.currentText() == "b renamed"
    assert train.layers.checked_names() == ["a", "b renamed"]
    viewer.layers.move(1, 0)  # moved
    assert names(noise.source_combo) == ["b renamed", "a"]
    add_or_update_image(viewer, "display only", np.zeros((8, 8), np.float32))  # the plugin's helper layers stay out
    assert "display only" not in names(predict.image_combo) and "display only" not in train.layers.checked_names()
    viewer.layers.remove("b renamed")  # removed: the picker falls back on a layer that exists
    assert names(predict.image_combo) == ["a"] and predict.image_combo.layer() is viewer.layers["a"]
    assert train.layers.checked_names() == ["a"]


def test_predict_picker_choice_drives_the_axes(viewer, qtbot):
    viewer.add_image(structured_image(32), name="flat")
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="stack")
    predict = open_widget(viewer, "Predict", qtbot)
    predict.image_combo.value = viewer.layers["stack"]  # magicgui's value; 'changed' guesses the axes
    assert predict.axes_edit.text() == "ZYX"
    predict.image_combo.value = viewer.layers["flat"]
    assert predict.axes_edit.text() == "YX"


# 3. superqt throttle and debounce --------------------------------------------------------------------
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


# 2. the Layers-menu command -------------------------------------------------------------------------
def _menu_action(viewer):
    """Our action in napari's Qt Layers menu, and the title of the submenu holding it."""
    found = []

    def walk(menu):
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu())
            elif "saved StructN2V model" in action.text():
                found.append((action, menu.title()))

    walk(viewer.window.layers_menu)
    assert len(found) == 1, found
    return found[0]


def test_layers_menu_command_is_registered_under_layers_filter(viewer, qtbot):
    from napari._app_model import get_app_model

    app = get_app_model()
    assert MENU_COMMAND in app.commands
    ids = [getattr(item, "command", None) and item.command.id for item in app.menus.get_menu("napari/layers/filter")]
    assert MENU_COMMAND in ids
    action, submenu = _menu_action(viewer)
    assert "Filter" in submenu

    def enabled() -> bool:
        viewer.window.layers_menu.aboutToShow.emit()  # napari updates the items from its context here
        return action.isEnabled()

    assert not enabled()  # no layer
    viewer.add_points([[1, 1]], name="pts")
    assert not enabled()  # not an image
    viewer.add_image(structured_image(32), name="img")
    assert enabled()


def test_layers_menu_denoises_the_selected_layer(viewer, qtbot, notes, monkeypatch, model_file):
    from napari._app_model import get_app_model

    from napari_structn2v._widgets import menu
    from napari_structn2v.model_io import load_model

    image = structured_image(64)
    viewer.add_image(structured_image(64)[::-1].copy(), name="other")
    viewer.add_image(image, name="img")
    viewer.layers.selection.active = viewer.layers["img"]
    asked = []
    monkeypatch.setattr(menu, "ask_model_path", lambda parent=None: asked.append(1) or str(model_file))
    get_app_model().commands.execute_command(MENU_COMMAND).result()
    _dock, predict = viewer.window.add_plugin_dock_widget(PLUGIN, "Predict")  # the dock the command opened
    assert asked == [1] and predict.image_combo.layer() is viewer.layers["img"]
    qtbot.waitUntil(lambda: not predict.running, timeout=60_000)
    assert not notes["error"], notes["error"]
    out = np.asarray(viewer.layers["img (StructN2V)"].data)
    np.testing.assert_allclose(out, load_model(model_file).predict(image, "YX"), atol=1e-4)
    assert predict.status.text().startswith("Done")


def test_layers_menu_mistakes_are_notifications(viewer, qtbot, notes, monkeypatch, tmp_path):
    from napari_structn2v._widgets import menu

    monkeypatch.setattr(menu, "ask_model_path", lambda parent=None: pytest.fail("asked without an image"))
    viewer.add_points([[1, 1]], name="pts")
    viewer.layers.selection.active = viewer.layers["pts"]
    assert menu.denoise_selected_layer(viewer) is None
    assert "select an image layer" in notes["error"][-1]
    viewer.add_image(structured_image(32), name="img")
    viewer.layers.selection.active = viewer.layers["img"]
    monkeypatch.setattr(menu, "ask_model_path", lambda parent=None: "")  # cancelled
    assert menu.denoise_selected_layer(viewer) is None and len(notes["error"]) == 1
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    monkeypatch.setattr(menu, "ask_model_path", lambda parent=None: str(tmp_path / "junk.pt"))
    assert menu.denoise_selected_layer(viewer) is None
    assert len(notes["error"]) == 2 and "img (StructN2V)" not in viewer.layers


# 5. the loss as CSV -------------------------------------------------------------------------------
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
