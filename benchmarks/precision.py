"""Does prediction in a reduced number format keep the PSNR? (issue 18, item 3)

For each of the six development sets, a model trained with the defaults (``--steps`` steps, seed 0,
the set's suggested mask; kept in ``--models`` and reused) denoises the noisy data in float32 and
in each reduced format the device has (bfloat16 on a CPU with native bfloat16; float16 and
bfloat16 on CUDA), with the default test-time augmentation. The table gives the PSNR against the
ground truth and its change; reduced formats are the default only where the change stays within
0.02 dB on every set. The PSNR does not depend on load, so a contended machine gives the same table.

Usage (from the repository root)::

    python benchmarks/precision.py                      # CPU, writes benchmarks/results/precision_cpu.md
    python benchmarks/precision.py --device cuda        # precision_cuda.md
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
#: the limit on the PSNR change (dB) for a reduced format to be the default
LIMIT_DB = 0.02
#: set -> (folder, axes, suggested mask) as in benchmarks/results/equal_time
SETS = {
    "dev2d_x": (ROOT.parent / "shared" / "data" / "dev2d_x", "SYX", "11x1"),
    "dev3d_y": (ROOT.parent / "shared" / "data" / "dev3d_y", "ZYX", "1x15x1"),
    "sparse2d_x": (ROOT / "benchmarks" / "data" / "sparse2d_x", "SYX", "11x1"),
    "dense2d_y": (ROOT / "benchmarks" / "data" / "dense2d_y", "SYX", "1x17"),
    "aniso3d_x": (ROOT / "benchmarks" / "data" / "aniso3d_x", "ZYX", "13x1x1"),
    "long3d_y": (ROOT / "benchmarks" / "data" / "long3d_y", "ZYX", "1x21x1"),
}


def psnr(denoised: np.ndarray, gt: np.ndarray, axes: str) -> float:
    """PSNR with data range 1, averaged over the images of an SYX stack, over the whole of a volume."""
    def one(d, g):
        return 10 * np.log10(1.0 / float(np.mean((d.astype(np.float64) - g) ** 2)))

    if axes == "SYX":
        return float(np.mean([one(d, g) for d, g in zip(denoised, gt)]))
    return one(denoised, gt)


def model_for(name: str, folder: Path, axes: str, mask: str, models: Path, steps: int, device: str):
    """The set's model from ``models``, trained (defaults, seed 0) and saved there if absent."""
    import tifffile

    from napari_structn2v.config import TrainConfig
    from napari_structn2v.model import load_model
    from napari_structn2v.training.loop import train

    path = models / f"{name}.pt"
    if path.exists():
        return load_model(path)
    noisy = tifffile.imread(folder / "noisy.tif").astype(np.float32)
    model = train(noisy, axes, mask, TrainConfig(steps=steps, seed=0, device=device, val_fraction=0))
    models.mkdir(parents=True, exist_ok=True)
    model.save(path)
    return model


def dev_set_runs(names: str, sets: dict, models: Path, steps: int, device: str):
    """For each set of ``names`` (comma-separated) with data: ``(name, axes, mask, model, noisy, gt,
    seconds to train or load the model)``; sets without data are skipped with a line."""
    import tifffile

    for name in names.split(","):
        folder, axes, mask = sets[name]
        if not (folder / "noisy.tif").exists():
            print(f"  {name}: no data in {folder}, skipped", flush=True)
            continue
        t0 = time.perf_counter()
        model = model_for(name, folder, axes, mask, models, steps, device)
        load_s = time.perf_counter() - t0
        noisy = tifffile.imread(folder / "noisy.tif").astype(np.float32)
        gt = tifffile.imread(folder / "gt.tif").astype(np.float32)
        yield name, axes, mask, model, noisy, gt, load_s


def save_results(out: Path, stem: str, text: str, rows: list[dict]) -> None:
    """``<stem>.md`` (the table) and ``<stem>.json`` (the rows) in ``out``; the table printed."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.md").write_text(text)
    (out / f"{stem}.json").write_text(json.dumps(rows, indent=1))
    print("\n" + text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--models", type=Path, default=Path("/tmp/structn2v_precision_models"))
    ap.add_argument("--steps", type=int, default=500, help="training steps of a model that is not in --models yet")
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    from napari_structn2v.nn.inference import cpu_has_bfloat16

    dev = torch.device(args.device)
    formats = ["bfloat16", "float16"] if dev.type == "cuda" else (["bfloat16"] if cpu_has_bfloat16() else [])
    rows = []
    for name, axes, mask, model, noisy, gt, _ in dev_set_runs(args.sets, SETS, args.models, args.steps, args.device):
        ref = model.predict(noisy, axes, device=args.device, precision="float32")
        row = {"set": name, "axes": axes, "mask": mask, "steps": model.config.training.get("steps_done"),
               "float32": psnr(ref, gt, axes)}
        for fmt in formats:
            y = model.predict(noisy, axes, device=args.device, precision=fmt)
            row[fmt] = psnr(y, gt, axes)
            row[f"{fmt}_max_abs"] = float(np.abs(y - ref).max())
        rows.append(row)
        print("  " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)

    lines = [f"## Prediction PSNR by number format ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"device {args.device}, torch {torch.__version__})", "",
             "Models: defaults, seed 0, the set's suggested mask; prediction with the default test-time "
             f"augmentation. A reduced format is the default where |change| <= {LIMIT_DB} dB on every set.", "",
             "| set | mask | steps | float32 dB | " + " | ".join(f"{f} dB | change | max abs diff" for f in formats) + " |",
             "| --- | --- | ---: | ---: | " + " | ".join("---: | ---: | ---:" for _ in formats) + " |"]
    for r in rows:
        cells = [f"{r[f]:.3f} | {r[f] - r['float32']:+.4f} | {r[f + '_max_abs']:.2e}" for f in formats]
        lines.append(f"| {r['set']} | {r['mask']} | {r['steps']} | {r['float32']:.3f} | " + " | ".join(cells) + " |")
    for f in formats:
        worst = max((abs(r[f] - r["float32"]) for r in rows), default=float("nan"))
        lines.append(f"\n{f}: largest |change| {worst:.4f} dB over {len(rows)} sets: "
                     + ("within" if worst <= LIMIT_DB else "OUTSIDE") + f" the {LIMIT_DB} dB limit.")
    text = "\n".join(lines) + "\n"
    save_results(args.out, f"precision_{'cuda' if dev.type == 'cuda' else 'cpu'}", text, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
