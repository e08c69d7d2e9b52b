"""Worker and slot glue (napari_structn2v._widgets._worker): no exception escapes a slot."""
from __future__ import annotations

import pytest

from tests._widgets.helpers import open_widget
from tests.helpers import structured_image

pytest.importorskip("napari")
pytest.importorskip("pytestqt")


def test_no_exception_escapes_a_slot(viewer, qtbot, notes, monkeypatch):
    from napari_structn2v._widgets.predict import PredictWidget

    viewer.add_image(structured_image(64), name="img")
    predict = open_widget(viewer, "Predict", qtbot)

    def broken(self, layer):
        raise RuntimeError("boom")

    monkeypatch.setattr(PredictWidget, "suggest_axes", broken)
    predict._guess_axes()  # a slot: reported, not raised
    assert "RuntimeError: boom" in notes["error"][-1]
