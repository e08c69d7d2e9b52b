"""``structn2v denoise``: one image in, its denoised version out (mask, training and prediction in one go).

The pipeline is :func:`napari_structn2v.pipeline.denoise_iter`'s: the mask from ``--dark`` or the
image's background (stopping when that suggestion is not reliable), ``--time`` of training on the
image, then tiled prediction of the whole image.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError, OutputError
from ..method.masks import describe_mask
from ..pipeline import DEFAULT_TIME_S, too_few_steps
from ._console import EXIT_INTERRUPTED, IMAGE_SUFFIXES, Progress, log
from ._noise import _axes_for, _warn, resolve_mask
from ._predict import add_tta_options, tta_choice
from ._train import TrainMeter, _save_model
from ._train import _StopFlag as _InterruptFlag

#: the default of --time, as the user would type it ("3m")
DEFAULT_TIME = f"{DEFAULT_TIME_S / 60:g}m"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``denoise`` command and its options."""
    d = sub.add_parser("denoise", parents=[common],
                       help="denoise one image: suggest the blind mask, train on the image, predict it")
    d.add_argument("image", help="noisy image (.tif, .tiff, .npy, .zarr or .ome.zarr)")
    d.add_argument("--out", required=True, help="denoised image to write (.tif, .tiff, .npy, .zarr or .ome.zarr)")
    d.add_argument("--dark", help="dark frame / pure noise of the same camera or scanner, for the blind mask "
                   "(default: the image's darkest, flattest tiles)")
    d.add_argument("--time", default=DEFAULT_TIME,
                   help=f"training budget: 90, 90s, 3m, 1h, 1m30s (default {DEFAULT_TIME})")
    d.add_argument("--axes", help="axes of IMAGE over STCZYX (default: the file's, else YX for 2D, ZYX for 3D, ...)")
    d.add_argument("--mask", help="blind mask WxH[xD] (e.g. 9x1) or a mask file (.npy/.tif) instead of the suggested one")
    d.add_argument("--save-model", metavar="MODEL", help="also write the trained model here (e.g. model.pt)")
    d.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    add_tta_options(d)
    d.add_argument("--overwrite", action="store_true", help="replace an existing --out or --save-model file")
    d.set_defaults(func=cmd_denoise)


class _Interrupt(_InterruptFlag):
    """Ctrl-C in training stops it after the current step; the model so far still denoises the image
    and both are saved. A Ctrl-C in prediction, or a second one, abandons the run."""

    message = ("interrupted: stopping training after this step; the model so far will denoise the image and "
               "the result will be saved (Ctrl-C again to abandon it)")

    def __init__(self) -> None:
        super().__init__()
        self.training = True

    def _handle(self, signum, frame) -> None:
        if not self.training:
            raise KeyboardInterrupt
        super()._handle(signum, frame)


def _mask_file(args: argparse.Namespace) -> str | None:
    return args.mask if args.mask and Path(args.mask).is_file() else None


def _check_outputs(args: argparse.Namespace) -> None:
    """--out and --save-model, before anything is read or trained."""
    from ..io.images import check_output

    protected = {"the dark frame": args.dark, "the mask file": _mask_file(args)}
    protected = {k: v for k, v in protected.items() if v}
    check_output(args.out, option="--out", overwrite=args.overwrite, inputs={"the input image": args.image},
                 protected=protected, suffixes=IMAGE_SUFFIXES)
    if args.save_model:
        if Path(args.save_model).resolve() == Path(args.out).resolve():
            raise OutputError("--save-model and --out name the same file; give the model a name of its own (e.g. model.pt)")
        check_output(args.save_model, option="--save-model", overwrite=args.overwrite,
                     protected={"the input image": args.image, **protected})


def cmd_denoise(args: argparse.Namespace) -> int:
    from ..config import TrainConfig, parse_duration
    from ..io.images import open_image, read_image

    cfg = TrainConfig(steps=None, max_time_s=parse_duration(args.time), device=args.device)
    _check_outputs(args)
    opened = open_image(args.image)
    image = np.asarray(opened.data)  # trained on whole: read once
    axes = _axes_for(image, args.axes or opened.axes)
    if not (args.axes or opened.axes):
        from ..prediction.predict import check_rgb_like

        check_rgb_like(image.shape, axes)
    dark = read_image(args.dark) if args.dark else None
    mask = resolve_mask(args.mask, [image], axes, None) if args.mask and args.mask.lower() != "auto" else None
    log.info("denoising %s: shape %s, axes %s, training for %s%s", args.image, image.shape, axes, _seconds(cfg.max_time_s),
             "" if args.axes or opened.axes else " (axes guessed; give --axes if they are wrong)")
    done = _run(image, axes, dark, mask, cfg, args)
    if done.image is None:
        log.warning("stopped before the first training step; nothing written")
        return EXIT_INTERRUPTED
    from ..io.images import write_image

    write_image(args.out, done.image, axes=axes, scale=opened.scale)
    log.info("denoised image written to %s", args.out)
    return EXIT_INTERRUPTED if done.stopped else 0


def _seconds(s: float) -> str:
    return f"{s:g} s" if s < 120 else f"{s / 60:g} min"


def _run(image: np.ndarray, axes: str, dark: Any, mask: Any, cfg: Any, args: argparse.Namespace) -> Any:
    """Drain ``denoise_iter`` with the progress of training and prediction; returns its DenoiseDone.
    The model is saved (--save-model) as soon as training ends."""
    from ..events import TileDone, TrainDone
    from ..pipeline import DenoiseDone, MaskChosen, UnreliableNoiseError, denoise_iter

    done = None
    t0 = time.perf_counter()
    with _Interrupt() as interrupt, Progress("train", "step", quiet=args.quiet) as train_bar, \
            Progress(Path(args.image).name, "tile", quiet=args.quiet, lines=10) as tile_bar:
        meter = TrainMeter(train_bar)
        events = denoise_iter(image, axes, dark=dark, mask=mask, config=cfg, tta=tta_choice(args), should_stop=interrupt)
        try:
            for event in events:
                meter.show(event)
                if isinstance(event, MaskChosen):
                    _show_mask(event, args)
                elif isinstance(event, TrainDone):
                    train_bar.close()
                    interrupt.training = False
                    _trained(event, args, time.perf_counter() - t0)
                    t0 = time.perf_counter()
                elif isinstance(event, TileDone):
                    tile_bar.update(event.index, event.total, f"tile {event.index}/{event.total}")
                elif isinstance(event, DenoiseDone):
                    done = event
        except UnreliableNoiseError as exc:
            advice = "give a dark frame with --dark, or the mask with --mask (a spec such as 9x1, or a mask file)"
            raise DataError(exc.sentence(advice)) from None
        except KeyboardInterrupt:
            if args.save_model and not interrupt.training:
                log.warning("the image was not denoised; the trained model is in %s", args.save_model)
            raise
    if done.image is not None:
        size = int(np.prod(image.shape))
        dt = time.perf_counter() - t0
        log.info("denoised %s (axes %s) in %.1fs (%.2f MPix/s)", tuple(image.shape), axes, dt, size / dt / 1e6)
    return done


def _show_mask(chosen: Any, args: argparse.Namespace) -> None:
    """The suggested mask, where it comes from, and how reliable it is."""
    source = f"the dark frame {args.dark}" if args.dark else chosen.source
    log.info("blind mask %s, suggested by %s", describe_mask(chosen.mask), source)
    log.info("%s", chosen.analysis.reliability())
    _warn(chosen.analysis)


def _trained(done: Any, args: argparse.Namespace, seconds: float) -> None:
    """Log the end of training and save the model when asked (before prediction, so a Ctrl-C there keeps it)."""
    if done.step == 0:
        return
    if done.stopped:
        log.info("training stopped at step %d after %.0f s; denoising with the model so far", done.step, seconds)
    else:
        log.info("trained for %d step(s) in %.0f s", done.step, seconds)
    if too_few_steps(done.step):
        log.warning("%s", too_few_steps(done.step))
    if args.save_model:
        log.info("model saved to %s", _save_model(done.model, args.save_model, replace=args.overwrite))
