"""The ``structn2v`` command line: analyze-noise, train, predict, info, export-bmz, demo.

Every user mistake ends with one ``structn2v: error: ...`` line and exit status 2; warnings are
one ``warning: ...`` line on stderr. Outputs are checked before any long work, never replace an
input or an existing file without ``--overwrite``, and are written atomically. Ctrl-C during
``train`` stops like the GUI's Stop: the model trained so far is saved, then exit status 130.

Messages go through :mod:`logging` (logger ``napari_structn2v``): informational ones to stdout,
warnings and errors to stderr. ``train`` and ``predict`` draw a tqdm progress bar on stderr when it is
a terminal, and log a milestone line instead (every 5 % / 10 %) when it is not; ``--quiet`` leaves
only warnings, errors and the commands' results (the report of ``analyze-noise``, ``info``'s summary).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
from tqdm import tqdm

from . import __version__
from .config import TrainConfig, parse_duration
from .errors import ConfigError, DataError, StructN2VError, StructN2VWarning

#: exit status after Ctrl-C (128 + SIGINT), also when the model so far was saved
EXIT_INTERRUPTED = 130

#: CLI option of each setting, so that a ConfigError names what the user typed
OPTION_OF = {
    "steps": "--steps",
    "patch_size": "--patch",
    "patch_size_z": "--patch-z",
    "batch_size": "--batch",
    "lr": "--lr",
    "schedule": "--schedule",
    "seed": "--seed",
    "device": "--device",
    "val_fraction": "--val-fraction",
    "base_filters": "--filters",
    "depth": "--depth",
    "z_net": "--z-net",
    "z_context": "--z-context",
    "tile": "--tile",
    "overlap": "--overlap",
    "max_lag": "--max-lag",
    "cluster": "--cluster",
}

IMAGE_SUFFIXES = (".tif", ".tiff", ".npy", ".zarr")
QUIET_HELP = "no progress bar and no information lines: only warnings, errors and the command's result"

log = logging.getLogger("napari_structn2v.cli")


# console output ---------------------------------------------------------------------------------
class _ConsoleFormatter(logging.Formatter):
    """``message`` for information, ``warning: message``, ``structn2v: error: message``."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            return f"structn2v: error: {message}"
        return f"warning: {message}" if record.levelno >= logging.WARNING else message


class _ConsoleHandler(logging.Handler):
    """Information to stdout, warnings and errors to stderr, through ``tqdm.write`` so that a live
    progress bar is redrawn under the line instead of being torn. The streams are looked up at each
    message (pytest's capsys and redirections replace them)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr if record.levelno >= logging.WARNING else sys.stdout
            tqdm.write(self.format(record), file=stream)
            stream.flush()
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)


@contextlib.contextmanager
def console_logging(quiet: bool = False):
    """Route the package's log records to the console for one command (INFO, or WARNING when quiet)."""
    logger = logging.getLogger("napari_structn2v")
    handler = _ConsoleHandler()
    handler.setFormatter(_ConsoleFormatter())
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _terminal() -> bool:
    """True when stderr is a terminal with a width: progress is a live bar there, milestone lines elsewhere."""
    try:
        return sys.stderr.isatty() and os.get_terminal_size(sys.stderr.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # no real file behind stderr (pytest, IDEs)
        return False


class Progress:
    """Progress of a long job: a tqdm bar on a terminal, else a log line at every ``1 / lines`` of the
    total (and the first and last). Nothing with ``quiet``. Use as a context manager."""

    def __init__(self, desc: str, unit: str, *, quiet: bool = False, lines: int = 20) -> None:
        self.desc, self.unit, self.quiet, self.lines = desc, unit, quiet, lines
        self.bar: Any = None
        self._shown = -1

    def update(self, done: int, total: int, line: str, **postfix: str) -> None:
        """``done`` of ``total`` units; ``line`` is the milestone text, ``postfix`` the bar's fields."""
        if self.quiet:
            return
        if _terminal():
            if self.bar is None:
                self.bar = tqdm(total=total, initial=max(done - 1, 0), desc=self.desc, unit=self.unit,
                                file=sys.stderr, dynamic_ncols=True, leave=True)
            if self.bar.total != total:
                self.bar.total = total
            self.bar.set_postfix(postfix, refresh=False)
            self.bar.update(done - self.bar.n)
            return
        mark = int(self.lines * done / max(1, total))
        if self._shown < 0 or mark > self._shown or done == total:
            self._shown = mark
            log.info("%s", line)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Parser(argparse.ArgumentParser):
    """argparse with the package's one-line errors (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"structn2v: error: {message} (see '{self.prog} --help')\n")


def _parse_roi(text: str, image: np.ndarray, axes: str) -> np.ndarray:
    """Crop ``image`` to ``Y0:Y1,X0:X1`` or ``Z0:Z1,Y0:Y1,X0:X1`` over its spatial axes."""
    from .axes import spatial_axes

    sp = spatial_axes(axes)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3) or len(parts) > len(sp):
        raise DataError(f"--roi {text!r} must be Y0:Y1,X0:X1 (or Z0:Z1,Y0:Y1,X0:X1 for 3D data)")
    letters = sp[-len(parts):]
    index = [slice(None)] * image.ndim
    for letter, part in zip(letters, parts):
        try:
            a, b = (int(v) for v in part.split(":"))
        except ValueError:
            raise DataError(f"--roi part {part!r} is not of the form START:STOP with integers") from None
        size = image.shape[axes.index(letter)]
        if not (0 <= a < b <= size):
            raise DataError(f"--roi {letter} range {a}:{b} lies outside the image (0:{size})")
        index[axes.index(letter)] = slice(a, b)
    return image[tuple(index)]


def _axes_for(image: np.ndarray, axes: str | None) -> str:
    from .axes import guess_axes, validate_axes

    return validate_axes(axes, image.ndim) if axes else guess_axes(image.shape)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .io import check_output, read_image, write_image
    from .noise import analyze_noise
    from .prediction import check_dtype, check_finite

    if args.max_lag < 1:
        raise ConfigError("max_lag", f"must be >= 1, got {args.max_lag}")
    if args.out_autocorr:
        check_output(
            args.out_autocorr, option="--out-autocorr", overwrite=args.overwrite,
            inputs={"the noise image": args.noise}, suffixes=IMAGE_SUFFIXES,
        )
    image = read_image(args.noise)
    check_dtype(image, f"{args.noise}")
    check_finite(image, f"{args.noise}")
    axes = _axes_for(image, args.axes)
    regions = [_parse_roi(roi, image, axes) for roi in args.roi] if args.roi else [image]
    result = analyze_noise(regions, axes=axes, max_lag=args.max_lag)
    if args.out_autocorr:
        write_image(args.out_autocorr, result.autocorrelation, axes=result.axes)
        log.info("autocorrelation written to %s", args.out_autocorr)
    shapes = ", ".join(str(r.shape) for r in regions)
    log.info("%s: %s %s, axes %s", args.noise, "regions" if len(regions) > 1 else "shape", shapes, axes)
    _warn(result)
    print(result.report(), flush=True)  # the result: its last line is the mask spec
    return 0


def _warn(result: object) -> None:
    """The reliability warnings of a noise analysis, one ``warning:`` line each on stderr."""
    for text in getattr(result, "warnings", []):
        log.warning("%s", text)


def _resolve_mask(spec: str, images: list[np.ndarray], axes: str, dark: str | None) -> np.ndarray:
    from .masks import load_mask, parse_mask_spec
    from .noise import analyze_noise, find_background

    if spec.lower() == "auto":
        from .io import read_image

        if dark:
            noise = read_image(dark)
            noise_axes = axes if noise.ndim == len(axes) else None
            result = analyze_noise(noise, axes=noise_axes)
            source = dark
        else:
            background = find_background(images[0], axes=axes)
            result = analyze_noise(background.regions, axes=background.axes)
            source = f"the {len(background.regions)} darkest, flattest {background.tile}x{background.tile} tiles of the first image"
        log.info("mask auto: suggested %s from %s", result.spec, source)
        _warn(result)
        return result.mask
    if Path(spec).is_file():
        return load_mask(spec)
    return parse_mask_spec(spec)


def _check_train_outputs(args: argparse.Namespace) -> None:
    """--out and --checkpoint-dir, before anything is read or trained."""
    from .io import check_output, check_output_folder

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


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of ``train``'s options (without --steps and --time: 1500 steps)."""
    max_time = parse_duration(args.time) if args.time is not None else None
    steps = args.steps if args.steps is not None or max_time is not None else TrainConfig().steps
    return TrainConfig(
        steps=steps,
        max_time_s=max_time,
        patch_size=args.patch,
        patch_size_z=args.patch_z,
        batch_size=args.batch,
        lr=args.lr,
        seed=args.seed,
        device=args.device,
        val_fraction=args.val_fraction,
        base_filters=args.filters,
        depth=args.depth,
        n2v2=args.n2v2,
        schedule=args.schedule,
        z_net=args.z_net,
        z_context=args.z_context,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from .io import read_image
    from .masks import describe_mask

    cfg = _train_config(args)
    _check_train_outputs(args)
    images = [read_image(p) for p in args.images]
    mask = _resolve_mask(args.mask, images, args.axes.upper(), args.dark)
    resume = None
    if args.resume:
        from .model_io import load_model

        resume = load_model(args.resume)
        log.info("resuming %s at step %s", args.resume, resume.config.training.get("steps_done", 0))
    budget = " or ".join(b for b in (f"{cfg.steps} steps" if cfg.steps else "", f"{cfg.max_time_s:g} s" if cfg.max_time_s else "") if b)
    log.info("training StructN2V: %d image(s), axes %s, mask %s, %s", len(images), args.axes, describe_mask(mask), budget)
    done = _run_training(images, args, mask, cfg, resume)
    if done.stopped and done.model.config.training.get("steps_done", 0) == 0:
        log.warning("stopped before the first step; no model written")
        return EXIT_INTERRUPTED
    out = _save_model(done.model, args.out)
    if done.stopped:
        log.info("stopped at step %d; the model so far is saved to %s", done.step, out)
        return EXIT_INTERRUPTED
    log.info("model saved to %s", out)
    return 0


def _run_training(images: list[np.ndarray], args: argparse.Namespace, mask: np.ndarray, cfg: TrainConfig, resume: Any) -> Any:
    """Drain ``train_iter`` with a progress bar (or milestone lines); returns its TrainDone."""
    from .training import TrainDone, TrainStep, Validation, train_iter

    last_val = None
    done = None
    with _InterruptFlag() as interrupted, Progress("train", "step", quiet=args.quiet) as progress:
        events = train_iter(
            images, args.axes, mask, cfg, checkpoint_dir=args.checkpoint_dir, resume=resume, should_stop=interrupted
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


def _expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """Input paths from files, folders (their images, sorted) and globs (``'raw/*.tif'``)."""
    import glob

    from .io import image_format

    found: list[Path] = []
    for text in patterns:
        p = Path(text)
        if p.is_dir() and image_format(p) != "zarr":
            items = sorted(q for q in p.iterdir() if image_format(q) and not q.name.startswith("."))
            if not items:
                raise DataError(f"the folder {text!r} holds no images (.tif, .tiff, .npy, .zarr)")
            found += items
        elif not p.exists() and glob.has_magic(text):
            items = sorted(Path(q) for q in glob.glob(text) if image_format(q))
            if not items:
                raise DataError(f"no images match {text!r}")
            found += items
        else:
            found.append(p)  # a missing file is reported by open_image, naming it
    return list(dict.fromkeys(found))


def _predict_targets(args: argparse.Namespace, inputs: list[Path]) -> list[Path]:
    """One checked output per input (--out for one input, --out-dir DIR/<input name> for many)."""
    from .io import check_output, check_output_folder

    if args.out is not None:
        if len(inputs) != 1:
            raise DataError(f"--out names one output but {len(inputs)} inputs were given; use --out-dir for several")
        targets = [Path(args.out)]
    else:
        folder = check_output_folder(args.out_dir, option="--out-dir")
        targets = [folder / p.name for p in inputs]
        twice = sorted({t.name for t in targets if targets.count(t) > 1})
        if twice:
            raise DataError(f"several inputs are named {twice[0]!r}; they would overwrite each other in --out-dir")
    option = "--out" if args.out is not None else "--out-dir file"
    for src, dst in zip(inputs, targets):
        check_output(
            dst, option=option, overwrite=args.overwrite, inputs={"the input image": src},
            protected={"the model file": args.model, **{f"the input image {str(q)!r}": q for q in inputs if q != src}},
            suffixes=IMAGE_SUFFIXES,
        )
    return targets


def cmd_predict(args: argparse.Namespace) -> int:
    from .model_io import load_model

    inputs = _expand_inputs(args.inputs)
    targets = _predict_targets(args, inputs)
    model = load_model(args.model)
    client = None
    if args.cluster:
        from .distributed import connect

        client = connect(args.cluster)
    try:
        for src, dst in zip(inputs, targets):
            _predict_one(model, src, dst, args, client)
    finally:
        if client is not None:
            client.close()
    return 0


def _predict_one(model, src: Path, dst: Path, args: argparse.Namespace, client) -> None:
    """Denoise one input file into ``dst``, streaming tile by tile (or block by block on a cluster)."""
    from .io import open_image, open_output
    from .prediction import TileDone

    opened = open_image(src)
    image = opened.data
    axes = args.axes
    if axes is None and opened.axes is not None and len(opened.axes) == image.ndim:
        axes = opened.axes  # the file says which axes it has (OME-Zarr, our TIFFs)
    axes = model.check_input(image, axes)
    t0 = time.perf_counter()
    with open_output(dst, image.shape, axes=axes, scale=opened.scale) as out, \
            Progress(src.name, "tile", quiet=args.quiet, lines=10) as progress:
        if client is not None:
            from .distributed import predict_on_cluster

            for done, total in predict_on_cluster(model, image, axes, out, client, tile=args.tile, overlap=args.overlap,
                                                  tta=not args.no_tta):
                progress.update(done, total, f"block {done}/{total}")
        else:
            events = model.predict_iter(
                image, axes, tile=args.tile, overlap=args.overlap, device=args.device, tta=not args.no_tta, check=False, out=out
            )
            for event in events:
                if isinstance(event, TileDone):
                    progress.update(event.index, event.total, f"tile {event.index}/{event.total}")
    dt = time.perf_counter() - t0
    size = int(np.prod(image.shape))
    log.info("denoised %s (axes %s) in %.1fs (%.2f MPix/s); written to %s", tuple(image.shape), axes, dt, size / dt / 1e6, dst)


def cmd_demo(args: argparse.Namespace) -> int:
    from .io import check_output, check_output_folder, write_image
    from .masks import box_mask
    from .noise import analyze_noise
    from .synthetic import make_sample

    cfg = TrainConfig(steps=args.steps, seed=args.seed, device=args.device)
    out = check_output_folder(args.out, option="--out")
    names = ("noisy.tif", "clean.tif", "dark.tif", "n2v.tif", "structn2v.tif", "structn2v_model.pt")
    for name in names:
        check_output(out / name, option="--out folder file", overwrite=args.overwrite)
    sample = make_sample("2d", seed=args.seed)
    noisy, clean, dark = sample["noisy"], sample["clean"], sample["dark"]
    for name in ("noisy", "clean", "dark"):
        write_image(out / f"{name}.tif", sample[name], axes="YX")
    log.info("1/4 synthetic 256x256 image with noise correlated along X (camera read-out lines)")
    analysis = analyze_noise(dark)
    log.info("2/4 noise analysis of the dark frame:\n    %s", analysis.report().replace("\n", "\n    "))

    def psnr(x: np.ndarray) -> float:
        return float(-10 * np.log10(np.mean((x - clean) ** 2)))

    rows = [("noisy input", "-", psnr(noisy))]
    for label, mask in (("N2V", box_mask(1, 1)), ("StructN2V", analysis.mask)):
        t0 = time.perf_counter()
        log.info("3/4 training %s (%d steps, mask %s) ...", label, cfg.steps, "x".join(map(str, mask.shape[::-1])))
        model = _demo_train(noisy, mask, cfg, label, args.quiet)
        denoised = model.predict(noisy)
        write_image(out / f"{label.lower()}.tif", denoised, axes="YX")
        if label == "StructN2V":
            model.save(out / "structn2v_model.pt")
        rows.append((label, "x".join(map(str, mask.shape[::-1])), psnr(denoised)))
        log.info("    done in %.0fs", time.perf_counter() - t0)
    print(f"4/4 results against the synthetic truth (files in {out}/):")
    print(f"    {'method':<12} {'mask':>6} {'PSNR (dB)':>10}")
    for name, m, value in rows:
        print(f"    {name:<12} {m:>6} {value:>10.2f}")
    return 0


def model_summary(model: Any) -> str:
    """A few lines on a model: axes, network, mask, training provenance, stored loss history."""
    from .masks import describe_mask

    arch = model.config.architecture
    tr = model.config.training if isinstance(model.config.training, dict) else {}
    hist = tr.get("history") or {}
    lines = [
        f"axes {model.axes}, {arch.spatial_ndim}D U-Net (depth {arch.depth}, {arch.base_filters} base filters, "
        f"{arch.in_channels} channel(s){', N2V2' if arch.n2v2 else ''})",
        f"blind mask {describe_mask(model.mask)}",
    ]
    if tr:
        run = f"trained {tr.get('steps_done', '?')} steps{' (stopped early)' if tr.get('stopped') else ''}"
        if tr.get("final_loss") is not None:
            run += f", final loss {tr['final_loss']:.4g}"
        if hist.get("best_val_loss") is not None:
            run += f", best validation loss {hist['best_val_loss']:.4g} at step {hist.get('best_step')}"
        lines.append(run)
        lines.append(f"on {tr.get('device', '?')} in {tr.get('elapsed_s', '?')} s, {tr.get('date', '?')}")
    if hist.get("loss"):
        lines.append(f"loss history: {len(hist['loss'])} training and {len(hist.get('val_loss', []))} validation points "
                     "(--loss-csv FILE.csv writes them)")
    else:
        lines.append("loss history: none stored (a model from an older napari-structn2v)")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from .history import loss_history, save_loss_csv
    from .io import check_output
    from .model_io import load_model

    if args.loss_csv:  # before loading: a bad output name is reported at once
        check_output(args.loss_csv, option="--loss-csv", overwrite=args.overwrite,
                     protected={"the model file": args.model}, suffixes=(".csv",))
    model = load_model(args.model)
    if args.loss_csv:
        loss_history(model)  # a model without history: the error comes before the summary
    print(f"{args.model}: " + model_summary(model), flush=True)
    if args.loss_csv:
        path = save_loss_csv(model, args.loss_csv, overwrite=args.overwrite, option="--loss-csv")
        log.info("loss history written to %s", path)
    return 0


def _demo_train(noisy: np.ndarray, mask: np.ndarray, cfg: TrainConfig, label: str, quiet: bool) -> Any:
    """One of the demo's trainings, with a progress bar (or a line at every quarter)."""
    from .training import TrainStep, train

    with Progress(label, "step", quiet=quiet, lines=4) as progress:
        def show(event: Any) -> None:
            if isinstance(event, TrainStep):
                line = f"    step {event.step}/{event.total_steps}  loss {event.loss:.4f}"
                progress.update(event.step, event.total_steps, line, loss=f"{event.loss:.4f}")

        return train(noisy, "YX", mask, cfg, callback=show)


def cmd_export_bmz(args: argparse.Namespace) -> int:
    from .bmz import export_bmz, test_bmz
    from .model_io import load_model

    model = load_model(args.model)
    image = None
    if args.input:
        from .io import read_image

        image = read_image(args.input)
    out = export_bmz(
        model, args.out, image=image, axes=args.axes, name=args.name, authors=args.author or ["napari-structn2v user"],
        license=args.license, overwrite=args.overwrite,
    )
    log.info("bioimage.io model package written to %s", out)
    if args.test:
        passed, report = test_bmz(out)
        print(f"bioimageio.core test: {'passed' if passed else 'FAILED'}")
        if not passed:
            print(report, file=sys.stderr)
            return 1
    return 0


def _add_train_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``train`` command and its options (defaults from TrainConfig)."""
    t = sub.add_parser("train", parents=[common], help="train a StructN2V model on noisy images")
    t.add_argument("images", nargs="+", help="noisy TIFF(s), all with the same axes")
    t.add_argument("--axes", required=True, help="axes over STCZYX, e.g. YX, SYX, ZYX, CYX")
    t.add_argument("--mask", required=True, help="WxH[xD] (e.g. 9x1, 1x17x1, 1x1 = N2V), 'auto', or a mask file (.npy/.tif)")
    t.add_argument("--out", required=True, help="model file to write (e.g. model.pt)")
    t.add_argument("--dark", help="dark frame / pure noise used by --mask auto (ignored otherwise)")
    t.add_argument("--steps", type=int, default=None, help="optimiser steps (default 1500 without --time; with --time: no step limit)")
    t.add_argument("--time", help="wall-clock budget: 90, 90s, 3m, 1h, 1m30s (with --steps: whichever ends first)")
    d = TrainConfig()  # the defaults live in one place: TrainConfig
    t.add_argument("--patch", type=int, default=d.patch_size, help=f"YX patch side (default {d.patch_size})")
    t.add_argument("--patch-z", type=int, default=d.patch_size_z, help=f"Z patch side for 3D (default {d.patch_size_z})")
    t.add_argument("--batch", type=int, default=d.batch_size, help=f"patches per step (default {d.batch_size})")
    t.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate (default {d.lr:g})")
    t.add_argument("--schedule", choices=("constant", "cosine"), default=d.schedule,
                   help=f"learning-rate schedule over the budget (default {d.schedule})")
    t.add_argument("--seed", type=int, default=d.seed)
    t.add_argument("--device", default=d.device, help="auto, cpu, cuda, cuda:N or mps")
    t.add_argument("--val-fraction", type=float, default=d.val_fraction)
    t.add_argument("--filters", type=int, default=d.base_filters,
                   help=f"base filters of the U-Net (default {d.base_filters}, doubling per level)")
    t.add_argument("--depth", type=int, default=d.depth)
    t.add_argument("--z-net", choices=("auto", "2d", "3d"), default=d.z_net,
                   help="data with Z: a 2D network over the slices or a 3D one (auto: 2D when the mask does not extend along Z)")
    t.add_argument("--z-context", type=int, default=d.z_context,
                   help=f"2D network over Z slices: neighbouring slices on each side it also reads (default {d.z_context})")
    t.add_argument("--n2v2", action="store_true", help="N2V2 variant (blur-pool, no top skip connection)")
    t.add_argument("--checkpoint-dir", help="write best.pt and last.pt here")
    t.add_argument("--resume", help="continue training this model file (its normalisation and network are kept)")
    t.add_argument("--overwrite", action="store_true", help="replace an existing --out file (even the --resume model)")
    t.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="structn2v", description="Structured Noise2Void: remove spatially correlated noise without clean data.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    # --quiet after the command too; SUPPRESS keeps one given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze-noise", parents=[common], help="autocorrelation of pure noise and a suggested blind mask")
    a.add_argument("noise", help="TIFF of pure noise (dark frame) or an image with an empty region (--roi)")
    a.add_argument("--axes", help="axes over STCZYX (default: YX for 2D, ZYX for 3D)")
    a.add_argument(
        "--roi", action="append",
        help="region Y0:Y1,X0:X1 or Z0:Z1,Y0:Y1,X0:X1 holding only noise; repeat to pool several",
    )
    a.add_argument("--max-lag", type=int, default=16, help="largest lag shown (default 16)")
    a.add_argument("--out-autocorr", help="write the autocorrelation to this file (.tif, .tiff or .npy)")
    a.add_argument("--overwrite", action="store_true", help="replace an existing --out-autocorr file")
    a.set_defaults(func=cmd_analyze)

    _add_train_parser(sub, common)

    r = sub.add_parser("predict", parents=[common], help="denoise images with a trained model (streamed tile by tile)")
    r.add_argument("model")
    r.add_argument("inputs", nargs="+", metavar="input",
                   help="image(s): .tif, .tiff, .npy, .zarr or .ome.zarr files, folders of them, or globs ('raw/*.tif')")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="denoised image to write for one input (.tif, .tiff, .npy, .zarr or .ome.zarr)")
    where.add_argument("--out-dir", help="folder for the denoised images of several inputs (same names as the inputs)")
    r.add_argument("--cluster", help="predict with dask: local:N (a LocalCluster of N workers) or tcp://HOST:PORT "
                   "(an existing dask scheduler); needs the big extra")
    r.add_argument("--axes", help="axes of INPUT (default: the model's, adapted)")
    r.add_argument("--tile", type=int, default=256)
    r.add_argument("--overlap", type=int, help="tile overlap (default: from the receptive field)")
    r.add_argument("--device", default="auto")
    r.add_argument("--no-tta", action="store_true", help="one pass instead of the mean over the flips that keep the "
                   "mask's orientation (4x faster, about 0.3 dB worse)")
    r.add_argument("--overwrite", action="store_true", help="replace an existing output (even the input)")
    r.set_defaults(func=cmd_predict)

    b = sub.add_parser("export-bmz", parents=[common], help="write a model as a BioImage Model Zoo package (bioimage.io, .zip)")
    b.add_argument("model", help="model file (.pt) from train")
    b.add_argument("out", help="package to write (.zip)")
    b.add_argument("--input", help="image for the test tensors and the cover (default: the synthetic sample)")
    b.add_argument("--axes", help="axes of --input (default: the model's, adapted)")
    b.add_argument("--name", help="model name shown in the zoo")
    b.add_argument("--author", action="append", help="author name (repeat for several)")
    b.add_argument("--license", default="CC-BY-4.0", help="SPDX license of the weights (default CC-BY-4.0)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    b.add_argument("--test", action="store_true", help="run bioimageio.core's model test on the package (offline)")
    b.set_defaults(func=cmd_export_bmz)

    i = sub.add_parser("info", parents=[common], help="describe a model file; --loss-csv writes its loss history")
    i.add_argument("model", help="model file (.pt) or one of our bioimage.io packages (.zip)")
    i.add_argument("--loss-csv", help="write the loss history to this file (.csv: step,train_loss,val_loss)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing --loss-csv file")
    i.set_defaults(func=cmd_info)

    d = sub.add_parser("demo", parents=[common], help="synthetic end-to-end run: analyse, train N2V and StructN2V, compare")
    d.add_argument("--out", default="structn2v_demo", help="folder for the TIFFs and the model")
    d.add_argument("--steps", type=int, default=400)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="auto")
    d.add_argument("--overwrite", action="store_true", help="replace the files of an earlier demo in --out")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``structn2v`` console script."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed on one line
        return exc.code if isinstance(exc.code, int) else 2
    with console_logging(getattr(args, "quiet", False)), warnings.catch_warnings():
        warnings.simplefilter("always", StructN2VWarning)
        warnings.showwarning = _show_warning
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; a user mistake becomes one error line and exit status 2."""
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        return _fail(f"{OPTION_OF.get(exc.field, exc.field)} {exc.problem}")
    except StructN2VError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))
    except MemoryError:
        return _fail("out of memory; use smaller images, tiles, patches or batches")
    except KeyboardInterrupt:
        print("structn2v: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    log.error("%s", message)  # one "structn2v: error: ..." line on stderr, also with --quiet
    return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one ``warning: ...`` line; others as Python shows them."""
    if issubclass(category, StructN2VWarning):
        log.warning("%s", message)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
