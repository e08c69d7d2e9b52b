"""The README and the citations of a bioimage.io package written by :func:`~napari_structn2v.bmz.export.export_bmz`."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from .tensors import package_space

if TYPE_CHECKING:
    from ..model import StructN2VModel

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


def mask_label(mask: np.ndarray) -> str:
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


def _training_rows(training: dict) -> str:
    """The training provenance's plain values as Markdown table rows (lists and dicts left out)."""
    return "\n".join(
        f"| {k} | {json.dumps(v) if not isinstance(v, str) else v} |"
        for k, v in sorted(training.items())
        if not isinstance(v, (list, dict))
    )


def _mask_rows(mask: np.ndarray) -> str:
    """The blind mask (a 3D mask's middle plane) drawn with ``#`` (hidden) and ``.``, indented."""
    return "\n".join(
        "    " + "".join("#" if v else "." for v in row) for row in (mask if mask.ndim == 2 else mask[mask.shape[0] // 2])
    )


def readme(model: StructN2VModel, halos: Sequence[int], mins: Sequence[int], test_shape: Sequence[int]) -> str:
    """The package's README.md: the model, its normalisation and tiling, training, validation, citations."""
    from .. import __version__
    from ..method.masks import describe_mask

    arch = model.config.architecture
    sp, steps = package_space(model)
    k = int(getattr(model, "z_context", 0))
    return f"""# StructN2V denoiser ({mask_label(model.mask)} blind mask)

A Structured Noise2Void network (Broaddus et al., ISBI 2020), a blind-spot U-Net trained
self-supervised on noisy images only, exported by napari-structn2v {__version__}. It removes noise
that is correlated between neighbouring pixels along the blind mask's extent.

## Model

- Data axes at training: `{model.axes}`; input tensor `(batch, channel, {", ".join(sp.lower())})`,
  {model.n_channels} channel(s), float32.
- Blind mask: {describe_mask(model.mask)} (`#` hidden, centre row{"" if model.mask.ndim == 2 else " of the middle plane"}):

{_mask_rows(model.mask)}

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
{_training_rows(model.config.training)}

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
