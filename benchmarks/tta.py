"""Which test-time transforms are worth their passes? (issue 18: TTA under 3x one pass on a CPU)

For each development set, a model trained with the defaults (``--steps`` steps, seed 0, the set's
suggested mask: every set has a line mask, so the mask-preserving transforms are the 4 flips of Y
and X; models kept in ``--models`` and reused) denoises the noisy data with each subset of the
flips, through the package's own prediction path, and the table gives the PSNR against the
ground truth. A subset can be the default where it stays within ``LIMIT_DB`` of all 4 flips on
every set.

Usage (from the repository root; the extra sets come from ``python benchmarks/devsets.py``)::

    python benchmarks/tta.py                     # writes benchmarks/results/tta_quality.md
    python benchmarks/tta.py --sets dev2d_x --steps 300
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision import SETS, dev_set_runs, psnr, save_results

RESULTS = Path(__file__).resolve().parent / "results"
#: the largest PSNR loss (dB) against all 4 flips that a smaller default may have on any set
LIMIT_DB = 0.02
#: subsets of the 4 flips of a line mask: name -> transforms (the tensor dims flipped)
SUBSETS = {
    "none": ((),),
    "id + flip X": ((), (-1,)),
    "id + flip Y": ((), (-2,)),
    "id + half turn": ((), (-1, -2)),
    "id + flip X + flip Y": ((), (-1,), (-2,)),
    "4 flips": ((), (-1,), (-2,), (-1, -2)),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, default=Path("/tmp/structn2v_tta_models"))
    ap.add_argument("--steps", type=int, default=400, help="training steps of a model that is not in --models yet")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--tag", default="cpu")
    ap.add_argument("--shared", type=Path, default=None,
                    help="folder of dev2d_x and dev3d_y (default ../shared/data beside the repository)")
    args = ap.parse_args(argv)
    sets = dict(SETS)
    if args.shared is not None:
        sets.update({k: (args.shared / k, *sets[k][1:]) for k in ("dev2d_x", "dev3d_y")})

    import torch

    from napari_structn2v import model as model_io

    torch.set_num_threads(args.threads)
    rows = []
    for name, axes, mask, model, noisy, gt, load_s in dev_set_runs(args.sets, sets, args.models, args.steps, "cpu"):
        row = {"set": name, "axes": axes, "mask": mask, "steps": model.config.training.get("steps_done"),
               "train_or_load_s": load_s}
        saved = model_io.tta_transforms
        try:
            for label, subset in SUBSETS.items():
                model_io.tta_transforms = lambda mask, enabled=True, subset=subset: subset
                row[label] = psnr(model.predict(noisy, axes, device="cpu"), gt, axes)
        finally:
            model_io.tta_transforms = saved
        rows.append(row)
        print("  " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)

    labels = list(SUBSETS)
    lines = [f"## Prediction PSNR by test-time transforms ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"cpu, torch {torch.__version__}, default number format)", "",
             "Models: defaults, seed 0, the set's suggested (line) mask. dB against gt; in brackets the change "
             f"against all 4 flips. A subset qualifies as the default where it loses at most {LIMIT_DB} dB on every set.",
             "", "`python benchmarks/tta.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`", "",
             "| set | mask | steps | " + " | ".join(labels) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in labels) + " |"]
    for r in rows:
        cells = [f"{r[k]:.3f} ({r[k] - r['4 flips']:+.3f})" if k != "4 flips" else f"{r[k]:.3f}" for k in labels]
        lines.append(f"| {r['set']} | {r['mask']} | {r['steps']} | " + " | ".join(cells) + " |")
    lines.append("")
    for k in labels[:-1]:
        worst = min((r[k] - r["4 flips"] for r in rows), default=float("nan"))
        lines.append(f"- {k}: largest loss against 4 flips {-worst:.3f} dB: "
                     + ("qualifies" if -worst <= LIMIT_DB else "does not qualify"))
    save_results(args.out, f"tta_quality_{args.tag}", "\n".join(lines) + "\n", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
