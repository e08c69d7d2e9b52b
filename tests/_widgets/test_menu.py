"""The Layers-menu command (napari_structn2v._widgets.menu): registered under Layers > Filter, denoises
the selected layer with a saved model, mistakes are notifications."""
from __future__ import annotations

import numpy as np
import pytest

from tests._widgets.helpers import PLUGIN
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


MENU_COMMAND = "napari-structn2v.denoise_with_saved_model"


@pytest.fixture(scope="module")
def model_file(tiny_trained, tmp_path_factory):
    """A tiny trained model (2 steps, CPU) in a file."""
    return tiny_trained.save(tmp_path_factory.mktemp("menu") / "tiny.pt")


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
    from napari_structn2v.model import load_model

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
