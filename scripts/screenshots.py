"""Make the README screenshots: the StructN2V dock on both samples, at a laptop's 1366x768.

Run under a virtual display of that size::

    xvfb-run -a -s "-screen 0 1366x768x24" python scripts/screenshots.py [--out docs/screenshots] [--seconds 60]

Writes the whole window after Auto-denoise on the 2D sample (``window_auto_denoise.png``) and on
the 3D sample (``window_3d.png``), the dock with each step's tab in front (``tab_noise.png``,
``tab_mask.png``, ``tab_train.png``, ``tab_predict.png``) and ``before_after.png`` (noisy |
StructN2V | clean). Real training: ``--seconds`` of Auto-denoise's budget per sample.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PLUGIN = "napari-structn2v"


def wait_until(condition, timeout: float = 900.0) -> None:
    """Process Qt events until ``condition()`` is true (a script, so a plain polling loop)."""
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("timed out waiting for the plugin")
        QApplication.processEvents()
        time.sleep(0.01)


def settle(seconds: float = 0.5) -> None:
    end = time.perf_counter() + seconds
    wait_until(lambda: time.perf_counter() > end)


def laptop_viewer():
    """A napari window of 1366x768 with the StructN2V dock."""
    import napari

    viewer = napari.Viewer(title="napari-structn2v")
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1366, 768)
    _dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "StructN2V")
    return viewer, widget


def auto_denoise(viewer, widget, sample: str, seconds: int) -> None:
    """Open ``sample`` and run Auto-denoise on it with its dark frame, for ``seconds`` of training."""
    viewer.open_sample(PLUGIN, sample)
    wait_until(lambda: widget.train.devices_ready)
    widget.budget_unit.setCurrentText("seconds")
    widget.budget.setValue(seconds)
    widget.start()
    wait_until(lambda: not widget.running)
    if widget.result_event is None or getattr(widget.result_event, "image", None) is None:
        raise RuntimeError(f"Auto-denoise did not finish on {sample}: {widget.status.text()}")


def save_window(viewer, path: Path) -> None:
    import imageio.v3 as iio  # a napari dependency

    settle()
    iio.imwrite(path, viewer.screenshot(canvas_only=False, flash=False))
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
    parser.add_argument("--seconds", type=int, default=60, help="Auto-denoise's training budget per sample")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # 2D: Auto-denoise, the result beside nothing else; the Noise tab shows the mask it chose
    viewer, widget = laptop_viewer()
    auto_denoise(viewer, widget, "structured_noise_2d", args.seconds)
    noisy = "2D structured noise"
    viewer.layers[noisy].visible = False
    viewer.reset_view()
    widget.tabs.setCurrentWidget(widget.noise)
    save_window(viewer, out / "window_auto_denoise.png")
    for index, name in enumerate(("noise", "mask", "train", "predict")):
        widget.tabs.setCurrentIndex(index)
        settle(0.3)
        widget.grab().save(str(out / f"tab_{name}.png"))
        print(f"wrote {out / f'tab_{name}.png'}")

    # before / after strip (noisy | StructN2V | clean), each in the clean image's display range
    from napari_structn2v.synthetic import make_sample

    clean = make_sample("2d", seed=0)["clean"]
    panels = [np.asarray(viewer.layers[noisy].data), np.asarray(viewer.layers[f"{noisy} (StructN2V)"].data), clean]
    lo, hi = float(np.percentile(clean, 0.5)), float(np.percentile(clean, 99.5))
    gap = np.full((clean.shape[0], 8), 255, np.uint8)
    strip = []
    for panel in panels:
        strip += [np.clip((panel - lo) / (hi - lo) * 255, 0, 255).astype(np.uint8), gap]
    import imageio.v3 as iio

    iio.imwrite(out / "before_after.png", np.concatenate(strip[:-1], axis=1))
    print(f"wrote {out / 'before_after.png'}")
    viewer.close()

    # 3D: the same on the volume, looking at its middle slice
    viewer, widget = laptop_viewer()
    auto_denoise(viewer, widget, "structured_noise_3d", args.seconds)
    viewer.layers["3D structured noise"].visible = False
    viewer.dims.set_current_step(0, 16)
    viewer.reset_view()
    widget.tabs.setCurrentWidget(widget.noise)
    save_window(viewer, out / "window_3d.png")
    viewer.close()


if __name__ == "__main__":
    main()
