"""Training speed of two source trees side by side: interleaved runs, one subprocess each, same settings.

Each run trains with the package's own loop (``train_iter``) and reports the median gap between
consecutive ``TrainStep`` events after warm-up steps (validation off). The trees alternate
A, B, A, B, ... so that a load change on a shared machine hits both alike; the table gives each
tree's median over its runs and the ratio B / A.

Usage (from the repository root)::

    python benchmarks/step_ab.py OLD_SRC NEW_SRC [--repeats 3] [--threads 1] [--out FILE]
    python benchmarks/step_ab.py /work/main/src src --repeats 3
    python benchmarks/step_ab.py /work/main/src src --repeats 9 --case z_context
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

#: name -> (image shape, axes, mask, TrainConfig overrides, warm-up steps, timed steps)
CASES = {
    "2d 64^2 b16 f16 9x1": ((10, 256, 256), "SYX", "9x1", {}, 5, 40),
    "z_context=1 64^2 b16 9x1": ((30, 256, 256), "ZYX", "9x1", {"z_context": 1}, 5, 40),
    "3d 16x64^2 b4 1x9x1": ((30, 256, 256), "ZYX", "1x9x1", {"z_net": "3d", "batch_size": 4}, 3, 20),
}

CHILD = r"""
import json, statistics, sys, time
import numpy as np, torch
torch.set_num_threads(int(sys.argv[2]))
from napari_structn2v.config import TrainConfig
from napari_structn2v.training.loop import TrainStep, train_iter
shape, axes, mask, over, warm, timed = json.loads(sys.argv[1])
img = np.random.default_rng(0).random(shape, dtype=np.float32)
cfg = TrainConfig(steps=warm + timed, val_fraction=0.0, device="cpu", **over)
times, last = [], None
for ev in train_iter(img, axes, mask, cfg):
    if isinstance(ev, TrainStep):
        now = time.perf_counter()
        if last is not None and ev.step > warm:
            times.append(now - last)
        last = now
print(json.dumps({"patches_per_s": cfg.batch_size / statistics.median(times)}))
"""


def run(src: str, case, threads: int) -> float:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), OMP_NUM_THREADS=str(threads))
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(case), str(threads)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["patches_per_s"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    ap.add_argument("--case", action="append", help="only the cases whose name contains this (repeatable)")
    args = ap.parse_args(argv)
    lines = [f"A = {args.old}, B = {args.new}; {args.repeats} interleaved runs each, torch threads {args.threads}, CPU",
             "", "| case | A patches/s | B patches/s | B / A | runs (A; B) |", "|---|---|---|---|---|"]
    for name, case in CASES.items():
        if args.case and not any(c in name for c in args.case):
            continue
        a, b = [], []
        for _ in range(args.repeats):
            a.append(run(args.old, case, args.threads))
            b.append(run(args.new, case, args.threads))
        ma, mb = statistics.median(a), statistics.median(b)
        row = f"| {name} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} | {', '.join(f'{v:.0f}' for v in a)}; {', '.join(f'{v:.0f}' for v in b)} |"
        print(row, flush=True)
        lines.append(row)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
