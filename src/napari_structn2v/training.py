"""StructN2V training as a generator of typed events.

Scripts and tests drain :func:`train_iter` (or call :func:`train`); the napari widget runs the same
generator in a thread worker and reacts to its events on the GUI thread.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generator, Sequence, Union

import numpy as np
import torch

from .config import TrainConfig
from .data import PatchSampler, check_patch, normalize, percentiles, prepare_arrays, split_validation
from .devices import resolve_device
from .errors import DataError, StructN2VError
from .masking import augment, blind_mask_batch, mask_offsets, masked_mse
from .masks import describe_mask, parse_mask_spec, validate_mask
from .model_io import StructN2VModel, new_model_config
from .io import check_output_folder
from .prediction import intensity_mismatch
from .resources import check_training_memory
from .unet import UNet, UNetConfig


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step done."""

    step: int
    total_steps: int
    loss: float
    lr: float
    elapsed_s: float
    eta_s: float
    patches_per_s: float


@dataclass(frozen=True)
class Validation:
    """Validation loss (masked loss on fixed held-out patches with fixed masks)."""

    step: int
    val_loss: float
    best: bool


@dataclass(frozen=True)
class Preview:
    """The current model's output on the preview image (same shape, input intensity scale)."""

    step: int
    image: np.ndarray


@dataclass(frozen=True)
class TrainDone:
    """Training ended; ``stopped`` is True when ``should_stop`` ended it early."""

    model: StructN2VModel
    stopped: bool
    step: int


TrainEvent = Union[TrainStep, Validation, Preview, TrainDone]


def _lr_factor(schedule: str, step: int, total: int) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        t = min(1.0, step / max(1, total))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))
    raise StructN2VError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")


def _patch_shape(cfg: TrainConfig, nd: int) -> tuple[int, ...]:
    return (cfg.patch_size,) * 2 if nd == 2 else (cfg.patch_size_z, cfg.patch_size, cfg.patch_size)


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
        Settings; ``config.steps`` is the total budget (with ``resume``: steps to add).
    should_stop : callable, optional
        Checked before every step; returning True ends training (the model is kept).
    preview_image : np.ndarray, optional
        A small image (axes: ``axes`` without S and T) predicted every ``config.preview_every``
        steps and sent as :class:`Preview`.
    resume : StructN2VModel, optional
        Continue training this model (its normalisation and architecture are kept).
    checkpoint_dir : path, optional
        Where ``best.pt`` (lowest validation loss) and ``last.pt`` are written.

    Yields
    ------
    TrainStep, Validation, Preview, and finally TrainDone.

    Returns
    -------
    StructN2VModel
        The model with the last weights (``best.pt`` holds the best-validation ones).
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise StructN2VError("steps and batch size must be at least 1")
    if not 0 < cfg.masked_fraction <= 0.5:
        raise StructN2VError(f"masked_fraction must be in (0, 0.5], got {cfg.masked_fraction}")
    if not 0 <= cfg.val_fraction < 0.5:
        raise StructN2VError(f"val_fraction must be in [0, 0.5), got {cfg.val_fraction}")
    arrays, sp = prepare_arrays(images, axes)
    nd = len(sp)
    n_ch = arrays[0].shape[1]
    mask_arr = parse_mask_spec(mask) if isinstance(mask, str) else validate_mask(mask)
    patch = _patch_shape(cfg, nd)

    if resume is not None:
        arch = resume.config.architecture
        if arch.spatial_ndim != nd or arch.in_channels != n_ch:
            raise DataError(
                f"cannot resume a {arch.spatial_ndim}D {arch.in_channels}-channel model on "
                f"{nd}D {n_ch}-channel data"
            )
        low, high = np.asarray(resume.config.low), np.asarray(resume.config.high)
        for a in arrays:  # on data of another scale the loss explodes (3e7 seen) instead of improving
            mismatch = intensity_mismatch(a, "SC" + sp, low, high, subject="their")
            if mismatch:
                raise DataError(f"cannot resume on these images: {mismatch}; train a new model for them")
        net = resume.net
        done_before = int(resume.config.training.get("steps_done", 0))
        history = dict(resume.config.training.get("history", {}))
    else:
        arch = UNetConfig(
            spatial_ndim=nd,
            in_channels=n_ch,
            out_channels=n_ch,
            depth=cfg.depth,
            base_filters=cfg.base_filters,
            kernel_size=cfg.kernel_size,
            pool=cfg.pool,
            n2v2=cfg.n2v2,
        )
        low, high = percentiles(arrays, cfg.pmin, cfg.pmax)
        net = None
        done_before = 0
        history = {}
    mask_arr = validate_mask(mask_arr, spatial_ndim=nd, patch_shape=patch)
    bad = [p for p, m in zip(patch, arch.multiple) if p % m]
    if bad:
        raise StructN2VError(
            f"patch {'x'.join(map(str, patch))} must be a multiple of {'x'.join(map(str, arch.multiple))} "
            f"for a depth-{arch.depth} U-Net"
        )
    check_patch(arrays, patch, sp)

    device = resolve_device(cfg.device)
    check_training_memory(cfg.batch_size, patch, arch.base_filters, arch.depth, arch.pool, n_ch, device, amp=cfg.amp)
    torch.manual_seed(cfg.seed)
    if net is None:
        net = UNet(arch)
    net.to(device)
    if nd == 2 and device.type == "cpu":
        net.to(memory_format=torch.channels_last)  # oneDNN's fast path: ~1.5x on CPUs
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)

    norm = normalize(arrays, low, high)
    train_arr, val_arr = split_validation(norm, cfg.val_fraction, patch)
    sampler = PatchSampler(train_arr, patch, rng=rng, device=device)
    offsets = mask_offsets(mask_arr).to(device)
    val_batches: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    if val_arr:
        vgen = torch.Generator(device=device)
        vgen.manual_seed(cfg.seed + 1)
        vsampler = PatchSampler(val_arr, patch, rng=np.random.default_rng(cfg.seed + 1), device=device)
        for vb in vsampler.fixed_batches(max(cfg.batch_size, 4 * cfg.batch_size), cfg.batch_size):
            xm, w = blind_mask_batch(vb, offsets, fraction=cfg.masked_fraction, generator=vgen, replacement=cfg.replacement)
            val_batches.append((xm, vb, w))

    yx = mask_arr if mask_arr.ndim == 2 else mask_arr.any(0)
    rotate = yx.shape[0] == yx.shape[1] and bool(np.array_equal(yx, yx.T))
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    total = cfg.steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(cfg.schedule, s, total))
    use_amp = bool(cfg.amp and device.type == "cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    model = StructN2VModel(net, new_model_config(axes.upper(), mask_arr, low, high, arch, {}))
    preview_axes = "".join(a for a in axes.upper() if a not in "ST")
    if preview_image is not None and np.ndim(preview_image) != len(preview_axes):
        raise DataError(f"the preview image must have axes {preview_axes!r} ({len(preview_axes)}D), got shape {np.shape(preview_image)}")

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        check_output_folder(ckpt, option="checkpoint_dir")  # a file there: one clear error, not at the first save
        ckpt.mkdir(parents=True, exist_ok=True)
    best_val = history.get("best_val_loss")
    best_val = math.inf if best_val is None else float(best_val)
    best_step = history.get("best_step")
    losses: list[float] = []
    t0 = time.perf_counter()
    stopped = False
    step = 0

    def provenance() -> dict:
        return {
            "config": cfg.to_dict(),
            "mask": describe_mask(mask_arr),
            "steps_done": done_before + step,
            "final_loss": float(np.mean(losses[-50:])) if losses else None,
            "history": {"best_val_loss": best_val if math.isfinite(best_val) else None, "best_step": best_step},
            "device": str(device),
            "elapsed_s": round(time.perf_counter() - t0, 2),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def evaluate() -> float:
        net.eval()
        tot, n = 0.0, 0
        with torch.no_grad():
            for xm, target, w in val_batches:
                with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
                    pred = net(xm)
                tot += masked_mse(pred, target, w).item() * xm.shape[0]
                n += xm.shape[0]
        net.train()
        return tot / max(n, 1)

    net.train()
    for step in range(1, total + 1):
        if should_stop is not None and should_stop():
            stopped = True
            step -= 1
            break
        batch = sampler.sample(cfg.batch_size)
        xm, w = blind_mask_batch(batch, offsets, fraction=cfg.masked_fraction, generator=gen, replacement=cfg.replacement)
        if cfg.augment:
            xm, batch, w = augment((xm, batch, w), generator=gen, rotate=rotate)
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=use_amp):
            pred = net(xm)
        loss = masked_mse(pred, batch, w)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        loss_v = float(loss.item())
        if not math.isfinite(loss_v):
            raise StructN2VError(f"training diverged at step {step} (loss {loss_v}); lower the learning rate")
        losses.append(loss_v)
        elapsed = time.perf_counter() - t0
        rate = step / elapsed if elapsed > 0 else 0.0
        yield TrainStep(
            step=done_before + step,
            total_steps=done_before + total,
            loss=loss_v,
            lr=optimizer.param_groups[0]["lr"],
            elapsed_s=elapsed,
            eta_s=(total - step) / rate if rate > 0 else float("inf"),
            patches_per_s=rate * cfg.batch_size,
        )
        if val_batches and (step % cfg.val_every == 0 or step == total):
            vl = evaluate()
            is_best = vl < best_val
            if is_best:
                best_val, best_step = vl, done_before + step
                if ckpt is not None:
                    model.config.training = provenance()
                    model.save(ckpt / "best.pt")
            yield Validation(step=done_before + step, val_loss=vl, best=is_best)
        if preview_image is not None and cfg.preview_every > 0 and (step % cfg.preview_every == 0 or step == 1):
            out = model.predict(preview_image, preview_axes, device=device)
            net.train()
            yield Preview(step=done_before + step, image=out)

    net.eval()
    model.config.training = provenance()
    model.config.training["stopped"] = stopped
    if ckpt is not None:
        model.save(ckpt / "last.pt")
    yield TrainDone(model=model, stopped=stopped, step=done_before + step)
    return model


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
