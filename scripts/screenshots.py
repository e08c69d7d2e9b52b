"""Make the README screenshots: run the plugin on the 2D sample and grab each widget and the window.

Run under a virtual display::

    xvfb-run -a python scripts/screenshots.py [--out docs/screenshots] [--steps 300]

Writes one PNG per widget (``noise_analysis``, ``blind_mask``, ``train``, ``predict``), two of the whole
window (``window_noise_analysis``, ``window_predict``) and ``before_after.png`` (noisy | StructN2V | clean).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

PLUGIN = "napari-structn2v"


def wait_until(condition, timeout: float = 600.0) -> None:
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


def bring_to_front(dock) -> None:
    """Select a tabified dock widget's tab."""
    from qtpy.QtWidgets import QTabBar

    window = dock.parentWidget()
    title = dock.windowTitle()
    for bar in window.findChildren(QTabBar):
        for i in range(bar.count()):
            if bar.tabText(i) == title:
                bar.setCurrentIndex(i)
    dock.raise_()
    settle(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshots"))
    parser.add_argument("--steps", type=int, default=800)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari
    import numpy as np

    viewer = napari.Viewer(title="napari-structn2v")
    viewer.window.resize(1500, 950)
    viewer.open_sample(PLUGIN, "structured_noise_2d")
    noisy, dark = "2D structured noise", "2D dark frame"

    docks = {}
    for name in ("Noise analysis", "Blind mask", "Train", "Predict"):
        docks[name] = viewer.window.add_plugin_dock_widget(PLUGIN, name, tabify=True)
    widgets = {name: w for name, (_d, w) in docks.items()}
    noise, designer, train, predict = (widgets[n] for n in ("Noise analysis", "Blind mask", "Train", "Predict"))

    def save_window(name: str, front: str | None = None) -> None:
        import imageio.v3 as iio  # a napari dependency

        settle()
        if front is not None:  # late events (notifications, activity) can re-select another tab
            bring_to_front(docks[front][0])
        iio.imwrite(out / name, viewer.screenshot(canvas_only=False, flash=False))
        print(f"wrote {out / name}")

    # 1. noise analysis: a ROI drawn on the image; the analysis of the dark frame (pure noise)
    noise.source_combo.set_layer(noisy)
    roi = noise.add_roi_layer()
    roi.add_rectangles(np.array([[20.0, 20.0], [90.0, 120.0]]))
    roi.mode = "pan_zoom"
    noise.mode_dark.setChecked(True)
    noise.dark_combo.set_layer(dark)
    noise.spectrum_check.setChecked(True)
    noise.analyze()
    noise.suggest()
    viewer.reset_view()
    bring_to_front(docks["Noise analysis"][0])
    save_window("window_noise_analysis.png", "Noise analysis")

    # 2. train briefly with the suggested mask, live preview on
    wait_until(lambda: train.devices_ready)
    train.layers.set_checked([noisy])
    train.steps.setValue(args.steps)
    train.patch.setValue(64)
    train.batch.setValue(8)
    train.preview_every.setValue(25)
    train.device.setCurrentText("cpu")
    train.start()
    wait_until(lambda: not train.running)

    # 3. predict the whole image, streamed tile by tile
    wait_until(lambda: predict.devices_ready)
    predict.image_combo.set_layer(noisy)
    predict.tile.setValue(128)
    predict.start()
    wait_until(lambda: not predict.running)

    for name, widget in widgets.items():
        bring_to_front(docks[name][0])
        path = out / f"{name.lower().replace(' ', '_')}.png"
        widget.grab().save(str(path))
        print(f"wrote {path}")

    # the result: denoised output aligned with the source, Predict dock in front
    for layer in viewer.layers:
        layer.visible = layer.name == f"{noisy} (StructN2V)"
    viewer.reset_view()
    bring_to_front(docks["Predict"][0])
    save_window("window_predict.png", "Predict")

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


if __name__ == "__main__":
    main()
