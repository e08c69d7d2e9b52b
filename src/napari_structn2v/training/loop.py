"""StructN2V training as a generator of typed events.

Scripts and tests drain :func:`train_iter` (or call :func:`train`); the napari widget runs the same
generator in a thread worker and reacts to its events on the GUI thread.

:func:`train_iter` orchestrates named phases: :func:`_setup` (checks, data, network, optimiser),
then per step :func:`_train_step`, :func:`_validate` and :func:`_preview`, and :func:`_finish`. The
step itself is in :mod:`.step`, the budgets in :mod:`.budget`, the input checks in :mod:`.checks`,
the handling of Z slices in :mod:`.zcontext`.
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..config import TrainConfig, check_masked_fraction
from ..devices import resolve_device
from ..errors import DataError, StructN2VError, StructN2VWarning
from ..events import Preview, TrainDone, TrainEvent, TrainStep, Validation
from ..io.images import check_output_folder
from ..method.augment import symmetric_transforms
from ..method.blindspot import BlindSpots, mask_offsets
from ..method.masks import describe_mask, validate_mask
from ..model import StructN2VModel, new_model_config
from ..nn.unet import UNet, UNetConfig
from ..noise.fixed_pattern import FixedPattern, subtract_pattern, training_pattern
from ..prediction.predict import intensity_mismatch
from .budget import Budget, lr_factor
from .checks import check_patch_fits, check_patch_multiple, check_train_settings, from_torch, patch_shape
from .data import PatchSampler, normalize, percentiles, split_validation, validation_patch
from .resources import check_training_memory
from .step import (
    EMA,
    LossQueue,
    StepSetup,
    autocast_dtype,
    channels_last,
    evaluate,
    make_optimizer,
    masked_inputs,
    optimisation_step,
)
from .zcontext import network_mask, over_slices, prepare_with_context

# the events and over_slices (which the Train widget imports from here) are part of this module's API
__all__ = ["Preview", "TrainDone", "TrainEvent", "TrainStep", "Validation", "over_slices", "train", "train_iter"]


def _setup_network(cfg: TrainConfig, arrays: list[np.ndarray], sp: str, resume: StructN2VModel | None, context: int = 0):
    """The network, its architecture, normalisation and the history of a resumed model.

    ``sp`` are the network's spatial axes; with Z ``context`` it reads ``2 * context + 1`` slices
    per data channel."""
    nd = len(sp)
    n_ch = arrays[0].shape[1]
    if resume is not None:
        arch = resume.config.architecture
        if arch.spatial_ndim != nd or arch.out_channels != n_ch:
            raise DataError(
                f"cannot resume a {arch.spatial_ndim}D {arch.out_channels}-channel model on "
                f"{nd}D {n_ch}-channel data"
            )
        low, high = np.asarray(resume.config.low), np.asarray(resume.config.high)
        for a in arrays:  # on data of another scale the loss explodes (3e7 seen) instead of improving
            mismatch = intensity_mismatch(a, "SC" + ("Z" if context else "") + sp, low, high, subject="their")
            if mismatch:
                raise DataError(f"cannot resume on these images: {mismatch}; train a new model for them")
        done_before = int(resume.config.training.get("steps_done", 0))
        return resume.net, arch, low, high, done_before, dict(resume.config.training.get("history", {}))
    arch = UNetConfig(
        spatial_ndim=nd,
        in_channels=n_ch * (2 * context + 1),
        out_channels=n_ch,
        depth=cfg.depth,
        base_filters=cfg.base_filters,
        kernel_size=cfg.kernel_size,
        pool=cfg.pool,
        n2v2=cfg.n2v2,
        norm=cfg.norm,
    )
    low, high = percentiles(arrays, cfg.pmin, cfg.pmax)
    torch.manual_seed(cfg.seed)
    return UNet(arch), arch, low, high, 0, {}


@dataclass
class _Inputs:
    """Checked training data and the network made for it (see :func:`_checked_inputs`)."""

    arrays: list[np.ndarray]  # (N, C, [Z,] Y, X), not yet normalised
    mask: np.ndarray
    context: int
    patch: tuple[int, ...]  # the network's patch
    sample_patch: tuple[int, ...]  # what is drawn: the patch with its 2k + 1 context slices
    net: UNet
    arch: UNetConfig
    low: np.ndarray
    high: np.ndarray
    done_before: int
    history: dict
    preview_axes: str
    pattern: np.ndarray | None = None  # the camera's fixed pattern (Y, X), subtracted from ``arrays``


def _checked_inputs(images, axes: str, mask, cfg: TrainConfig, resume: StructN2VModel | None, preview_image,
                    pattern: np.ndarray | None = None) -> _Inputs:
    """Arrays, mask and network, every user mistake raised before any device work; the camera's
    fixed ``pattern`` is subtracted from the images first."""
    check_train_settings(cfg)
    images = subtract_pattern(images, axes, pattern)
    mask_arr, slices, want = network_mask(axes, mask, cfg, resume)
    arrays, sp, context = prepare_with_context(images, axes, slices, want, resuming=resume is not None)
    net_sp = "YX" if context else sp
    nd = len(net_sp)
    patch = patch_shape(cfg, nd)
    sample_patch = (2 * context + 1, *patch) if context else patch
    net, arch, low, high, done_before, history = _setup_network(cfg, arrays, net_sp, resume, context)
    mask_arr = validate_mask(mask_arr, spatial_ndim=nd, patch_shape=patch)
    check_masked_fraction(cfg.masked_fraction, int(mask_arr.sum()))
    check_patch_multiple(patch, arch.multiple, arch.depth)
    check_patch_fits([a.shape[2:] for a in arrays], sample_patch, sp)
    preview_axes = "".join(a for a in axes.upper() if a not in "ST")  # with Z for 2D nets too: slice by slice
    if preview_image is not None and np.ndim(preview_image) != len(preview_axes):
        raise DataError(f"the preview image must have axes {preview_axes!r} ({len(preview_axes)}D), got shape {np.shape(preview_image)}")
    return _Inputs(arrays, mask_arr, context, patch, sample_patch, net, arch, low, high, done_before, history, preview_axes,
                   pattern)


def _validation_batches(val_arr, patch, offsets, cfg: TrainConfig, device, context: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Fixed masked batches (seeded apart from training) for a comparable validation loss."""
    if not val_arr:
        return []
    vgen = torch.Generator(device=device)
    vgen.manual_seed(cfg.seed + 1)
    vsampler = PatchSampler(val_arr, patch, rng=np.random.default_rng(cfg.seed + 1), device=device)
    spots = BlindSpots(patch[-2:] if context else patch, offsets, cfg.masked_fraction, cfg.replacement, device)
    return [masked_inputs(vb, spots, vgen, context) for vb in vsampler.fixed_batches(4 * cfg.batch_size, cfg.batch_size)]


@dataclass
class _Run:
    """What the training loop works with, made once by :func:`_setup`."""

    cfg: TrainConfig
    inputs: _Inputs
    budget: Budget
    device: torch.device
    dtype: torch.dtype | None  # autocast dtype; None: full precision
    sampler: PatchSampler
    step_setup: StepSetup  # masking, augmentation and precision of every step
    val_batches: list[tuple[torch.Tensor, ...]]
    losses: LossQueue  # step losses on their way back to the host
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    ema: EMA | None
    model: StructN2VModel  # its net is the averaged one with an EMA, else the trained one
    ckpt: Path | None

    @property
    def net(self) -> UNet:
        return self.inputs.net

    def at(self, step: int) -> int:
        """``step`` of this run counted from the start of training (a resumed model's steps first)."""
        return self.inputs.done_before + step


@dataclass
class _Log:
    """What the run has done so far."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    val_losses: list[tuple[int, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_step: int | None = None
    stopped: bool = False

    @classmethod
    def after(cls, history: dict) -> _Log:
        """A new log that knows the best validation loss of a resumed model's ``history``."""
        best_val = history.get("best_val_loss")
        return cls(best_val=math.inf if best_val is None else float(best_val), best_step=history.get("best_step"))


def _setup(images, axes: str, mask, config: TrainConfig | None, resume: StructN2VModel | None,
           preview_image, checkpoint_dir: str | Path | None, fixed_pattern=None) -> _Run:
    """Check the inputs, then put network, data, optimiser and checkpoint folder in place."""
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    budget = Budget(cfg.steps, cfg.max_time_s)
    pattern = training_pattern(fixed_pattern, axes, resume)
    inp = _checked_inputs(images, axes, mask, cfg, resume, preview_image, pattern)
    net, arch = inp.net, inp.arch
    device = resolve_device(cfg.device)
    check_training_memory(cfg.batch_size, inp.patch, arch.base_filters, arch.depth, arch.pool, arch.in_channels, device, amp=cfg.amp)
    net.to(device)
    step_setup = _step_setup(cfg, inp, device)
    if step_setup.channels_last:
        net.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed patch shapes: the fastest kernels, chosen once
    dtype = step_setup.dtype
    rng = np.random.default_rng(cfg.seed)
    train_arr, val_arr = split_validation(normalize(inp.arrays, inp.low, inp.high), cfg.val_fraction, inp.sample_patch,
                                          multiple=arch.multiple[-2])
    sampler = PatchSampler(train_arr, inp.sample_patch, rng=rng, device=device)
    val_patch = validation_patch(val_arr, inp.sample_patch)
    val_batches = _validation_batches(val_arr, val_patch, step_setup.spots.offsets, cfg, device, inp.context)
    optimizer = make_optimizer(net, cfg.lr, device)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    ema = EMA(net, cfg.ema) if cfg.ema > 0 else None
    model_config = new_model_config(axes.upper(), inp.mask, inp.low, inp.high, arch, {}, z_context=inp.context,
                                    fixed_pattern=inp.pattern)
    model = StructN2VModel(ema.net if ema is not None else net, model_config)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        check_output_folder(ckpt, option="checkpoint_dir")  # a file there: one clear error, not at the first save
        ckpt.mkdir(parents=True, exist_ok=True)
    return _Run(cfg=cfg, inputs=inp, budget=budget, device=device, dtype=dtype, sampler=sampler, step_setup=step_setup,
                val_batches=val_batches, losses=LossQueue(device), optimizer=optimizer, scaler=scaler, ema=ema, model=model,
                ckpt=ckpt)


def _step_setup(cfg: TrainConfig, inp: _Inputs, device: torch.device) -> StepSetup:
    """The per-run constants of the step: blind spots on the device, the generators (the main
    one on the device, seeded ``cfg.seed``; the flips' one on the CPU, ``cfg.seed + 2``), the
    mask's symmetries for augmentation and the precision."""
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    flip_gen = torch.Generator()
    flip_gen.manual_seed(cfg.seed + 2)  # + 1 seeds the validation batches
    spots = BlindSpots(inp.patch, mask_offsets(inp.mask), cfg.masked_fraction, cfg.replacement, device)
    square = inp.patch[-1] == inp.patch[-2]
    transforms = symmetric_transforms(inp.mask, square=square) if cfg.augment else None
    return StepSetup(spots=spots, gen=gen, flip_gen=flip_gen, transforms=transforms, dtype=autocast_dtype(device, cfg.amp),
                     context=inp.context, channels_last=channels_last(device, len(inp.patch)))


def _train_step(run: _Run, log: _Log) -> list[TrainStep]:
    """One optimisation step at the scheduled learning rate, counted in ``log``; returns the
    :class:`TrainStep` events of the steps whose losses have come back (see :func:`_arrived`)."""
    cfg = run.cfg
    lr = cfg.lr * lr_factor(cfg.schedule, run.budget.progress(log.step))
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    batch = run.sampler.sample(cfg.batch_size)
    loss = optimisation_step(run.net, run.optimizer, run.scaler, batch, run.step_setup)
    log.step += 1
    if run.ema is not None:
        run.ema.update()
    elapsed = run.budget.elapsed()
    total = run.budget.total_steps(log.step)
    rate = log.step / elapsed if elapsed > 0 else 0.0
    run.losses.put(loss, dict(
        step=run.at(log.step),
        total_steps=run.at(total),
        lr=lr,
        elapsed_s=elapsed,
        eta_s=(total - log.step) / rate if rate > 0 else float("inf"),
        patches_per_s=rate * cfg.batch_size,
    ))
    return _arrived(run, log)


def _arrived(run: _Run, log: _Log, *, wait: bool = False) -> list[TrainStep]:
    """The :class:`TrainStep` events of the steps whose losses are back on the host (all of them
    with ``wait``), each loss kept in ``log``. On a GPU they arrive a step or two late, so the
    host never waits for the device; on the CPU at once."""
    events = []
    for record, loss_v in run.losses.ready(wait=wait):
        if not math.isfinite(loss_v):
            raise StructN2VError(f"training diverged at step {record['step']} (loss {loss_v}); lower the learning rate")
        log.losses.append(loss_v)
        events.append(TrainStep(loss=loss_v, **record))
    return events


def _validation_due(run: _Run, step: int) -> bool:
    """Validate every ``val_every`` steps and after the last one (when there is validation data)."""
    return bool(run.val_batches) and (step % run.cfg.val_every == 0 or run.budget.done(step))


def _validate(run: _Run, log: _Log) -> Validation:
    """The validation loss now; a new best is kept in ``log`` (and saved as ``best.pt``)."""
    vl = evaluate(run.model.net, run.val_batches, run.dtype)
    run_step = run.at(log.step)
    log.val_losses.append((run_step, vl))
    is_best = vl < log.best_val
    if is_best:
        log.best_val, log.best_step = vl, run_step
        if run.ckpt is not None:
            run.model.config.training = _provenance(run, log)
            _checkpoint(run, "best.pt")
    return Validation(step=run_step, val_loss=vl, best=is_best)


def _checkpoint(run: _Run, name: str) -> None:
    """Save the model as ``name`` in the checkpoint folder. A checkpoint that cannot be written (a
    full disk, a folder made read-only) must not end the training it is a copy of: a warning,
    and no more checkpoints in this run."""
    try:
        run.model.save(run.ckpt / name)
    except (OSError, StructN2VError) as exc:
        warnings.warn(f"checkpoint {name} not written ({exc}); training goes on without checkpoints",
                      StructN2VWarning, stacklevel=2)
        run.ckpt = None


def _preview_due(run: _Run, step: int, preview_image) -> bool:
    """Preview after the first step and every ``preview_every`` steps (when asked for one)."""
    every = run.cfg.preview_every
    return preview_image is not None and every > 0 and (step % every == 0 or step == 1)


def _preview(run: _Run, step: int, preview_image: np.ndarray) -> Preview:
    """The model's prediction of ``preview_image`` now (the network goes back to training)."""
    out = run.model.predict(preview_image, run.inputs.preview_axes, device=run.device, tta=False)
    run.net.train()
    return Preview(step=run.at(step), image=out)


def _provenance(run: _Run, log: _Log) -> dict:
    """The model file's ``training`` record: settings, mask, steps, losses, device, time."""
    from .history import training_curves  # the loss curves (thinned), after those of a resumed model

    curves = training_curves(log.losses, run.at(log.step), log.val_losses, run.inputs.history)
    best_val = log.best_val if math.isfinite(log.best_val) else None
    arch = run.model.config.architecture
    config = run.cfg.to_dict()  # with the network actually trained (a resumed model keeps its own)
    config.update(depth=arch.depth, base_filters=arch.base_filters, pool=list(arch.pool), kernel_size=list(arch.kernel_size))
    return {
        "config": config,
        "mask": describe_mask(run.inputs.mask),
        "steps_done": run.at(log.step),
        "final_loss": float(np.mean(log.losses[-50:])) if log.losses else None,
        "history": {"best_val_loss": best_val, "best_step": log.best_step, **curves},
        "device": str(run.device),
        "elapsed_s": round(run.budget.elapsed(), 2),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        # rebuilt here, this record used to drop the versions new_model_config put in it
        "napari_structn2v_version": __version__,
        "torch_version": torch.__version__,
    }


def _finish(run: _Run, log: _Log) -> TrainDone:
    """Record provenance in the model, save ``last.pt`` and announce the end."""
    run.model.net.eval()
    run.model.config.training = _provenance(run, log)
    run.model.config.training["stopped"] = log.stopped
    if run.ckpt is not None:
        _checkpoint(run, "last.pt")
    return TrainDone(model=run.model, stopped=log.stopped, step=run.at(log.step))


def train_iter(
    images: np.ndarray | Sequence[np.ndarray],
    axes: str,
    mask: np.ndarray | str,
    config: TrainConfig | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    preview_image: np.ndarray | None = None,
    resume: StructN2VModel | None = None,
    checkpoint_dir: str | Path | None = None,
    fixed_pattern: FixedPattern | np.ndarray | None = None,
) -> Generator[TrainEvent, None, StructN2VModel]:
    """Train a StructN2V network, yielding events.

    Parameters
    ----------
    images : array or sequence of arrays
        Noisy images, all with axes ``axes`` (sizes may differ).
    axes : str
        Axes over ``STCZYX``, e.g. ``"YX"``, ``"SYX"``, ``"ZYX"``, ``"CYX"``.
    mask : np.ndarray or str
        Blind mask (bool ``(H, W)`` / ``(D, H, W)``) or a ``WxH[xD]`` spec.
    config : TrainConfig, optional
        Settings; ``config.steps`` / ``config.max_time_s`` are the budget (with ``resume``: to add).
    should_stop : callable, optional
        Checked before every step; returning True ends training (the model is kept).
    preview_image : np.ndarray, optional
        A small image (axes: ``axes`` without S and T) predicted every ``config.preview_every``
        steps and sent as :class:`Preview`.
    resume : StructN2VModel, optional
        Continue training this model (its normalisation and architecture are kept).
    checkpoint_dir : path, optional
        Where ``best.pt`` (lowest validation loss) and ``last.pt`` are written.
    fixed_pattern : FixedPattern or np.ndarray, optional
        The camera's fixed pattern (``(Y, X)``, the images' size), from
        :func:`~napari_structn2v.noise.fixed_pattern.estimate_fixed_pattern` on a dark stack: subtracted
        from the images before anything else, stored in the model (which subtracts it in
        prediction); neighbouring Z slices are still read (what the estimate misses is too small
        to matter, see :func:`~napari_structn2v.training.zcontext.network_mask`). A resumed model's own pattern applies when none is given. A
        :class:`FixedPattern` of a single dark frame for images with Z or T warns
        (:class:`~napari_structn2v.errors.StructN2VWarning`) that repeating noise cannot be ruled out.

    Yields
    ------
    TrainStep, Validation, Preview, and finally TrainDone.

    Returns
    -------
    StructN2VModel
        The model with the last weights (the averaged ones with ``config.ema``; ``best.pt``
        holds the best-validation ones).
    """
    images = from_torch(images)  # a tensor would meet numpy's dtype checks as "Cannot interpret 'torch.float32'"
    run = _setup(images, axes, mask, config, resume, preview_image, checkpoint_dir, fixed_pattern)
    log = _Log.after(run.inputs.history)
    run.net.train()
    while log.step == 0 or not run.budget.done(log.step):  # one step at least, however slow the setup
        if should_stop is not None and should_stop():
            log.stopped = True
            break
        yield from _train_step(run, log)
        if _validation_due(run, log.step):
            yield from _arrived(run, log, wait=True)
            yield _validate(run, log)
        if _preview_due(run, log.step, preview_image):
            yield from _arrived(run, log, wait=True)
            yield _preview(run, log.step, preview_image)
    yield from _arrived(run, log, wait=True)
    yield _finish(run, log)
    return run.model


def train(
    images: np.ndarray | Sequence[np.ndarray],
    axes: str,
    mask: np.ndarray | str,
    config: TrainConfig | None = None,
    *,
    callback: Callable[[TrainEvent], None] | None = None,
    **kwargs,
) -> StructN2VModel:
    """Run :func:`train_iter` to the end and return the model; ``callback`` sees every event."""
    model = None
    for event in train_iter(images, axes, mask, config, **kwargs):
        if callback is not None:
            callback(event)
        if isinstance(event, TrainDone):
            model = event.model
    return model
