"""Collect results/*.json of careamics_n2v.py into results/careamics.md (any python 3)."""

import json
from pathlib import Path

ORDER = ["dev2d_x", "sparse2d_x", "dense2d_y", "dev3d_y", "aniso3d_x"]
here = Path(__file__).resolve().parent / "results"
rows = [json.loads(p.read_text()) for p in here.glob("*.json")]
rows.sort(key=lambda r: (ORDER.index(r["set"]) if r["set"] in ORDER else 99, -r["span"], r.get("masked_pct", 0.2)))
lines = [
    "# CAREamics (peer reference)",
    "",
    "CAREamics 0.3.5 N2V with the structN2V line mask (`careamics_n2v.py`, see `../README.md`):",
    "U-Net depth 2, 32 base filters, Adam at a constant lr 4e-4, no augmentation, 0.2 % masked",
    "pixels (CAREamics default; \"masked %\" column), uniform replacement. Span = full length of the mask (centre included). PSNR",
    "(data_range 1, no clipping) on the whole `noisy.tif`: mean over images (2D) / over the",
    "volume (3D).",
    "",
    "Train seconds: wall time of `CAREamist.train` on CPU with 1 torch thread under `nice -n 15` on",
    "a shared 2-core machine (other jobs running): not an idle timing. Train CPU s: the process's",
    "CPU time over the same span (less sensitive to the other jobs; missing for early runs).",
    "",
    "| set | axes | half_len | span | mask along | masked % | steps | batch | patch | PSNR noisy | PSNR | SSIM | train s | train CPU s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
for r in rows:
    along = {"horizontal": "X", "vertical": "Y"}.get(r["struct_axis"], "-")
    cpu = f"{r['train_cpu_seconds']:.0f}" if "train_cpu_seconds" in r else ""
    lines.append(
        f"| {r['set']} | {r['axes']} | {r['half_len']} | {r['span']} | {along} | {r.get('masked_pct', 0.2):g} | "
        f"{r['steps']} | {r['batch']} | {'x'.join(map(str, r['patch']))} | {r['psnr_noisy']:.2f} | "
        f"{r['psnr']:.2f} | {r['ssim']:.3f} | {r['train_seconds']:.0f} | {cpu} |"
    )
(here / "careamics.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
