"""Build the extra development sets of issue #8 beside ``../shared/data``.

``../shared/data`` holds two sets (dev2d_x: dense nuclei, X-correlated; dev3d_y: a 3D volume,
Y-correlated). Defaults must hold across kinds of data, so this script makes three more, in the
same layout (``noisy.tif``, ``gt.tif``, ``dark.tif``, ``meta.json``) and with the same noise model
(:func:`napari_structn2v.synthetic.correlated_noise`), deterministic from their seeds:

=============== ============== ======== ===================================================
set             shape          noise    what it stands for
=============== ============== ======== ===================================================
sparse2d_x      10 x 383 x 383 X, h 4   a time-lapse of a few bright cells on a dark
                                        background (about 15 % foreground), odd image size
dense2d_y       8 x 512 x 512  Y, h 7   nuclei at twice the magnification (the shared 3D
                                        ground truth's slices zoomed 2x), a longer
                                        correlation along the other axis
aniso3d_x       24 x 320 x 320 X, h 5   an anisotropic volume: the shared 3D ground truth
                                        zoomed 1.25x in YX only, noise independent across Z
long3d_y        30 x 256 x 256 Y, h 8   the shared 3D ground truth turned 90 degrees in YX
                                        with a longer Y correlation (the issue's held-out 3D
                                        set has half-length 8 and got a 1x21x1 mask)
=============== ============== ======== ===================================================

Camera sets (issue #17), each also ``<set>_nofpn`` with the same draws but no fixed pattern, and a
``dark.tif`` that is a STACK of :data:`DARK_FRAMES` dark frames (same YX size), not an image-sized
noise field. Noise: :func:`napari_structn2v.synthetic.camera_noise`: shot noise at 30 photons per
unit intensity over 3 background photons, read noise correlated along X (h 4, sigma 0.08 + white
0.03), and a fixed pattern (:func:`~napari_structn2v.synthetic.fixed_pattern`: sCMOS column offsets of
sigma 0.06 and row offsets of sigma 0.02) added to every frame:

=============== ============== ======== ===================================================
cam3d_x         30 x 256 x 256 ZYX      the shared 3D ground truth as a camera volume
cam2d_t         16 x 256 x 256 TYX      a time-lapse of bright cells drifting on a dark
                                        background
=============== ============== ======== ===================================================

``h`` is the kernel half-length. Usage::

    python benchmarks/devsets.py                 # -> benchmarks/data/<set>/ (git-ignored)
    python benchmarks/devsets.py --out DIR --shared ../shared/data
    python benchmarks/devsets.py --only camera   # only the camera sets
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def _norm01(img: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(img, (0.1, 99.9))
    return np.clip((img - lo) / (hi - lo), 0, 1).astype(np.float32)


def sparse_cells(shape: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A T x Y x X time-lapse of a few textured bright cells drifting on a dark background."""
    from scipy import ndimage

    t_n, h, w = shape
    n_cells = 24
    pos = rng.uniform([20, 20], [h - 20, w - 20], (n_cells, 2))
    vel = rng.normal(0, 1.5, (n_cells, 2))
    radii = rng.uniform(12, 26, (n_cells, 2))
    angle = rng.uniform(0, np.pi, n_cells)
    bright = rng.uniform(0.35, 1.0, n_cells)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    texture = ndimage.gaussian_filter(rng.standard_normal((h, w)), 2.0)
    texture /= texture.std()
    frames = []
    for t in range(t_n):
        img = np.full((h, w), 0.02)
        for i in range(n_cells):
            cy, cx = pos[i] + t * vel[i]
            c, s = np.cos(angle[i]), np.sin(angle[i])
            u = ((yy - cy) * c + (xx - cx) * s) / radii[i, 0]
            v = (-(yy - cy) * s + (xx - cx) * c) / radii[i, 1]
            r2 = u**2 + v**2
            cell = (r2 < 1).astype(np.float64)
            nucleus = (r2 < 0.25).astype(np.float64)
            img += bright[i] * (cell * (0.7 + 0.15 * np.roll(texture, (7 * i, 11 * i), (0, 1))) + 0.3 * nucleus)
        frames.append(ndimage.gaussian_filter(img, 1.2))
    stack = np.stack(frames)
    return np.clip(stack / np.percentile(stack, 99.9), 0, 1).astype(np.float32)


#: dark frames in the camera sets' dark stacks ("a few": the issue's stack had 4)
DARK_FRAMES = 8
#: the camera model of the camera sets (see the module docstring)
CAMERA = dict(photons=30.0, background=3.0, axis=-1, half_len=4, decay=2.0, sigma_s=0.08, sigma_p=0.03)
PATTERN = dict(sigma_column=0.06, sigma_row=0.02)


def build_camera(shared: Path, out: Path) -> None:
    """The camera sets ``cam3d_x`` and ``cam2d_t``, each with and without the fixed pattern."""
    import tifffile

    from napari_structn2v.synthetic import camera_noise, fixed_pattern

    gt3d = tifffile.imread(shared / "dev3d_y" / "gt.tif").astype(np.float32)
    for name, axes, seed in (("cam3d_x", "ZYX", 21), ("cam2d_t", "TYX", 22)):
        rng = np.random.default_rng(seed)
        gt = gt3d if name == "cam3d_x" else sparse_cells((16, 256, 256), rng)
        pattern = fixed_pattern(gt.shape[-2:], rng=rng, **PATTERN)
        # one draw of shot and read noise for both versions: they differ by the pattern alone
        noise = camera_noise(gt, rng=rng, **CAMERA) - gt
        dark = camera_noise(np.zeros((DARK_FRAMES, *gt.shape[-2:]), np.float32), rng=rng, **CAMERA)
        for suffix, fpn in (("", pattern), ("_nofpn", np.zeros_like(pattern))):
            folder = out / f"{name}{suffix}"
            folder.mkdir(parents=True, exist_ok=True)
            arrays = {"gt": gt, "noisy": gt + noise + fpn, "dark": dark + fpn, "pattern": fpn}
            for key, arr in arrays.items():
                tifffile.imwrite(folder / f"{key}.tif", arr.astype(np.float32))
            meta = {"axes": axes, "dark_axes": axes, "seed": seed, "shape": list(gt.shape), "dark_frames": DARK_FRAMES,
                    "camera": CAMERA, "pattern": PATTERN if suffix == "" else None}
            (folder / "meta.json").write_text(json.dumps(meta, indent=1))
            print(f"{name}{suffix}: {gt.shape} {axes}, dark stack {dark.shape}, pattern std {fpn.std():.3f} -> {folder}")


def build(shared: Path, out: Path) -> None:
    import tifffile
    from scipy import ndimage

    from napari_structn2v.synthetic import correlated_noise

    gt3d = tifffile.imread(shared / "dev3d_y" / "gt.tif").astype(np.float32)
    specs = {
        "sparse2d_x": dict(axes="SYX", axis=-1, half_len=4, decay=2.0, sigma_s=0.12, sigma_p=0.04, seed=11),
        "dense2d_y": dict(axes="SYX", axis=-2, half_len=7, decay=3.5, sigma_s=0.13, sigma_p=0.05, seed=12),
        "aniso3d_x": dict(axes="ZYX", axis=-1, half_len=5, decay=2.5, sigma_s=0.12, sigma_p=0.05, seed=13),
        "long3d_y": dict(axes="ZYX", axis=-2, half_len=8, decay=4.0, sigma_s=0.12, sigma_p=0.05, seed=14),
    }
    for name, p in specs.items():
        rng = np.random.default_rng(p["seed"])
        if name == "sparse2d_x":
            gt = sparse_cells((10, 383, 383), rng)
        elif name == "dense2d_y":
            # 8 slices spread through the volume, zoomed 2x: bigger nuclei on a 512 x 512 grid
            idx = np.linspace(3, gt3d.shape[0] - 4, 8).astype(int)
            gt = _norm01(np.stack([ndimage.zoom(gt3d[i], 2.0, order=3) for i in idx]))
        elif name == "long3d_y":
            gt = np.ascontiguousarray(np.rot90(gt3d, axes=(1, 2)))
        else:
            gt = _norm01(ndimage.zoom(gt3d[3:27], (1.0, 1.25, 1.25), order=3))
        kw = {k: p[k] for k in ("axis", "half_len", "decay", "sigma_s", "sigma_p")}
        noisy = gt + correlated_noise(gt.shape, rng=rng, **kw)
        dark = correlated_noise(gt.shape, rng=rng, **kw)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for key, arr in (("gt", gt), ("noisy", noisy), ("dark", dark)):
            tifffile.imwrite(folder / f"{key}.tif", arr.astype(np.float32))
        meta = {**p, "shape": list(gt.shape), "foreground_fraction": float((gt > 0.2).mean())}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1))
        print(f"{name}: {gt.shape} {p['axes']}, foreground {meta['foreground_fraction']:.2f} -> {folder}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", choices=("all", "camera"), default="all", help="camera: build only the camera sets")
    args = ap.parse_args(argv)
    if args.only == "all":
        build(args.shared, args.out)
    build_camera(args.shared, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
