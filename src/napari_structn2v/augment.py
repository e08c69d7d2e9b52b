"""Training augmentation: random flips and 90-degree rotations in YX, applied after masking."""
from __future__ import annotations

import torch


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
