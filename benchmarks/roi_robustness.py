"""How far can a drawn noise ROI be trusted? (issue #9)

For each data set the reference is ``analyze_noise(dark)``. Square ROIs of several sizes are
placed on a grid over the noisy image; an ROI is *background-looking* when the clean image varies
inside it by less than the noise's standard deviation (1st to 99th percentile: nothing shows
above the noise, what a microscopist would pick by eye); all others are *on signal*. For 3D data the ROI is a YX square over the
central slice +-3 (the widget's default Z range). Per size the table gives the suggestions, the
share within +-2 px per side of the dark frame's, and the share carrying a reliability warning.
The last rows pool all background ROIs of 32 px and use :func:`find_background` on the noisy image.

Usage (from the repository root)::

    python benchmarks/roi_robustness.py              # samples + ../shared/data
    python benchmarks/roi_robustness.py --no-shared  # synthetic samples only

Prints a Markdown table; ``--out FILE`` writes it too.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from napari_structn2v.noise import analyze_noise, find_background
from napari_structn2v.synthetic import make_sample

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SIZES = (16, 24, 32, 48, 64, 96)
Z_HALF = 3


def sides(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(mask.shape[::-1])


def agrees(mask: np.ndarray, ref: np.ndarray, tol: int = 2) -> bool:
    a, b = sides(mask), sides(ref)
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def datasets(shared: bool):
    for kind in ("2d", "3d"):
        s = make_sample(kind, seed=0)
        yield f"sample {kind.upper()}", s["noisy"], s["clean"], s["dark"], s["axes"]
    if shared:
        import tifffile

        for name, axes in (("dev2d_x", "SYX"), ("dev3d_y", "ZYX")):
            folder = SHARED / name
            if not folder.is_dir():
                print(f"skipping {name}: {folder} not found", file=sys.stderr)
                continue
            read = lambda f: tifffile.imread(folder / f).astype(np.float32)  # noqa: E731
            yield name, read("noisy.tif"), read("gt.tif"), read("dark.tif"), axes


def rois(noisy: np.ndarray, clean: np.ndarray, axes: str, size: int):
    """(label, region, region_axes, clean range) for a grid of square ROIs."""
    step = max(16, size // 2)
    planes = [0, noisy.shape[0] // 2] if axes == "SYX" else [None]
    for p in planes:
        img, ref = (noisy[p], clean[p]) if p is not None else (noisy, clean)
        h, w = img.shape[-2:]
        for y in range(0, h - size + 1, step):
            for x in range(0, w - size + 1, step):
                if axes == "ZYX":
                    zc = img.shape[0] // 2
                    zs = slice(zc - Z_HALF, zc + Z_HALF + 1)
                    region, cm = img[zs, y : y + size, x : x + size], np.ptp(np.percentile(ref[zs, y : y + size, x : x + size], (1, 99)))
                    rax = "ZYX"
                else:
                    region, cm = img[y : y + size, x : x + size], np.ptp(np.percentile(ref[y : y + size, x : x + size], (1, 99)))
                    rax = "YX"
                label = f"{'' if p is None else f'image {p} '}y{y} x{x}"
                yield label, region, rax, float(cm)


def spec(mask: np.ndarray) -> str:
    return "x".join(map(str, sides(mask)))


def table(shared: bool) -> str:
    lines = [
        "| data | noise region | n | suggestions (count) | within +-2 px of dark frame | warned |",
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    for name, noisy, clean, dark, axes in datasets(shared):
        ref = analyze_noise(dark, axes=axes).mask
        lines.append(f"| {name} | dark frame ({'x'.join(map(str, dark.shape))}) | 1 | {spec(ref)} | reference | |")
        pooled = []
        for size in SIZES:
            found = list(rois(noisy, clean, axes, size))
            ranges = np.array([f[3] for f in found])
            quiet = ranges <= float(np.std(dark))
            for kind, keep in (("background", quiet), ("on signal", ~quiet)):
                if not keep.any():
                    lines.append(f"| {name} | ROI {size} px, {kind} | 0 | | | |")
                    continue
                results = [analyze_noise(f[1], axes=f[2]) for f, k in zip(found, keep) if k]
                if kind == "background" and size == 32:
                    pooled = [f[1] for f, k in zip(found, keep) if k]
                    pooled_axes = found[0][2]
                if kind == "on signal" and size not in (32, 64):
                    continue
                counts = Counter(spec(r.mask) for r in results).most_common(4)
                agree = np.mean([agrees(r.mask, ref) for r in results])
                warned = np.mean([not r.reliable for r in results])
                lines.append(
                    f"| {name} | ROI {size} px, {kind} | {len(results)} | "
                    f"{', '.join(f'{s} ({c})' for s, c in counts)} | {agree:.0%} | {warned:.0%} |"
                )
        for n_pool in sorted({min(4, len(pooled)), len(pooled)} - {0}):
            r = analyze_noise(pooled[:n_pool], axes=pooled_axes)
            lines.append(
                f"| {name} | {n_pool} background ROIs of 32 px, pooled | 1 | {spec(r.mask)} | "
                f"{'yes' if agrees(r.mask, ref) else 'no'} | {'yes' if not r.reliable else 'no'} |"
            )
        bg = find_background(noisy, axes=axes)
        r = analyze_noise(bg.regions, axes=bg.axes)
        lines.append(
            f"| {name} | find_background ({len(bg.regions)} tiles of {bg.tile} px) | 1 | {spec(r.mask)} | "
            f"{'yes' if agrees(r.mask, ref) else 'no'} | {'yes' if not r.reliable else 'no'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-shared", action="store_true", help="only the synthetic samples")
    p.add_argument("--out", help="also write the table to this Markdown file")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    text = table(not args.no_shared)
    text += f"\n\n({time.perf_counter() - t0:.0f} s; `python benchmarks/roi_robustness.py`)\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
