"""``structn2v train``: its options come from the settings table (:mod:`napari_structn2v.settings`)."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig, parse_duration
from ..errors import DataError
from ..settings import CLI_SETTINGS, Setting
from . import EXIT_INTERRUPTED, Progress, log
from ._noise import dark_pattern, resolve_mask


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``train`` command and its options (the settings' from the table, defaults from TrainConfig)."""
    t = sub.add_parser("train", parents=[common], help="train a StructN2V model on noisy images")
    t.add_argument("images", nargs="+", help="noisy TIFF(s), all with the same axes")
    t.add_argument("--axes", required=True, help="axes over STCZYX, e.g. YX, SYX, ZYX, CYX")
    t.add_argument("--mask", required=True, help="WxH[xD] (e.g. 9x1, 1x17x1, 1x1 = N2V), 'auto', or a mask file (.npy/.tif)")
    t.add_argument("--out", required=True, help="model file to write (e.g. model.pt)")
    t.add_argument("--dark", help="dark frame(s) / pure noise: --mask auto analyses it; a stack of dark frames also "
                   "gives the camera's fixed pattern, subtracted in training and stored in the model")
    for s in CLI_SETTINGS:
        t.add_argument(*s.flags, **_option(s))
    t.add_argument("--checkpoint-dir", help="write best.pt and last.pt here")
    t.add_argument("--resume", help="continue training this model file (its normalisation and network are kept)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out file (even the --resume model)")
    t.set_defaults(func=cmd_train)


def _option(s: Setting) -> dict[str, Any]:
    """argparse's keywords for the option of ``s``. Values are checked by TrainConfig, which names the option."""
    if s.kind == "bool":
        if s.default:  # a switch can only turn a setting on
            raise ValueError(f"{s.flags[0]}: a bool setting on the command line must default to False")
        return {"action": "store_true", "help": s.cli_help}
    option: dict[str, Any] = {"help": s.cli_help, "default": s.default}
    if s.kind in ("budget", "duration"):
        option["default"] = None  # unset: the budget is resolved in train_config
    if s.kind in ("int", "budget"):
        option["type"] = int
    elif s.kind == "float":
        option["type"] = float
    elif s.kind == "choice":
        option["choices"] = s.choices
    return option


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of ``train``'s options (without --steps and --time: TrainConfig's steps)."""
    values = {}
    for s in CLI_SETTINGS:
        value = getattr(args, s.dest)
        if s.kind == "duration" and value is not None:
            value = parse_duration(value)
        values[s.field] = value
    if values["steps"] is None and values["max_time_s"] is None:
        values["steps"] = TrainConfig().steps
    return TrainConfig(**values)


def _check_train_outputs(args: argparse.Namespace) -> None:
    """--out and --checkpoint-dir, before anything is read or trained."""
    from ..io import check_output, check_output_folder

    protected = {f"the input image {p!r}": p for p in args.images}
    if args.dark:
        protected["the dark frame"] = args.dark
    if Path(args.mask).is_file():
        protected["the mask file"] = args.mask
    inputs = {"the model being resumed": args.resume} if args.resume else {}
    check_output(args.out, option="--out", overwrite=args.overwrite, inputs=inputs, protected=protected)
    if args.checkpoint_dir:
        check_output_folder(args.checkpoint_dir, option="--checkpoint-dir")


class _InterruptFlag:
    """SIGINT handler for the duration of a training: the first Ctrl-C asks the trainer to stop
    after its current step (``should_stop``), a second one aborts at once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous = None

    def __call__(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            raise KeyboardInterrupt
        self._event.set()
        print("\ninterrupted: stopping after this step and saving the model so far (Ctrl-C again to abandon it)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> _InterruptFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _save_model(model, out: str) -> Path:
    """Save ``model`` to ``out`` (checked earlier); if that fails now, rescue it in the current folder."""
    try:
        return model.save(out, overwrite=True)
    except OSError as exc:
        rescue = Path(f"structn2v-rescued-{time.strftime('%Y%m%d-%H%M%S')}.pt")
        model.save(rescue, overwrite=False)
        raise DataError(f"cannot write {out!r} ({exc.strerror or exc}); the model was saved to {str(rescue)!r} instead") from exc


def cmd_train(args: argparse.Namespace) -> int:
    from ..io import read_image
    from ..masks import describe_mask

    cfg = train_config(args)
    _check_train_outputs(args)
    images = [read_image(p) for p in args.images]
    mask = resolve_mask(args.mask, images, args.axes.upper(), args.dark)
    fixed = dark_pattern(args.dark, args.axes.upper())
    resume = None
    if args.resume:
        from ..model_io import load_model

        resume = load_model(args.resume)
        log.info("resuming %s at step %s", args.resume, resume.config.training.get("steps_done", 0))
    budget = " or ".join(b for b in (f"{cfg.steps} steps" if cfg.steps else "", f"{cfg.max_time_s:g} s" if cfg.max_time_s else "") if b)
    log.info("training StructN2V: %d image(s), axes %s, mask %s, %s", len(images), args.axes, describe_mask(mask), budget)
    done = _run_training(images, args, mask, cfg, resume, fixed)
    if done.stopped and done.model.config.training.get("steps_done", 0) == 0:
        log.warning("stopped before the first step; no model written")
        return EXIT_INTERRUPTED
    out = _save_model(done.model, args.out)
    if done.stopped:
        log.info("stopped at step %d; the model so far is saved to %s", done.step, out)
        return EXIT_INTERRUPTED
    log.info("model saved to %s", out)
    return 0


def _run_training(images: list[np.ndarray], args: argparse.Namespace, mask: np.ndarray, cfg: TrainConfig, resume: Any,
                  fixed: Any = None) -> Any:
    """Drain ``train_iter`` with a progress bar (or milestone lines); returns its TrainDone."""
    from ..training import TrainDone, TrainStep, Validation, train_iter

    last_val = None
    done = None
    with _InterruptFlag() as interrupted, Progress("train", "step", quiet=args.quiet) as progress:
        events = train_iter(
            images, args.axes, mask, cfg, checkpoint_dir=args.checkpoint_dir, resume=resume, should_stop=interrupted,
            fixed_pattern=fixed,
        )
        for event in events:
            if isinstance(event, Validation):
                last_val = event.val_loss
            elif isinstance(event, TrainStep):
                val = f"  val {last_val:.4f}" if last_val is not None else ""
                line = (f"step {event.step:>6}/{event.total_steps}  loss {event.loss:.4f}{val}  "
                        f"{event.patches_per_s:.0f} patches/s  eta {event.eta_s:.0f}s")
                fields = {"loss": f"{event.loss:.4f}", **({"val": f"{last_val:.4f}"} if last_val is not None else {})}
                progress.update(event.step, event.total_steps, line, **fields)
            elif isinstance(event, TrainDone):
                done = event
    return done
