"""One training run with chosen settings on one development set: how the defaults were decided.

Prints one JSON line: PSNR of the plain prediction and of the prediction averaged over the
mask-preserving flips (``tta``), and the PSNR after the best gain/offset fit to the ground truth
(``gainfit``: how much of the error is contrast rather than noise). Runs at equal steps, so they
are comparable when other jobs share the machine; the time per step comes from ``speed.py``.

Usage (from the repository root; sets from ../shared/data or benchmarks/data)::

    python benchmarks/knobs.py SET STEPS [key=value ...]
    python benchmarks/knobs.py sparse2d_x 6000 schedule='"cosine"' lr=0.001
    python benchmarks/knobs.py dev2d_x 1500 norm='"none"' amp=false threads=1

Keys are TrainConfig fields (values in JSON), plus ``threads`` (torch threads, default 1),
``mask`` (default: the suggestion from the set's dark.tif), ``time`` (seconds; STEPS 0 = no
step limit) and ``axes``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED_AXES = {"dev2d_x": "SYX", "dev3d_y": "ZYX"}  # their meta.json predates the "axes" key
DATA_ROOTS = [ROOT.parent / "shared" / "data", Path(__file__).resolve().parent / "data"]


def main(argv: list[str]) -> int:
    import tifffile
    import torch
    from skimage.metrics import peak_signal_noise_ratio as psnr

    from napari_structn2v.config import TrainConfig
    from napari_structn2v.noise.analysis import analyze_noise
    from napari_structn2v.training.loop import TrainDone, TrainStep, train_iter

    if len(argv) < 2:
        sys.exit(__doc__)
    set_name, steps = argv[0], int(argv[1])
    kw = {}
    for arg in argv[2:]:
        key, value = arg.split("=", 1)
        try:
            kw[key] = json.loads(value)
        except json.JSONDecodeError:
            kw[key] = value
    torch.set_num_threads(int(kw.pop("threads", 1)))
    mask, budget = kw.pop("mask", None), kw.pop("time", None)
    folder = next((r / set_name for r in DATA_ROOTS if (r / set_name).is_dir()), None)
    if folder is None:
        sys.exit(f"knobs.py: no set {set_name!r} under {[str(r) for r in DATA_ROOTS]} (run benchmarks/devsets.py)")
    meta = json.loads((folder / "meta.json").read_text())
    axes = kw.pop("axes", None) or meta.get("axes") or SHARED_AXES[set_name]
    noisy, gt, dark = (tifffile.imread(folder / f"{k}.tif") for k in ("noisy", "gt", "dark"))
    if mask is None:
        mask = analyze_noise(dark, axes=axes).spec
    cfg = TrainConfig(steps=steps or None, max_time_s=budget, device="cpu", **kw)
    t0 = time.perf_counter()
    model, last = None, None
    for ev in train_iter(noisy, axes, mask, cfg):
        if isinstance(ev, TrainStep):
            last = ev
        elif isinstance(ev, TrainDone):
            model = ev.model
    train_s = time.perf_counter() - t0

    def score(out: np.ndarray) -> float:
        if axes.startswith("S"):
            return float(np.mean([psnr(g, o, data_range=1.0) for g, o in zip(gt, out)]))
        return float(psnr(gt, out, data_range=1.0))

    res = {}
    for tta in (False, True):
        out = model.predict(noisy, axes, tta=tta)
        res["tta" if tta else "plain"] = round(score(out), 2)
    a = np.stack([out.ravel(), np.ones(out.size)], 1)
    gain, offset = np.linalg.lstsq(a, gt.ravel(), rcond=None)[0]
    res["gainfit"] = round(score((out * gain + offset).reshape(out.shape)), 2)
    res["gain"] = round(float(gain), 3)
    print(json.dumps({"set": set_name, "mask": mask, "steps": last.step, "train_s": round(train_s),
                      "patches_per_s": round(last.patches_per_s), **kw, "time": budget, **res}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
