"""One StructN2V training step and what it needs: masked inputs, the optimisation step, the
validation loss, the moving average of the weights and mixed precision.

Batches are ``(B, C, [Z,] Y, X)`` float32 patches on the network's device; with Z context the
patches are ``(B, C, 2k+1, Y, X)`` and the network reads the slices as channels.
"""
from __future__ import annotations

import contextlib
import copy

import torch

from .augment import augment
from .blindspot import blind_mask_batch
from .config import TrainConfig
from .losses import masked_mse


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


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (see :func:`autocast_dtype`); None: full precision."""
    return torch.autocast(device_type=device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


class EMA:
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
        """Move the averaged weights towards the network's current ones."""
        self.updates += 1
        # warm-up: the plain average over the first steps, so early weights do not dominate
        w = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_([e for e, _ in self.pairs], [p.detach() for _, p in self.pairs], w)
        for e, b in self.buffers:
            e.copy_(b)


def masked_inputs(batch: torch.Tensor, offsets: torch.Tensor, cfg: TrainConfig, gen: torch.Generator,
                  context: int) -> tuple[torch.Tensor, ...]:
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


def optimisation_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                      batch: torch.Tensor, offsets: torch.Tensor, cfg: TrainConfig, gen: torch.Generator,
                      rotate: bool, dtype: torch.dtype | None, context: int = 0) -> torch.Tensor:
    """Mask, augment, forward, masked loss, backward, Adam step; returns the loss tensor.

    ``rotate``: augment with 90-degree rotations too (the mask is square-symmetric).
    """
    xm, batch, w = masked_inputs(batch, offsets, cfg, gen, context)
    if cfg.augment:
        xm, batch, w = augment((xm, batch, w), generator=gen, rotate=rotate)
    if batch.device.type == "cpu" and xm.ndim == 4:
        xm = xm.contiguous(memory_format=torch.channels_last)
    with autocast(xm.device, dtype):
        pred = net(xm)
    loss = masked_mse(pred, batch, w)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


def evaluate(net: torch.nn.Module, batches: list[tuple[torch.Tensor, ...]], dtype: torch.dtype | None) -> float:
    """Mean masked loss of ``net`` over fixed ``(input, target, weights)`` batches (its mode is restored)."""
    was_training = net.training
    net.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for xm, target, w in batches:
            with autocast(xm.device, dtype):
                pred = net(xm)
            tot += masked_mse(pred, target, w).item() * xm.shape[0]
            n += xm.shape[0]
    net.train(was_training)
    return tot / max(n, 1)
