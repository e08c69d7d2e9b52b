"""The bioimage.io model description (rdf.yaml, spec 0.5) of a package, and writing the package.

Imports bioimageio.spec (the ``bmz`` extra) at the top: only :func:`~napari_structn2v.bmz.export.export_bmz`
imports this module, after checking that the installed bioimageio.spec can write packages.
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from bioimageio.spec import save_bioimageio_package
from bioimageio.spec.generic.v0_3 import Author, LicenseId
from bioimageio.spec.model.v0_5 import (
    ArchitectureFromFileDescr,
    AxisId,
    BatchAxis,
    ChannelAxis,
    CiteEntry,
    Config,
    EnsureDtypeDescr,
    EnsureDtypeKwargs,
    FileDescr,
    Identifier,
    InputTensorDescr,
    IntervalOrRatioDataDescr,
    ModelDescr,
    OutputTensorDescr,
    ParameterizedSize,
    PytorchStateDictWeightsDescr,
    ScaleLinearAlongAxisKwargs,
    ScaleLinearDescr,
    ScaleLinearKwargs,
    SizeReference,
    SpaceInputAxis,
    SpaceOutputAxisWithHalo,
    TensorId,
    TorchscriptWeightsDescr,
    Version,
    WeightsDescr,
)
from pydantic import ValidationError

from .. import __version__
from ..method.masks import describe_mask
from .package import CONFIG_KEY, BMZError
from .readme import N2V2_CITATION, N2V_CITATION, STRUCTN2V_CITATION, mask_label
from .tensors import halo, min_input_shape, normalisation, package_space

if TYPE_CHECKING:
    from ..model import StructN2VModel


def _processing(model: StructN2VModel) -> tuple[list[Any], list[Any]]:
    """Pre- and postprocessing: float32, and the model's fixed normalisation as ``scale_linear``
    (its inverse after the network), left out where it is the identity (the spec rejects that)."""
    low, scale = normalisation(model)
    to_float = EnsureDtypeDescr(kwargs=EnsureDtypeKwargs(dtype="float32"))
    preprocessing: list[Any] = [to_float]
    postprocessing: list[Any] = []
    if not (np.all(low == 0) and np.all(scale == 1)):
        if model.n_channels == 1:
            pre_kwargs = ScaleLinearKwargs(gain=float(1 / scale[0]), offset=float(-low[0] / scale[0]))
            post_kwargs = ScaleLinearKwargs(gain=float(scale[0]), offset=float(low[0]))
        else:
            pre_kwargs = ScaleLinearAlongAxisKwargs(
                axis=AxisId("channel"), gain=list(map(float, 1 / scale)), offset=list(map(float, -low / scale))
            )
            post_kwargs = ScaleLinearAlongAxisKwargs(
                axis=AxisId("channel"), gain=list(map(float, scale)), offset=list(map(float, low))
            )
        preprocessing.append(ScaleLinearDescr(kwargs=pre_kwargs))
        postprocessing.append(ScaleLinearDescr(kwargs=post_kwargs))
    postprocessing.append(to_float)
    return preprocessing, postprocessing


def _input_descr(model: StructN2VModel, folder: Path, preprocessing: list[Any]) -> InputTensorDescr:
    """The input tensor: batch, channel and the package's spatial axes, sizes ``min + n * step``."""
    sp, steps = package_space(model)
    return InputTensorDescr(
        id=TensorId("input"),
        description=f"noisy image, {model.n_channels} channel(s), intensities as acquired",
        axes=[
            BatchAxis(),
            ChannelAxis(channel_names=_channel_names(model)),
            *[
                SpaceInputAxis(id=AxisId(a), size=ParameterizedSize(min=mn, step=m))
                for a, mn, m in zip(sp.lower(), min_input_shape(model), steps)
            ],
        ],
        test_tensor=FileDescr(source=folder / "test_input.npy"),
        data=IntervalOrRatioDataDescr(type="float32"),
        preprocessing=preprocessing,
    )


def _output_descr(model: StructN2VModel, folder: Path, postprocessing: list[Any]) -> OutputTensorDescr:
    """The output tensor: the input's size, with the network's halo to crop from each tile."""
    return OutputTensorDescr(
        id=TensorId("denoised"),
        description="denoised image in the input's intensity scale",
        axes=[
            BatchAxis(),
            ChannelAxis(channel_names=_channel_names(model)),
            *[
                SpaceOutputAxisWithHalo(
                    id=AxisId(a), size=SizeReference(tensor_id=TensorId("input"), axis_id=AxisId(a)), halo=h
                )
                for a, h in zip(package_space(model)[0].lower(), halo(model))
            ],
        ],
        test_tensor=FileDescr(source=folder / "test_output.npy"),
        data=IntervalOrRatioDataDescr(type="float32"),
        postprocessing=postprocessing,
    )


def _channel_names(model: StructN2VModel) -> list[Identifier]:
    return [Identifier(f"channel{i}") for i in range(model.n_channels)]


def _weights_descr(folder: Path, arch_callable: str, arch_kwargs: dict[str, Any]) -> WeightsDescr:
    """The state dict (architecture ``unet.py``'s ``arch_callable``) and its TorchScript child."""
    torch_version = Version(torch.__version__.split("+")[0])
    return WeightsDescr(
        pytorch_state_dict=PytorchStateDictWeightsDescr(
            source=folder / "weights.pt",
            architecture=ArchitectureFromFileDescr(
                source=folder / "unet.py", callable=Identifier(arch_callable), kwargs=arch_kwargs
            ),
            pytorch_version=torch_version,
        ),
        torchscript=TorchscriptWeightsDescr(
            source=folder / "weights_torchscript.pt", pytorch_version=torch_version, parent="pytorch_state_dict"
        ),
    )


def describe(
    model: StructN2VModel,
    folder: Path,
    *,
    arch_callable: str,
    arch_kwargs: dict[str, Any],
    name: str | None,
    description: str | None,
    authors: Sequence[str],
    license: str,
    tags: Sequence[str],
) -> ModelDescr:
    """The validated description of the package whose files lie in ``folder`` (as written by
    :func:`~napari_structn2v.bmz.export.export_bmz`); :class:`~napari_structn2v.bmz.package.BMZError` if it
    does not validate."""
    preprocessing, postprocessing = _processing(model)
    tags_all = list(dict.fromkeys(["denoising", "structn2v", "noise2void", "self-supervised", "pytorch",
                                   f"{len(package_space(model)[0])}d", "napari-structn2v", *tags]))
    citations = [CiteEntry(**STRUCTN2V_CITATION), CiteEntry(**N2V_CITATION)]
    if model.config.architecture.n2v2:
        citations.append(CiteEntry(**N2V2_CITATION))
    try:
        return ModelDescr(
            name=_safe_name(name or f"StructN2V {mask_label(model.mask)} denoiser"),
            description=description
            or (
                f"Structured Noise2Void denoiser with a {describe_mask(model.mask)} blind mask, trained "
                f"self-supervised on {model.axes} data with napari-structn2v {__version__}."
            ),
            authors=[Author(name=a) for a in authors],
            cite=citations,
            license=LicenseId(license),
            tags=tags_all,
            documentation=FileDescr(source=folder / "README.md"),
            covers=[FileDescr(source=folder / "cover.png")],
            inputs=[_input_descr(model, folder, preprocessing)],
            outputs=[_output_descr(model, folder, postprocessing)],
            weights=_weights_descr(folder, arch_callable, arch_kwargs),
            config=Config(**{CONFIG_KEY: json.loads(model.config.to_json())}),
        )
    except ValidationError as exc:
        raise BMZError(f"the bioimage.io description does not validate: {exc}") from exc


def _safe_name(text: str) -> str:
    """Restrict to the characters the spec allows in names (letters, digits, ``_+- ()``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_+\- ()]", "-", text).strip()
    return cleaned if len(cleaned) >= 5 else f"StructN2V model {cleaned}".strip()


def save_package(descr: ModelDescr, out: Path) -> None:
    """Zip the described files into ``out``; written next to it and renamed, so that a failed
    export never leaves a partial package."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(out.name + ".part")
    try:
        save_bioimageio_package(descr, output_path=part)
        os.replace(part, out)
    finally:
        if part.exists():
            part.unlink()
