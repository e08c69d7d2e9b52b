"""``structn2v train``: its options come from the settings table (:mod:`napari_structn2v.settings`)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import TrainConfig, parse_duration
from ..errors import OutputError, StructN2VError
from ..settings import CLI_SETTINGS, Setting
from ._console import EXIT_INTERRUPTED, EXIT_TERMINATED, Progress, Terminated, log
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
    t.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (even the --resume model) and --checkpoint-dir's best.pt and last.pt")
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


#: files train writes into --checkpoint-dir
CHECKPOINTS = ("best.pt", "last.pt")


def _check_train_outputs(args: argparse.Namespace) -> bool:
    """--out and --checkpoint-dir, before anything is read or trained. Returns whether the model
    may replace a file at --out at the end: only with --overwrite and a file there now (a file
    that appears later is never replaced)."""
    from ..io.images import check_output, check_output_folder

    protected = {f"the input image {p!r}": p for p in args.images}
    if args.dark:
        protected["the dark frame"] = args.dark
    if Path(args.mask).is_file():
        protected["the mask file"] = args.mask
    inputs = {"the model being resumed": args.resume} if args.resume else {}
    out = check_output(args.out, option="--out", overwrite=args.overwrite, inputs=inputs, protected=protected, store=False)
    if args.checkpoint_dir:
        folder = check_output_folder(args.checkpoint_dir, option="--checkpoint-dir")
        for name in CHECKPOINTS:
            check_output(folder / name, option=f"--checkpoint-dir file {name}", overwrite=args.overwrite,
                         inputs=inputs, protected=protected, store=False)
    return args.overwrite and out.exists()


class _StopFlag:
    """SIGINT and SIGTERM handler for the duration of a training: the first signal asks the
    trainer to stop after its current step (``should_stop``) and the model so far is saved; a
    second one aborts at once. SIGTERM is what SLURM (at the time limit), ``docker stop`` and
    systemd send, some 10-30 s before SIGKILL: one step and a save fit in that."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    #: what the first Ctrl-C prints
    message = "interrupted: stopping after this step and saving the model so far (Ctrl-C again to abandon it)"

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}
        self.signum: int | None = None

    def __call__(self) -> bool:
        return self._event.is_set()

    @property
    def exit_status(self) -> int:
        """130 after Ctrl-C, 143 after SIGTERM."""
        return EXIT_TERMINATED if self.signum == signal.SIGTERM else EXIT_INTERRUPTED

    def _handle(self, signum, frame) -> None:
        if self._event.is_set():
            raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt
        self.signum = signum
        self._event.set()
        text = "terminated (SIGTERM): stopping after this step and saving the model so far" if signum == signal.SIGTERM \
            else self.message
        print(f"\n{text}", file=sys.stderr, flush=True)

    def __enter__(self) -> _StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        self._previous = {}


def _save_model(model, out: str, *, replace: bool) -> Path:
    """Save ``model`` to ``out`` (checked at the start). If that fails now (a full disk, a folder
    removed or made read-only, a file that appeared meanwhile), the model is saved elsewhere and
    :class:`OutputError` says where: a finished training is never lost."""
    from ..errors import OutputExistsError
    from ..io.images import free_name

    if not replace and Path(out).exists():  # another run, or the user, put a file there meanwhile
        kept = model.save(free_name(out), overwrite=False)
        raise OutputExistsError(f"{out!r} appeared during the training and was left as it is; "
                                f"the trained model was saved to {str(kept)!r} instead", str(kept))
    try:
        return model.save(out, overwrite=replace)
    except OutputExistsError:
        raise  # the model is already kept next to the file that appeared, and the message says where
    except (OSError, StructN2VError) as exc:
        reason = str(exc) if isinstance(exc, StructN2VError) else f"cannot write {out!r}: {exc.strerror or exc}"
        rescue, tried = _rescue(model)
        if rescue is None:
            raise OutputError(f"{reason}; no rescue copy could be written either ({tried})") from exc
        raise OutputError(f"{reason}; the trained model was saved to {str(rescue)!r} instead") from exc


def _rescue(model) -> tuple[Path | None, str]:
    """Save ``model`` as ``structn2v-rescued-<time>.pt`` in the first folder that takes it: the
    current one, the home folder, the temporary folder. Returns the path (or None) and what failed."""
    import tempfile

    name = f"structn2v-rescued-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.pt"
    failures = []
    for folder in dict.fromkeys([Path.cwd(), Path.home(), Path(tempfile.gettempdir())]):
        try:
            return model.save(folder / name, overwrite=False), ""
        except (OSError, StructN2VError) as exc:
            failures.append(f"{folder}: {getattr(exc, 'strerror', None) or exc}")
    return None, "; ".join(failures)


def cmd_train(args: argparse.Namespace) -> int:
    from ..io.images import read_image
    from ..method.masks import describe_mask

    cfg = train_config(args)
    replace = _check_train_outputs(args)
    images = [read_image(p) for p in args.images]
    mask = resolve_mask(args.mask, images, args.axes.upper(), args.dark)
    fixed = dark_pattern(args.dark, args.axes.upper())
    resume = None
    if args.resume:
        from ..model import load_model

        resume = load_model(args.resume)
        log.info("resuming %s at step %s", args.resume, resume.config.training.get("steps_done", 0))
    budget = " or ".join(b for b in (f"{cfg.steps} steps" if cfg.steps else "", f"{cfg.max_time_s:g} s" if cfg.max_time_s else "") if b)
    log.info("training StructN2V: %d image(s), axes %s, mask %s, %s", len(images), args.axes, describe_mask(mask), budget)
    with _StopFlag() as stop:
        done = _run_training(images, args, mask, cfg, resume, stop, fixed)
        if done.stopped and done.model.config.training.get("steps_done", 0) == 0:
            log.warning("stopped before the first step; no model written")
            return stop.exit_status
        out = _save_model(done.model, args.out, replace=replace)  # a second signal still aborts the save cleanly
    if done.stopped:
        log.info("stopped at step %d; the model so far is saved to %s", done.step, out)
        return stop.exit_status
    log.info("model saved to %s", out)
    return 0


def _run_training(images: list[np.ndarray], args: argparse.Namespace, mask: np.ndarray, cfg: TrainConfig, resume: Any,
                  stop: _StopFlag, fixed: Any = None) -> Any:
    """Drain ``train_iter`` with a progress bar (or milestone lines); returns its TrainDone."""
    from ..training.loop import TrainDone, train_iter

    done = None
    with Progress("train", "step", quiet=args.quiet) as progress:
        meter = TrainMeter(progress)
        events = train_iter(
            images, args.axes, mask, cfg, checkpoint_dir=args.checkpoint_dir, resume=resume, should_stop=stop,
            fixed_pattern=fixed,
        )
        for event in events:
            meter.show(event)
            if isinstance(event, TrainDone):
                done = event
    return done


class TrainMeter:
    """Shows training's events on a :class:`~napari_structn2v.cli.Progress`: per step the loss, the
    last validation loss, the rate and the time left (``train`` and ``denoise``)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.last_val: float | None = None

    def show(self, event: object) -> None:
        """Take one event of ``train_iter`` (others are ignored)."""
        from ..events import TrainStep, Validation

        if isinstance(event, Validation):
            self.last_val = event.val_loss
        elif isinstance(event, TrainStep):
            last_val = self.last_val
            val = f"  val {last_val:.4f}" if last_val is not None else ""
            line = (f"step {event.step:>6}/{event.total_steps}  loss {event.loss:.4f}{val}  "
                    f"{event.patches_per_s:.0f} patches/s  eta {event.eta_s:.0f}s")
            fields = {"loss": f"{event.loss:.4f}", **({"val": f"{last_val:.4f}"} if last_val is not None else {})}
            self.progress.update(event.step, event.total_steps, line, **fields)
