"""Denoising quality benchmark on the development sets (issue #2, section 6).

Rows (dev2d_x, axes SYX, equal step budgets):

    noisy        the input itself
    bm3d         BM3D (``bm3d`` package) handed the noise PSD estimated from ``dark.tif``
    n2v          N2V: 1x1 blind mask (StructN2V's uniform replacement, same network)
    struct       StructN2V with the mask suggested by ``analyze_noise(dark.tif, dark=True)``
    sweep        StructN2V with horizontal line masks of several widths (paper Fig. 4 analog)
    const        StructN2V, suggested mask, constant learning rate
    n2v2         N2V2 network variant (blur-pool, no top skip) with the suggested mask
    n2gt         supervised N2GT (noisy -> gt, full-image MSE), same network, steps, batch, lr schedule

dev3d_y (axes ZYX, 3D net, reduced budget): n2v (1x1x1), struct (suggested), n2gt.

Learned methods never see ``gt.tif``, except the supervised N2GT reference.
Metrics: PSNR and SSIM against ``gt.tif`` (``data_range=1``; averaged over the 2D images for
dev2d_x, over the volume for dev3d_y) and the lag-1 autocorrelation of the residual
``denoised - gt`` along the noise axis (X for dev2d_x, Y for dev3d_y).

Usage (from the repository root)::

    python benchmarks/quality.py                        # both sets, all rows
    python benchmarks/quality.py --sets dev2d_x --steps 1500 --rows noisy,n2v,struct,bm3d
    python benchmarks/quality.py --steps 20 --steps3d 10 --quick   # smoke test

Tables go to stdout and to ``benchmarks/results/quality_<set>.md`` / ``.json`` (rewritten after
every row, so partial results survive an interrupted run).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"

ALL_ROWS_2D = ["noisy", "n2v", "struct", "bm3d", "n2gt", "sweep", "const", "n2v2"]
ALL_ROWS_3D = ["noisy", "n2v", "struct", "n2gt"]
#: rows that take the time budget (--time / --time3d) instead of the step budget
TIMED_ROWS = ["default", "slices", "net3d", "nocontext"]
SETS = {
    # name: (axes, noise axis index in the array, noise-axis letter, folder: shared or built here)
    "dev2d_x": ("SYX", -1, "X", "shared"),
    "dev3d_y": ("ZYX", -2, "Y", "shared"),
    "sparse2d_x": ("SYX", -1, "X", "local"),
    "dense2d_y": ("SYX", -2, "Y", "local"),
    "aniso3d_x": ("ZYX", -1, "X", "local"),
    "long3d_y": ("ZYX", -2, "Y", "local"),
}
LOCAL_DATA = Path(__file__).resolve().parent / "data"  # made by benchmarks/devsets.py


# ------------------------------------------------------------------------------------ metrics
def lag1_corr(residual: np.ndarray, axis: int, stack_axis: int | None) -> float:
    """Lag-1 autocorrelation of the residual along ``axis`` (mean removed per image/volume)."""
    if stack_axis is None:
        parts = [residual]
    else:
        parts = [np.take(residual, i, axis=stack_axis) for i in range(residual.shape[stack_axis])]
        axis = axis if axis < 0 else axis - 1
    vals = []
    for r in parts:
        r = r.astype(np.float64) - r.mean()
        n = r.shape[axis]
        a = np.take(r, range(0, n - 1), axis=axis)
        b = np.take(r, range(1, n), axis=axis)
        vals.append(float((a * b).mean() / (r * r).mean()))
    return float(np.mean(vals))


def score(denoised: np.ndarray, gt: np.ndarray, set_name: str) -> dict:
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.metrics import structural_similarity as ssim

    axes, noise_axis, _, _ = SETS[set_name]
    other_axis = -2 if noise_axis == -1 else -1
    denoised = np.asarray(denoised, dtype=np.float32)
    stack = 0 if axes == "SYX" else None
    if axes == "SYX":
        p = float(np.mean([psnr(g, d, data_range=1.0) for g, d in zip(gt, denoised)]))
        s = float(np.mean([ssim(g, d, data_range=1.0) for g, d in zip(gt, denoised)]))
    else:
        p = float(psnr(gt, denoised, data_range=1.0))
        win = min(7, min(gt.shape) - (1 - min(gt.shape) % 2))  # odd, <= the smallest side (smoke tests)
        s = float(ssim(gt, denoised, data_range=1.0, win_size=win))
    c = lag1_corr(denoised - gt, noise_axis, stack_axis=stack)
    # stripe excess: residual correlation along the noise axis beyond that across it (a blurred
    # but stripe-free result has the same lag-1 correlation both ways)
    excess = c - lag1_corr(denoised - gt, other_axis, stack_axis=stack)
    return {"psnr": p, "ssim": s, "lag1": c, "stripe_excess": excess}


# ------------------------------------------------------------------------------------ methods
def run_self_supervised(noisy, axes, mask, cfg, log_every=250):
    from napari_structn2v.training.loop import TrainDone, TrainStep, train_iter

    t0 = time.perf_counter()
    model, last = None, None
    for ev in train_iter(noisy, axes, mask, cfg):
        if isinstance(ev, TrainStep):
            last = ev
            if ev.step % log_every == 0:
                print(f"    step {ev.step}/{ev.total_steps} loss {ev.loss:.5f} lr {ev.lr:.2e} "
                      f"{ev.patches_per_s:.0f} patches/s", flush=True)
        elif isinstance(ev, TrainDone):
            model = ev.model
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = model.predict(noisy, axes, device=cfg.device)
    pred_s = time.perf_counter() - t1
    return out, train_s, pred_s, (last.patches_per_s if last else float("nan")), (last.step if last else 0)


def run_n2gt(noisy, gt, axes, cfg, log_every=250):
    """Supervised reference: same U-Net, PatchSampler over stacked (noisy, gt) channels,
    full-patch MSE, same steps / batch / lr / schedule / flips / validation split as N2V."""
    import torch

    from napari_structn2v.devices import resolve_device
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig
    from napari_structn2v.training.budget import lr_factor
    from napari_structn2v.training.checks import patch_shape
    from napari_structn2v.training.data import PatchSampler, normalize, percentiles, prepare_arrays, split_validation

    arrays, sp = prepare_arrays(noisy, axes)
    gts, _ = prepare_arrays(gt, axes)
    nd = len(sp)
    patch = patch_shape(cfg, nd)
    low, high = percentiles(arrays, cfg.pmin, cfg.pmax)  # noisy-image normalisation, as N2V
    xn = normalize(arrays, low, high)
    yn = normalize(gts, low, high)
    pairs = [np.concatenate([x, y], axis=1) for x, y in zip(xn, yn)]  # (N, 2, ...)
    train_arr, _ = split_validation(pairs, cfg.val_fraction, patch)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    arch = UNetConfig(spatial_ndim=nd, in_channels=1, out_channels=1, depth=cfg.depth,
                      base_filters=cfg.base_filters, kernel_size=cfg.kernel_size, pool=cfg.pool, n2v2=cfg.n2v2)
    net = UNet(arch).to(device)
    if nd == 2 and device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    sampler = PatchSampler(train_arr, patch, rng=np.random.default_rng(cfg.seed), device=device)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(cfg.schedule, s / cfg.steps))
    use_amp = bool(cfg.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    net.train()
    t0 = time.perf_counter()
    for step in range(1, cfg.steps + 1):
        b = sampler.sample(cfg.batch_size)
        r = int(torch.randint(0, 4, (1,), generator=gen, device=gen.device).item())
        if r & 1:
            b = b.flip(-1)
        if r & 2:
            b = b.flip(-2)
        x, y = b[:, :1], b[:, 1:]
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            pred = net(x)
        loss = ((pred.float() - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        if step % log_every == 0:
            el = time.perf_counter() - t0
            print(f"    step {step}/{cfg.steps} loss {loss.item():.5f} {step * cfg.batch_size / el:.0f} patches/s", flush=True)
    train_s = time.perf_counter() - t0
    net.eval()
    model = StructN2VModel(net, new_model_config(axes, np.ones((1,) * nd, bool), low, high, arch, {}))
    t1 = time.perf_counter()
    out = model.predict(noisy, axes, device=cfg.device)
    pred_s = time.perf_counter() - t1
    return out, train_s, pred_s, cfg.steps * cfg.batch_size / train_s


def dark_psd(dark: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Noise PSD in bm3d's convention, on a grid of ``shape``, averaged over dark frames.

    bm3d wants the FFT of the noise autocovariance *multiplied* by the number of pixels N
    (its own examples build ``|fft2(kernel)|^2 * sigma^2 * N``; white noise of variance s^2 has
    PSD = s^2 * N everywhere). Since FFT(autocovariance) = |FFT(dark - mean)|^2 / N, that is
    simply ``|FFT(dark - mean)|^2``. (Dividing by N once more makes bm3d see ~N times too little
    noise and return the input unchanged.)"""
    frames = dark.reshape((-1, *dark.shape[-2:])).astype(np.float64)
    h, w = shape
    acc, n = np.zeros(shape), 0
    for f in frames:
        # tile the dark frame into shape-sized blocks (dark frames match the image size here)
        for y in range(0, f.shape[0] - h + 1, h):
            for x in range(0, f.shape[1] - w + 1, w):
                blk = f[y : y + h, x : x + w]
                blk = blk - blk.mean()
                acc += np.abs(np.fft.fft2(blk)) ** 2  # = N * FFT(autocovariance)
                n += 1
    return acc / max(n, 1)


def run_bm3d(noisy: np.ndarray, dark: np.ndarray):
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid  # bm3d 4.0.3 uses np.trapz (removed in NumPy 2.4)
    import bm3d

    psd = dark_psd(dark, noisy.shape[-2:])
    t0 = time.perf_counter()
    out = np.stack([np.asarray(bm3d.bm3d(img.astype(np.float64), sigma_psd=psd), dtype=np.float32)
                    for img in noisy.reshape((-1, *noisy.shape[-2:]))]).reshape(noisy.shape)
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------------------------ tables
def write_tables(set_name: str, header: str, rows: list[dict], outdir: Path) -> str:
    lines = [f"### {set_name}", "", header, "",
             "| method | mask | steps | PSNR (dB) | SSIM | lag-1 residual corr | stripe excess | train s | patches/s |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        steps = "" if r.get("steps") is None else str(r["steps"])
        ts = "" if r.get("train_s") is None else f"{r['train_s']:.0f}"
        pps = "" if r.get("patches_per_s") is None else f"{r['patches_per_s']:.0f}"
        se = r.get("stripe_excess")
        se = "" if se is None or not math.isfinite(se) else f"{se:+.3f}"
        lines.append(f"| {r['method']} | {r.get('mask', '')} | {steps} | {r['psnr']:.2f} | {r['ssim']:.3f} | "
                     f"{r['lag1']:+.3f} | {se} | {ts} | {pps} |")
    text = "\n".join(lines) + "\n"
    outdir.mkdir(parents=True, exist_ok=True)
    (outdir / f"quality_{set_name}.md").write_text(text)
    (outdir / f"quality_{set_name}.json").write_text(json.dumps({"set": set_name, "header": header, "rows": rows}, indent=1))
    return text


def load_set(data: Path, name: str):
    import tifffile

    folder = data / name
    files = {k: folder / f"{k}.tif" for k in ("gt", "noisy", "dark")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        sys.exit(f"quality.py: missing data files: {', '.join(missing)}\n"
                 f"Expected the development sets under {data} (see ../shared/data/README.md); pass --data PATH.")
    return {k: tifffile.imread(p).astype(np.float32) for k, p in files.items()}


def run_nlm(noisy: np.ndarray, gt: np.ndarray, dark: np.ndarray, axes: str):
    """NL-means (scikit-image), its filter strength h tuned on the ground truth (a generous
    reference: a user could not tune it so), per 2D image/slice."""
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.restoration import denoise_nl_means

    sigma = float(dark.std())
    imgs = noisy.reshape((-1, *noisy.shape[-2:]))
    gts = gt.reshape((-1, *gt.shape[-2:]))
    t0 = time.perf_counter()
    best = None
    for h in (0.6, 0.8, 1.0, 1.3):
        probe = [denoise_nl_means(imgs[i], h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
                 for i in range(0, len(imgs), max(1, len(imgs) // 3))]
        val = np.mean([psnr(gts[i], p, data_range=1.0) for i, p in zip(range(0, len(imgs), max(1, len(imgs) // 3)), probe)])
        if best is None or val > best[0]:
            best = (val, h)
    h = best[1]
    out = np.stack([denoise_nl_means(im, h=h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True) for im in imgs])
    return out.reshape(noisy.shape).astype(np.float32), time.perf_counter() - t0, h


def careamics_rows(set_name: str) -> list[dict]:
    """CAREamics results recorded by benchmarks/peers/careamics_n2v.py (its own venv)."""
    folder = Path(__file__).resolve().parent / "peers" / "results"
    rows = []
    for f in sorted(folder.glob(f"{set_name}_*.json")):
        r = json.loads(f.read_text())
        rows.append(r)
    return rows


def load_any_set(args, set_name: str):
    folder = args.data if SETS[set_name][3] == "shared" else args.local_data
    if not (folder / set_name).is_dir() and SETS[set_name][3] == "local":
        sys.exit(f"quality.py: {folder / set_name} not found; build it with: python benchmarks/devsets.py")
    return load_set(folder, set_name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder holding dev2d_x/ and dev3d_y/ (default: ../shared/data)")
    ap.add_argument("--local-data", type=Path, default=LOCAL_DATA, help="folder of the sets built by devsets.py")
    ap.add_argument("--sets", default="dev2d_x,dev3d_y")
    ap.add_argument("--rows", default=None, help=f"comma list, run in the order given; 2D: {','.join(ALL_ROWS_2D)} or sweep:WxH for one sweep row; 3D: {','.join(ALL_ROWS_3D)} (default: all); with --time: {','.join(TIMED_ROWS)}, nlm, careamics too")
    ap.add_argument("--sweep", default="3x1,5x1,7x1,9x1,13x1,17x1", help="mask widths of the sweep rows")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--time", type=float, default=None, help="equal wall-clock mode: the 'default' row trains with every "
                    "setting at its default for this many seconds (2D sets; issue #8 uses 210, CAREamics' time for 1500 steps)")
    ap.add_argument("--time3d", type=float, default=None, help="the same for the 3D sets (issue #8: 400)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--schedule", default="cosine", choices=["cosine", "constant"],
                    help="lr schedule of all learned rows except the 'const' row, which uses the other one "
                         "(default cosine, as in the published results; set explicitly so that a change of "
                         "TrainConfig's default does not change the benchmark)")
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--steps3d", type=int, default=600)
    ap.add_argument("--batch3d", type=int, default=4)
    ap.add_argument("--patch-z", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--images", type=int, default=None, help="use only the first N images / Z slices (smoke tests)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--resume", action="store_true", help="keep the rows already in results/quality_<set>.json "
                    "(same method, mask and steps) and run only the missing ones")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    if not args.data.is_dir():
        sys.exit(f"quality.py: data folder {args.data} not found. The development sets live in ../shared/data "
                 f"relative to the repository root; pass --data PATH.")

    import torch

    from napari_structn2v.config import TrainConfig
    from napari_structn2v.noise.analysis import analyze_noise

    if args.threads:
        torch.set_num_threads(args.threads)

    print(f"# quality benchmark  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"load avg {os.getloadavg()[0]:.2f}", flush=True)
    for set_name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if set_name not in SETS:
            sys.exit(f"unknown set {set_name!r}; choose from {list(SETS)}")
        axes, noise_axis, noise_letter, _ = SETS[set_name]
        is3d = axes == "ZYX"
        d = load_any_set(args, set_name)
        noisy, gt, dark = d["noisy"], d["gt"], d["dark"]
        if args.images:
            noisy, gt = noisy[: args.images], gt[: args.images]
        ana = analyze_noise(dark, axes=axes, dark=True)  # as `--mask auto --dark dark.tif` analyses it
        if ana.spec is None:  # its bounding box's spec would train another mask than the suggested one
            raise SystemExit(f"{set_name}: the suggested mask is not a box; quality.py trains from WxH specs "
                             "(benchmarks/noise_models.py trains any mask)")
        sugg = ana.spec
        budget_s = args.time3d if is3d else args.time
        all_rows = (ALL_ROWS_3D if is3d else ALL_ROWS_2D) + TIMED_ROWS + ["nlm", "careamics", "bm3d"]
        if is3d:
            steps, batch = args.steps3d, args.batch3d
            rows_sel = ALL_ROWS_3D if args.rows is None else [r for r in args.rows.split(",") if r in all_rows]
            base = TrainConfig(steps=steps, batch_size=batch, patch_size=args.patch, patch_size_z=args.patch_z,
                               lr=args.lr, schedule=args.schedule, base_filters=args.filters, seed=args.seed, device=args.device,
                               amp=False, norm="batch")
            header = (f"axes ZYX {noisy.shape}, 3D U-Net (depth {base.depth}, {base.base_filters} filters, 3x3x3 convs, 2x2x2 pool), "
                      f"{steps} steps, batch {batch}, patch {args.patch_z}x{args.patch}x{args.patch}, lr {args.lr} {base.schedule} unless noted; "
                      f"replacement {getattr(base, 'replacement', 'uniform')}; noise along {noise_letter}; suggested mask {sugg}; device {args.device}; "
                      f"time budget {budget_s} s for the timed rows; load avg at start {os.getloadavg()[0]:.2f}")
            n2v_mask = "1x1x1"
        else:
            steps, batch = args.steps, args.batch
            rows_sel = ALL_ROWS_2D if args.rows is None else [r for r in args.rows.split(",") if r in all_rows or r.startswith("sweep:")]
            base = TrainConfig(steps=steps, batch_size=batch, patch_size=args.patch, lr=args.lr, schedule=args.schedule,
                               base_filters=args.filters, seed=args.seed, device=args.device, amp=False, norm="batch")
            header = (f"axes SYX {noisy.shape}, 2D U-Net (depth {base.depth}, {base.base_filters} filters), {steps} steps, batch {batch}, "
                      f"patch {args.patch}x{args.patch}, lr {args.lr} {base.schedule} unless noted; "
                      f"replacement {getattr(base, 'replacement', 'uniform')}; noise along {noise_letter}; "
                      f"suggested mask {sugg}; device {args.device}; time budget {budget_s} s for the timed rows; "
                      f"load avg at start {os.getloadavg()[0]:.2f}")
            n2v_mask = "1x1"
        print(f"\n## {set_name}: {header}\n{ana.report()}\n", flush=True)
        results: list[dict] = []
        done: dict[tuple, dict] = {}
        prev = args.out / f"quality_{set_name}.json"
        if args.resume and prev.exists():
            old = json.loads(prev.read_text())
            if old.get("header", "").split("; load avg")[0] == header.split("; load avg")[0]:
                # the header pins every setting, so method and mask identify a row (timed rows record the
                # steps they reached, not a budget)
                done = {(r["method"], r.get("mask", "")): r for r in old["rows"]}
                print(f"resuming: {len(done)} finished rows kept from {prev}", flush=True)

        def cached(method: str, mask: str, steps=None) -> bool:
            r = done.get((method, mask))
            if r is None:
                return False
            results.append(r)
            print(f"  (kept) {method} {mask}: PSNR {r['psnr']:.2f}", flush=True)
            write_tables(set_name, header, results, args.out)
            return True

        def add(row: dict, out: np.ndarray | None = None, metrics: dict | None = None):
            row.update(metrics if metrics is not None else score(out, gt, set_name))
            row["load_avg"] = round(os.getloadavg()[0], 2)
            results.append(row)
            print(f"  -> {row['method']} {row.get('mask', '')}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.3f} "
                  f"lag1 {row['lag1']:+.3f} stripe excess {row.get('stripe_excess', float('nan')):+.3f}"
                  + (f" ({row['train_s']:.0f} s)" if row.get("train_s") else ""), flush=True)
            write_tables(set_name, header, results, args.out)

        def learned(method: str, mask: str, cfg: TrainConfig, data=None, data_axes=None):
            if cached(method, mask, cfg.steps):
                return
            print(f"[{time.strftime('%H:%M:%S')}] {set_name}: {method} mask {mask} ({cfg.steps} steps, {cfg.max_time_s} s)", flush=True)
            out, ts, ps, pps, n_steps = run_self_supervised(noisy if data is None else data, data_axes or axes, mask, cfg)
            add({"method": method, "mask": mask, "steps": n_steps, "train_s": ts, "predict_s": ps,
                 "patches_per_s": pps, "schedule": cfg.schedule, "n2v2": cfg.n2v2}, out.reshape(noisy.shape))

        for row in rows_sel:
            if row == "noisy":
                add({"method": "noisy input", "mask": "", "steps": None, "train_s": None}, noisy)
            elif row == "n2v":
                learned("N2V", n2v_mask, copy.deepcopy(base))
            elif row == "struct":
                learned("StructN2V (suggested)", sugg, copy.deepcopy(base))
            elif row in TIMED_ROWS:
                if budget_s is None:
                    sys.exit(f"quality.py: the {row!r} row needs --time (2D) / --time3d (3D)")
                # every setting at its default, the mask as `--mask auto --dark dark.tif` picks it
                cfg = TrainConfig(steps=None, max_time_s=budget_s, seed=args.seed, device=args.device)
                if row == "default" and is3d:  # the label names the Z context (the default since z_context)
                    learned(f"StructN2V, defaults ({cfg.z_context} neighbour slice each side for a 2D net), {budget_s:g} s", sugg, cfg)
                elif row in ("default", "nocontext"):  # nocontext: each Z slice alone (the default before z_context)
                    cfg.z_context = 0
                    learned(f"StructN2V, defaults, {budget_s:g} s", sugg, cfg)
                elif row == "net3d":  # the 3D network that z_net="auto" does not choose here
                    cfg.z_net = "3d"
                    learned(f"StructN2V 3D net, defaults otherwise, {budget_s:g} s", sugg, cfg)
                else:  # a 2D model over the Z slices, with the 2D part of the suggested mask
                    mask2d = ana.mask.any(0) if ana.mask.ndim == 3 else ana.mask
                    spec2d = f"{mask2d.shape[1]}x{mask2d.shape[0]}"
                    learned(f"StructN2V 2D over Z slices, defaults, {budget_s:g} s", spec2d, cfg, data=noisy, data_axes="SYX")
            elif row == "bm3d":
                if cached("BM3D + PSD (dark.tif)", "", None):
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] {set_name}: BM3D + PSD from dark.tif", flush=True)
                out, secs = run_bm3d(noisy, dark)
                add({"method": "BM3D + PSD (dark.tif)", "mask": "", "steps": None, "train_s": None, "run_s": secs}, out)
            elif row == "nlm":
                if cached("NL-means, h tuned on gt", "", None):
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] {set_name}: NL-means", flush=True)
                out, secs, h = run_nlm(noisy, gt, dark, axes)
                add({"method": "NL-means, h tuned on gt", "mask": f"h={h}*sigma", "steps": None, "train_s": None, "run_s": secs}, out)
            elif row == "careamics":
                for r in careamics_rows(set_name):
                    add({"method": f"CAREamics 0.3.5 N2V, span {r['span']}, constant lr, {r.get('filters', 32)} filters",
                         "mask": "", "steps": r["steps"], "train_s": r.get("train_seconds", r.get("train_s")), "patches_per_s": None},
                        metrics={k: r.get(k, float("nan")) for k in ("psnr", "ssim", "lag1", "stripe_excess")})
            elif row == "n2gt":
                if cached("N2GT (supervised, same net)", "", base.steps):
                    continue
                print(f"[{time.strftime('%H:%M:%S')}] {set_name}: N2GT (supervised)", flush=True)
                out, ts, ps, pps = run_n2gt(noisy, gt, axes, copy.deepcopy(base))
                add({"method": "N2GT (supervised, same net)", "mask": "", "steps": base.steps, "train_s": ts,
                     "predict_s": ps, "patches_per_s": pps}, out)
            elif row == "sweep":
                for spec in [s.strip() for s in args.sweep.split(",") if s.strip()]:
                    if spec == sugg:
                        continue  # already the "suggested" row
                    learned("StructN2V sweep", spec, copy.deepcopy(base))
            elif row.startswith("sweep:"):
                learned("StructN2V sweep", row.split(":", 1)[1], copy.deepcopy(base))
            elif row == "const":
                cfg = copy.deepcopy(base)
                cfg.schedule = "constant" if base.schedule == "cosine" else "cosine"
                learned(f"StructN2V, {cfg.schedule} lr", sugg, cfg)
            elif row == "n2v2":
                cfg = copy.deepcopy(base)
                cfg.n2v2 = True
                learned("StructN2V + N2V2 net", sugg, cfg)
        print("\n" + write_tables(set_name, header, results, args.out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
