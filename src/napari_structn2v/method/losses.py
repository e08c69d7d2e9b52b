"""The StructN2V loss: squared error at the active (blind-spot) pixels only."""
from __future__ import annotations

import torch


def masked_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the active pixels only (``weights`` 1), averaged over channels.

    ``prediction`` and ``target`` are ``(B, C, [Z,] Y, X)``, ``weights`` ``(B, 1, [Z,] Y, X)``
    (see :func:`~napari_structn2v.method.blindspot.blind_mask_batch`); computed in float32.
    """
    sq = (prediction.float() - target.float()) ** 2 * weights
    return sq.sum() / (weights.sum() * prediction.shape[1]).clamp_min(1.0)
