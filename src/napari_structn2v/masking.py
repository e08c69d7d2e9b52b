"""StructN2V pixel manipulation: stratified active pixels, blind-mask replacement, masked loss.

All functions are pure torch, run on the tensors' device and take an explicit ``torch.Generator``.
Tensors are ``(B, C, [Z,] Y, X)``.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def mask_offsets(mask: np.ndarray) -> torch.Tensor:
    """Offsets ``(M, ndim)`` (int64) of the mask's pixels relative to its centre."""
    mask = np.asarray(mask, dtype=bool)
    centre = np.array([s // 2 for s in mask.shape])
    return torch.from_numpy(np.argwhere(mask) - centre).long()


def stratified_coords(
    batch: int,
    spatial_shape: tuple[int, ...],
    fraction: float,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random pixel in each cell of a regular grid whose cells hold ``1 / fraction`` pixels.

    Returns
    -------
    coords : torch.Tensor
        ``(B, K, ndim)`` int64 pixel coordinates.
    valid : torch.Tensor
        ``(B, K)`` bool; False where a cell at the far border put its pixel outside the patch.
    """
    nd = len(spatial_shape)
    side = max(1, int(round((1.0 / fraction) ** (1.0 / nd))))
    # in 3D keep Z cells thin when the patch is thin
    cells = [side] * nd
    grids = [torch.arange(0, s, c, device=device) for s, c in zip(spatial_shape, cells)]
    origin = torch.stack(torch.meshgrid(*grids, indexing="ij"), dim=-1).reshape(-1, nd)
    k = origin.shape[0]
    cell = torch.tensor(cells, device=device)
    jitter = (torch.rand((batch, k, nd), generator=generator, device=device) * cell).long()
    coords = origin[None] + jitter
    valid = (coords < torch.tensor(spatial_shape, device=device)).all(-1)
    return coords, valid


def blind_mask_batch(
    patches: torch.Tensor,
    offsets: torch.Tensor,
    *,
    fraction: float = 0.02,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide the blind mask around stratified active pixels.

    For every active pixel, every pixel of the blind mask around it (``offsets``, clipped to
    the patch) gets a value drawn uniformly from the patch's own range ``[min, max]`` (per patch and
    channel), independent of the pixel it replaces. This is StructN2V's replacement (N2V's
    neighbour copying would leak the correlated noise it is meant to hide).

    Parameters
    ----------
    patches : torch.Tensor
        ``(B, C, [Z,] Y, X)`` float training patches (targets; not modified).
    offsets : torch.Tensor
        ``(M, ndim)`` mask offsets (see :func:`mask_offsets`).

    Returns
    -------
    masked : torch.Tensor
        The input for the network, same shape as ``patches``.
    weights : torch.Tensor
        ``(B, 1, [Z,] Y, X)`` float, 1 at the active pixels, 0 elsewhere.
    """
    b, c = patches.shape[:2]
    spatial = tuple(patches.shape[2:])
    device = patches.device
    coords, valid = stratified_coords(b, spatial, fraction, generator=generator, device=device)
    offsets = offsets.to(device)
    shape_t = torch.tensor(spatial, device=device)
    strides = torch.tensor([math.prod(spatial[i + 1 :]) for i in range(len(spatial))], device=device)
    hidden = coords[:, :, None, :] + offsets[None, None]  # B, K, M, nd
    inside = ((hidden >= 0) & (hidden < shape_t)).all(-1) & valid[:, :, None]
    batch_idx = torch.arange(b, device=device)[:, None, None].expand_as(inside)[inside]
    pix_idx = (hidden * strides).sum(-1)[inside]
    flat = patches.reshape(b, c, -1)
    lo = flat.amin(-1)  # B, C
    hi = flat.amax(-1)
    u = torch.rand((batch_idx.numel(), c), generator=generator, device=device, dtype=patches.dtype)
    masked = flat.clone()
    masked[batch_idx, :, pix_idx] = lo[batch_idx] + u * (hi - lo)[batch_idx]
    weights = torch.zeros((b, 1, flat.shape[-1]), device=device, dtype=patches.dtype)
    active_b = torch.arange(b, device=device)[:, None].expand_as(valid)[valid]
    active_p = (coords * strides).sum(-1)[valid]
    weights[active_b, 0, active_p] = 1.0
    return masked.reshape(patches.shape), weights.reshape((b, 1, *spatial))


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the active pixels only (``weights`` 1), averaged over channels."""
    sq = (prediction.float() - target.float()) ** 2 * weights
    return sq.sum() / (weights.sum() * prediction.shape[1]).clamp_min(1.0)


def augment(
    tensors: tuple[torch.Tensor, ...],
    *,
    generator: torch.Generator,
    rotate: bool,
) -> tuple[torch.Tensor, ...]:
    """Apply one random flip/90-degree rotation in YX to all ``tensors`` alike.

    Called after masking, so the hidden pixels move with the data and stay aligned with the
    noise. Rotations turn horizontally correlated noise vertical, so they are used only when
    ``rotate`` (the mask is symmetric under 90-degree rotation, i.e. the noise is isotropic).
    """
    r = torch.randint(0, 8, (1,), generator=generator, device=generator.device).item()
    out = tensors
    if r & 1:
        out = tuple(t.flip(-1) for t in out)
    if r & 2:
        out = tuple(t.flip(-2) for t in out)
    if rotate and r & 4 and out[0].shape[-1] == out[0].shape[-2]:
        out = tuple(t.transpose(-1, -2) for t in out)
    return out
