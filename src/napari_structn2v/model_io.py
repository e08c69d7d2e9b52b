"""Trained models: weights + config in one file that loads without executing pickled code."""
from __future__ import annotations

import json
import pickle
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .devices import resolve_device
from .errors import AxesError, ModelFileError
from .masks import describe_mask, validate_mask
from .prediction import PredictDone, TileDone, check_input, predict_tiles, resolve_axes, tta_transforms
from .unet import UNet, UNetConfig

FORMAT = "napari-structn2v-model"
FORMAT_VERSION = 2
#: files without a fixed pattern are written as version 1, which readers from before version 2
#: open; a file with one needs a reader that subtracts it (version 2)
FORMAT_VERSION_PLAIN = 1


@dataclass
class ModelConfig:
    """Everything needed to use a trained network besides its weights.

    Attributes
    ----------
    axes : str
        Axes of the training data (e.g. ``"SYX"``, ``"ZYX"``).
    mask : np.ndarray
        The blind mask (bool, ``(H, W)`` or ``(D, H, W)``).
    low, high : list of float
        Per-channel normalisation: input ``(x - low) / (high - low)``.
    architecture : UNetConfig
    training : dict
        Provenance: the TrainConfig, steps done, losses, timing, versions, date.
    z_context : int
        For a 2D network over Z slices: neighbouring slices on each side it reads as extra input
        channels (``architecture.in_channels`` is the data's channels times ``2 * z_context + 1``).
    fixed_pattern : np.ndarray or None
        The camera's fixed pattern ``(Y, X)`` float32 (:mod:`~napari_structn2v.noise_fixed`),
        subtracted from every image before the network sees it; stored in the model file as a
        tensor beside the weights (its shape in the JSON config).
    """

    axes: str
    mask: np.ndarray
    low: list[float]
    high: list[float]
    architecture: UNetConfig
    training: dict[str, Any] = field(default_factory=dict)
    z_context: int = 0
    fixed_pattern: np.ndarray | None = None

    def to_json(self) -> str:
        pattern = None if self.fixed_pattern is None else {"shape": list(np.shape(self.fixed_pattern))}
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION if pattern is not None else FORMAT_VERSION_PLAIN,
                "axes": self.axes,
                "mask": np.asarray(self.mask, dtype=np.uint8).tolist(),
                "normalization": {"method": "percentile", "low": list(map(float, self.low)), "high": list(map(float, self.high))},
                "architecture": self.architecture.to_dict(),
                "training": self.training,
                "z_context": int(self.z_context),
                **({"fixed_pattern": pattern} if pattern is not None else {}),
            }
        )

    @classmethod
    def from_json(cls, text: str, fixed_pattern: np.ndarray | None = None) -> ModelConfig:
        """The config of ``text``; ``fixed_pattern`` is the pattern tensor stored beside it (it
        must be there, and of the recorded shape, when the config records one)."""
        d = json.loads(text)
        if d.get("format") != FORMAT:
            raise ModelFileError("the file is not a napari-structn2v model (unknown format tag)")
        if int(d.get("format_version", 0)) > FORMAT_VERSION:
            raise ModelFileError(
                f"the model file has format version {d['format_version']}; this napari-structn2v "
                f"reads up to {FORMAT_VERSION}: upgrade napari-structn2v"
            )
        norm = d["normalization"]
        return cls(
            axes=d["axes"],
            mask=validate_mask(np.array(d["mask"], dtype=bool)),
            low=norm["low"],
            high=norm["high"],
            architecture=UNetConfig(**d["architecture"]),
            training=d.get("training", {}),
            z_context=int(d.get("z_context", 0)),  # files from before Z context: none
            fixed_pattern=_stored_pattern(d.get("fixed_pattern"), fixed_pattern),  # before version 2: none
        )


def _stored_pattern(recorded: Any, stored: Any) -> np.ndarray | None:
    """The fixed pattern of a model file: ``stored`` (a tensor or array) checked against the shape
    ``recorded`` in its config; a file that records none has none."""
    if recorded is None:
        return None
    if stored is None:
        raise ModelFileError("the model config records a fixed pattern but the file holds none")
    pattern = np.asarray(stored.numpy() if hasattr(stored, "numpy") else stored, dtype=np.float32)
    if not isinstance(recorded, dict) or list(pattern.shape) != list(recorded.get("shape", [])) or pattern.ndim != 2:
        raise ModelFileError(f"the stored fixed pattern has shape {pattern.shape}, the config records {recorded!r}")
    if not np.isfinite(pattern).all():
        raise ModelFileError("the stored fixed pattern holds NaN or infinite values")
    return pattern


class StructN2VModel:
    """A trained StructN2V network with its config; predicts and saves itself."""

    def __init__(self, net: UNet, config: ModelConfig):
        self.net = net
        self.config = config

    # -- properties ---------------------------------------------------------------------------
    @property
    def mask(self) -> np.ndarray:
        return self.config.mask

    @property
    def axes(self) -> str:
        return self.config.axes

    @property
    def spatial_ndim(self) -> int:
        return self.config.architecture.spatial_ndim

    @property
    def n_channels(self) -> int:
        """Channels of the data (the network may read more: Z context slices)."""
        return self.config.architecture.out_channels

    @property
    def z_context(self) -> int:
        return self.config.z_context

    def __repr__(self) -> str:
        steps = self.config.training.get("steps_done", "?")
        return (
            f"StructN2VModel(axes={self.axes!r}, mask={describe_mask(self.mask)!r}, "
            f"depth={self.config.architecture.depth}, filters={self.config.architecture.base_filters}, "
            f"steps={steps})"
        )

    # -- prediction ---------------------------------------------------------------------------
    def resolve_axes(self, ndim: int, axes: str | None = None) -> str:
        """The axes of an ``ndim``-D input: ``axes`` checked against the model, or the training axes
        with S/T added or dropped to fit. Reads no data. A Z-context model needs a Z axis
        (``AxesError`` otherwise); channels are the data's, not the network's context channels."""
        arch = self.config.architecture
        ax = resolve_axes(ndim, self.axes, axes, arch.spatial_ndim, self.n_channels)
        if self.z_context and "Z" not in ax:
            raise AxesError(
                f"this model denoises each Z slice with {self.z_context} neighbouring slice(s) on each "
                f"side; give it a volume with a Z axis (axes {ax!r} have none)"
            )
        return ax

    def check_input(self, image: np.ndarray, axes: str | None = None) -> str:
        """Check ``image`` against the model and return its axes (``axes``, or derived from the
        model's when None).

        Raises :class:`~napari_structn2v.errors.DataError` / ``AxesError`` for data the model
        cannot denoise (complex, boolean, NaN/inf, wrong channels, an RGB-looking last axis with
        derived axes); warns with :class:`~napari_structn2v.errors.IntensityWarning` when the
        intensities lie far outside the training normalisation.
        """
        image = np.asarray(image) if not hasattr(image, "shape") else image
        ax = self.resolve_axes(image.ndim, axes)
        check_input(image, ax, low=self.config.low, high=self.config.high, guessed_axes=axes is None)
        return ax

    def predict_iter(
        self,
        image: np.ndarray,
        axes: str | None = None,
        *,
        tile: int | Sequence[int] = 256,
        overlap: int | Sequence[int] | None = None,
        device: str | torch.device = "auto",
        amp: bool = False,
        tta: bool = True,
        should_stop: Callable[[], bool] | None = None,
        check: bool = True,
        out: Any = None,
    ) -> Generator[TileDone | PredictDone, None, np.ndarray]:
        """Denoise ``image`` tile by tile, yielding :class:`TileDone` events and a final
        :class:`PredictDone`; returns the float32 result (same shape, input intensity scale).

        ``axes`` default to the training axes with S/T added or dropped to fit the image. The
        input is first checked by :meth:`check_input` (``check=False`` skips that, for callers
        that already did).
        ``tta`` averages the flips (and, for square-symmetric masks, 90-degree turns) that keep
        the blind mask's orientation (:func:`~napari_structn2v.prediction.tta_transforms`).

        ``image`` may be lazy (zarr, dask, memmap, h5py): it is read tile by tile, and the checks
        read it block by block or on a strided sample. ``out`` (an array-like of the image's
        shape: a zarr array, a memmap, a napari layer's data) receives each finished tile and is
        returned, so the whole result is never held in memory.
        """
        arch = self.config.architecture
        image = np.asarray(image) if not hasattr(image, "shape") else image
        ax = self.check_input(image, axes) if check else self.resolve_axes(image.ndim, axes)
        image = self.without_pattern(image, ax)
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        self.net.to(dev)
        if arch.spatial_ndim == 2 and dev.type == "cpu":
            self.net.to(memory_format=torch.channels_last)
        return (
            yield from predict_tiles(
                self.net,
                image,
                ax,
                low=np.asarray(self.config.low),
                high=np.asarray(self.config.high),
                multiple=arch.multiple,
                radius=arch.receptive_radius(),
                tile=tile,
                overlap=overlap,
                device=dev,
                amp=amp,
                tta=tta_transforms(self.mask, tta),
                should_stop=should_stop,
                out=out,
                z_context=self.z_context,
            )
        )

    def without_pattern(self, image: Any, axes: str) -> Any:
        """``image`` (axes ``axes``) as the network must see it: minus the camera's fixed pattern,
        read piece by piece (:class:`~napari_structn2v.noise_fixed.PatternSubtracted`), when the
        model has one; else ``image`` itself. :class:`DataError` when its Y/X size is not the pattern's."""
        if self.config.fixed_pattern is None:
            return image
        from .noise_fixed import PatternSubtracted

        return PatternSubtracted(image, axes, self.config.fixed_pattern)

    def predict(self, image: np.ndarray, axes: str | None = None, **kwargs) -> np.ndarray:
        """Denoise ``image``; see :meth:`predict_iter` for the options (``out=`` streams the result
        into an array-like and returns it)."""
        result = None
        for event in self.predict_iter(image, axes, **kwargs):
            if isinstance(event, PredictDone):
                result = event.image
        return result

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write weights and config to ``path`` (any name; ``.pt`` is conventional).

        The file is written atomically (a temporary file in the same folder, then renamed), so an
        interrupted save leaves any previous file intact. ``overwrite=False`` refuses to replace an
        existing file (:class:`~napari_structn2v.errors.OutputError`).
        """
        from .io import check_output, write_atomic

        path = check_output(path, option="model file", overwrite=overwrite)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        blob = {"config": self.config.to_json(), "state_dict": state}
        if self.config.fixed_pattern is not None:
            blob["fixed_pattern"] = torch.from_numpy(np.ascontiguousarray(self.config.fixed_pattern, dtype=np.float32))
        return write_atomic(path, lambda fh: torch.save(blob, fh))

    @classmethod
    def load(cls, path: str | Path) -> StructN2VModel:
        """Load a model file safely (``torch.load(weights_only=True)``: no pickled code runs)."""
        return load_model(path)


def load_model(path: str | Path, *, map_location: str = "cpu") -> StructN2VModel:
    """Load a model saved by :meth:`StructN2VModel.save`, or a BioImage Model Zoo package (``.zip``)
    exported by napari-structn2v (see :mod:`napari_structn2v.bmz`).

    Raises
    ------
    ModelFileError
        The file is missing, not a model file, corrupt, from an incompatible version, or a
        bioimage.io package made by another tool.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {str(path)!r} does not exist")
    from .bmz import is_bmz_package, load_bmz

    if path.suffix.lower() == ".zip" or is_bmz_package(path):
        return load_bmz(path, map_location=map_location)
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":  # torch.save writes a zip archive
            raise ModelFileError(f"{str(path)!r} is not a readable napari-structn2v model file (not a model archive)")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError(
            f"{str(path)!r} holds objects other than weights and settings; refusing to load it "
            "(loading could run code)"
        ) from exc
    except Exception as exc:
        raise ModelFileError(f"{str(path)!r} is not a readable napari-structn2v model file ({type(exc).__name__})") from exc
    if not isinstance(blob, dict) or "config" not in blob or "state_dict" not in blob:
        raise ModelFileError(f"{str(path)!r} is not a napari-structn2v model file")
    return model_from_parts(blob["config"], blob["state_dict"], repr(str(path)), blob.get("fixed_pattern"))


def model_from_parts(config_json: str, state: dict, label: str, fixed_pattern: Any = None) -> StructN2VModel:
    """A model from its JSON config and weights (a model file's or a BMZ package's), and the fixed
    pattern stored beside them; ``label`` names the source in the :class:`ModelFileError` raised for
    a corrupt config or mismatched weights."""
    try:
        config = ModelConfig.from_json(config_json, fixed_pattern)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{label} has a corrupt model config ({exc})") from exc
    net = UNet(config.architecture)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{label}: the weights do not match the stored architecture") from exc
    net.eval()
    return StructN2VModel(net, config)


def new_model_config(axes: str, mask: np.ndarray, low, high, architecture: UNetConfig, training: dict, z_context: int = 0,
                     fixed_pattern: np.ndarray | None = None) -> ModelConfig:
    """Helper for the trainer: a :class:`ModelConfig` with version provenance filled in."""
    training = dict(training)
    training.setdefault("napari_structn2v_version", __version__)
    training.setdefault("torch_version", torch.__version__)
    return ModelConfig(axes=axes, mask=np.asarray(mask, dtype=bool), low=list(map(float, low)), high=list(map(float, high)), architecture=architecture, training=training, z_context=z_context,
                       fixed_pattern=fixed_pattern)
