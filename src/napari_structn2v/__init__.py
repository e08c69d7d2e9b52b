"""napari-structn2v: Structured Noise2Void for spatially correlated noise.

The package is a Qt-free core (this namespace, the Python API and the ``structn2v`` CLI) and a thin
napari layer (``napari_structn2v._widgets``). Importing it loads neither torch nor Qt: the public API
below is resolved lazily on first attribute access.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the one place for the version: pyproject.toml reads it (setuptools dynamic attr, without importing)
__version__ = "0.2.0"

_LAZY = {
    "analyze_noise": "noise",
    "autocorrelation": "noise",
    "power_spectrum": "noise",
    "suggest_mask": "noise",
    "NoiseAnalysis": "noise",
    "parse_mask_spec": "masks",
    "mask_to_spec": "masks",
    "box_mask": "masks",
    "load_mask": "masks",
    "save_mask": "masks",
    "TrainConfig": "config",
    "train": "training",
    "train_iter": "training",
    "StructN2VModel": "model_io",
    "load_model": "model_io",
    "StructN2VError": "errors",
    "export_bmz": "bmz",
    "predict_dask": "distributed",
    "loss_history": "history",
    "save_loss_csv": "history",
    "denoise": "pipeline",
    "denoise_iter": "pipeline",
    "DenoiseResult": "pipeline",
    "UnreliableNoiseError": "pipeline",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .bmz import export_bmz
    from .config import TrainConfig
    from .distributed import predict_dask
    from .errors import StructN2VError
    from .history import loss_history, save_loss_csv
    from .masks import box_mask, load_mask, mask_to_spec, parse_mask_spec, save_mask
    from .model_io import StructN2VModel, load_model
    from .noise import NoiseAnalysis, analyze_noise, autocorrelation, power_spectrum, suggest_mask
    from .pipeline import DenoiseResult, UnreliableNoiseError, denoise, denoise_iter
    from .training import train, train_iter


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
