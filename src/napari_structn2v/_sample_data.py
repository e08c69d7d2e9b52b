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
    if _layers_take_axis_labels():
        # napari 0.9 names unlabelled axes "-3", "-2", "-1": the Z slider of the 3D sample read "-3"
        # at its left end, which looked like its first slice
        for meta in (noisy_meta, dark_meta):
            meta["axis_labels"] = tuple(sample["axes"])
    return [(sample["noisy"], noisy_meta, "image"), (sample["dark"], dark_meta, "image")]


def _layers_take_axis_labels() -> bool:
    """True when napari's Image layer has ``axis_labels`` (not every napari >= 0.5 has)."""
    import inspect

    from napari.layers import Image

    return "axis_labels" in inspect.signature(Image.__init__).parameters


def make_sample_2d() -> list[tuple[Any, dict, str]]:
    """2D ``YX`` 256x256 image with noise correlated along X, and a dark frame with the same noise."""
    return _layers("2d")


def make_sample_3d() -> list[tuple[Any, dict, str]]:
    """3D ``ZYX`` (32, 128, 128) stack with noise correlated along Y, and a dark frame."""
    return _layers("3d")
