"""napari conventions (issue 11): superqt's throttle and debounce instead of hand-made timers."""
# ruff: noqa: F811 - the fixtures imported from test_widgets are redefined as test arguments
from __future__ import annotations

import time

import pytest

pytest.importorskip("napari")
pytest.importorskip("pytestqt")

from test_widgets import (
    notes,  # noqa: F401 - fixture
    open_widget,
    structured_image,
    viewer,  # noqa: F401 - fixture
)


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
