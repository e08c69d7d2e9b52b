"""Will a training run fit in memory? An estimate made before any memory is taken.

A batch far too large (``--batch 100000000``) used to run away (a Python loop drawing 10^8
patches, then an allocation the machine cannot serve); the estimate turns it into one sentence.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

from ..errors import ResourceError

#: bytes of training memory (activations kept for the backward pass, gradients, the batch) per
#: patch pixel, base filter and level weight. Measured as the peak-RSS increase of 2 CPU training
#: steps (torch 2.13, depth 2, 3x3 convs): 2D 64x64 patches, 16 filters, batch 16/64/128: 99/95/80
#: bytes per pixel*filter, i.e. 57/54/46 per level weight (1.75 for a 2D depth-2 U-Net);
#: 3D 32^3, batch 4/16: 36/58 per pixel*filter, 27/44 per level weight (1.31). Rounded up to 60.
BYTES_PER_PIXEL_FILTER = 60


def training_memory_bytes(
    batch: int,
    patch: Sequence[int],
    base_filters: int,
    depth: int,
    pool: Sequence[int],
    channels: int = 1,
    *,
    amp: bool = False,
) -> int:
    """Estimated peak memory (bytes) of one training step of the StructN2V U-Net.

    The U-Net's level ``l`` holds ``base_filters * 2**l`` channels at ``1 / prod(pool)**l`` of the
    patch pixels; the level weight is the sum of ``2**l / prod(pool)**l`` over the levels.
    ``amp``: float16 activations, half the bytes (an upper bound on the saving, not measured).
    """
    pixels = math.prod(int(p) for p in patch)
    shrink = math.prod(int(p) for p in pool)
    levels = sum(2**level / shrink**level for level in range(int(depth) + 1))
    per_pixel = BYTES_PER_PIXEL_FILTER * base_filters * levels + 16 * channels  # + input, target, weights
    total = float(batch) * pixels * per_pixel
    return int(total / 2 if amp else total)


def available_memory_bytes(device) -> int | None:
    """Free memory of ``device`` (a ``torch.device``) in bytes, or None when unknown."""
    if device.type == "cuda":
        import torch

        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # noqa: BLE001 - unknown: no check
            return None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def check_training_memory(
    batch: int,
    patch: Sequence[int],
    base_filters: int,
    depth: int,
    pool: Sequence[int],
    channels: int,
    device,
    *,
    amp: bool = False,
    available: int | None = None,
) -> None:
    """Raise :class:`ResourceError` when the estimated training memory exceeds what ``device`` has
    free (``available`` overrides the probe, for tests)."""
    need = training_memory_bytes(batch, patch, base_filters, depth, pool, channels, amp=amp and device.type == "cuda")
    free = available if available is not None else available_memory_bytes(device)
    if free is None or need <= free:
        return
    per_patch = need / batch
    fits = int(free // per_patch)
    hint = f"at most about {fits} patches fit" if fits >= 1 else "not even one patch fits: use a smaller patch or fewer filters"
    raise ResourceError(
        f"a batch of {batch} patches of {'x'.join(map(str, patch))} does not fit in memory: training needs "
        f"about {_size(need)} but {device} has {_size(free)} free; {hint}"
    )
