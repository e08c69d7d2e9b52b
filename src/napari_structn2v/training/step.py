"""One StructN2V training step and what it needs: masked inputs, the optimisation step, the
validation loss, the moving average of the weights, mixed precision and the loss read-back.

Batches are ``(B, C, [Z,] Y, X)`` float32 patches on the network's device; with Z context the
patches are ``(B, C, 2k+1, Y, X)`` and the network reads the slices as channels.

Nothing in a step makes the host wait for the device: the masking has fixed shapes
(:class:`~napari_structn2v.method.blindspot.BlindSpots`), the flips are drawn on a CPU generator, and the
loss comes back through :class:`LossQueue`. On a GPU each wait would stall the queue of a small
U-Net's kernels (seven per step before, counted with a ``TorchDispatchMode``).
"""
from __future__ import annotations

import contextlib
import copy
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..method.augment import augment
from ..method.blindspot import BlindSpots
from ..method.losses import masked_mse


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype for ``device``: bfloat16 on CUDA devices and CPUs that have it natively,
    float16 (with a :class:`torch.amp.GradScaler`) on older CUDA devices, None (full precision)
    elsewhere, MPS included."""
    if not amp:
        return None
    if device.type == "cuda":
        # bfloat16 needs no loss scaling (the scaler's overflow checks are device work too)
        # (is_bf16_supported() also says yes for emulated bfloat16 on older cards: slow there)
        return torch.bfloat16 if torch.cuda.get_device_capability(device)[0] >= 8 else torch.float16
    if device.type == "cpu" and _cpu_has_bf16():
        return torch.bfloat16
    return None


def _cpu_has_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # noqa: BLE001 - builds without oneDNN: no native bf16
        return False


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device`` (see :func:`autocast_dtype`); None: full precision,
    without entering ``torch.autocast`` at all (older torch refuses even a disabled one on MPS)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def channels_last(device: torch.device, spatial_ndim: int) -> bool:
    """Whether 2D batches go channels-last on ``device``: on the CPU oneDNN's fast path (373 vs
    264 patches/s), on CUDA the tensor-core layout of cuDNN's convolutions."""
    return spatial_ndim == 2 and device.type in ("cpu", "cuda")


def make_optimizer(net: torch.nn.Module, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """Adam; on CUDA the fused kernel, which also takes the float16 loss scale on the device
    (a :class:`torch.amp.GradScaler` otherwise reads an overflow flag back every step)."""
    return torch.optim.Adam(net.parameters(), lr=lr, fused=True if device.type == "cuda" else None)


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


def masked_inputs(batch: torch.Tensor, spots: BlindSpots, gen: torch.Generator,
                  context: int) -> tuple[torch.Tensor, ...]:
    """Network input, target and loss weights for a batch of patches.

    With Z context the patches are ``(B, C, 2k+1, Y, X)``: the blind mask hides pixels of the
    centre slice only (the neighbours' noise is independent of it), the slices become channels
    (``C * (2k+1)``, channel-major) and the target is the centre slice.
    """
    if not context:
        xm, w = spots(batch, gen)
        return xm, batch, w
    centre = batch[:, :, context]
    xc, w = spots(centre, gen)
    stack = batch.clone()
    stack[:, :, context] = xc
    return stack.flatten(1, 2), centre, w


@dataclass
class StepSetup:
    """What every optimisation step of a run uses, made once (constants on the device).

    ``transforms``: the augmentation's YX transforms (see
    :func:`~napari_structn2v.method.augment.symmetric_transforms`), None without augmentation;
    ``flip_gen``: the CPU generator they are drawn from.
    """

    spots: BlindSpots
    gen: torch.Generator
    flip_gen: torch.Generator
    transforms: Sequence[int] | None
    dtype: torch.dtype | None
    context: int = 0
    channels_last: bool = False


def optimisation_step(net: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                      batch: torch.Tensor, setup: StepSetup) -> torch.Tensor:
    """Mask, augment, forward, masked loss, backward, Adam step; returns the (detached) loss
    tensor, still on the device."""
    xm, batch, w = masked_inputs(batch, setup.spots, setup.gen, setup.context)
    if setup.transforms is not None:
        xm, batch, w = augment((xm, batch, w), generator=setup.flip_gen, transforms=setup.transforms)
    if setup.channels_last:
        xm = xm.contiguous(memory_format=torch.channels_last)
    with autocast(xm.device, setup.dtype):
        pred = net(xm)
    loss = masked_mse(pred, batch, w)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


def evaluate(net: torch.nn.Module, batches: list[tuple[torch.Tensor, ...]], dtype: torch.dtype | None) -> float:
    """Mean masked loss of ``net`` over fixed ``(input, target, weights)`` batches (its mode is restored)."""
    if not batches:
        return 0.0
    was_training = net.training
    net.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for xm, target, w in batches:
            with autocast(xm.device, dtype):
                pred = net(xm)
            tot = tot + masked_mse(pred, target, w) * xm.shape[0]  # summed on the device: one read
            n += xm.shape[0]
    net.train(was_training)
    return float(tot.item()) / n


class LossQueue:
    """The per-step losses, read back on the host without making it wait for the device.

    On CUDA each loss is copied into pinned host memory behind an event and read once the
    event has passed (usually a step or two later); the host waits only when more than
    ``max_pending`` steps are behind. On the CPU the copy is done at once. Elsewhere (MPS) the
    losses are read ``max_pending`` at a time. Each loss travels with a ``tag`` (the step's
    record) so that events carry the loss of their own step.
    """

    def __init__(self, device: torch.device, max_pending: int = 25):
        self.device = device
        self.max_pending = max_pending
        self.pending: deque = deque()

    def put(self, loss: torch.Tensor, tag) -> None:
        """Queue a step's 0-d ``loss`` (on the device) with its ``tag``."""
        if self.device.type == "cuda":
            host = torch.empty((), dtype=torch.float32, pin_memory=True)
            host.copy_(loss, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self.pending.append((tag, host, event))
        elif self.device.type == "cpu":
            self.pending.append((tag, loss.float(), None))
        else:
            self.pending.append((tag, loss, None))

    def ready(self, *, wait: bool = False) -> list[tuple[object, float]]:
        """``(tag, loss)`` of every queued step whose loss is on the host now (all with ``wait``),
        in step order."""
        if self.device.type not in ("cuda", "cpu") and self.pending and (wait or len(self.pending) >= self.max_pending):
            values = torch.stack([v for _, v, _ in self.pending]).float().cpu().numpy()  # one read for many steps
            out = [(tag, float(v)) for (tag, _, _), v in zip(self.pending, values)]
            self.pending.clear()
            return out
        out = []
        while self.pending:
            tag, host, event = self.pending[0]
            if event is not None and not event.query():
                if not wait and len(self.pending) <= self.max_pending:
                    break
                event.synchronize()
            if host.device.type != "cpu":
                break
            self.pending.popleft()
            out.append((tag, float(host.numpy())))  # host memory: no device work
        return out
