"""Trained models: weights + config in one file that loads without executing pickled code, and
whose stored config and weights are checked when loaded (:func:`validate_stored_config`)."""
from __future__ import annotations

import errno
import io
import json
import os
import pickle
import stat
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__
from .axes import spatial_axes, validate_axes
from .bmz.package import is_bmz_package, read_package
from .config import RULES, boolean, choice, integer, optional, real
from .devices import resolve_device
from .errors import AxesError, ConfigError, MaskError, ModelFileError, OutputError
from .method.masks import describe_mask, validate_mask
from .nn.unet import NORMS, UNet, UNetConfig
from .prediction.predict import (
    PredictDone,
    TileDone,
    check_input,
    check_tta,
    predict_tiles,
    resolve_axes,
    tta_transforms,
)
from .training.checks import from_torch

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
        The camera's fixed pattern ``(Y, X)`` float32 (:mod:`~napari_structn2v.noise.fixed_pattern`),
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
    def from_json(cls, text: str, fixed_pattern: Any = None) -> ModelConfig:
        """The config of a model file, checked by :func:`validate_stored_config`
        (:class:`ModelFileError` naming the field for anything hand-edited or corrupt);
        ``fixed_pattern`` is the pattern tensor stored beside it (it must be there, and of the
        recorded shape, when the config records one)."""
        try:
            d = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"the stored config is not JSON ({exc})") from exc
        return validate_stored_config(d, fixed_pattern)


#: the architecture fields of a model file and their rules: the bounds of the TrainConfig settings
#: they come from (``depth`` 1-6, ``base_filters`` 1-1024, ...), so a file trains or loads only
#: what a TrainConfig could have made
_ARCH_RULES = {
    "spatial_ndim": integer(2, 3),
    "in_channels": integer(1, 4096),
    "out_channels": integer(1, 4096),
    "depth": RULES["depth"],
    "base_filters": RULES["base_filters"],
    "kernel_size": RULES["kernel_size"],
    "pool": RULES["pool"],
    "n2v2": boolean(),
    "batch_norm": boolean(),
    "norm": optional(choice(*NORMS)),
}


def validate_stored_config(d: Any, fixed_pattern: Any = None) -> ModelConfig:
    """The :class:`ModelConfig` of a model file's JSON object, every field checked like
    :class:`~napari_structn2v.config.TrainConfig` checks its settings; the one validator for
    model files and BioImage Model Zoo packages.

    Raises :class:`ModelFileError` naming the stored field ("the model's architecture.depth
    must be in [1, 6], got -1"), never a TypeError or an allocation of petabytes.
    """
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise ModelFileError("the file is not a napari-structn2v model (unknown format tag)")
    version = d.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise ModelFileError(f"the model's format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"the model file has format version {version}; this napari-structn2v "
            f"reads up to {FORMAT_VERSION}: upgrade napari-structn2v"
        )
    try:
        return _stored_config(d, fixed_pattern)
    except ConfigError as exc:
        raise ModelFileError(f"the model's {exc.field} {exc.problem}") from exc
    except (AxesError, MaskError) as exc:
        raise ModelFileError(f"the model's stored {'axes' if isinstance(exc, AxesError) else 'mask'} are invalid: {exc}") from exc
    except (TypeError, ValueError, KeyError) as exc:  # a check of UNetConfig's own, or a shape no rule foresaw
        raise ModelFileError(f"the model's stored config is corrupt ({exc})") from exc


def _stored_config(d: dict, fixed_pattern: Any = None) -> ModelConfig:
    """:func:`validate_stored_config` without the error translation (ConfigError names the field)."""
    arch = _field(d, "architecture", dict)
    unknown = sorted(set(arch) - {f.name for f in fields(UNetConfig)})
    if unknown:
        raise ConfigError(f"architecture.{unknown[0]}", "is not an architecture setting of this napari-structn2v")
    # fields without a rule here are checked by UNetConfig itself
    arch = {k: _ARCH_RULES[k](f"architecture.{k}", v) if k in _ARCH_RULES else v for k, v in arch.items()}
    for key in ("in_channels", "out_channels", "depth", "base_filters"):
        if key not in arch:
            raise ConfigError(f"architecture.{key}", "is missing")
    architecture = UNetConfig(**arch)
    nd = architecture.spatial_ndim
    for key in ("kernel_size", "pool"):
        if len(getattr(architecture, key)) != nd:
            raise ConfigError(f"architecture.{key}", f"must have one value per spatial axis ({nd}), got {arch[key]!r}")
    z_context = integer(0, 16)("z_context", d.get("z_context", 0))  # files from before Z context: none
    channels = architecture.out_channels
    if architecture.in_channels != channels * (2 * z_context + 1):
        raise ConfigError("architecture.in_channels", f"must be {channels * (2 * z_context + 1)} for {channels} channel(s) "
                          f"and z_context {z_context}, got {architecture.in_channels}")
    axes = validate_axes(_field(d, "axes", str))
    if len(spatial_axes(axes)) < nd:
        raise ConfigError("axes", f"{axes!r} have fewer spatial axes than the {nd}D network")
    mask = validate_mask(np.array(_field(d, "mask", list), dtype=bool))
    if mask.ndim != nd:
        raise ConfigError("mask", f"must be {nd}D for the {nd}D network, got {mask.ndim}D")
    norm = _field(d, "normalization", dict)
    low = [real()("normalization.low", v) for v in _field(norm, "low", list, "normalization.low")]
    high = [real()("normalization.high", v) for v in _field(norm, "high", list, "normalization.high")]
    if len(low) != channels or len(high) != channels:
        raise ConfigError("normalization", f"must have one low and one high per channel ({channels}), got {len(low)} and {len(high)}")
    if any(h <= lo for lo, h in zip(low, high)):
        raise ConfigError("normalization.high", f"must be above low for each channel, got low {low} and high {high}")
    training = d.get("training", {})
    if not isinstance(training, dict):
        raise ConfigError("training", f"must be a JSON object, got {type(training).__name__}")
    _check_trained_geometry(architecture, training)
    pattern = _stored_pattern(d.get("fixed_pattern"), fixed_pattern)  # before format version 2: none
    return ModelConfig(axes=axes, mask=mask, low=low, high=high, architecture=architecture, training=training,
                       z_context=z_context, fixed_pattern=pattern)


def _field(d: dict, key: str, kind: type, name: str | None = None) -> Any:
    """``d[key]``, which must be a ``kind`` (ConfigError naming ``name`` otherwise)."""
    if key not in d:
        raise ConfigError(name or key, "is missing")
    value = d[key]
    if not isinstance(value, kind):
        raise ConfigError(name or key, f"must be a {'JSON ' + kind.__name__ if kind in (dict, list) else 'string'}, got {value!r}"[:200])
    return value


def _check_trained_geometry(arch: UNetConfig, training: dict) -> None:
    """Pooling and kernel sizes have no weights of their own: a file whose ``architecture`` says
    otherwise than the settings it was trained with (``training.config``) would load and denoise
    wrongly, so the two must agree (None in the record: the default)."""
    trained = training.get("config")
    if not isinstance(trained, dict):
        return  # older files, and files without provenance: nothing to compare with
    for key in ("pool", "kernel_size"):
        if key not in trained:
            continue
        try:
            expected = getattr(UNetConfig(spatial_ndim=arch.spatial_ndim, **{key: trained[key]}), key)
        except (TypeError, ValueError):
            continue  # the record itself is odd; the architecture was checked above
        if len(expected) == arch.spatial_ndim and expected != getattr(arch, key):
            raise ConfigError(f"architecture.{key}", f"is {list(getattr(arch, key))} but the model was trained with {list(expected)}")


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
        image = from_torch(image)
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
        tta: bool | str = True,
        should_stop: Callable[[], bool] | None = None,
        check: bool = True,
        out: Any = None,
        precision: str = "auto",
        batch: int | None = None,
        focus: Mapping[str, float] | None = None,
        near: Mapping[str, float] | None = None,
    ) -> Generator[TileDone | PredictDone, None, np.ndarray]:
        """Denoise ``image`` tile by tile, yielding :class:`TileDone` events and a final
        :class:`PredictDone`; returns the float32 result (same shape, input intensity scale).

        ``axes`` default to the training axes with S/T added or dropped to fit the image. The
        input is first checked by :meth:`check_input` (``check=False`` skips that, for callers
        that already did).
        ``tta`` averages the flips (and, for square-symmetric masks, 90-degree turns) that keep
        the blind mask's orientation (:func:`~napari_structn2v.prediction.predict.tta_transforms`);
        ``tta="half-turn"`` only the identity and the 180-degree turn (2 passes instead of a line
        mask's 4, 0.2-0.3 dB less gain); ``tta=False`` is one pass.

        ``image`` may be lazy (zarr, dask, memmap, h5py): it is read tile by tile, and the checks
        read it block by block or on a strided sample. ``out`` (an array-like of the image's
        shape: a zarr array, a memmap, a napari layer's data) receives each finished tile and is
        returned, so the whole result is never held in memory.

        ``precision`` (``"auto"``: bfloat16 on CPUs that have it, float16 on CUDA; or ``"float32"``,
        ``"bfloat16"``, ``"float16"``) and ``batch`` (tiles per forward pass; default: what the
        device's free memory holds) are :func:`~napari_structn2v.prediction.predict.predict_tiles`'s, and so
        are ``focus`` and ``near``, which order the tiles (e.g. ``focus={"Z": 15}``: the slice a viewer
        shows first) without changing the result.
        """
        arch = self.config.architecture
        check_tta(tta)  # a bad option is named before the image is looked at
        image = from_torch(image)
        image = np.asarray(image) if not hasattr(image, "shape") else image
        ax = self.check_input(image, axes) if check else self.resolve_axes(image.ndim, axes)
        if out is not None:
            check_out(out)
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
                precision=precision,
                batch=batch,
                focus=focus,
                near=near,
            )
        )

    def without_pattern(self, image: Any, axes: str) -> Any:
        """``image`` (axes ``axes``) as the network must see it: minus the camera's fixed pattern,
        read piece by piece (:class:`~napari_structn2v.noise.fixed_pattern.PatternSubtracted`), when the
        model has one; else ``image`` itself. :class:`DataError` when its Y/X size is not the pattern's."""
        if self.config.fixed_pattern is None:
            return image
        from .noise.fixed_pattern import PatternSubtracted

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
        existing file (:class:`~napari_structn2v.errors.OutputError`), also one that appears while
        the file is written. A full disk or an unwritable folder is an ``OutputError`` too.
        """
        from .io.images import check_output, write_atomic

        path = check_output(path, option="model file", overwrite=overwrite, store=False)
        data = self.to_bytes()
        return write_atomic(path, lambda fh: fh.write(data), replace=None if overwrite else False)

    def to_bytes(self) -> bytes:
        """The model file's content. Serialised in memory first: torch writing straight to a
        file turns a full disk into a ``RuntimeError`` ("enforce fail at inline_container.cc")
        instead of the ``OSError`` a plain write raises (a model is a few MB)."""
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        blob = {"config": self.config.to_json(), "state_dict": state}
        if self.config.fixed_pattern is not None:
            blob["fixed_pattern"] = torch.from_numpy(np.ascontiguousarray(self.config.fixed_pattern, dtype=np.float32))
        buffer = io.BytesIO()
        torch.save(blob, buffer)
        return buffer.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> StructN2VModel:
        """Load a model file safely (``torch.load(weights_only=True)``: no pickled code runs)."""
        return load_model(path)


def load_model(path: str | Path, *, map_location: str = "cpu") -> StructN2VModel:
    """Load a model saved by :meth:`StructN2VModel.save`, or a BioImage Model Zoo package (``.zip``)
    exported by napari-structn2v (see :mod:`napari_structn2v.bmz.export`).

    Raises
    ------
    ModelFileError
        The file is missing, not a model file, corrupt, from an incompatible version, or a
        bioimage.io package made by another tool.
    """
    path = Path(path)
    _check_model_path(path)
    if path.suffix.lower() == ".zip" or is_bmz_package(path):
        return model_from_parts(*read_package(path, map_location=map_location))
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


def check_out(out: Any) -> None:
    """Raise :class:`OutputError` when ``out`` cannot be written: a read-only numpy view or
    memmap, or a zarr array opened for reading (its shape is checked by the prediction)."""
    flags = getattr(out, "flags", None)
    if getattr(out, "read_only", False) or (flags is not None and not getattr(flags, "writeable", True)):
        raise OutputError("out= is read-only; pass a writable array such as np.empty(image.shape, np.float32)")


def _check_model_path(path: Path) -> None:
    """A :class:`ModelFileError` that says what ``path`` is when it is not a readable file."""
    try:
        info = path.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ModelFileError(f"model file {str(path)!r} is a symbolic link loop, not a file") from exc
        if path.is_symlink():
            raise ModelFileError(f"model file {str(path)!r} is a symbolic link to a missing file") from exc
        if exc.errno == errno.ENOENT:
            raise ModelFileError(f"model file {str(path)!r} does not exist") from exc
        raise ModelFileError(f"model file {str(path)!r} cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ModelFileError(f"model file {str(path)!r} is a folder; give the model file (.pt or .zip) inside it")
    if not stat.S_ISREG(info.st_mode):
        raise ModelFileError(f"model file {str(path)!r} is not a regular file (a pipe, socket or device); give a .pt or .zip file")
    if not os.access(path, os.R_OK):
        raise ModelFileError(f"model file {str(path)!r} cannot be read: permission denied")


def model_from_parts(config_json: str, state: dict, label: str, fixed_pattern: Any = None) -> StructN2VModel:
    """A model from its JSON config and weights (a model file's or a BMZ package's) and the fixed
    pattern stored beside them; ``label``
    names the source in the :class:`ModelFileError` raised for a corrupt config or weights that
    do not match it (names, shapes, non-finite values)."""
    try:
        config = ModelConfig.from_json(config_json, fixed_pattern)
    except ModelFileError as exc:
        raise ModelFileError(f"{label}: {exc}") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{label}: the stored weights are not a table of tensors")
    net = UNet(config.architecture)
    try:
        net.load_state_dict(state)  # strict: every name, every shape
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise ModelFileError(f"{label}: the weights do not match the stored architecture") from exc
    bad = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelFileError(f"{label}: the weights hold NaN or infinite values (in {bad[0]})")
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
