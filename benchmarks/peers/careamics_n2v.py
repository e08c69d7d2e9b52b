"""Reference numbers from the peer tool CAREamics (N2V / structN2V) on one development set.

Standalone: run with the python of a separate CAREamics venv (see README.md in this folder);
it does not import napari_structn2v.

    python careamics_n2v.py --data DIR --axes SYX --span 9 --struct-axis horizontal \
        --steps 1500 --batch 16 --patch 64 --out results/set_9.json

DIR holds noisy.tif (training and test input), gt.tif (clean, [0, 1]) and meta.json.
Training: CAREamics' U-Net (depth 2, --filters base channels), Adam at a constant --lr
(StepLR with gamma=1, i.e. no decay), exactly --steps optimiser steps of exactly --batch
random patches (Lightning max_steps, drop_last). Evaluation: the whole noisy stack is
predicted with tiling and scored with skimage PSNR (data_range=1) against gt.tif: mean over
the 2D images for SYX, over the volume for ZYX.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--axes", required=True, choices=["SYX", "ZYX"])
    p.add_argument("--span", type=int, default=1, help="structN2V mask span (odd, 3..15); 1 = plain N2V")
    p.add_argument("--struct-axis", default="horizontal", choices=["horizontal", "vertical"])
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--patch", type=int, default=64, help="patch size in Y and X")
    p.add_argument("--patch-z", type=int, default=16, help="patch size in Z (ZYX only)")
    p.add_argument("--filters", type=int, default=32, help="U-Net base channels")
    p.add_argument("--lr", type=float, default=4e-4)
    p.add_argument("--masked-pct", type=float, default=0.2,
                   help="percent of pixels per patch that N2V masks (CAREamics default 0.2; napari-structn2v uses 2)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--tile", type=int, default=None, help="prediction tile in Y/X (default 256 2D, 128 3D)")
    p.add_argument("--tile-z", type=int, default=16)
    p.add_argument("--out", required=True, type=Path)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import tifffile
    import torch
    from skimage.metrics import peak_signal_noise_ratio as psnr
    from skimage.metrics import structural_similarity as ssim

    torch.set_num_threads(args.threads)
    import careamics
    from careamics import CAREamist
    from careamics.config.factories.n2v_factory import create_advanced_n2v_config

    noisy = tifffile.imread(args.data / "noisy.tif").astype(np.float32)
    gt = tifffile.imread(args.data / "gt.tif").astype(np.float32)
    meta = json.loads((args.data / "meta.json").read_text()) if (args.data / "meta.json").exists() else {}
    is3d = args.axes == "ZYX"
    patch = [args.patch_z, args.patch, args.patch] if is3d else [args.patch, args.patch]

    if args.span == 1:
        struct = dict(struct_n2v_axes="none")
    else:
        struct = dict(struct_n2v_axes=args.struct_axis, struct_n2v_span=args.span)

    cfg = create_advanced_n2v_config(
        experiment_name="peer_careamics",
        data_type="array",
        axes=args.axes,
        patch_size=patch,
        batch_size=args.batch,
        num_epochs=None,
        augmentations=[],  # structN2V masks are oriented: no flips/rotations (as create_structn2v_config)
        model_params={"num_channels_init": args.filters, "depth": 2},
        optimizer="Adam",
        optimizer_params={"lr": args.lr},
        # no "none" scheduler in 0.3.5; StepLR with gamma=1 keeps the rate constant
        lr_scheduler="StepLR",
        lr_scheduler_params={"step_size": 10**9, "gamma": 1.0},
        num_workers=0,
        train_dataloader_params={"shuffle": True, "drop_last": True},
        trainer_params={
            "max_steps": args.steps,
            "max_epochs": -1,
            "accelerator": "cpu",
            "devices": 1,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 50,
        },
        masked_pixel_percentage=args.masked_pct,
        seed=args.seed,
        **struct,
    )

    with tempfile.TemporaryDirectory(prefix="careamics_peer_") as work:
        cm = CAREamist(cfg, work_dir=work, enable_progress_bar=False)
        t0, c0 = time.perf_counter(), time.process_time()
        cm.train(train_data=noisy)
        train_s, train_cpu = time.perf_counter() - t0, time.process_time() - c0
        steps_done = int(cm.trainer.global_step)
        epochs_done = int(cm.trainer.current_epoch)
        # CAREamist.predict reloads a checkpoint; its "last" one is only written every 10
        # epochs, so it is stale when max_steps ends training in between: save the final
        # weights explicitly and predict from them
        final_ckpt = Path(work) / "final.ckpt"
        cm.trainer.save_checkpoint(final_ckpt)
        ckpt_step = int(torch.load(final_ckpt, map_location="cpu", weights_only=False)["global_step"])
        if ckpt_step != steps_done:
            print(f"WARNING: final checkpoint is at step {ckpt_step}, training ended at {steps_done}", flush=True)

        tile = args.tile or (128 if is3d else 256)
        if is3d:
            tile_size, overlap = (args.tile_z, tile, tile), (args.tile_z // 2, 48, 48)
        else:
            tile_size, overlap = (tile, tile), (64, 64)
        t0 = time.perf_counter()
        preds, _ = cm.predict(noisy, tile_size=tile_size, tile_overlap=overlap, batch_size=1,
                              num_workers=0, checkpoint=final_ckpt)
        pred_s = time.perf_counter() - t0

    den = np.squeeze(np.asarray(preds[0] if len(preds) == 1 else np.stack(preds), dtype=np.float32))
    den = den.reshape(gt.shape)
    if is3d:
        p = float(psnr(gt, den, data_range=1.0))
        s = float(ssim(gt, den, data_range=1.0))
        p_in = float(psnr(gt, noisy, data_range=1.0))
    else:
        p = float(np.mean([psnr(g, d, data_range=1.0) for g, d in zip(gt, den)]))
        s = float(np.mean([ssim(g, d, data_range=1.0) for g, d in zip(gt, den)]))
        p_in = float(np.mean([psnr(g, d, data_range=1.0) for g, d in zip(gt, noisy)]))

    res = {
        "tool": f"careamics {careamics.__version__}",
        "torch": torch.__version__,
        "set": args.data.name,
        "axes": args.axes,
        "shape": list(noisy.shape),
        "half_len": meta.get("half_len"),
        "span": args.span,
        "struct_axis": args.struct_axis if args.span > 1 else "none",
        "steps": steps_done,
        "steps_requested": args.steps,
        "epochs": epochs_done,
        "ckpt_step": ckpt_step,
        "batch": args.batch,
        "patch": patch,
        "filters": args.filters,
        "lr": args.lr,
        "masked_pct": args.masked_pct,
        "lr_schedule": "constant (StepLR gamma=1)",
        "seed": args.seed,
        "threads": torch.get_num_threads(),
        "psnr": p,
        "ssim": s,
        "psnr_noisy": p_in,
        "train_seconds": train_s,
        "train_cpu_seconds": train_cpu,  # process CPU time: less sensitive to other jobs than wall time
        "predict_seconds": pred_s,
        "tile_size": list(tile_size),
        "tile_overlap": list(overlap),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{args.data.name} span={args.span} steps={steps_done} batch={args.batch}: "
          f"PSNR {p:.2f} (noisy {p_in:.2f}) SSIM {s:.3f} train {train_s:.0f}s (cpu {train_cpu:.0f}s) predict {pred_s:.0f}s",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
