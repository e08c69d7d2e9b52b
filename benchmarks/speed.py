"""Training and prediction speed benchmark (issue #2, section 6).

Measures, with the package's own training loop (:func:`napari_structn2v.training.loop.train_iter`):

* 2D training throughput (steps/s, patches/s): patch 64x64, batch 16, depth 2, mask 9x1, with
  32 base filters and with the StructN2V paper's 16-filter net;
* the share of the step time spent in masking (``blind_mask_batch`` timed on its own, over
  batches drawn by the same sampler);
* 3D training throughput: 16x64x64 patches, batch 4, the default 3D net (3x3x3 convs, 2x2x2
  pooling) and the paper's net (``kernel_size=(3, 5, 5)``, ``pool=(1, 2, 2)``), mask 1x9x1;
* prediction throughput in MPix/s: a 2D 1024x1024 image (tile 256) and a 3D 32x256x256 volume,\n  with test-time augmentation off and on; with ``--compare SRC`` side by side with another copy of\n  the package (today's code) in the same process, repeats interleaved.

Step times are the gaps between consecutive ``TrainStep`` events after warm-up steps; the
reported numbers are medians. Validation is switched off (``val_fraction=0``) so no step pays
for it. The 1-minute load average is printed next to each row: on a shared machine, compare
numbers only at similar load.

Usage (from the repository root)::

    python benchmarks/speed.py                  # CPU, writes benchmarks/results/speed_cpu.md
    python benchmarks/speed.py --device cuda    # GPU with mixed precision, speed_cuda.md
    python benchmarks/speed.py --quick          # fewer steps (smoke test)
    python benchmarks/speed.py --skip train2d,train3d --compare /work/main/src --threads 2 --tag cpu_predict_compare --repeats 5
                                                # prediction: today's code vs this one, side by side
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def step_gaps(events, warmup: int, wait) -> list[float]:
    """Seconds between consecutive ``TrainStep`` events of ``events`` after ``warmup`` steps;
    ``wait()`` lets the device finish before each reading (also used by ``gpu.py``)."""
    from napari_structn2v.training.loop import TrainStep

    gaps, last = [], None
    for ev in events:
        if isinstance(ev, TrainStep):
            wait()
            now = time.perf_counter()
            if last is not None and ev.step > warmup:
                gaps.append(now - last)
            last = now
    return gaps


def train_data(nd: int, data: Path) -> np.ndarray:
    """Noisy dev data when available (dev2d_x / dev3d_y), else random data of the same size."""
    import tifffile

    name = "dev2d_x" if nd == 2 else "dev3d_y"
    f = data / name / "noisy.tif"
    if f.exists():
        return tifffile.imread(f).astype(np.float32)
    rng = np.random.default_rng(0)
    return rng.random((10, 256, 256) if nd == 2 else (30, 256, 256), dtype=np.float32)


def bench_train(name: str, images, axes: str, mask: str, cfg, warmup: int, timed: int, device: str) -> dict:
    """Median step time of train_iter plus the median time of blind_mask_batch alone."""
    import torch

    from napari_structn2v.method.blindspot import blind_mask_batch, mask_offsets
    from napari_structn2v.method.masks import parse_mask_spec
    from napari_structn2v.training.checks import patch_shape
    from napari_structn2v.training.data import PatchSampler, normalize, percentiles, prepare_arrays
    from napari_structn2v.training.loop import train_iter

    cfg.steps = warmup + timed
    cfg.val_fraction = 0.0
    cfg.device = device
    times = step_gaps(train_iter(images, axes, mask, cfg), warmup, lambda: sync(device))
    step_s = statistics.median(times)

    # masking alone, on batches from the same kind of sampler, same device
    arrays, sp = prepare_arrays(images, axes)
    low, high = percentiles(arrays, cfg.pmin, cfg.pmax)
    patch = patch_shape(cfg, len(sp))
    dev = torch.device("cuda" if device.startswith("cuda") else device)
    sampler = PatchSampler(normalize(arrays, low, high), patch, rng=np.random.default_rng(cfg.seed), device=dev)
    offsets = mask_offsets(parse_mask_spec(mask)).to(dev)
    gen = torch.Generator(device=dev)
    gen.manual_seed(0)
    batches = [sampler.sample(cfg.batch_size) for _ in range(warmup + timed)]
    mtimes = []
    for i, b in enumerate(batches):
        sync(device)
        t0 = time.perf_counter()
        blind_mask_batch(b, offsets, fraction=cfg.masked_fraction, generator=gen)
        sync(device)
        if i >= warmup:
            mtimes.append(time.perf_counter() - t0)
    mask_s = statistics.median(mtimes)
    row = {
        "name": name,
        "patch": "x".join(map(str, patch)),
        "batch": cfg.batch_size,
        "filters": cfg.base_filters,
        "kernel": cfg.kernel_size,
        "pool": cfg.pool,
        "mask": mask,
        "step_ms": step_s * 1e3,
        "steps_per_s": 1.0 / step_s,
        "patches_per_s": cfg.batch_size / step_s,
        "mask_ms": mask_s * 1e3,
        "mask_share": mask_s / step_s,
        "timed_steps": len(times),
        "load_avg": load_avg(),
    }
    print(f"  {name}: {row['patches_per_s']:.1f} patches/s ({row['steps_per_s']:.2f} steps/s), "
          f"masking {row['mask_ms']:.2f} ms = {100 * row['mask_share']:.1f} % of a step; load {row['load_avg']}", flush=True)
    return row


def load_package(src: Path, alias: str):
    """The package ``napari_structn2v`` from the source folder ``src`` (e.g. /work/main/src, today's
    code) imported under the name ``alias``, beside the one on the path: both run in one process,
    so their timings share the machine's load and can be interleaved."""
    import importlib.util
    import sys

    root = Path(src) / "napari_structn2v"
    spec = importlib.util.spec_from_file_location(alias, root / "__init__.py", submodule_search_locations=[str(root)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module
    spec.loader.exec_module(module)
    return module


def _predict_model(pkg, nd: int, filters: int, kernel, pool, state: dict | None):
    """A model of package ``pkg`` (random weights, or ``state``) with a 9-px line mask along X,
    whose test-time augmentation is the 4 flips of Y and X."""
    import importlib

    import torch

    def module(new: str, old: str):  # --compare may name a tree from before the subpackages (0.2)
        try:
            return importlib.import_module(f"{pkg.__name__}.{new}")
        except ModuleNotFoundError:
            return importlib.import_module(f"{pkg.__name__}.{old}")

    unet = module("nn.unet", "unet")
    model_io = module("model", "model_io")
    torch.manual_seed(0)
    arch = unet.UNetConfig(spatial_ndim=nd, base_filters=filters, kernel_size=kernel, pool=pool)
    net = unet.UNet(arch).eval()
    if state is not None:
        net.load_state_dict(state)
    mask = np.zeros((1,) * (nd - 1) + (9,), bool)
    mask[..., :] = True
    return model_io.StructN2VModel(net, model_io.new_model_config("YX" if nd == 2 else "ZYX", mask, [0.0], [1.0], arch, {}))


def bench_predict(name: str, nd: int, filters: int, shape: tuple[int, ...], tile: int, repeats: int, device: str,
                  variants: list[tuple[str, object, dict]], kernel=None, pool=None, half_turn: bool = False) -> list[dict]:
    """Prediction time of each variant ``(label, package, predict kwargs)`` on one image, with test-time
    augmentation off and on (and, with ``half_turn``, ``tta="half-turn"`` for the variants of this
    code), the variants' repeats interleaved (each round runs every variant once); medians. All
    variants get the same weights."""
    state = None
    models = []
    for label, pkg, kwargs in variants:
        model = _predict_model(pkg, nd, filters, kernel, pool, state)
        state = state or model.net.state_dict()
        models.append((label, model, kwargs))
    img = np.random.default_rng(0).random(shape, dtype=np.float32)
    axes = "YX" if nd == 2 else "ZYX"
    amp = device.startswith("cuda")
    times: dict[tuple[str, bool], list[float]] = {}
    for rep in range(repeats + 1):  # round 0 is the warm-up
        for label, model, kwargs in models:
            modes = (False, True) + (("half-turn",) if half_turn and model.__module__.startswith("napari_structn2v.") else ())
            for tta in modes:
                sync(device)
                t0 = time.perf_counter()
                model.predict(img, axes, tile=tile, device=device, amp=amp, tta=tta, **kwargs)
                sync(device)
                if rep:
                    times.setdefault((label, tta), []).append(time.perf_counter() - t0)
    rows = []
    base = None
    for label, _, _ in models:
        one, aug = statistics.median(times[(label, False)]), statistics.median(times[(label, True)])
        base = base or one
        row = {"name": name, "variant": label, "shape": "x".join(map(str, shape)), "tile": tile, "filters": filters,
               "seconds": one, "mpix_per_s": float(np.prod(shape)) / one / 1e6, "speedup": base / one,
               "tta_seconds": aug, "tta_cost": aug / one, "load_avg": load_avg()}
        if (label, "half-turn") in times:
            half = statistics.median(times[(label, "half-turn")])
            row.update(half_seconds=half, half_cost=half / one)
        print(f"  {name}, {label}: {row['mpix_per_s']:.2f} MPix/s ({one:.2f} s, x{row['speedup']:.2f}); "
              f"TTA {aug:.2f} s = {row['tta_cost']:.2f} x one pass; load {row['load_avg']}", flush=True)
        rows.append(row)
    return rows


def write_report(args, header, train_rows, pred_rows, dev_name, final: bool) -> str:
    end_load = os.getloadavg()
    lines = ["## Training speed (train_iter, 1 step = sample + mask + augment + forward + backward + Adam)", "",
             header, "",
             "| setting | threads | patch | batch | mask | step ms | steps/s | patches/s | masking ms | masking share | load |",
             "| --- | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in train_rows:
        lines.append(f"| {r['name']} | {r['threads']} | {r['patch']} | {r['batch']} | {r['mask']} | {r['step_ms']:.1f} | {r['steps_per_s']:.2f} | "
                     f"{r['patches_per_s']:.1f} | {r['mask_ms']:.2f} | {100 * r['mask_share']:.1f} % | {r['load_avg']:.2f} |")
    lines += ["", "## Prediction speed (model.predict, tiled; variants interleaved, medians of repeats after a warm-up round)", "",
              "Speed-up: against the first variant of the same setting, measured in the same rounds. TTA: the 4 flips "
              "of a line mask; cost = time with TTA / time of one pass of the same variant. Half turn: "
              "`tta=\"half-turn\"` (identity + flip of Y and X, 2 passes), where measured (`--half-turn`).", "",
              "| setting | variant | threads | image | tile | seconds | MPix/s | speed-up | TTA seconds | TTA cost "
              "| half-turn seconds | half-turn cost | load |",
              "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in pred_rows:
        half = f"{r['half_seconds']:.2f} | {r['half_cost']:.2f}x" if "half_seconds" in r else "- | -"
        lines.append(f"| {r['name']} | {r['variant']} | {r['threads']} | {r['shape']} | {r['tile']} | {r['seconds']:.2f} | "
                     f"{r['mpix_per_s']:.2f} | {r['speedup']:.2f}x | {r['tta_seconds']:.2f} | {r['tta_cost']:.2f}x | {half} "
                     f"| {r['load_avg']:.2f} |")
    lines += ["", f"Load average at end: {end_load[0]:.2f} / {end_load[1]:.2f} / {end_load[2]:.2f}."]
    text = "\n".join(lines) + "\n"
    tag = args.tag or ("cuda" if dev_name.startswith("cuda") else "cpu")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"speed_{tag}.md").write_text(text)
    (args.out / f"speed_{tag}.json").write_text(json.dumps({"header": header, "train": train_rows, "predict": pred_rows}, indent=1, default=str))
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda / cuda:0 (mixed precision)")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="dev sets (noisy.tif used as training data; random data if absent)")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30, help="timed 2D steps per row")
    ap.add_argument("--steps3d", type=int, default=12, help="timed 3D steps per row")
    ap.add_argument("--repeats", type=int, default=3, help="timed prediction repeats")
    ap.add_argument("--quick", action="store_true", help="3 warm-up / 5 timed steps, 1 repeat")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: train2d,train3d,predict,predict32 (the 32-filter row)")
    ap.add_argument("--threads", default=None, help="torch CPU threads, a comma list runs every part once per value, "
                    "e.g. '2,1' (default: torch's choice, = cores)")
    ap.add_argument("--tag", default=None, help="suffix of the result files (default: cpu / cuda)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--compare", type=Path, default=None, metavar="SRC",
                    help="also predict with the package in SRC (e.g. /work/main/src, today's code), interleaved with "
                    "this one")
    ap.add_argument("--float32", action="store_true", help="with --compare: also this code in float32")
    ap.add_argument("--half-turn", action="store_true", help="also time tta='half-turn' (2 passes) with this code")
    args = ap.parse_args(argv)
    if args.quick:
        args.warmup, args.steps, args.steps3d, args.repeats = 3, 5, 3, 1
    skip = set(filter(None, args.skip.split(",")))

    import torch

    from napari_structn2v.config import TrainConfig

    thread_list = [int(t) for t in str(args.threads).split(",")] if args.threads else [torch.get_num_threads()]
    dev_name = args.device
    if dev_name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit("speed.py: --device cuda but torch.cuda.is_available() is False")
        hw = torch.cuda.get_device_name(0)
    else:
        hw = f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, torch threads {','.join(map(str, thread_list))}"
    start_load = os.getloadavg()
    header = (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; device {dev_name} ({hw}); torch {torch.__version__}; "
              f"load average at start {start_load[0]:.2f} / {start_load[1]:.2f} / {start_load[2]:.2f} (1/5/15 min); "
              f"medians over {args.steps} (2D) / {args.steps3d} (3D) timed steps after {args.warmup} warm-up steps"
              + ("; AMP (float16 autocast) on" if dev_name.startswith("cuda") else "")
              + "; command `python benchmarks/speed.py " + " ".join(sys.argv[1:] if argv is None else argv) + "`")
    print(f"# speed benchmark\n{header}\n", flush=True)

    train_rows, pred_rows = [], []
    for nthreads in thread_list:
        torch.set_num_threads(nthreads)
        tr0, pr0 = len(train_rows), len(pred_rows)
        if "train2d" not in skip:
            img2 = train_data(2, args.data)
            for filt, label in ((32, "2D, 32 filters"), (16, "2D, 16 filters (paper)")):
                cfg = TrainConfig(batch_size=16, patch_size=64, depth=2, base_filters=filt, seed=0)
                train_rows.append(bench_train(label, img2, "SYX", "9x1", cfg, args.warmup, args.steps, dev_name))
        if "train3d" not in skip:
            img3 = train_data(3, args.data)
            for kern, pool, label in ((None, None, "3D, default net (3x3x3 conv, 2x2x2 pool)"),
                                      ((3, 5, 5), (1, 2, 2), "3D, paper net (3x5x5 conv, 1x2x2 pool)")):
                cfg = TrainConfig(batch_size=4, patch_size=64, patch_size_z=16, depth=2, base_filters=16,
                                  kernel_size=kern, pool=pool, seed=0)
                train_rows.append(bench_train(label, img3, "ZYX", "1x9x1", cfg, min(args.warmup, 3), args.steps3d, dev_name))
        if "predict" not in skip:
            import napari_structn2v

            variants = [("this code", napari_structn2v, {})]
            if args.compare is not None:
                variants = [("today's code (" + str(args.compare) + ")", load_package(args.compare, "napari_structn2v_today"), {}),
                            *variants] + ([("this code, float32", napari_structn2v, {"precision": "float32"})] if args.float32 else [])
            for label, nd, filt, shape in (("2D 1024x1024, 16 filters", 2, 16, (1024, 1024)),
                                           ("2D 1024x1024, 32 filters", 2, 32, (1024, 1024)),
                                           ("3D 32x256x256, default net", 3, 16, (32, 256, 256))):
                if not (filt == 32 and "predict32" in skip):
                    pred_rows += bench_predict(label, nd, filt, shape, 256, args.repeats, dev_name, variants,
                                               half_turn=args.half_turn)

        for r in train_rows[tr0:] + pred_rows[pr0:]:
            r["threads"] = nthreads if not dev_name.startswith("cuda") else "-"
        write_report(args, header, train_rows, pred_rows, dev_name, final=False)  # partial results survive
    print("\n" + write_report(args, header, train_rows, pred_rows, dev_name, final=True), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
