"""StructN2V training as a generator of typed events.

Scripts and tests drain :func:`train_iter` (or call :func:`train`); the napari widget runs the same
generator in a thread worker and reacts to its events on the GUI thread.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path

import numpy as np
import torch

from .augment import augment
from .blindspot import blind_mask_batch, mask_offsets
from .config import TrainConfig
from .data import PatchSampler, check_patch, normalize, percentiles, prepare_arrays, split_validation
from .devices import resolve_device
from .errors import DataError, StructN2VError
from .events import Preview, TrainDone, TrainEvent, TrainStep, Validation
from .io import check_output_folder
from .losses import masked_mse
from .masks import describe_mask, parse_mask_spec, validate_mask
from .model_io import StructN2VModel, new_model_config
from .prediction import intensity_mismatch
from .resources import check_training_memory
from .unet import UNet, UNetConfig


def _lr_factor(schedule: str, progress: float) -> float:
    """Learning-rate factor at ``progress`` (0 to 1 of the budget, steps or time)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        t = min(1.0, max(0.0, progress))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))
    raise StructN2VError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")


def _patch_shape(cfg: TrainConfig, nd: int) -> tuple[int, ...]:
    return (cfg.patch_size,) * 2 if nd == 2 else (cfg.patch_size_z, cfg.patch_size, cfg.patch_size)


class Budget:
    """A step budget, a wall-clock budget, or both (whichever ends first)."""

    def __init__(self, steps: int | None, max_time_s: float | None):
        if steps is None and max_time_s is None:
            raise StructN2VError("give a step budget, a time budget, or both")
        self.steps, self.max_time_s = steps, max_time_s
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def progress(self, step: int) -> float:
        """Fraction of the budget used after ``step`` steps (the larger of steps and time)."""
        p = 0.0
        if self.steps is not None:
            p = step / max(1, self.steps)
        if self.max_time_s is not None:
            p = max(p, self.elapsed() / max(self.max_time_s, 1e-9))
        return min(1.0, p)

    def done(self, step: int) -> bool:
        return self.progress(step) >= 1.0

    def total_steps(self, step: int) -> int:
        """The step count the run will end at (an estimate under a time budget)."""
        p = self.progress(step)
        estimate = int(round(step / p)) if p > 0 else step
        return min(self.steps, estimate) if self.steps is not None else max(step, estimate)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype for ``device``: float16 on CUDA, bfloat16 on CPUs with native bf16."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and _cpu_has_bf16():
        return torch.bfloat16
    return None


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - builds without oneDNN: no native bf16
        return False


def over_slices(axes: str, mask: np.ndarray, z_net: str = "auto") -> bool:
    """True when data with ``axes`` get a 2D network over their Z slices (see ``TrainConfig.z_net``)."""
    if z_net not in ("auto", "2d", "3d"):
        raise StructN2VError(f"z_net must be 'auto', '2d' or '3d', got {z_net!r}")
    if "Z" not in axes.upper() or z_net == "3d":
        return False
    mask = np.asarray(mask, dtype=bool)
    return z_net == "2d" or mask.ndim == 2 or mask.shape[0] == 1


def _prepare_with_context(images, axes: str, slices: bool, want: int, resuming: bool) -> tuple[list, str, int]:
    """Arrays for training, their spatial axes and the Z context actually used.

    Z context needs volumes of at least ``2k + 1`` slices; it is reduced to what the thinnest
    volume allows (0: plain slices), except when resuming, where the model's context is fixed.
    """
    if not want:
        arrays, sp = prepare_arrays(images, axes, z_as_sample=slices)
        return arrays, sp, 0
    if "Z" not in axes.upper():
        raise DataError(f"the model reads neighbouring Z slices; these images (axes {axes!r}) have no Z axis")
    arrays, sp = prepare_arrays(images, axes, z_as_sample=False)
    context = min(want, (min(a.shape[2] for a in arrays) - 1) // 2)
    if resuming and context < want:
        raise DataError(f"the model reads {want} slices on each side of a slice; these volumes are thinner than {2 * want + 1} slices")
    if context:
        return arrays, sp, context
    arrays, sp = prepare_arrays(images, axes, z_as_sample=True)
    return arrays, sp, 0


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
                f"cannot resume a {arch.spatial_ndim}D {arch.in_channels}-channel model on "
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


def _validation_batches(val_arr, patch, offsets, cfg: TrainConfig, device, context: int = 0) -> list[tuple[torch.Tensor, ...]]:
    """Fixed masked batches (seeded apart from training) for a comparable validation loss."""
    if not val_arr:
        return []
    vgen = torch.Generator(device=device)
    vgen.manual_seed(cfg.seed + 1)
    vsampler = PatchSampler(val_arr, patch, rng=np.random.default_rng(cfg.seed + 1), device=device)
    batches = []
    for vb in vsampler.fixed_batches(4 * cfg.batch_size, cfg.batch_size):
        batches.append(_masked_inputs(vb, offsets, cfg, vgen, context))
    return batches


def _evaluate(net: torch.nn.Module, batches, device: torch.device, dtype: torch.dtype | None) -> float:
    """Mean masked loss of ``net`` over the fixed validation batches (its mode is restored)."""
    was_training = net.training
    net.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for xm, target, w in batches:
            with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                pred = net(xm)
            tot += masked_mse(pred, target, w).item() * xm.shape[0]
            n += xm.shape[0]
    net.train(was_training)
    return tot / max(n, 1)


class _EMA:
    """Exponential moving average of a network's weights (buffers are copied)."""

    def __init__(self, net: torch.nn.Module, decay: float):
        self.decay = decay
        self.net = copy.deepcopy(net).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.pairs = [(e, p) for e, p in zip(self.net.parameters(), net.parameters())]
        self.buffers = list(zip(self.net.buffers(), net.buffers()))
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        # warm-up: the plain average over the first steps, so early weights do not dominate
        w = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_([e for e, _ in self.pairs], [p.detach() for _, p in self.pairs], w)
        for e, b in self.buffers:
            e.copy_(b)


def _masked_inputs(batch: torch.Tensor, offsets, cfg: TrainConfig, gen, context: int) -> tuple[torch.Tensor, ...]:
    """Network input, target and loss weights for a batch of patches.

    With Z context the patches are ``(B, C, 2k+1, Y, X)``: the blind mask hides pixels of the
    centre slice only (the neighbours' noise is independent of it), the slices become channels
    (``C * (2k+1)``, channel-major) and the target is the centre slice.
    """
    if not context:
        xm, w = blind_mask_batch(batch, offsets, fraction=cfg.masked_fraction, generator=gen, replacement=cfg.replacement)
        return xm, batch, w
    centre = batch[:, :, context]
    xc, w = blind_mask_batch(centre, offsets, fraction=cfg.masked_fraction, generator=gen, replacement=cfg.replacement)
    stack = batch.clone()
    stack[:, :, context] = xc
    return stack.flatten(1, 2), centre, w


def _optimisation_step(net, optimizer, scaler, batch, offsets, cfg: TrainConfig, gen, rotate, device, dtype, context: int = 0) -> torch.Tensor:
    """Mask, augment, forward, masked loss, backward, Adam step; returns the loss tensor."""
    xm, batch, w = _masked_inputs(batch, offsets, cfg, gen, context)
    if cfg.augment:
        xm, batch, w = augment((xm, batch, w), generator=gen, rotate=rotate)
    if device.type == "cpu" and xm.ndim == 4:
        xm = xm.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        pred = net(xm)
    loss = masked_mse(pred, batch, w)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def _provenance(cfg: TrainConfig, mask_arr, steps_done: int, losses: list[float], best_val: float, best_step, device, budget: Budget,
                val_losses=(), earlier: dict | None = None) -> dict:
    from .history import training_curves  # the loss curves (thinned), after those of a resumed model

    curves = training_curves(losses, steps_done, val_losses, earlier)
    return {
        "config": cfg.to_dict(),
        "mask": describe_mask(mask_arr),
        "steps_done": steps_done,
        "final_loss": float(np.mean(losses[-50:])) if losses else None,
        "history": {"best_val_loss": best_val if math.isfinite(best_val) else None, "best_step": best_step, **curves},
        "device": str(device),
        "elapsed_s": round(budget.elapsed(), 2),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


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

    Yields
    ------
    TrainStep, Validation, Preview, and finally TrainDone.

    Returns
    -------
    StructN2VModel
        The model with the last weights (the averaged ones with ``config.ema``; ``best.pt``
        holds the best-validation ones).
    """
    cfg = copy.deepcopy(config) if config is not None else TrainConfig()
    budget = Budget(cfg.steps, cfg.max_time_s)
    if cfg.steps is not None and cfg.steps < 1 or cfg.batch_size < 1:
        raise StructN2VError("steps and batch size must be at least 1")
    if not 0 < cfg.masked_fraction <= 0.5:
        raise StructN2VError(f"masked_fraction must be in (0, 0.5], got {cfg.masked_fraction}")
    if not 0 <= cfg.val_fraction < 0.5:
        raise StructN2VError(f"val_fraction must be in [0, 0.5), got {cfg.val_fraction}")
    mask_arr = parse_mask_spec(mask) if isinstance(mask, str) else validate_mask(mask)
    slices = over_slices(axes, mask_arr, cfg.z_net) if resume is None else (resume.spatial_ndim == 2 and "Z" in axes.upper())
    z_extent = mask_arr.ndim == 3 and mask_arr.shape[0] > 1
    if slices and mask_arr.ndim == 3:
        mask_arr = mask_arr[mask_arr.shape[0] // 2]  # a slice's own pixels are all a 2D net sees
    want = resume.z_context if resume is not None else (cfg.z_context if slices and not z_extent else 0)
    arrays, sp, context = _prepare_with_context(images, axes, slices, want, resume is not None)
    net_sp = "YX" if context else sp
    nd = len(net_sp)
    patch = _patch_shape(cfg, nd)
    sample_patch = (2 * context + 1, *patch) if context else patch
    net, arch, low, high, done_before, history = _setup_network(cfg, arrays, net_sp, resume, context)
    mask_arr = validate_mask(mask_arr, spatial_ndim=nd, patch_shape=patch)
    bad = [p for p, m in zip(patch, arch.multiple) if p % m]
    if bad:
        raise StructN2VError(
            f"patch {'x'.join(map(str, patch))} must be a multiple of {'x'.join(map(str, arch.multiple))} "
            f"for a depth-{arch.depth} U-Net"
        )
    check_patch(arrays, sample_patch, sp)
    preview_axes = "".join(a for a in axes.upper() if a not in "ST")  # with Z for 2D nets too: slice by slice
    if preview_image is not None and np.ndim(preview_image) != len(preview_axes):
        raise DataError(f"the preview image must have axes {preview_axes!r} ({len(preview_axes)}D), got shape {np.shape(preview_image)}")

    device = resolve_device(cfg.device)
    check_training_memory(cfg.batch_size, patch, arch.base_filters, arch.depth, arch.pool, arch.in_channels, device, amp=cfg.amp)
    net.to(device)
    if nd == 2 and device.type == "cpu":
        net.to(memory_format=torch.channels_last)  # oneDNN's fast path: 373 vs 264 patches/s
    dtype = autocast_dtype(device, cfg.amp)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    train_arr, val_arr = split_validation(normalize(arrays, low, high), cfg.val_fraction, sample_patch)
    sampler = PatchSampler(train_arr, sample_patch, rng=rng, device=device)
    offsets = mask_offsets(mask_arr).to(device)
    val_batches = _validation_batches(val_arr, sample_patch, offsets, cfg, device, context)
    yx = mask_arr if mask_arr.ndim == 2 else mask_arr.any(0)
    rotate = yx.shape[0] == yx.shape[1] and bool(np.array_equal(yx, yx.T))
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    ema = _EMA(net, cfg.ema) if cfg.ema > 0 else None
    out_net = ema.net if ema is not None else net
    model = StructN2VModel(out_net, new_model_config(axes.upper(), mask_arr, low, high, arch, {}, z_context=context))

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckpt is not None:
        check_output_folder(ckpt, option="checkpoint_dir")  # a file there: one clear error, not at the first save
        ckpt.mkdir(parents=True, exist_ok=True)
    best_val = history.get("best_val_loss")
    best_val = math.inf if best_val is None else float(best_val)
    best_step = history.get("best_step")
    losses: list[float] = []
    val_losses: list[tuple[int, float]] = []
    stopped = False
    step = 0
    net.train()
    while step == 0 or not budget.done(step):  # one step at least, however slow the setup
        if should_stop is not None and should_stop():
            stopped = True
            break
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg.schedule, budget.progress(step))
        loss = _optimisation_step(net, optimizer, scaler, sampler.sample(cfg.batch_size), offsets, cfg, gen, rotate, device, dtype, context)
        step += 1
        if ema is not None:
            ema.update()
        loss_v = float(loss.item())
        if not math.isfinite(loss_v):
            raise StructN2VError(f"training diverged at step {done_before + step} (loss {loss_v}); lower the learning rate")
        losses.append(loss_v)
        elapsed = budget.elapsed()
        total = budget.total_steps(step)
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
        last = budget.done(step)
        if val_batches and (step % cfg.val_every == 0 or last):
            vl = _evaluate(out_net, val_batches, device, dtype)
            val_losses.append((done_before + step, vl))
            is_best = vl < best_val
            if is_best:
                best_val, best_step = vl, done_before + step
                if ckpt is not None:
                    model.config.training = _provenance(cfg, mask_arr, done_before + step, losses, best_val, best_step, device, budget, val_losses, history)
                    model.save(ckpt / "best.pt")
            yield Validation(step=done_before + step, val_loss=vl, best=is_best)
        if preview_image is not None and cfg.preview_every > 0 and (step % cfg.preview_every == 0 or step == 1):
            out = model.predict(preview_image, preview_axes, device=device, tta=False)
            net.train()
            yield Preview(step=done_before + step, image=out)

    out_net.eval()
    model.config.training = _provenance(cfg, mask_arr, done_before + step, losses, best_val, best_step, device, budget, val_losses, history)
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
