"""Running a trained network for prediction: an inference copy of the network, the number format,
the batch size, and batched test-time augmentation.

:mod:`~napari_structn2v.prediction.predict` cuts the image into tiles; this module runs a batch of tiles
(each with all of its test-time transforms) through the network in one forward pass.

Inference copy (:func:`inference_net`): the network is copied, never changed; batch norms are
folded into the convolutions before them (in eval mode a batch norm is an affine map: the folded
net computes the same function, float rounding aside, with one pass fewer over every feature map:
3D prediction 1.9x faster on the CPU), its weights are put in the number format of the run, and
convolutions get the channels-last layout (oneDNN and cuDNN's fast kernels).

Number format (:func:`resolve_precision`): ``"auto"`` takes bfloat16 on CPUs with native
bfloat16 (AVX512-BF16 / AMX), float16 (autocast) on CUDA and float32 elsewhere. bfloat16 changed
the PSNR of trained models by at most 0.012 dB on the six development sets (limit 0.02 dB; table in
``benchmarks/results/precision_cpu.md``) and predicted 1.8x (2D) and 2.3x (3D) faster than float32
on this project's 2-core AVX512-BF16 CPU (``benchmarks/results/speed_cpu_predict_compare.md``).
float16 on CUDA is not measured yet: ``scripts/gpu_check.sh`` reports its PSNR change.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

PRECISIONS = ("auto", "float32", "bfloat16", "float16")
#: share of a CUDA device's free memory one forward pass may take: the rest is left for the
#: allocator's fragmentation, the output copies and other processes on the card
CUDA_MEMORY_SHARE = 0.5
#: most items (tile x test-time transform) in one forward pass: with 32 or more 256^2 tiles a
#: GPU's cores are busy already, and a larger batch only delays the first streamed tile
MAX_BATCH_ITEMS = 64


def cpu_has_bfloat16() -> bool:
    """True when this CPU computes bfloat16 natively (oneDNN's check: AVX512-BF16 or AMX); an
    emulated bfloat16 would be slower than float32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older torch without the check
        return False


def resolve_precision(precision: str | None, device: torch.device) -> torch.dtype:
    """The number format to predict in: ``"float32"``, ``"bfloat16"``, ``"float16"``, or
    ``"auto"`` / None (bfloat16 on CPUs that have it, float16 on CUDA, else float32).

    Raises :class:`~napari_structn2v.errors.ConfigError` for any other name.
    """
    name = "auto" if precision is None else str(precision).lower()
    if name not in PRECISIONS:
        raise ConfigError("precision", f"must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name == "auto":
        if device.type == "cuda":
            return torch.float16
        if device.type == "cpu" and cpu_has_bfloat16():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def fold_batch_norms(net: nn.Module) -> nn.Module:
    """Fold every eval-mode batch norm that directly follows a convolution inside an
    ``nn.Sequential`` into that convolution (in place; the batch norm becomes ``nn.Identity``).

    ``y = gamma * (conv(x) - mean) / sqrt(var + eps) + beta`` is a convolution with weights scaled
    by ``s = gamma / sqrt(var + eps)`` and bias ``s * (b - mean) + beta``.
    """
    for module in list(net.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for prev, name in zip(names, names[1:]):
            conv, bn = module._modules[prev], module._modules[name]
            if not (isinstance(conv, (nn.Conv2d, nn.Conv3d)) and isinstance(bn, (nn.BatchNorm2d, nn.BatchNorm3d))):
                continue
            if bn.running_mean is None or conv.groups != 1:
                continue
            with torch.no_grad():
                scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(bn.running_var + bn.eps)
                shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                folded = type(conv)(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride,
                                    padding=conv.padding, dilation=conv.dilation, bias=True, padding_mode=conv.padding_mode)
                folded.weight.copy_(conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1))))
                folded.bias.copy_((bias - bn.running_mean) * scale + shift)
            module._modules[prev] = folded.to(conv.weight.device)
            module._modules[name] = nn.Identity()
    return net


def memory_format(spatial_ndim: int) -> torch.memory_format:
    """Channels-last layout for a network with ``spatial_ndim`` spatial axes."""
    return torch.channels_last if spatial_ndim == 2 else torch.channels_last_3d


def inference_net(net: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """An eval-mode copy of ``net`` for prediction on ``device``: batch norms folded, weights in
    ``dtype`` on the CPU (on CUDA they stay float32 and autocast computes in float16/bfloat16),
    channels-last convolutions. ``net`` itself is not changed."""
    twin = fold_batch_norms(copy.deepcopy(net).eval())
    twin = twin.to(device)
    if device.type == "cpu" and dtype != torch.float32:
        twin = twin.to(dtype)
    for module in twin.modules():  # per convolution: a 2D net inside a Z-context net is 2D
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            module.to(memory_format=memory_format(module.weight.dim() - 2))
    return twin


def _apply(x: torch.Tensor, transform: Sequence) -> torch.Tensor:
    """``x`` flipped along the dims in ``transform`` and, with ``"T"``, Y and X swapped."""
    dims = [d for d in transform if d != "T"]
    x = x.flip(dims) if dims else x
    return x.transpose(-1, -2) if "T" in transform else x


def _undo(y: torch.Tensor, transform: Sequence) -> torch.Tensor:
    """The inverse of :func:`_apply` on an output."""
    y = y.transpose(-1, -2) if "T" in transform else y
    dims = [d for d in transform if d != "T"]
    return y.flip(dims) if dims else y


def forward_tta(net: nn.Module, x: torch.Tensor, transforms: Sequence[Sequence], dtype: torch.dtype,
                together: bool | None = None) -> torch.Tensor:
    """Mean of ``net`` over the test-time ``transforms`` (each undone on its output), float32.

    ``x`` is a batch ``(B, C, [Z,] Y, X)`` on the network's device. On CUDA all transforms of all
    items run in one forward pass of ``B * len(transforms)`` items (on tiles that are not square the
    Y/X-swapping ones take a second pass: their shape differs). On a CPU each transform is its own
    pass: 4 flips of a 228^2 tile in one batch of 4 took 6.3x one pass in bfloat16 on 2 cores, one
    after another 4.2x (the batch's feature maps leave the cache). ``together`` overrides the choice.
    """
    nd = x.dim() - 2
    on_cuda = x.device.type == "cuda"
    square = x.shape[-1] == x.shape[-2]
    if not (on_cuda if together is None else together):
        groups = [[t] for t in transforms]
    elif square:
        groups = [list(transforms)]
    else:
        groups = [[t for t in transforms if "T" not in t], [t for t in transforms if "T" in t]]
    acc = None
    for group in filter(None, groups):
        xs = torch.cat([_apply(x, t) for t in group]) if len(group) > 1 else _apply(x, group[0])
        xs = xs.to(dtype=torch.float32 if on_cuda else dtype)
        if nd in (2, 3) and getattr(net, "stack", None) is None:  # a Z-context net reshapes its input itself
            xs = xs.contiguous(memory_format=memory_format(nd))
        with torch.autocast(device_type="cuda", dtype=dtype, enabled=on_cuda and dtype != torch.float32):
            ys = net(xs).float()
        for t, y in zip(group, ys.split(x.shape[0])):
            y = _undo(y, t)
            acc = y if acc is None else acc + y
    return acc / len(transforms)


def items_per_pass(net: nn.Module, item: torch.Tensor, dtype: torch.dtype, n_transforms: int) -> int:
    """How many tiles to batch per forward pass (each tile with its ``n_transforms`` transforms).

    On CUDA: as many as fit in :data:`CUDA_MEMORY_SHARE` of the free memory, measured on one
    item (``item``: ``(1, C, *S)`` on the device) at most :data:`MAX_BATCH_ITEMS` items. Elsewhere
    1 tile: a CPU's threads are busy with one tile of 256^2 already, and a batch would only make
    the streamed tiles arrive later.
    """
    if item.device.type != "cuda":
        return 1
    torch.cuda.synchronize(item.device)
    before = torch.cuda.memory_allocated(item.device)
    torch.cuda.reset_peak_memory_stats(item.device)
    forward_tta(net, item, [()], dtype)
    torch.cuda.synchronize(item.device)
    peak = max(1, torch.cuda.max_memory_allocated(item.device) - before)
    free, _ = torch.cuda.mem_get_info(item.device)
    items = int(free * CUDA_MEMORY_SHARE // peak)
    return max(1, min(items, MAX_BATCH_ITEMS) // max(1, n_transforms))
