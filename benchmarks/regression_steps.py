"""Old code against new code at equal steps, side by side (issue #17's "no loss over 0.05 dB").

The machine's speed varies between days, so equal-time tables of different days cannot be
compared; this trains each code tree for the same number of steps, in separate processes, with
what a user runs: ``structn2v train noisy.tif --mask auto --dark dark.tif --steps N --seed S``
(every other setting at the tree's default) and ``structn2v predict`` (default test-time
averaging), and scores the output against ``gt.tif`` as ``quality.py`` does.

Usage (from the repository root)::

    python benchmarks/regression_steps.py --trees old=/tmp/old51,new=. --sets dev2d_x,dev3d_y \
        --steps 1500 --seeds 0,1 --out benchmarks/results/regression_1126_vs_now.json

Rows are appended to the JSON after every run (``--resume`` skips the finished ones).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import LOCAL_DATA, ROOT, SETS, score

SHARED = ROOT.parent / "shared" / "data"  # --data overrides


def set_dir(name: str) -> Path:
    """Folder of a dev set: the shared data for dev2d_x/dev3d_y, benchmarks/data for the others."""
    return (SHARED / name) if SETS[name][3] == "shared" else LOCAL_DATA / name


def run_tree(tree: Path, name: str, steps: int, seed: int, work: Path) -> tuple[np.ndarray, float, float]:
    """Train and predict with the CLI of the code in ``tree``; returns (output, train s, predict s)."""
    env = dict(os.environ, PYTHONPATH=str(tree.resolve() / "src"))
    d = set_dir(name)
    model, out = work / "model.pt", work / "out.tif"
    cli = [sys.executable, "-c", "import sys; from napari_structn2v.cli import main; sys.exit(main(sys.argv[1:]))"]
    t0 = time.perf_counter()
    subprocess.run([*cli, "train", str(d / "noisy.tif"), "--axes", SETS[name][0], "--mask", "auto",
                    "--dark", str(d / "dark.tif"), "--steps", str(steps), "--seed", str(seed),
                    "--out", str(model), "--overwrite", "-q"], env=env, check=True)
    t1 = time.perf_counter()
    subprocess.run([*cli, "predict", str(model), str(d / "noisy.tif"), "--out", str(out), "--overwrite", "-q"],
                   env=env, check=True)
    t2 = time.perf_counter()
    import tifffile

    return tifffile.imread(out), t1 - t0, t2 - t1


def table(rows: list[dict]) -> str:
    """Markdown: one line per (set, seed) with each tree's PSNR and the last tree minus the first."""
    trees = list(dict.fromkeys(r["tree"] for r in rows))
    head = " | ".join(f"{t} PSNR (dB) | {t} stripe excess" for t in trees)
    lines = [f"| set | steps | seed | {head} | {trees[-1]} - {trees[0]} (dB) |",
             "| --- | ---: | ---: |" + " ---: | ---: |" * len(trees) + " ---: |"]
    keys = list(dict.fromkeys((r["set"], r["steps"], r["seed"]) for r in rows))
    by = {(r["set"], r["steps"], r["seed"], r["tree"]): r for r in rows}
    for k in keys:
        got = [by.get((*k, t)) for t in trees]
        cells = " | ".join(f"{g['psnr']:.3f} | {g['stripe_excess']:+.3f}" if g else " | " for g in got)
        diff = f"{got[-1]['psnr'] - got[0]['psnr']:+.3f}" if got[0] and got[-1] else ""
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {cells} | {diff} |")
    return "\n".join(lines)


def main() -> None:
    global SHARED
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trees", default="", help="label=path,... (each path a checkout with src/)")
    ap.add_argument("--sets", default="dev2d_x,dev3d_y")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--table", action="store_true", help="print the --out JSON as a markdown table and exit")
    ap.add_argument("--data", type=Path, default=SHARED, help="the shared dev sets")
    args = ap.parse_args()
    SHARED = args.data
    trees = dict(kv.split("=", 1) for kv in args.trees.split(",") if kv)
    rows = json.loads(args.out.read_text()) if (args.resume or args.table) and args.out.exists() else []
    if args.table:
        print(table(rows))
        return
    done = {(r["set"], r["tree"], r["seed"], r["steps"]) for r in rows}
    import tifffile

    for name in args.sets.split(","):
        gt = tifffile.imread(set_dir(name) / "gt.tif")
        for seed in (int(s) for s in args.seeds.split(",")):
            for label, path in trees.items():
                if (name, label, seed, args.steps) in done:
                    continue
                rev = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()
                print(f"[{time.strftime('%H:%M:%S')}] {name} {label} ({rev}) seed {seed}, {args.steps} steps",
                      flush=True)
                with tempfile.TemporaryDirectory() as tmp:
                    den, ts, ps = run_tree(Path(path), name, args.steps, seed, Path(tmp))
                m = score(den.reshape(gt.shape), gt, name)
                rows.append({"set": name, "tree": label, "commit": rev, "seed": seed, "steps": args.steps,
                             "train_s": round(ts, 1), "predict_s": round(ps, 1),
                             "load_avg": round(os.getloadavg()[0], 2), **m})
                print(f"  -> PSNR {m['psnr']:.3f} SSIM {m['ssim']:.4f} stripe excess {m['stripe_excess']:+.3f} "
                      f"(train {ts:.0f} s, predict {ps:.0f} s)", flush=True)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
