"""Sample data for napari: generated structured-noise images with a matching dark frame (no download)."""
from __future__ import annotations

from typing import Any


def _layers(kind: str) -> list[tuple[Any, dict, str]]:
    from .synthetic import make_sample

    sample = make_sample(kind, seed=0)
    tag = kind.upper()
    metadata = {"axes": sample["axes"], "noise_axis": sample["noise_axis"]}
    noisy_meta = {"name": f"{tag} structured noise", "metadata": dict(metadata)}
    dark_meta = {"name": f"{tag} dark frame", "metadata": dict(metadata), "visible": False}
    return [(sample["noisy"], noisy_meta, "image"), (sample["dark"], dark_meta, "image")]


def make_sample_2d() -> list[tuple[Any, dict, str]]:
    """2D ``YX`` 256x256 image with noise correlated along X, and a dark frame with the same noise."""
    return _layers("2d")


def make_sample_3d() -> list[tuple[Any, dict, str]]:
    """3D ``ZYX`` (32, 128, 128) stack with noise correlated along Y, and a dark frame."""
    return _layers("3d")
