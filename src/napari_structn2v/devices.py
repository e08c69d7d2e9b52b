"""Torch device discovery and selection (CUDA -> MPS -> CPU)."""
from __future__ import annotations

from .errors import StructN2VError


def available_devices() -> list[str]:
    """Devices this machine can train on: ``"cpu"``, each ``"cuda:i"``, and ``"mps"``."""
    import torch

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def resolve_device(name: str | None = "auto"):
    """Turn ``"auto"``/``None``/``"cpu"``/``"cuda"``/``"cuda:1"``/``"mps"`` into a ``torch.device``.

    ``"auto"`` picks the first CUDA device, else MPS, else the CPU. Asking for a device that does
    not exist raises :class:`~napari_structn2v.errors.StructN2VError`.
    """
    import torch

    if name is None or str(name).lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda:0")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(str(name).lower())
    except RuntimeError as exc:
        raise StructN2VError(f"unknown device {name!r}; choose one of {available_devices()} or 'auto'") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise StructN2VError(f"device {name!r} asked for, but CUDA is not available here; use 'cpu' or 'auto'")
        idx = dev.index or 0
        if idx >= torch.cuda.device_count():
            raise StructN2VError(f"device {name!r} does not exist; this machine has {torch.cuda.device_count()} CUDA device(s)")
        return torch.device(f"cuda:{idx}")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise StructN2VError("device 'mps' asked for, but MPS is not available here; use 'cpu' or 'auto'")
    if dev.type not in ("cpu", "cuda", "mps"):
        raise StructN2VError(f"unsupported device {name!r}; choose one of {available_devices()} or 'auto'")
    return dev
