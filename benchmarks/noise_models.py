"""Noise models the development sets do not have: does the suggested mask still fit?

The development sets all carry noise correlated along X, Y (or a camera's lines). Microscopes also
give noise correlated along a diagonal (scan rotation of a point-scanning confocal; an image rotated
or registered after acquisition), along an oblique angle, along X and Y at once, as blobs, as
whole-row offsets, or shot-noise dominated. For each model this builds noisy images from the clean
``dev2d_x`` images (10 x 256 x 256, [0, 1]) and a 2-frame dark stack with the same noise, suggests
the mask from the dark stack (and, for the record, from the image's background), trains with
``denoise(..., config=TrainConfig(steps=N))`` (defaults otherwise) and scores PSNR against the clean images.

Rows per model: the suggested mask; where it is not a box, the box around it (the rule before
2026-12-08 suggested boxes only); and plain N2V (1x1), what the rule gave before for a diagonal.

Usage (about 60 s per row at the default 1500 steps on 2 cores)::

    python benchmarks/noise_models.py --shared ../shared/data
    python benchmarks/noise_models.py --models diag,cross --steps 1500
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from precision import psnr

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("diag", "oblique30", "cross", "blob", "rows", "poisson")


def _line(n: int = 9, decay: float = 2.0) -> np.ndarray:
    k = np.exp(-np.abs(np.arange(n) - n // 2) / decay)
    return k / np.sqrt((k**2).sum())


def _conv2(w: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return np.stack([ndimage.convolve(x, kernel, mode="wrap") for x in w])


def noise(model: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Zero-mean noise of ``model`` over ``(N, Y, X)`` (float64)."""
    from scipy import ndimage

    w, e = rng.standard_normal(shape), rng.standard_normal(shape)
    if model == "diag":  # exp kernel of half-length 4 along the main diagonal
        return 0.12 * _conv2(w, np.diag(_line())) + 0.04 * e
    if model == "oblique30":  # the same line turned 30 degrees (bilinear)
        big = np.zeros((21, 21))
        big[10, 6:15] = _line()
        rot = ndimage.rotate(big, 30, reshape=False, order=1)
        return 0.12 * _conv2(w, rot / np.sqrt((rot**2).sum())) + 0.04 * e
    if model == "cross":  # one line field along X plus another along Y
        cy = ndimage.convolve1d(rng.standard_normal(shape), _line(), axis=-2, mode="wrap")
        return 0.09 * ndimage.convolve1d(w, _line(), axis=-1, mode="wrap") + 0.09 * cy + 0.04 * e
    if model == "blob":  # isotropic: Gaussian of sigma 1.2 px
        c = ndimage.gaussian_filter(w, (0, 1.2, 1.2), mode="wrap")
        return 0.12 * c / c.std() + 0.04 * e
    if model == "rows":  # a random offset per row and frame, short X lines, white noise
        rows = rng.standard_normal(shape[:-1] + (1,))
        return 0.10 * ndimage.convolve1d(w, _line(7, 1.5), axis=-1, mode="wrap") + 0.06 * rows + 0.04 * e
    raise ValueError(model)


def make_data(model: str, gt: np.ndarray, seed: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, dark stack of 2 frames), float32."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    if model == "poisson":  # 20 photons per unit over 2 of background, X-correlated read noise
        def one(clean):
            shot = (rng.poisson(clean * 20 + 2) - 2) / 20.0
            return shot + 0.06 * ndimage.convolve1d(rng.standard_normal(clean.shape), _line(), axis=-1, mode="wrap")
        return one(gt).astype(np.float32), one(np.zeros((2, *gt.shape[1:]))).astype(np.float32)
    noisy = gt + noise(model, gt.shape, rng)
    return noisy.astype(np.float32), noise(model, (2, *gt.shape[1:]), rng).astype(np.float32)


def main(argv=None) -> int:
    import tifffile

    from napari_structn2v import TrainConfig, denoise
    from napari_structn2v.method.masks import describe_mask, mask_to_spec
    from napari_structn2v.pipeline import choose_mask

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--steps", type=int, default=1500, help="training steps per row (steps, not seconds: a busy CPU does not change them)")
    ap.add_argument("--seeds", default="0", help="training seeds, comma-separated (one row each)")
    ap.add_argument("--variants", default="suggested,box,n2v", help="which masks: suggested, box (its box), n2v (1x1)")
    ap.add_argument("--out", type=Path, default=RESULTS / "noise_models.md")
    ap.add_argument("--append", action="store_true", help="keep the rows already in the --out JSON (other seeds, models)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    gt = tifffile.imread(args.shared / "dev2d_x" / "gt.tif").astype(np.float32)
    old = args.out.with_suffix(".json")
    rows = json.loads(old.read_text()) if args.append and old.exists() else []
    for model in args.models.split(","):
        noisy, dark = make_data(model, gt)
        chosen = choose_mask(noisy, "SYX", dark=dark, dark_axes="SYX", strict=False)
        try:
            bg = describe_mask(choose_mask(noisy, "SYX", strict=False).mask)
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            bg = f"error: {exc}"
        wanted = args.variants.split(",")
        variants = [("suggested", chosen.mask)] if "suggested" in wanted else []
        if "box" in wanted and mask_to_spec(chosen.mask) is None:
            variants.append(("its box", np.ones(chosen.mask.shape, dtype=bool)))
        if "n2v" in wanted and chosen.mask.sum() > 1:
            variants.append(("1x1 (N2V)", np.ones((1, 1), dtype=bool)))
        for label, mask in variants:
            for seed in (int(v) for v in args.seeds.split(",")):
                t0 = time.perf_counter()
                res = denoise(noisy, "SYX", mask=mask, config=TrainConfig(steps=args.steps, seed=seed))
                row = dict(model=model, variant=label, seed=seed, mask=describe_mask(mask), background_mask=bg,
                           noisy_db=round(psnr(noisy, gt, "SYX"), 2), db=round(psnr(res.image, gt, "SYX"), 2),
                           seconds=round(time.perf_counter() - t0, 1))
                rows.append(row)
                print(json.dumps(row), flush=True)
    head = (f"## Unseen noise models (dev2d_x clean images, {args.steps} training steps per row, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})\n\n"
            f"`python benchmarks/noise_models.py --steps {args.steps}` (rows of other seeds: `--append --seeds 1,2`)\n\n"
            "| noise | mask | which | seed | noisy dB | denoised dB | mask from the background |\n"
            "| --- | --- | --- | ---: | ---: | ---: | --- |\n")
    rows.sort(key=lambda r: (MODELS.index(r["model"]), r["variant"] != "suggested", r["variant"], r.get("seed", 0)))
    body = "".join(f"| {r['model']} | {r['mask']} | {r['variant']} | {r.get('seed', 0)} | {r['noisy_db']:.2f} | {r['db']:.2f} "
                   f"| {r['background_mask']} |\n" for r in rows)
    args.out.write_text(head + body)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    print(head + body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
