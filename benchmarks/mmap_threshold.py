"""What glibc's MALLOC_MMAP_THRESHOLD_ costs 2D work (issue 10, the memory table's second mode).

With a 1 MB threshold, 3D streaming prediction keeps a flat peak RSS (results/memory.md); this
times 2D prediction and training with and without it, each in a fresh process, one torch thread:

    python benchmarks/mmap_threshold.py            # prints a table, writes results/mmap_threshold.md
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
THRESHOLD = 1 << 20
REPEATS = 2


def _child(what: str) -> float:
    """Seconds of one 2D job after a warm-up: predict a 2048 x 2048 image (16 filters, depth 2,
    tile 256, no TTA) or train 40 steps of 16 patches of 64 x 64."""
    import numpy as np
    import torch

    from napari_structn2v.config import TrainConfig
    from napari_structn2v.method.masks import box_mask
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig
    from napari_structn2v.training.loop import train

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    if what == "predict":
        arch = UNetConfig(spatial_ndim=2, in_channels=1, out_channels=1, base_filters=16, depth=2)
        model = StructN2VModel(UNet(arch).eval(), new_model_config("YX", box_mask(3, 1), [0.0], [1.0], arch, {}))
        img = rng.random((2048, 2048), dtype=np.float32)
        model.predict(img[:512, :512], "YX", tta=False)
        t0 = time.perf_counter()
        model.predict(img, "YX", tta=False)
        return time.perf_counter() - t0
    img = (rng.random((4, 256, 256)) * 1000).astype(np.float32)
    kw = dict(patch_size=64, batch_size=16, base_filters=16, depth=2, device="cpu", val_fraction=0, seed=0)
    train(img, "SYX", "3x1", TrainConfig(steps=3, **kw))
    t0 = time.perf_counter()
    train(img, "SYX", "3x1", TrainConfig(steps=40, **kw))
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2])))
        return
    lines = ["| job | default glibc (s) | MALLOC_MMAP_THRESHOLD_=1048576 (s) |", "|---|---|---|"]
    for what, label in (("predict", "2D prediction, 2048x2048, 16 filters, tile 256"), ("train", "2D training, 40 steps of 16x64x64")):
        cells = []
        for threshold in (None, THRESHOLD):
            env = dict(os.environ, OMP_NUM_THREADS="1")
            if threshold:
                env["MALLOC_MMAP_THRESHOLD_"] = str(threshold)
            runs = [
                json.loads(subprocess.run([sys.executable, __file__, "--child", what], capture_output=True, text=True, env=env, check=True).stdout)
                for _ in range(REPEATS)
            ]
            cells.append(" / ".join(f"{r:.1f}" for r in runs))
        lines.append(f"| {label} | {cells[0]} | {cells[1]} |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    out = HERE / "results" / "mmap_threshold.md"
    out.write_text(
        "# 2D work with glibc's MALLOC_MMAP_THRESHOLD_\n\n`python benchmarks/mmap_threshold.py`: each job "
        f"{REPEATS} times, each in a fresh process, one torch thread, on 2 CPU cores shared with other jobs "
        "(wall seconds; compare within a row).\n\n" + table + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
