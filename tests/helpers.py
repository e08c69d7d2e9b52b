"""Plain helpers shared by test files (fixtures live in conftest.py): synthetic images, an untrained
model builder, and the expected effect of a blind mask. torch and the package are imported only when
a helper runs, so importing this module stays cheap."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from napari_structn2v.model import StructN2VModel


def structured_image(size: int = 64) -> np.ndarray:
    """Horizontally correlated noise over an image whose right part is pure noise."""
    from napari_structn2v.synthetic import make_sample

    s = make_sample("2d", seed=1, size=size)
    img = s["noisy"].copy()
    img[:, size // 2 :] = s["dark"][:, size // 2 :]
    return img.astype(np.float32)


def untrained_model(
    axes: str = "YX",
    mask: np.ndarray | None = None,
    *,
    channels: int = 1,
    low: list[float] | None = None,
    high: list[float] | None = None,
    seed: int = 0,
    bn_spread: float = 0.0,
    training: dict[str, Any] | None = None,
    z_context: int = 0,
    **arch: Any,
) -> StructN2VModel:
    """A seeded, randomly initialised model in eval mode, without training.

    ``arch`` goes to :class:`UNetConfig` (``in_channels`` and ``out_channels`` default to
    ``channels``). ``bn_spread > 0`` draws the batch-norm running means from ``[-bn_spread,
    bn_spread]`` and the variances from ``[0.5, 1.5]``, so that a lost buffer changes the output. The
    mask defaults to a 3-pixel line (``3x1``, or ``1x3x1`` for a 3D network); the intensity range to
    ``[0, 2]`` per channel.
    """
    import torch

    from napari_structn2v.method.masks import box_mask
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig

    torch.manual_seed(seed)
    cfg = UNetConfig(**{"in_channels": channels, "out_channels": channels, **arch})
    net = UNet(cfg).eval()
    if bn_spread:
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
                    m.running_mean.uniform_(-bn_spread, bn_spread)
                    m.running_var.uniform_(0.5, 1.5)
    if mask is None:
        mask = box_mask(3, 1) if cfg.spatial_ndim == 2 else box_mask(1, 3, 1)
    low = [0.0] * channels if low is None else low
    high = [2.0] * channels if high is None else high
    return StructN2VModel(net, new_model_config(axes, mask, low, high, cfg, training or {}, z_context=z_context))


def gen(seed: int = 0) -> torch.Generator:
    """A seeded torch generator (the masking functions take an explicit one)."""
    import torch

    g = torch.Generator()
    g.manual_seed(seed)
    return g


def expected_hidden(weights: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    """Union of the mask placed around every active pixel (clipped to the patch)."""
    w = weights[:, 0].numpy() > 0
    out = np.zeros_like(w)
    offs = np.argwhere(mask) - np.array(mask.shape) // 2
    for b, *pos in np.argwhere(w):
        for off in offs:
            q = np.array(pos) + off
            if np.all(q >= 0) and np.all(q < w.shape[1:]):
                out[(b, *q)] = True
    return out
