"""The GPU check's benchmark (issue 18, item 4): training and prediction speed on one device, one table.

Rows (each timed after warm-up, medians; CUDA work synchronised before every clock read):

* training, the package's own loop (``train_iter``): 2D (patch 64, batch 16, 16 filters, mask 9x1)
  and 3D (16x64x64, batch 4, the default 3D net, mask 1x9x1), float32 and with AMP;
* a bare training step (forward, loss, backward, Adam; no masking or sampling) 2D and 3D under AMP,
  with and without the channels-last layout, to show what the layout is worth on the device;
* prediction (``model.predict``, tile 256, default number format and float32): 2D in MPix/s and
  3D in MVox/s, test-time augmentation off and on, and the PSNR change of the default format against
  float32 on a synthetic image (must stay within 0.02 dB);
* the StructN2V paper's 2D recipe, ~960k patch passes of 256^2 (batch 16): a few steps are timed
  and the whole is extrapolated.

The table is printed and written to ``benchmarks/results/gpu_<tag>.md`` (and ``.json``); the tag
is the device (``cuda`` / ``cpu``) with ``_quick`` for ``--quick``. On a GPU the default run takes
about 3 minutes; ``--device cpu --quick`` proves the script on a CPU in about as long.

Usage (from the repository root; ``scripts/gpu_check.sh`` runs it after the CUDA tests)::

    python benchmarks/gpu.py                       # CUDA
    python benchmarks/gpu.py --device cpu --quick  # the same rows, small, on the CPU
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from speed import step_gaps  # benchmarks/ is on sys.path when this script runs

RESULTS = Path(__file__).resolve().parent / "results"
#: the paper's 2D training: ~960k patches of 256^2 through the network
PAPER_PATCH_PASSES = 960_000


def sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def timed(fn, dev, warmup: int, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        sync(dev)
        t0 = time.perf_counter()
        fn()
        sync(dev)
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def train_loop(images, axes: str, mask: str, dev, *, amp: bool, warmup: int, steps: int, **cfg) -> float:
    """Patches/s of ``train_iter``: median gap between TrainStep events after ``warmup`` steps."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train_iter

    config = TrainConfig(steps=warmup + steps, val_fraction=0.0, device=str(dev), amp=amp, seed=0, **cfg)
    gaps = step_gaps(train_iter(images, axes, mask, config), warmup, lambda: sync(dev))
    return config.batch_size / statistics.median(gaps)


def bare_step(nd: int, batch: int, patch: tuple[int, ...], dev, *, channels_last: bool, amp: bool, warmup: int, steps: int) -> float:
    """Patches/s of a bare step of the default U-Net: forward, MSE, backward, Adam."""
    import torch

    from napari_structn2v.nn.inference import memory_format
    from napari_structn2v.nn.unet import UNet, UNetConfig

    torch.manual_seed(0)
    net = UNet(UNetConfig(spatial_ndim=nd, base_filters=16)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.rand((batch, 1, *patch), device=dev)
    if channels_last:
        net = net.to(memory_format=memory_format(nd))
        x = x.contiguous(memory_format=memory_format(nd))
    half = torch.float16 if dev.type == "cuda" else torch.bfloat16
    scaler = torch.amp.GradScaler(dev.type, enabled=amp and half == torch.float16) if dev.type == "cuda" else None

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=dev.type, dtype=half, enabled=amp):
            loss = torch.nn.functional.mse_loss(net(x).float(), x)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return batch / timed(step, dev, warmup, steps)


def predict_rows(dev, shape2d, shape3d, repeats: int) -> list[dict]:
    """Prediction speed, 2D and 3D, default format and float32, TTA off and on (4 flips)."""
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig

    rows = []
    for nd, shape in ((2, shape2d), (3, shape3d)):
        arch = UNetConfig(spatial_ndim=nd, base_filters=16)
        mask = np.ones((1,) * (nd - 1) + (9,), bool)
        model = StructN2VModel(UNet(arch).eval(), new_model_config("YX" if nd == 2 else "ZYX", mask, [0.0], [1.0], arch, {}))
        img = np.random.default_rng(0).random(shape, dtype=np.float32)
        for precision in ("auto", "float32"):
            for tta in (False, True):
                s = timed(lambda: model.predict(img, tile=256, device=dev, tta=tta, precision=precision), dev, 1, repeats)
                unit = "MPix/s" if nd == 2 else "MVox/s"
                rows.append({"part": f"predict {nd}D {'x'.join(map(str, shape))}, tile 256",
                             "setting": f"{precision}{', TTA (4 flips)' if tta else ''}",
                             "value": float(np.prod(shape)) / s / 1e6, "unit": unit, "seconds": s})
    return rows


def precision_row(dev, steps: int, batch: int) -> dict:
    """PSNR change of the default number format against float32 on a synthetic 2D image, for a
    model trained ``steps`` steps on it."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.nn.inference import resolve_precision
    from napari_structn2v.synthetic import make_sample
    from napari_structn2v.training.loop import train

    s = make_sample("2d", seed=0, size=256)
    model = train(s["noisy"], "YX", "9x1", TrainConfig(steps=steps, batch_size=batch, device=str(dev), val_fraction=0.0, seed=0))

    def psnr(y):
        return 10 * np.log10(1.0 / float(np.mean((y.astype(np.float64) - s["clean"]) ** 2)))

    ref = psnr(model.predict(s["noisy"], device=dev, precision="float32"))
    got = psnr(model.predict(s["noisy"], device=dev))
    fmt = str(resolve_precision("auto", dev)).replace("torch.", "")
    return {"part": f"precision, synthetic 2D 256^2, {steps} training steps", "setting": f"auto = {fmt} vs float32",
            "value": got - ref, "unit": "dB change", "seconds": float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="small sizes and few steps (a CPU proof that the script runs)")
    ap.add_argument("--tag", default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    import torch

    from napari_structn2v.devices import resolve_device
    from napari_structn2v.synthetic import make_sample

    dev = resolve_device(args.device)
    q = args.quick
    warm, steps = (2, 3) if q else (10, 40)
    started = time.perf_counter()
    hw = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads"
    header = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; device {dev} ({hw}); torch {torch.__version__}{'; --quick' if q else ''}"
    print(f"# GPU check benchmark\n{header}\n", flush=True)
    rows: list[dict] = []

    def add(part, setting, value, unit, seconds=float("nan")):
        rows.append({"part": part, "setting": setting, "value": value, "unit": unit, "seconds": seconds})
        print(f"  {part} | {setting}: {value:.4g} {unit}", flush=True)

    img2 = make_sample("2d", seed=0, size=256 if q else 512)["noisy"]
    img3 = make_sample("3d", seed=0, size=128 if q else 256)["noisy"]
    b2, b3, p3 = (4, 2, (8, 32, 32)) if q else (16, 4, (16, 64, 64))
    for amp in (False, True):
        add(f"train_iter 2D, patch 64, batch {b2}", "AMP" if amp else "float32",
            train_loop(img2, "YX", "9x1", dev, amp=amp, warmup=warm, steps=steps, patch_size=64, batch_size=b2), "patches/s")
        add(f"train_iter 3D, patch {'x'.join(map(str, p3))}, batch {b3}", "AMP" if amp else "float32",
            train_loop(img3, "ZYX", "1x9x1", dev, amp=amp, warmup=warm, steps=steps, patch_size=p3[1], patch_size_z=p3[0],
                       batch_size=b3, z_net="3d"), "patches/s")
    for nd, batch, patch in ((2, b2, (64, 64)), (3, b3, p3)):
        for cl in (False, True):
            add(f"bare step {nd}D, batch {batch}, AMP", "channels-last" if cl else "default layout",
                bare_step(nd, batch, patch, dev, channels_last=cl, amp=True, warmup=warm, steps=steps), "patches/s")
    shape2d, shape3d = ((512, 512), (16, 128, 128)) if q else ((4096, 4096), (64, 512, 512))
    for r in predict_rows(dev, shape2d, shape3d, 1 if q else 3):
        add(r["part"], r["setting"], r["value"], r["unit"], r["seconds"])
    paper_batch = 2 if q else 16
    pps = train_loop(img2, "YX", "9x1", dev, amp=True, warmup=1 if q else 5, steps=2 if q else 20, patch_size=256, batch_size=paper_batch)
    add(f"paper 2D recipe: patch 256, batch {paper_batch}, AMP", "patches/s", pps, "patches/s")
    add(f"paper 2D recipe: {PAPER_PATCH_PASSES:,} patch passes, extrapolated", "minutes", PAPER_PATCH_PASSES / pps / 60, "min")
    r = precision_row(dev, 20 if q else 300, b2)
    add(r["part"], r["setting"], r["value"], r["unit"])

    total = time.perf_counter() - started
    lines = ["## GPU check benchmark", "", header + f"; whole run {total:.0f} s", "",
             "| part | setting | value | unit |", "| --- | --- | ---: | --- |"]
    lines += [f"| {r['part']} | {r['setting']} | {r['value']:.4g} | {r['unit']} |" for r in rows]
    text = "\n".join(lines) + "\n"
    tag = args.tag or (dev.type + ("_quick" if q else ""))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"gpu_{tag}.md").write_text(text)
    (args.out / f"gpu_{tag}.json").write_text(json.dumps({"header": header, "seconds": total, "rows": rows}, indent=1))
    print("\n" + text, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
