"""napari-structn2v: Structured Noise2Void for spatially correlated noise.

The package is a Qt-free core (this namespace, the Python API and the ``structn2v`` CLI) and a thin
napari layer (``napari_structn2v._widgets``). Importing it loads neither torch nor Qt: the public API
below is resolved lazily on first attribute access.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

# the one place for the version: pyproject.toml reads it (setuptools dynamic attr, without importing)
__version__ = "0.3.0"

_LAZY = {
    "analyze_noise": "noise.analysis",
    "autocorrelation": "noise.analysis",
    "power_spectrum": "noise.analysis",
    "suggest_mask": "noise.analysis",
    "NoiseAnalysis": "noise.analysis",
    "parse_mask_spec": "method.masks",
    "mask_to_spec": "method.masks",
    "box_mask": "method.masks",
    "load_mask": "method.masks",
    "save_mask": "method.masks",
    "TrainConfig": "config",
    "train": "training.loop",
    "train_iter": "training.loop",
    "StructN2VModel": "model",
    "load_model": "model",
    "StructN2VError": "errors",
    "export_bmz": "bmz.export",
    "predict_dask": "prediction.distributed",
    "loss_history": "training.history",
    "save_loss_csv": "training.history",
    "denoise": "pipeline",
    "denoise_iter": "pipeline",
    "DenoiseResult": "pipeline",
    "UnreliableNoiseError": "pipeline",
}

__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:  # pragma: no cover
    from .bmz.export import export_bmz
    from .config import TrainConfig
    from .errors import StructN2VError
    from .method.masks import box_mask, load_mask, mask_to_spec, parse_mask_spec, save_mask
    from .model import StructN2VModel, load_model
    from .noise.analysis import NoiseAnalysis, analyze_noise, autocorrelation, power_spectrum, suggest_mask
    from .pipeline import DenoiseResult, UnreliableNoiseError, denoise, denoise_iter
    from .prediction.distributed import predict_dask
    from .training.history import loss_history, save_loss_csv
    from .training.loop import train, train_iter


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
