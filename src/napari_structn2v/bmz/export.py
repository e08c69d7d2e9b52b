"""BioImage Model Zoo (bioimage.io) export and import of trained models.

:func:`export_bmz` writes a bioimage.io model package (format 0.5, built and validated with
``bioimageio.spec``) that runs without napari-structn2v in bioimage.io consumers (bioimageio.core,
deepImageJ, ilastik, ...):

- ``pytorch_state_dict`` weights whose architecture is our own torch-only ``unet.py``, shipped in the
  package, plus TorchScript weights traced from the same network;
- a Z-context model (a 2D network over Z slices that also reads ``k`` neighbouring slices) takes
  volumes ``(batch, channel, z, y, x)``: its architecture is ``unet.ZContextUNet``, which stacks each
  slice's neighbours by the rule of :func:`~napari_structn2v.prediction.predict.context_slices` and runs
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
import needs only torch and PyYAML. This module imports neither Qt nor napari. The package's tensors
(:mod:`~napari_structn2v.bmz.tensors`), its README and citations (:mod:`~napari_structn2v.bmz.readme`)
and its rdf.yaml (:mod:`~napari_structn2v.bmz.spec`, the one module that imports bioimageio.spec)
have modules of their own; their public names are importable from here too.
"""
from __future__ import annotations

import os
import re
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .package import CONFIG_KEY, BMZError, is_bmz_package, read_package
from .readme import N2V2_CITATION, N2V_CITATION, STRUCTN2V_CITATION, readme
from .tensors import TEST_SIDE_2D, TEST_SIDE_3D, TEST_SLICES_CONTEXT, cover, halo, min_input_shape, package_space
from .tensors import make_test_input as _test_input

if TYPE_CHECKING:
    from ..model import StructN2VModel

__all__ = [
    "CONFIG_KEY", "FORMAT_VERSION", "N2V2_CITATION", "N2V_CITATION", "STRUCTN2V_CITATION", "TEST_SIDE_2D",
    "TEST_SIDE_3D", "TEST_SLICES_CONTEXT", "BMZError", "export_bmz", "halo", "incompatibility", "is_bmz_package",
    "load_bmz", "min_input_shape", "test_bmz",
]

#: the BMZ ``format_version`` we write
FORMAT_VERSION = "0.5"


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
        bioimageio.spec is missing, the description does not validate, or the model subtracts a
        camera fixed pattern (see :func:`_refuse_fixed_pattern`).
    DataError, AxesError
        ``image`` does not fit the model.
    """
    _refuse_fixed_pattern(model)
    _require_spec()
    from .spec import describe, save_package

    out = _target(path, overwrite)
    model = _cpu_copy(model)
    x = _test_input(model, image, axes)
    y = _reference_output(model, x)
    package_net, arch_callable, arch_kwargs = _package_network(model)
    with tempfile.TemporaryDirectory(prefix="structn2v_bmz_") as tmp_name:
        tmp = Path(tmp_name)
        _write_files(tmp, model, package_net, x, y)
        descr = describe(model, tmp, arch_callable=arch_callable, arch_kwargs=arch_kwargs, name=name,
                         description=description, authors=authors, license=license, tags=tags)
        save_package(descr, out)
    return out


def _refuse_fixed_pattern(model: StructN2VModel) -> None:
    """:class:`BMZError` for a model that subtracts a camera fixed pattern.

    The pattern is subtracted pixel by pixel at the camera frame's position, but bioimage.io
    consumers tile and pad the input as they like and pass the network no position: a buffer in
    the exported network could only be right for whole, untiled frames, and a package whose
    results depend on the consumer's tiling is worse than none.
    """
    pattern = getattr(model.config, "fixed_pattern", None)
    if pattern is not None:
        h, w = np.shape(pattern)
        raise BMZError(
            f"this model subtracts a camera fixed pattern ({h}x{w} px) before denoising, which a bioimage.io "
            f"package cannot carry (consumers tile images without telling the network where a tile lies); "
            f"use the model file with napari-structn2v, or train without the dark stack to export"
        )


def _target(path: str | os.PathLike, overwrite: bool) -> Path:
    """The package's path: a ``.zip`` that does not exist yet unless ``overwrite`` (:class:`BMZError`)."""
    out = Path(path)
    if out.suffix.lower() != ".zip":
        raise BMZError(f"a bioimage.io package is a .zip file; got {str(out)!r}")
    if out.exists() and not overwrite:
        raise BMZError(f"{str(out)!r} exists; choose another name or allow overwriting")
    return out


def _cpu_copy(model: StructN2VModel) -> StructN2VModel:
    """A private float32 CPU copy in eval mode: the caller's network may be predicting on a GPU in
    another thread."""
    import copy

    from ..model import StructN2VModel

    return StructN2VModel(copy.deepcopy(model.net).cpu().float().eval(), model.config)


def _reference_output(model: StructN2VModel, x: np.ndarray) -> np.ndarray:
    """Our own prediction of the test input ``x``, in one tile per slice or volume: the package
    must reproduce it (in float32, the format the package runs in)."""
    sp = package_space(model)[0]
    tile = list(x.shape[-model.config.architecture.spatial_ndim:])
    return model.predict(x[0], "C" + sp, tile=tile, device="cpu", tta=False, precision="float32")[None].astype(np.float32)


def _package_network(model: StructN2VModel) -> tuple[Any, str, dict[str, Any]]:
    """The package's network, and its class name and keyword arguments in ``unet.py``: the U-Net,
    or for a Z-context model a ``ZContextUNet`` around it (it takes whole volumes and stacks each
    slice's neighbours)."""
    from ..nn import unet

    arch = model.config.architecture
    k = int(model.z_context)
    if not k:
        return model.net, "UNet", arch.to_dict()
    package_net = unet.ZContextUNet(k, arch)
    package_net.net = model.net
    package_net.eval()
    return package_net, "ZContextUNet", {"z_context": k, **arch.to_dict()}


def _write_files(folder: Path, model: StructN2VModel, package_net: Any, x: np.ndarray, y: np.ndarray) -> None:
    """Write the package's files into ``folder``: test tensors, weights, ``unet.py``, README, cover."""
    import imageio.v3 as iio

    from ..nn import unet

    np.save(folder / "test_input.npy", x)
    np.save(folder / "test_output.npy", y)
    _write_weights(folder, model, package_net, x)
    (folder / "unet.py").write_bytes(Path(unet.__file__).read_bytes())
    (folder / "README.md").write_text(readme(model, halo(model), min_input_shape(model), x.shape), encoding="utf-8")
    iio.imwrite(folder / "cover.png", cover(x, y))


def _write_weights(folder: Path, model: StructN2VModel, package_net: Any, x: np.ndarray) -> None:
    """``weights.pt`` (the package network's state dict) and ``weights_torchscript.pt``, traced on
    the normalised test input."""
    import torch

    from ..nn import unet
    from .tensors import normalisation

    torch.save({n: v.detach().cpu() for n, v in package_net.state_dict().items()}, folder / "weights.pt")
    low, scale = normalisation(model)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    # TorchScript is what deepImageJ and Fiji run; torch 2.10+ flags jit as deprecated, but the
    # bioimage.io spec has no torch.export format yet
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        x_norm = torch.from_numpy((x - low.reshape(shape)) / scale.reshape(shape)).float()
        if model.z_context:
            # the U-Net traced, the slice stacking scripted: a trace would fix the number of slices
            wrapper = unet.ZContextUNet(int(model.z_context), model.config.architecture)
            wrapper.net = torch.jit.trace(model.net, package_net.stack(x_norm))
            traced = torch.jit.script(wrapper.eval())
        else:
            traced = torch.jit.trace(model.net, x_norm)
    traced.save(str(folder / "weights_torchscript.pt"))


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
    from ..model import model_from_parts

    return model_from_parts(*read_package(path, map_location=map_location))
