"""BioImage Model Zoo (bioimage.io) export and import of trained models.

:func:`export_bmz` writes a bioimage.io model package (format 0.5, built and validated with
``bioimageio.spec``) that runs without napari-structn2v in bioimage.io consumers (bioimageio.core,
deepImageJ, ilastik, ...):

- ``pytorch_state_dict`` weights whose architecture is our own torch-only ``unet.py``, shipped in the
  package, plus TorchScript weights traced from the same network;
- a Z-context model (a 2D network over Z slices that also reads ``k`` neighbouring slices) takes
  volumes ``(batch, channel, z, y, x)``: its architecture is ``unet.ZContextUNet``, which stacks each
  slice's neighbours by the rule of :func:`~napari_structn2v.prediction.context_slices` and runs
  the U-Net (submodule ``net``; TorchScript: the U-Net traced, the stacking scripted, so any number
  of slices works); Z has a halo of ``k`` slices and a minimum size of ``2k + 1``. Inside a volume
  tiles along Z are seamless; at its two ends a consumer that pads the volume itself (bioimageio.core
  pads ``symmetric``) gets slightly different first and last ``k`` slices than our prediction;
- the normalisation the model was trained with, as fixed ``scale_linear`` pre- and postprocessing;
- the network's receptive-field radius as the output ``halo`` and the pooling multiple as the size
  ``step``, so tiling consumers get seamless results;
- test input/output tensors, a cover (noisy | denoised), a README, the StructN2V and N2V citations;
- the complete model config (mask, normalisation, architecture, training provenance) under
  ``config.napari_structn2v``, from which :func:`load_bmz` restores a :class:`StructN2VModel`.

Normalisation: our models map intensities with the fixed per-channel ``low``/``high`` measured on
the training data (percentiles), not with percentiles of each new image. The package therefore uses
``scale_linear`` with exactly those numbers, so a consumer's output equals ours; per-image
percentiles (``scale_range``) would change the result with the image's content.

Export needs the ``bmz`` extra (``bioimageio.spec``, and ``bioimageio.core`` for :func:`test_bmz`);
import needs only torch and PyYAML. This module imports neither Qt nor napari.
"""
from __future__ import annotations

import io
import json
import math
import os
import re
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import ModelFileError, StructN2VError

if TYPE_CHECKING:
    from .model_io import StructN2VModel

#: key under ``config`` in rdf.yaml that holds our model config (mask, normalisation, provenance)
CONFIG_KEY = "napari_structn2v"
#: the BMZ ``format_version`` we write
FORMAT_VERSION = "0.5"
#: largest test-tensor side: 256 px in 2D, 96 px in 3D (a 96^3 float32 tensor is 3.4 MB)
TEST_SIDE_2D = 256
TEST_SIDE_3D = 96
#: largest test-tensor depth of a Z-context model (at least ``2 * z_context + 1`` slices)
TEST_SLICES_CONTEXT = 8

STRUCTN2V_CITATION = {
    "text": (
        "Broaddus, C., Krull, A., Weigert, M., Schmidt, U. and Myers, G. (2020). Removing structured "
        "noise with self-supervised blind-spot networks. IEEE 17th International Symposium on "
        "Biomedical Imaging (ISBI), 159-163."
    ),
    "doi": "10.1109/ISBI45749.2020.9098336",
}
N2V_CITATION = {
    "text": (
        "Krull, A., Buchholz, T.-O. and Jug, F. (2019). Noise2Void - learning denoising from single "
        "noisy images. IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR), 2129-2137."
    ),
    "doi": "10.1109/CVPR.2019.00223",
}
N2V2_CITATION = {
    "text": (
        "Hoeck, E., Buchholz, T.-O., Brachmann, A., Jug, F. and Freytag, A. (2022). N2V2 - fixing "
        "Noise2Void checkerboard artifacts with modified sampling strategies and a tweaked network "
        "architecture. ECCV 2022 Workshops, 503-518."
    ),
    "doi": "10.1007/978-3-031-25069-9_33",
}


class BMZError(StructN2VError):
    """A BioImage Model Zoo export or test failed, or its optional dependencies are missing."""


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def incompatibility() -> str | None:
    """Why the installed bioimageio.spec cannot write packages, or None when it can.

    bioimageio.spec before 0.5.14 passes pydantic's ``SerializationInfo`` where pydantic-core 2.14+
    expects an index key, so every package fails to serialise; bioimageio.core 0.11 still pins
    bioimageio.spec 0.5.12, hence ``pydantic<2.14`` in our ``bmz`` extra.
    """
    try:
        import bioimageio.spec
        import pydantic
    except ImportError:
        return "BioImage Model Zoo export needs bioimageio.spec: pip install 'napari-structn2v[bmz]'"
    spec_v, pyd_v = _version_tuple(bioimageio.spec.__version__), _version_tuple(pydantic.VERSION)
    if spec_v < (0, 5, 14) and pyd_v >= (2, 14):
        return (
            f"bioimageio.spec {bioimageio.spec.__version__} cannot write packages with pydantic "
            f"{pydantic.VERSION}: pip install 'pydantic<2.14' (or a bioimageio.spec >= 0.5.14)"
        )
    return None


def _require_spec() -> None:
    reason = incompatibility()
    if reason is not None:
        raise BMZError(reason)


def _space(model: StructN2VModel) -> tuple[str, tuple[int, ...]]:
    """Spatial axes of the package's tensors (ZYX order) and their size steps: the network's, and
    for a Z-context model Z in front of them (a 2D network over whole volumes; any number of slices)."""
    arch = model.config.architecture
    if getattr(model, "z_context", 0):
        return "ZYX", (1, *arch.multiple)
    return "ZYX"[-arch.spatial_ndim:], tuple(arch.multiple)


def halo(model: StructN2VModel) -> tuple[int, ...]:
    """Output halo per spatial axis of the package's tensors (ZYX order): the receptive-field
    radius rounded up to the pooling multiple, the same context margin our own tiled prediction
    uses; for a Z-context model Z comes first, with a halo of ``z_context`` slices."""
    arch = model.config.architecture
    yx = tuple(int(math.ceil(r / m) * m) for r, m in zip(arch.receptive_radius(), arch.multiple))
    k = int(getattr(model, "z_context", 0))
    return (k, *yx) if k else yx


def min_input_shape(model: StructN2VModel) -> tuple[int, ...]:
    """Smallest valid input side per spatial axis: ``2 * halo + multiple`` (the spec requires
    more than ``2 * halo``; the network requires multiples of the pooling factor); for a
    Z-context model ``2 * z_context + 1`` slices, so that a tile has one slice with all its neighbours."""
    return tuple(2 * h + m for h, m in zip(halo(model), _space(model)[1]))


def _test_input(model: StructN2VModel, image: np.ndarray | None, axes: str | None) -> np.ndarray:
    """The test input ``(1, C, [Z,] Y, X)`` float32: the first sample of ``image`` (or the built-in
    synthetic sample mapped to the model's intensity range), padded or centre-cropped to a valid size.
    A Z-context model gets a volume (at most ``TEST_SLICES_CONTEXT`` slices)."""
    from .axes import to_internal
    from .errors import AxesError
    from .prediction import resolve_axes

    arch = model.config.architecture
    sp, steps = _space(model)
    nd, n_ch = len(sp), model.n_channels
    low = np.asarray(model.config.low, dtype=np.float32)
    high = np.asarray(model.config.high, dtype=np.float32)
    mins = min_input_shape(model)
    cap = TEST_SIDE_2D if arch.spatial_ndim == 2 else TEST_SIDE_3D
    caps = {a: TEST_SLICES_CONTEXT if nd > arch.spatial_ndim and a == "Z" else cap for a in sp}
    if image is None:
        from .synthetic import make_sample

        noisy = make_sample("2d" if nd == 2 else "3d", seed=0)["noisy"]
        x = np.stack([noisy * (h - lo) + lo for lo, h in zip(low, high)])
    else:
        image = image if hasattr(image, "shape") else np.asarray(image)
        ax = resolve_axes(image.ndim, model.axes, axes, arch.spatial_ndim, n_ch)
        if any(a not in ax for a in sp):
            raise AxesError(
                f"this model denoises each Z slice with {model.z_context} neighbouring slice(s) on each "
                f"side; give it a volume with a Z axis (axes {ax!r} have none)"
            )
        # index before converting: a lazy (dask, zarr) layer is read only where the test tensor lies
        index, kept = [], ""
        for a, size in zip(ax, image.shape):
            if a in "ST":
                index.append(0)
                continue
            if a not in sp and a != "C":  # Z for a 2D network over the slices: the middle one
                index.append(size // 2)
                continue
            if a == "C":
                index.append(slice(None))
            else:
                keep = min(size, max(caps[a], mins[sp.index(a)]))
                index.append(slice((size - keep) // 2, (size - keep) // 2 + keep))
            kept += a
        x = to_internal(np.asarray(image[tuple(index)]), kept)[0][0]
    x = np.asarray(x, dtype=np.float32)
    for d, (a, mn, step) in enumerate(zip(sp, mins, steps)):
        axis, cap = d + 1, caps[a]
        size = x.shape[axis]
        if size < mn:  # mirror small images up to the smallest valid size
            pad = [(0, 0)] * x.ndim
            before = (mn - size) // 2
            pad[axis] = (before, mn - size - before)
            x = np.pad(x, pad, mode="reflect" if size > 1 else "edge")
            size = mn
        target = mn + step * ((min(size, max(cap, mn)) - mn) // step)
        start = (size - target) // 2
        x = np.take(x, np.arange(start, start + target), axis=axis)
    return np.ascontiguousarray(x[None], dtype=np.float32)


def _cover(noisy: np.ndarray, denoised: np.ndarray) -> np.ndarray:
    """uint8 image ``noisy | denoised`` (first channel, middle Z slice), both in the noisy image's
    0.5-99.5 percentile range so that the comparison is fair."""
    a, b = noisy[0, 0], denoised[0, 0]
    if a.ndim == 3:
        a, b = a[a.shape[0] // 2], b[b.shape[0] // 2]
    lo, hi = np.percentile(a, (0.5, 99.5))
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    gap = np.full((a.shape[0], max(2, a.shape[1] // 64)), 255.0)  # a white line between the halves
    both = np.concatenate([(a - lo) * scale, gap, (b - lo) * scale], axis=1)
    return np.clip(both, 0, 255).astype(np.uint8)


def _safe_name(text: str) -> str:
    """Restrict to the characters the spec allows in names (letters, digits, ``_+- ()``)."""
    cleaned = re.sub(r"[^A-Za-z0-9_+\- ()]", "-", text).strip()
    return cleaned if len(cleaned) >= 5 else f"StructN2V model {cleaned}".strip()


def _mask_label(mask: np.ndarray) -> str:
    """``WxH`` or ``WxHxD`` (X first), the notation of the CLI's ``--mask``."""
    return "x".join(str(s) for s in mask.shape[::-1])


def _context_readme(k: int) -> str:
    return f"""
- Z context: a 2D network that denoises each Z slice from the slice and its {k} neighbouring
  slice(s) on each side, stacked as {2 * k + 1} input channels per data channel (channel-major).
  The package's tensors are volumes; class `ZContextUNet` of `unet.py` stacks the slices and runs
  the 2D U-Net (submodule `net`) on each. At a volume's ends a missing neighbour is the slice
  mirrored on the other side (slice z - d for z + d), else the nearest other slice, never the
  slice itself. The Z halo of {k} slice(s) makes tiles along Z seamless inside the volume; a
  consumer that pads the volume's ends itself (bioimageio.core's tiling pads `symmetric`) changes
  the first and last {k} slice(s): give the whole Z range in one tile for exactly our result."""


def _readme(model: StructN2VModel, halos: Sequence[int], mins: Sequence[int], test_shape: Sequence[int]) -> str:
    from . import __version__
    from .masks import describe_mask

    arch = model.config.architecture
    sp, steps = _space(model)
    k = int(getattr(model, "z_context", 0))
    training = model.config.training
    rows = "\n".join(
        f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |"
        for k, v in sorted(training.items())
        if not isinstance(v, (list, dict))
    )
    mask_rows = "\n".join(
        "    " + "".join("#" if v else "." for v in row)
        for row in (model.mask if model.mask.ndim == 2 else model.mask[model.mask.shape[0] // 2])
    )
    return f"""# StructN2V denoiser ({_mask_label(model.mask)} blind mask)

A Structured Noise2Void network (Broaddus et al., ISBI 2020), a blind-spot U-Net trained
self-supervised on noisy images only, exported by napari-structn2v {__version__}. It removes noise
that is correlated between neighbouring pixels along the blind mask's extent.

## Model

- Data axes at training: `{model.axes}`; input tensor `(batch, channel, {", ".join(sp.lower())})`,
  {model.n_channels} channel(s), float32.
- Blind mask: {describe_mask(model.mask)} (`#` hidden, centre row{"" if model.mask.ndim == 2 else " of the middle plane"}):

{mask_rows}

- U-Net: depth {arch.depth}, {arch.base_filters} base filters, kernel {list(arch.kernel_size)},
  pooling {list(arch.pool)}, batch norm {arch.batch_norm}, N2V2 variant {arch.n2v2}.{_context_readme(k) if k else ""}
- Normalisation: fixed per channel, `(x - low) / (high - low)` before and its inverse after the
  network (`scale_linear`), with low = {list(model.config.low)} and high = {list(model.config.high)}
  measured on the training data. Output values are in the input's intensity scale.
- Tiling: input sides are `min + n * step` with min {list(mins)} and step {list(steps)}
  ({sp}); crop a halo of {list(halos)} pixels from each output tile (the receptive-field radius)
  for seamless results.
- Weights: `pytorch_state_dict` (architecture `unet.py`, class `{"ZContextUNet" if k else "UNet"}`, torch only) and TorchScript.

## Training

| key | value |
|---|---|
{rows}

The full provenance (including the mask as an array) is in `config.napari_structn2v` of rdf.yaml;
napari-structn2v opens this package directly (`load_model("package.zip")`, or the Predict widget).

## Validation

The test tensors (`test_input.npy`, `test_output.npy`, {list(test_shape)}) were produced by
napari-structn2v's own prediction; `bioimageio test` reproduces them from both weight formats.
Self-supervised denoisers have no ground truth to score against: check results visually, e.g. the
cover (left: noisy input, right: this model's output, same display range), and compare the noise
autocorrelation of the residual (input - output) with that of a dark frame.

## Citations

- {STRUCTN2V_CITATION["text"]} doi:{STRUCTN2V_CITATION["doi"]}
- {N2V_CITATION["text"]} doi:{N2V_CITATION["doi"]}
"""


def export_bmz(
    model: StructN2VModel,
    path: str | os.PathLike,
    *,
    image: np.ndarray | None = None,
    axes: str | None = None,
    name: str | None = None,
    description: str | None = None,
    authors: Sequence[str] = ("napari-structn2v user",),
    license: str = "CC-BY-4.0",
    tags: Sequence[str] = (),
    overwrite: bool = False,
) -> Path:
    """Write ``model`` as a bioimage.io model package (a ``.zip``, spec 0.5).

    Parameters
    ----------
    model : StructN2VModel
    path : path-like
        The ``.zip`` to write. An existing file is kept unless ``overwrite``.
    image : np.ndarray, optional
        An image the model was made for (axes ``axes``, default derived from the model's); its first
        sample, cropped to at most 256 px per side in 2D (96 in 3D; a Z-context model's volume to
        at most 8 slices of 256 px), becomes the test input and the cover. Default: the built-in
        synthetic sample in the model's intensity range.
    name, description : str, optional
        Shown in the zoo; default from the blind mask.
    authors : sequence of str
        Names of the model's authors.
    license : str
        SPDX identifier of the weights' license (default ``CC-BY-4.0``, the zoo's usual one).
    tags : sequence of str
        Extra tags (``denoising``, ``structn2v``, ``2d``/``3d`` ... are always added).

    Returns
    -------
    Path
        The written package.

    Raises
    ------
    BMZError
        bioimageio.spec is missing, or the description does not validate.
    DataError, AxesError
        ``image`` does not fit the model.
    """
    _require_spec()
    import copy

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

    from . import __version__, unet
    from .masks import describe_mask
    from .model_io import StructN2VModel

    out = Path(path)
    if out.suffix.lower() != ".zip":
        raise BMZError(f"a bioimage.io package is a .zip file; got {str(out)!r}")
    if out.exists() and not overwrite:
        raise BMZError(f"{str(out)!r} exists; choose another name or allow overwriting")
    # a private CPU copy: the caller's network may be predicting on a GPU in another thread
    model = StructN2VModel(copy.deepcopy(model.net).cpu().float().eval(), model.config)
    net = model.net
    arch = model.config.architecture
    k = int(model.z_context)
    sp, steps = _space(model)
    sp = sp.lower()
    nd, n_ch = len(sp), model.n_channels
    halos, mins = halo(model), min_input_shape(model)
    x = _test_input(model, image, axes)
    # our own prediction, in one tile per slice or volume: the package must reproduce it
    tile = list(x.shape[-arch.spatial_ndim:])
    y = model.predict(x[0], "C" + sp.upper(), tile=tile, device="cpu", tta=False)[None].astype(np.float32)
    if k:
        # the package's network takes whole volumes: ZContextUNet stacks each slice's neighbours
        package_net = unet.ZContextUNet(k, arch)
        package_net.net = net
        package_net.eval()
        arch_callable, arch_kwargs = "ZContextUNet", {"z_context": k, **arch.to_dict()}
    else:
        package_net = net
        arch_callable, arch_kwargs = "UNet", arch.to_dict()

    low = np.asarray(model.config.low, dtype=np.float64)
    scale = np.asarray(model.config.high, dtype=np.float64) - low
    scale = np.where(scale == 0, 1.0, scale)  # as in prediction: a constant channel passes through
    to_float = EnsureDtypeDescr(kwargs=EnsureDtypeKwargs(dtype="float32"))
    preprocessing: list[Any] = [to_float]
    postprocessing: list[Any] = []
    if not (np.all(low == 0) and np.all(scale == 1)):  # the spec rejects an identity scale_linear
        if n_ch == 1:
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
    channel_names = [Identifier(f"channel{i}") for i in range(n_ch)]
    mask_label = _mask_label(model.mask)

    with tempfile.TemporaryDirectory(prefix="structn2v_bmz_") as tmp_name:
        tmp = Path(tmp_name)
        np.save(tmp / "test_input.npy", x)
        np.save(tmp / "test_output.npy", y)
        torch.save({n: v.detach().cpu() for n, v in package_net.state_dict().items()}, tmp / "weights.pt")
        # TorchScript is what deepImageJ and Fiji run; torch 2.10+ flags jit as deprecated, but the
        # bioimage.io spec has no torch.export format yet
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
            x_norm = torch.from_numpy((x - low.reshape((1, -1) + (1,) * nd)) / scale.reshape((1, -1) + (1,) * nd)).float()
            if k:
                # the U-Net traced, the slice stacking scripted: a trace would fix the number of slices
                wrapper = unet.ZContextUNet(k, arch)
                wrapper.net = torch.jit.trace(net, package_net.stack(x_norm))
                traced = torch.jit.script(wrapper.eval())
            else:
                traced = torch.jit.trace(net, x_norm)
        traced.save(str(tmp / "weights_torchscript.pt"))
        arch_src = tmp / "unet.py"
        arch_src.write_bytes(Path(unet.__file__).read_bytes())
        (tmp / "README.md").write_text(_readme(model, halos, mins, x.shape), encoding="utf-8")
        import imageio.v3 as iio

        iio.imwrite(tmp / "cover.png", _cover(x, y))

        torch_version = Version(torch.__version__.split("+")[0])
        tags_all = list(dict.fromkeys(["denoising", "structn2v", "noise2void", "self-supervised", "pytorch",
                                       f"{nd}d", "napari-structn2v", *tags]))
        citations = [CiteEntry(**STRUCTN2V_CITATION), CiteEntry(**N2V_CITATION)]
        if arch.n2v2:
            citations.append(CiteEntry(**N2V2_CITATION))
        try:
            descr = ModelDescr(
                name=_safe_name(name or f"StructN2V {mask_label} denoiser"),
                description=description
                or (
                    f"Structured Noise2Void denoiser with a {describe_mask(model.mask)} blind mask, trained "
                    f"self-supervised on {model.axes} data with napari-structn2v {__version__}."
                ),
                authors=[Author(name=a) for a in authors],
                cite=citations,
                license=LicenseId(license),
                tags=tags_all,
                documentation=FileDescr(source=tmp / "README.md"),
                covers=[FileDescr(source=tmp / "cover.png")],
                inputs=[
                    InputTensorDescr(
                        id=TensorId("input"),
                        description=f"noisy image, {n_ch} channel(s), intensities as acquired",
                        axes=[
                            BatchAxis(),
                            ChannelAxis(channel_names=channel_names),
                            *[
                                SpaceInputAxis(id=AxisId(a), size=ParameterizedSize(min=mn, step=m))
                                for a, mn, m in zip(sp, mins, steps)
                            ],
                        ],
                        test_tensor=FileDescr(source=tmp / "test_input.npy"),
                        data=IntervalOrRatioDataDescr(type="float32"),
                        preprocessing=preprocessing,
                    )
                ],
                outputs=[
                    OutputTensorDescr(
                        id=TensorId("denoised"),
                        description="denoised image in the input's intensity scale",
                        axes=[
                            BatchAxis(),
                            ChannelAxis(channel_names=channel_names),
                            *[
                                SpaceOutputAxisWithHalo(
                                    id=AxisId(a), size=SizeReference(tensor_id=TensorId("input"), axis_id=AxisId(a)), halo=h
                                )
                                for a, h in zip(sp, halos)
                            ],
                        ],
                        test_tensor=FileDescr(source=tmp / "test_output.npy"),
                        data=IntervalOrRatioDataDescr(type="float32"),
                        postprocessing=postprocessing,
                    )
                ],
                weights=WeightsDescr(
                    pytorch_state_dict=PytorchStateDictWeightsDescr(
                        source=tmp / "weights.pt",
                        architecture=ArchitectureFromFileDescr(
                            source=arch_src, callable=Identifier(arch_callable), kwargs=arch_kwargs
                        ),
                        pytorch_version=torch_version,
                    ),
                    torchscript=TorchscriptWeightsDescr(
                        source=tmp / "weights_torchscript.pt", pytorch_version=torch_version, parent="pytorch_state_dict"
                    ),
                ),
                config=Config(**{CONFIG_KEY: json.loads(model.config.to_json())}),
            )
        except ValidationError as exc:
            raise BMZError(f"the bioimage.io description does not validate: {exc}") from exc
        # write next to the target and rename: a failed export never leaves a partial package
        out.parent.mkdir(parents=True, exist_ok=True)
        part = out.with_name(out.name + ".part")
        try:
            save_bioimageio_package(descr, output_path=part)
            os.replace(part, out)
        finally:
            if part.exists():
                part.unlink()
    return out


def test_bmz(path: str | os.PathLike, *, devices: Sequence[str] = ("cpu",)) -> tuple[bool, str]:
    """Run ``bioimageio.core``'s model test on a package, offline (I/O checks off).

    Returns
    -------
    (passed, report) : (bool, str)
        Whether every check passed and the summary as Markdown.
    """
    try:
        from bioimageio.core import test_model
        from bioimageio.spec import ValidationContext
    except ImportError:
        raise BMZError("testing a package needs bioimageio.core: pip install 'napari-structn2v[bmz]'") from None
    with ValidationContext(perform_io_checks=False):
        summary = test_model(str(path), devices=list(devices))
    return summary.status == "passed", summary.format_md()


test_bmz.__test__ = False  # not a pytest test despite the name


def is_bmz_package(path: str | os.PathLike) -> bool:
    """True if ``path`` is a zip archive holding a bioimage.io description (rdf.yaml)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n in ("rdf.yaml", "bioimageio.yaml") or n.endswith(".bioimageio.yaml") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def load_bmz(path: str | os.PathLike, *, map_location: str = "cpu") -> StructN2VModel:
    """Open a bioimage.io package written by :func:`export_bmz` as a :class:`StructN2VModel`.

    Needs neither bioimageio.spec nor napari: the model config is read from
    ``config.napari_structn2v`` of rdf.yaml and the weights from its ``pytorch_state_dict`` entry
    (loaded with ``weights_only=True``: no pickled code runs).

    Raises
    ------
    ModelFileError
        Not a bioimage.io package, a package from another tool, or a corrupt one.
    """
    import torch
    import yaml

    from .model_io import model_from_parts

    p = Path(path)
    label = repr(str(p))
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            rdf_name = next(
                (n for n in names if n in ("rdf.yaml", "bioimageio.yaml") or n.endswith(".bioimageio.yaml")), None
            )
            if rdf_name is None:
                raise ModelFileError(f"{label} is a zip archive but not a bioimage.io model package (no rdf.yaml)")
            rdf = yaml.safe_load(zf.read(rdf_name))
            if not isinstance(rdf, dict) or rdf.get("type") != "model":
                raise ModelFileError(f"{label} is a bioimage.io package but not a model")
            ours = (rdf.get("config") or {}).get(CONFIG_KEY)
            if not isinstance(ours, dict):
                raise ModelFileError(
                    f"{label} is a bioimage.io model ({rdf.get('name', 'unnamed')!r}) not made by napari-structn2v; "
                    "only packages exported by napari-structn2v can be opened here (run other zoo models "
                    "with bioimageio.core, deepImageJ or ilastik)"
                )
            source = ((rdf.get("weights") or {}).get("pytorch_state_dict") or {}).get("source")
            if isinstance(source, dict):  # a file description rather than a plain name
                source = source.get("source")
            if not isinstance(source, str) or source not in names:
                raise ModelFileError(f"{label}: the package lacks its pytorch_state_dict weights")
            state = torch.load(io.BytesIO(zf.read(source)), map_location=map_location, weights_only=True)
            if ours.get("z_context") and isinstance(state, dict):
                # a Z-context package's weights are ZContextUNet's: the U-Net is its submodule ``net``
                state = {n[len("net."):] if n.startswith("net.") else n: v for n, v in state.items()}
    except ModelFileError:
        raise
    except (OSError, zipfile.BadZipFile, yaml.YAMLError) as exc:
        raise ModelFileError(f"{label} is not a readable bioimage.io package ({type(exc).__name__})") from exc
    except Exception as exc:
        raise ModelFileError(f"{label}: cannot read the package's weights ({type(exc).__name__})") from exc
    return model_from_parts(json.dumps(ours), state, label)
