"""``structn2v demo``: a synthetic end-to-end run (analyse the noise, train N2V and StructN2V, compare)."""
from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np

from ..config import TrainConfig
from ._console import Progress, log


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``demo`` command and its options."""
    d = sub.add_parser("demo", parents=[common], help="synthetic end-to-end run: analyse, train N2V and StructN2V, compare")
    d.add_argument("--out", default="structn2v_demo", help="folder for the TIFFs and the model")
    d.add_argument("--steps", type=int, default=400)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto")
    d.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in --out")
    d.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..io.images import check_output, check_output_folder, write_image
    from ..method.masks import box_mask
    from ..noise.analysis import analyze_noise
    from ..synthetic import make_sample

    cfg = TrainConfig(steps=args.steps, seed=args.seed, device=args.device)
    out = check_output_folder(args.out, option="--out")
    names = ("noisy.tif", "clean.tif", "dark.tif", "n2v.tif", "structn2v.tif", "structn2v_model.pt")
    for name in names:
        check_output(out / name, option="--out folder file", overwrite=args.overwrite)
    # what may be replaced at the end: with --overwrite, the files there now (never one that appears meanwhile)
    replace = {name: bool(args.overwrite) and (out / name).exists() for name in names}
    sample = make_sample("2d", seed=args.seed)
    noisy, clean, dark = sample["noisy"], sample["clean"], sample["dark"]
    for name in ("noisy", "clean", "dark"):
        write_image(out / f"{name}.tif", sample[name], axes="YX", replace=replace[f"{name}.tif"])
    log.info("1/4 synthetic 256x256 image with noise correlated along X (camera read-out lines)")
    analysis = analyze_noise(dark, dark=True)
    log.info("2/4 noise analysis of the dark frame:\n    %s", analysis.report().replace("\n", "\n    "))

    def psnr(x: np.ndarray) -> float:
        return float(-10 * np.log10(np.mean((x - clean) ** 2)))

    rows = [("noisy input", "-", psnr(noisy))]
    for label, mask in (("N2V", box_mask(1, 1)), ("StructN2V", analysis.mask)):
        t0 = time.perf_counter()
        log.info("3/4 training %s (%d steps, mask %s) ...", label, cfg.steps, "x".join(map(str, mask.shape[::-1])))
        model = _demo_train(noisy, mask, cfg, label, args.quiet)
        denoised = model.predict(noisy)
        write_image(out / f"{label.lower()}.tif", denoised, axes="YX", replace=replace[f"{label.lower()}.tif"])
        if label == "StructN2V":
            model.save(out / "structn2v_model.pt", overwrite=replace["structn2v_model.pt"])
        rows.append((label, "x".join(map(str, mask.shape[::-1])), psnr(denoised)))
        log.info("    done in %.0fs", time.perf_counter() - t0)
    print(f"4/4 results against the synthetic truth (files in {out}/):")
    print(f"    {'method':<12} {'mask':>6} {'PSNR (dB)':>10}")
    for name, m, value in rows:
        print(f"    {name:<12} {m:>6} {value:>10.2f}")
    return 0


def _demo_train(noisy: np.ndarray, mask: np.ndarray, cfg: TrainConfig, label: str, quiet: bool) -> Any:
    """One of the demo's trainings, with a progress bar (or a line at every quarter)."""
    from ..training.loop import TrainStep, train

    with Progress(label, "step", quiet=quiet, lines=4) as progress:
        def show(event: Any) -> None:
            if isinstance(event, TrainStep):
                line = f"    step {event.step}/{event.total_steps}  loss {event.loss:.4f}"
                progress.update(event.step, event.total_steps, line, loss=f"{event.loss:.4f}")

        return train(noisy, "YX", mask, cfg, callback=show)
