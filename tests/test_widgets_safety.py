"""Widget crashes of issue 7, each with its test: closing the viewer while the docks probe their
devices, an RGB layer with the default preview, Predict's axes for a slice model and its status
after a refused run, replacing a model file, exceptions in slots."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from test_widgets import (
    TRAIN_KW,
    assert_unchanged,
    notes,  # noqa: F401 - fixture
    open_widget,
    set_train,
    snapshot,
    structured_image,
    viewer,  # noqa: F401 - fixture
)


def test_closing_viewer_at_once_exits_cleanly():
    # was exit 134: the device probe's Qt signals were deleted while its thread still ran
    code = textwrap.dedent(
        """
        import napari
        v = napari.Viewer(show=False)
        v.window.add_plugin_dock_widget("napari-structn2v", "Train")
        v.window.add_plugin_dock_widget("napari-structn2v", "Predict")
        v.close()
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "Traceback" not in out.stderr


def test_rgb_layer_trains_with_the_default_preview(viewer, qtbot, notes):  # noqa: F811
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


def test_predict_suggests_the_models_axes_and_reports_failure(viewer, qtbot, notes):  # noqa: F811
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training import train

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


def test_save_model_asks_before_replacing(viewer, qtbot, notes, tmp_path):  # noqa: F811
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.model_io import load_model
    from napari_structn2v.training import train

    train_widget = open_widget(viewer, "Train", qtbot)
    train_widget.state.model = train(
        structured_image(64), "YX", "3x1",
        TrainConfig(steps=2, patch_size=32, batch_size=2, base_filters=8, device="cpu", val_fraction=0),
    )
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


def test_no_exception_escapes_a_slot(viewer, qtbot, notes, monkeypatch):  # noqa: F811
    from napari_structn2v._widgets.predict import PredictWidget

    viewer.add_image(structured_image(64), name="img")
    predict = open_widget(viewer, "Predict", qtbot)

    def broken(self, layer):
        raise RuntimeError("boom")

    monkeypatch.setattr(PredictWidget, "suggest_axes", broken)
    predict._guess_axes()  # a slot: reported, not raised
    assert "RuntimeError: boom" in notes["error"][-1]
