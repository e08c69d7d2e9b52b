"""Fixed-pattern noise (issue #17): the camera sets of ``devsets.py`` with and without the dark stack.

Rows per set (``cam3d_x``: a ZYX volume, ``cam2d_t``: a TYX time-lapse; both with an sCMOS column
and row pattern in every frame, and an 8-frame dark stack):

========== ==========================================================================================
row        what it is
========== ==========================================================================================
noisy      the input
today      every setting at its default and the mask that ``analyze_noise(dark)`` suggests, no
           pattern removed: what ``structn2v train --mask auto --dark dark.tif`` trained before
dark       every setting at its default, ``analyze_noise(dark, dark=True)``'s mask and its fixed
           pattern: what ``structn2v train --mask auto --dark dark.tif`` trains now
dark_ctx1  ``dark``'s estimate subtracted from the data beforehand, so training keeps its default
           neighbour slices (what the estimate misses then repeats in them)
nofpn      the same data without the pattern (``<set>_nofpn``, the same draws of shot and read
           noise) trained as ``dark`` (no pattern is found there, so: defaults)
nofpn_ctx0 ``nofpn`` without neighbour slices (``z_context=0``), as ``dark`` trains on a volume
oracle     the true pattern subtracted instead of its estimate (a reference)
========== ==========================================================================================

Equal steps, not wall-clock (the machine is shared): ``--steps`` is the step count of a 2D network
(batch 16, 64 x 64 patches); a row whose network is slower (a 3D net) gets ``--steps`` times the
ratio of the step rates, so every row gets the same time: by default the ratio of the default 3D
and 2D nets on ``dev3d_y`` at equal time on an idle machine (``results/equal_time/quality_dev3d_y.md``:
368 and 15343 steps in 400 s, 0.024), or with ``--probe N`` measured here side by side (N steps of
each, twice, interleaved; the median). On an idle 2-core machine 210 s are about 7100 steps of the
2D network (``results/equal_time/quality_dev2d_x.md``: 7118).

    python benchmarks/devsets.py --only camera
    python benchmarks/fixed_pattern.py --steps 1500
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SETS = {"cam3d_x": "ZYX", "cam2d_t": "TYX"}
ROWS = ("noisy", "today", "dark", "dark_ctx1", "nofpn", "nofpn_ctx0", "oracle")
#: steps of the default 3D net per step of the default 2D net in equal time (dev3d_y, 400 s, idle)
RATIO_3D_2D = 368 / 15343


def load(data: Path, name: str) -> dict:
    import tifffile

    folder = data / name
    if not folder.is_dir():
        sys.exit(f"fixed_pattern.py: {folder} not found; build it with: python benchmarks/devsets.py --only camera")
    return {k: tifffile.imread(folder / f"{k}.tif").astype(np.float32) for k in ("gt", "noisy", "dark", "pattern")}


def score(out: np.ndarray, gt: np.ndarray, axes: str) -> dict:
    """PSNR over the whole stack (data range 1) and the stripe excess of the residual (lag-1
    correlation along X minus along Y, per frame); also along Y minus X for the column pattern."""
    from quality import lag1_corr

    mse = float(np.mean((out.astype(np.float64) - gt) ** 2))
    res = out - gt
    along_x, along_y = lag1_corr(res, -1, 0), lag1_corr(res, -2, 0)
    # the column offsets: residual averaged down each column, as a share of the residual's spread
    columns = float(np.std(res.mean(axis=(0, 1))) / np.std(res))
    return {"psnr": 10 * np.log10(1.0 / mse), "stripe_excess": along_x - along_y, "column_share": columns}


def row_setup(row: str, d: dict, twin: dict, axes: str):
    """(data, mask, fixed_pattern, TrainConfig changes) of a row."""
    from napari_structn2v.noise.analysis import analyze_noise
    from napari_structn2v.noise.fixed_pattern import estimate_fixed_pattern

    if row == "today":
        return d["noisy"], analyze_noise(d["dark"], axes=axes).mask, None, {}
    if row == "dark_ctx1":  # the estimate subtracted beforehand, so training keeps its neighbour slices
        mask = analyze_noise(d["dark"], axes=axes, dark=True).mask
        pattern = estimate_fixed_pattern(d["dark"], axes, image_axes=axes).pattern
        return d["noisy"] - pattern, mask, None, {}
    if row in ("dark", "oracle"):
        mask = analyze_noise(d["dark"], axes=axes, dark=True).mask
        fixed = estimate_fixed_pattern(d["dark"], axes, image_axes=axes) if row == "dark" else d["pattern"]
        return d["noisy"], mask, fixed, {}
    ana = analyze_noise(twin["dark"], axes=axes, dark=True)
    assert ana.fixed_pattern is not None and not ana.fixed_pattern.found, "the twin set has no pattern"
    return twin["noisy"], ana.mask, None, ({"z_context": 0} if row == "nofpn_ctx0" else {})


def step_rate(data, axes, mask, fixed, changes, steps: int) -> float:
    """Steps per second after a warm-up of 3 steps."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import TrainStep, train_iter

    times = []
    for ev in train_iter(data, axes, mask, TrainConfig(steps=steps + 3, val_fraction=0, **changes), fixed_pattern=fixed):
        if isinstance(ev, TrainStep):
            times.append(time.perf_counter())
    return steps / (times[-1] - times[2])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=HERE / "data")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--steps", type=int, default=1500, help="steps of a 2D network (others: scaled to equal time)")
    ap.add_argument("--dark-frames", type=int, default=0, help="use only the first N frames of each dark stack (0: all)")
    ap.add_argument("--probe", type=int, default=0, help="steps per rate probe (0: the ratio of the equal-time table)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "fixed_pattern.md")
    args = ap.parse_args(argv)

    import torch

    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train

    results = json.loads(args.out.with_suffix(".json").read_text()) if args.out.with_suffix(".json").exists() else {}
    for name in args.sets.split(","):
        axes = SETS[name]
        d, twin = load(args.data, name), load(args.data, f"{name}_nofpn")
        if args.dark_frames:  # fewer dark frames: a noisier estimate of the pattern
            d["dark"], twin["dark"] = d["dark"][: args.dark_frames], twin["dark"][: args.dark_frames]
        rows = [r for r in args.rows.split(",") if r]
        setups = {r: row_setup(r, d, twin, axes) for r in rows if r != "noisy"}
        # the step rates, side by side: a 3D net (today's mask on a volume) gets fewer steps
        nets = {r: (np.asarray(s[1]).ndim == 3 and np.asarray(s[1]).shape[0] > 1) for r, s in setups.items()}
        ratio = RATIO_3D_2D
        if args.probe and any(nets.values()) and not all(nets.values()):
            r3 = next(r for r, is3 in nets.items() if is3)
            r2 = next(r for r, is3 in nets.items() if not is3)
            rates = {r3: [], r2: []}
            for _ in range(2):
                for r in (r2, r3):
                    rates[r].append(step_rate(setups[r][0], axes, *setups[r][1:], args.probe))
            ratio = float(np.median(rates[r3]) / np.median(rates[r2]))
            print(f"{name}: step rate of the 3D net / the 2D net = {ratio:.4f} ({rates})", flush=True)
        for row in rows:
            if row == "noisy":
                results[f"{name}/noisy"] = {"set": name, "row": row, **score(d["noisy"], d["gt"], axes)}
                continue
            data, mask, fixed, changes = setups[row]
            steps = max(1, round(args.steps * ratio)) if nets[row] else args.steps
            t0 = time.perf_counter()
            model = train(data, axes, mask, TrainConfig(steps=steps, **changes), fixed_pattern=fixed)
            out = model.predict(data, axes)
            res = {"set": name, "row": row, "steps": steps, "mask": "x".join(map(str, np.asarray(mask).shape[::-1])),
                   "z_context": model.z_context, "pattern": model.config.fixed_pattern is not None,
                   "net": f"{model.spatial_ndim}D", "seconds": round(time.perf_counter() - t0), **score(out, d["gt"], axes)}
            results[f"{name}/{row}"] = res
            print(json.dumps(res), flush=True)
            write(results, args)
        write(results, args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    return 0


def write(results: dict, args) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1))
    lines = [
        "# Fixed-pattern noise: camera sets with an 8-frame dark stack (issue #17)",
        "",
        "Made by `python benchmarks/devsets.py --only camera && python benchmarks/fixed_pattern.py "
        f"--steps {args.steps} --rows {args.rows}` (CPU, 2 shared cores; equal steps, a 3D net's scaled by the step-rate ratio, see the script).",
        "PSNR over the whole stack against gt.tif; stripe excess: residual lag-1 correlation along X minus along Y;",
        "column share: spread of the residual averaged down each column over the residual's spread (0: no column pattern left).",
        "",
        "| set | row | net | mask | Z context | pattern removed | steps | PSNR (dB) | stripe excess | column share |",
        "| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in results.values():
        lines.append(f"| {r['set']} | {r['row']} | {r.get('net', '')} | {r.get('mask', '')} | {r.get('z_context', '')} | "
                     f"{'yes' if r.get('pattern') else ''} | {r.get('steps', '')} | {r['psnr']:.2f} | "
                     f"{r['stripe_excess']:+.3f} | {r['column_share']:.3f} |")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
