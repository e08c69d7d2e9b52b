"""Training configuration (a plain dataclass; stored with every model)."""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields

from .errors import StructN2VError

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|min|s|sec)?", re.IGNORECASE)
_UNIT_S = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``"90s"``, ``"3m"``, ``"1h"`` or ``"1m30s"``.

    Raises :class:`StructN2VError` for anything else, or for a duration that is not positive.
    """
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(s):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_S[m.group(2).lower() if m.group(2) else None]
            pos = m.end()
        if not s or pos != len(s):
            raise StructN2VError(f"cannot read the duration {text!r}; write e.g. 90, 90s, 3m, 1h or 1m30s")
    if not math.isfinite(seconds) or seconds <= 0:
        raise StructN2VError(f"the duration must be positive, got {text!r}")
    return seconds


@dataclass
class TrainConfig:
    """Settings of one StructN2V training run.

    Defaults follow the StructN2V paper where it is specific (2-level U-Net, doubling filters,
    ~2 % active pixels, Adam, percentile normalisation) and are sized for a laptop CPU otherwise.

    Attributes
    ----------
    steps : int or None
        Total optimiser steps. None: no step limit (``max_time_s`` must be set).
    max_time_s : float or None
        Wall-clock budget in seconds, validation and checkpoints included. With both budgets,
        training ends at whichever comes first, and the learning-rate schedule follows the
        budget that is further along (users think in minutes, not steps).
    patch_size : int
        Side of the square YX training patch (a multiple of ``2 ** depth``).
    patch_size_z : int
        Z side of 3D patches.
    batch_size : int
        Patches per step.
    lr : float
        Adam learning rate.
    schedule : {"constant", "cosine"}
        Learning-rate schedule in steps: constant, or cosine decay to 5 % of ``lr`` at the last
        step. Constant is the default: at the benchmark budget (1500 steps, dev2d_x) it scored
        27.56 dB against 27.13 dB for cosine (CAREamics saw the same: 25.0 vs 24.8 dB).
    masked_fraction : float
        Fraction of active (loss) pixels per patch, placed by stratified sampling.
    replacement : {"segment", "random_pixel", "uniform"}
        What hidden pixels become (see :func:`~napari_structn2v.masking.blind_mask_batch`).
    val_fraction : float
        Share of each image (rows at the bottom) held out for validation; 0 disables it.
    val_every : int
        Steps between validation evaluations.
    seed : int
        Seed of every random choice (patches, active pixels, replacement values, init).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:0"``, ``"mps"``.
    amp : bool
        Mixed precision: float16 autocast + grad scaling on CUDA; bfloat16 autocast on CPUs with
        native bfloat16 (AVX-512 BF16 / AMX), where it nearly doubles the 2D training rate
        (373 -> 700 patches/s, batch 16 x 64^2, 2 threads); ignored elsewhere.
    augment : bool
        Random flips (and 90-degree rotations when the mask is square-symmetric), applied after
        masking to input, target and loss weights together, so mask and noise stay aligned.
    preview_every : int
        Steps between :class:`~napari_structn2v.training.Preview` events (0: never).
    depth, base_filters, n2v2, norm, kernel_size, pool : U-Net architecture (see
        :class:`~napari_structn2v.unet.UNetConfig`; None: 3-pixel kernels and 2x pooling).
    z_net : {"auto", "2d", "3d"}
        For data with a Z axis: ``"3d"`` trains a 3D network, ``"2d"`` a 2D network over the Z
        slices (Z becomes a sample axis and the mask its central YX plane), ``"auto"`` the 2D one
        when the blind mask does not extend along Z, i.e. the noise is independent across Z.
        At equal time on a CPU the 2D network wins there by far (see the README).
    ema : float
        Decay of an exponential moving average of the weights (0: off). The model keeps the
        averaged weights, which smooths out the noise of the self-supervised gradient.
    pmin, pmax : float
        Percentiles mapped to 0 and 1 by the normalisation (per channel).
    """

    steps: int | None = 1500
    max_time_s: float | None = None
    patch_size: int = 64
    patch_size_z: int = 16
    batch_size: int = 16
    lr: float = 4e-4
    schedule: str = "constant"
    masked_fraction: float = 0.02
    replacement: str = "segment"
    val_fraction: float = 0.1
    val_every: int = 100
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    augment: bool = True
    preview_every: int = 0
    depth: int = 2
    base_filters: int = 16
    n2v2: bool = False
    norm: str = "batch"
    ema: float = 0.0
    z_net: str = "auto"
    kernel_size: int | tuple[int, ...] | None = None
    pool: int | tuple[int, ...] | None = None
    pmin: float = 0.1
    pmax: float = 99.9

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        d = asdict(self)
        for key in ("kernel_size", "pool"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Build from a dict, ignoring unknown keys (files from newer versions)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
