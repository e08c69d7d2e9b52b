"""Which GUI-thread calls fall inside the long gaps of ``ui_latency.py`` (issue #16): a profiling aid.

Runs ``ui_latency.py`` with the plugin's output/progress slots, napari's layer refresh and thumbnail,
and vispy's canvas draw wrapped in timers; every timer gap over ``--gap-ms`` prints the wrapped calls
(over 5 ms) that ran inside it. What a gap holds beyond them is time the GUI thread waited (for the
GIL or a core)::

    xvfb-run -a -s "-screen 0 1366x768x24" python benchmarks/ui_latency_profile.py --seconds 10

Results go to ``--out`` (default a temporary folder: the timers slow the run, so the table is no
benchmark result).
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import benchmarks.ui_latency as ui

RECORDS: list[tuple[str, float, float]] = []


def timed(owner: object, name: str) -> None:
    """Replace ``owner.name`` by a wrapper that records its main-thread calls in RECORDS."""
    fn = getattr(owner, name, None)
    if fn is None:
        return
    label = f"{getattr(owner, '__name__', owner)}.{name}"

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            RECORDS.append((label, t0, time.perf_counter()))

    setattr(owner, name, wrapper)


def patch() -> None:
    from napari._vispy.layers import scalar_field
    from napari.layers import Image
    from napari.layers.base import base
    from napari.utils import progress
    from vispy.scene import canvas

    from napari_structn2v._widgets import _job, _plot, _predict_output, _train_progress, predict, train

    for owner, names in (
        (_predict_output.PredictOutput, ("write", "refresh", "finish")),
        (predict.PredictWidget, ("_show_progress", "_on_event")),
        (_train_progress.TrainProgressMixin, ("_show_step", "_show_preview", "_on_event")),
        (train.TrainWidget, ("start",)),
        (_plot.LinePlot, ("paintEvent",)),
        (_job.Job, ("_yielded",)),
        (canvas.SceneCanvas, ("on_draw",)),
        (base.Layer, ("refresh", "_refresh_sync")),
        (Image, ("_update_thumbnail",)),
        (scalar_field.VispyScalarFieldBaseLayer, ("_on_data_change",)),
        (progress, ("update",)),
    ):
        for name in names:
            timed(owner, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gap-ms", type=float, default=60.0)
    parser.add_argument("--out", default=str(Path(tempfile.mkdtemp()) / "ui_latency"))
    args = parser.parse_args()
    tick = ui.GapMeter._tick

    def tick_and_report(meter: ui.GapMeter) -> None:
        now = time.perf_counter()
        if meter.last is not None and (now - meter.last) * 1000 > args.gap_ms:
            inside = [(label, (t1 - t0) * 1000) for label, t0, t1 in RECORDS if t1 > meter.last and t0 < now and t1 - t0 > 0.005]
            print(f"gap {(now - meter.last) * 1000:.0f} ms:", "; ".join(f"{lb} {ms:.0f}" for lb, ms in inside), flush=True)
        del RECORDS[:-200]
        tick(meter)

    ui.GapMeter._tick = tick_and_report
    patch()
    sys.argv = [sys.argv[0], "--seconds", str(args.seconds), "--out", args.out]
    ui.main()


if __name__ == "__main__":
    main()
