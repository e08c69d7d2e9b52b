"""How far can a drawn noise ROI be trusted? (issue #9)

For each data set the reference is ``analyze_noise(dark)``. Square ROIs of several sizes are
placed on a grid over the noisy image; an ROI is *background-looking* when the clean image varies
inside it by less than the noise's standard deviation (1st to 99th percentile: nothing shows
above the noise, what a microscopist would pick by eye); all others are *on signal*. For 3D data
the ROI is a YX square over the central slice +-3 (the widget's default Z range). Per size the
table gives the suggestions and how they agree with the dark frame's:

- *extent +-2 px*: every side of the box (e.g. 9 of 9x1) within 2 px of the dark frame's;
- *reach +-2 px per side*: how far the mask reaches from the centre on each side within 2 px
  (7x1 and 15x1 both agree with 11x1: they reach 3 and 7 px against 5);
- *warned*: the share carrying a reliability warning (``reliable`` False);
- *wrong, unwarned*: how many are off by more than 2 px in extent and carry no warning.

The row "32 px ROIs of the dark frame" cuts the same ROIs from the pure-noise frame: it shows
how far a 32 px estimate can agree at all (its sampling error), with no signal involved. The last
rows pool all background ROIs of 32 px and use :func:`find_background` on the noisy image.

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

from napari_structn2v.noise.analysis import analyze_noise, find_background
from napari_structn2v.synthetic import make_sample

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SIZES = (16, 24, 32, 48, 64, 96)
Z_HALF = 3


def sides(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(mask.shape[::-1])


def agrees(mask: np.ndarray, ref: np.ndarray, tol: int = 2) -> bool:
    """Every side of the box within ``tol`` px of the reference's (its extent)."""
    a, b = sides(mask), sides(ref)
    if len(a) != len(b):
        return False
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def reaches(mask: np.ndarray, ref: np.ndarray, tol: int = 2) -> bool:
    """The mask reaches as far from the centre as the reference, +-``tol`` px on each side."""
    return agrees(mask, ref, 2 * tol)


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
        zc = img.shape[0] // 2
        for y in range(0, h - size + 1, step):
            for x in range(0, w - size + 1, step):
                index = (slice(y, y + size), slice(x, x + size))
                if axes == "ZYX":
                    index = (slice(zc - Z_HALF, zc + Z_HALF + 1), *index)
                cm = np.ptp(np.percentile(ref[index], (1, 99)))
                label = f"{'' if p is None else f'image {p} '}y{y} x{x}"
                yield label, img[index], "ZYX" if axes == "ZYX" else "YX", float(cm)


def dark_rois(dark: np.ndarray, axes: str, size: int = 32) -> list[np.ndarray]:
    """Non-overlapping ROIs of the dark frame: YX squares (of every image for SYX), and for ZYX
    the same squares over 2 * Z_HALF + 1 slices, for every such slab."""
    if axes == "ZYX":
        depth = 2 * Z_HALF + 1
        slabs = [dark[z : z + depth] for z in range(0, dark.shape[0] - depth + 1, depth)]
    else:
        slabs = list(dark) if axes == "SYX" else [dark]
    h, w = dark.shape[-2:]
    return [
        slab[..., y : y + size, x : x + size]
        for slab in slabs
        for y in range(0, h - size + 1, size)
        for x in range(0, w - size + 1, size)
    ]


def spec(mask: np.ndarray) -> str:
    return "x".join(map(str, sides(mask)))


def row(name: str, region: str, results: list, ref: np.ndarray) -> str:
    """One table row for the analyses ``results`` of some ROIs."""
    counts = Counter(spec(r.mask) for r in results).most_common(4)
    extent = np.mean([agrees(r.mask, ref) for r in results])
    reach = np.mean([reaches(r.mask, ref) for r in results])
    warned = np.mean([not r.reliable for r in results])
    silent = sum(r.reliable and not agrees(r.mask, ref) for r in results)
    return (
        f"| {name} | {region} | {len(results)} | {', '.join(f'{s} ({c})' for s, c in counts)} | "
        f"{extent:.0%} | {reach:.0%} | {warned:.0%} | {silent} |"
    )


def one(name: str, region: str, result, ref: np.ndarray) -> str:
    """A table row for a single analysis (pooled ROIs, find_background)."""
    yes = lambda b: "yes" if b else "no"  # noqa: E731
    return (
        f"| {name} | {region} | 1 | {spec(result.mask)} | {yes(agrees(result.mask, ref))} | "
        f"{yes(reaches(result.mask, ref))} | {yes(not result.reliable)} | |"
    )


def table(shared: bool) -> str:
    lines = [
        "| data | noise region | n | suggestions (count) | extent +-2 px | reach +-2 px per side | warned "
        "| wrong, unwarned |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, noisy, clean, dark, axes in datasets(shared):
        ref = analyze_noise(dark, axes=axes).mask
        lines.append(f"| {name} | dark frame ({'x'.join(map(str, dark.shape))}) | 1 | {spec(ref)} | reference | | | |")
        rax = "ZYX" if axes == "ZYX" else "YX"
        own = [analyze_noise(r, axes=rax) for r in dark_rois(dark, axes)]
        lines.append(row(name, "32 px ROIs of the dark frame (sampling limit)", own, ref))
        pooled, pooled_axes = [], rax
        for size in SIZES:
            found = list(rois(noisy, clean, axes, size))
            quiet = np.array([f[3] for f in found]) <= float(np.std(dark))
            for kind, keep in (("background", quiet), ("on signal", ~quiet)):
                if not keep.any():
                    lines.append(f"| {name} | ROI {size} px, {kind} | 0 | | | | | |")
                    continue
                if kind == "background" and size == 32:
                    pooled = [f[1] for f, k in zip(found, keep) if k]
                if kind == "on signal" and size not in (32, 64):
                    continue
                results = [analyze_noise(f[1], axes=f[2]) for f, k in zip(found, keep) if k]
                lines.append(row(name, f"ROI {size} px, {kind}", results, ref))
        for n_pool in sorted({min(4, len(pooled)), len(pooled)} - {0}):
            r = analyze_noise(pooled[:n_pool], axes=pooled_axes)
            lines.append(one(name, f"{n_pool} background ROIs of 32 px, pooled", r, ref))
        bg = find_background(noisy, axes=axes)
        r = analyze_noise(bg.regions, axes=bg.axes)
        lines.append(one(name, f"find_background ({len(bg.regions)} tiles of {bg.tile} px)", r, ref))
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
