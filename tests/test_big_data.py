"""Big data: lazy inputs, streaming outputs, OME-Zarr, lazy training, dask (issue 10).

Small synthetic arrays only; zarr/dask tests are skipped where those packages are missing."""
import numpy as np
import pytest
import torch

from napari_structn2v.masks import box_mask
from napari_structn2v.model_io import StructN2VModel, new_model_config
from napari_structn2v.unet import UNet, UNetConfig

torch.set_num_threads(1)


def _model(nd=2, axes="YX", mask=None):
    torch.manual_seed(0)
    arch = UNetConfig(spatial_ndim=nd, in_channels=1, out_channels=1, base_filters=4, depth=2)
    net = UNet(arch).eval()
    if mask is None:
        mask = box_mask(3, 1) if nd == 2 else box_mask(1, 3, 1)
    return StructN2VModel(net, new_model_config(axes, mask, [0.0], [2.0], arch, {}))


class Guarded:
    """An array-like that refuses to be converted whole and records the largest read."""

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.largest = 0

    def __getitem__(self, key):
        block = self.data[key]
        self.largest = max(self.largest, int(np.size(block)))
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole lazy array was converted")


# -- 1. streaming prediction -----------------------------------------------------------------------
@pytest.mark.parametrize("tta", [False, True])
def test_streaming_into_zarr_equals_in_memory(tmp_path, tta):
    zarr = pytest.importorskip("zarr")
    model = _model()
    img = np.random.default_rng(0).random((3, 90, 110)).astype(np.float32) * 2
    expected = model.predict(img, "SYX", tile=64, tta=tta)
    src = zarr.create_array(tmp_path / "in.zarr", shape=img.shape, chunks=(1, 32, 32), dtype="float32")
    src[:] = img
    out = zarr.create_array(tmp_path / "out.zarr", shape=img.shape, chunks=(1, 32, 32), dtype="float32")
    result = model.predict(src, "SYX", tile=64, tta=tta, out=out)
    assert result is out
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "out.zarr", mode="r")[:], expected)


def test_lazy_input_is_read_tile_by_tile_into_a_memmap(tmp_path, monkeypatch):
    from napari_structn2v import prediction

    monkeypatch.setattr(prediction, "CHECK_BLOCK_VALUES", 5000)  # as if the image were large
    monkeypatch.setattr(prediction, "INTENSITY_SAMPLES", 2000)
    model = _model()
    img = np.random.default_rng(1).random((4, 80, 100)).astype(np.float32) * 2
    img[0, 0, 0] = 50.0  # an outlier does not matter; the checks below must not read it all at once
    expected = model.predict(img, "SYX", tile=64, tta=False)
    guarded = Guarded(img)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=img.shape)
    model.predict(guarded, "SYX", tile=64, tta=False, out=out)
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert guarded.largest < img.size  # only tiles, blocks and a strided sample were read


def test_lazy_checks_find_nan_and_bad_out_shape(tmp_path):
    from napari_structn2v.errors import DataError
    from napari_structn2v.prediction import check_finite, iter_blocks

    img = np.zeros((5, 7, 9), np.float32)
    img[4, 6, 8] = np.nan
    with pytest.raises(DataError, match="1 NaN"):
        check_finite(Guarded(img))
    covered = np.zeros(img.shape, int)
    for key in iter_blocks(img.shape, max_values=20):
        covered[key] += 1
    assert (covered == 1).all()
    model = _model()
    with pytest.raises(DataError, match="output array has shape"):
        model.predict(np.zeros((32, 32), np.float32), tta=False, out=np.zeros((32, 31), np.float32))
