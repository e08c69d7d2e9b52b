"""2D networks over Z slices that also read neighbouring slices (TrainConfig.z_context)."""
import numpy as np
import pytest
import torch

from napari_structn2v.config import TrainConfig
from napari_structn2v.errors import AxesError, DataError
from napari_structn2v.method.blindspot import BlindSpots, mask_offsets
from napari_structn2v.model import load_model
from napari_structn2v.nn.unet import ZContextUNet, context_index
from napari_structn2v.prediction.predict import context_slices
from napari_structn2v.training.loop import train
from napari_structn2v.training.step import masked_inputs

FAST = dict(patch_size=32, batch_size=4, base_filters=8, val_every=10, device="cpu")


@pytest.fixture(scope="module")
def volume():
    rng = np.random.default_rng(2)
    return rng.random((7, 48, 48)).astype(np.float32)


@pytest.fixture(scope="module")
def model2(volume):
    return train(volume, "ZYX", "1x5x1", TrainConfig(steps=3, z_context=2, **FAST))


@pytest.fixture(scope="module")
def model1(volume):
    return train(volume, "ZYX", "1x5x1", TrainConfig(steps=3, z_context=1, **FAST))


def test_context_slices_never_give_a_slice_itself_as_its_neighbour():
    assert context_slices(3, 2, 7) == [1, 2, 3, 4, 5]
    assert context_slices(0, 2, 7) == [2, 1, 0, 1, 2]  # beyond the end: the mirror on the other side
    assert context_slices(1, 2, 7) == [3, 0, 1, 2, 3]
    for n in (2, 3, 5):
        for z in range(n):
            idx = context_slices(z, 3, n)
            assert len(idx) == 7 and idx[3] == z
            assert all(0 <= i < n for i in idx)
            assert z not in idx[:3] + idx[4:]
    with pytest.raises(DataError, match="at least 2 slices"):
        context_slices(0, 1, 1)


def test_the_torch_only_context_index_is_context_slices():
    for n in range(2, 9):
        for k in range(0, 5):
            assert context_index(n, k) == [i for z in range(n) for i in context_slices(z, k, n)], (n, k)


@pytest.mark.parametrize("which", ["model1", "model2"])
def test_zcontext_unet_equals_our_prediction_including_end_slices(which, request, volume):
    """unet.ZContextUNet (the BMZ package's architecture) on a whole volume = model.predict."""
    model = request.getfixturevalue(which)
    net = ZContextUNet(model.z_context, **model.config.architecture.to_dict())
    net.net.load_state_dict(model.net.state_dict())
    vol = volume[:, 4:36, 2:42]  # Y and X multiples of 4: no padding in model.predict either
    low, high = model.config.low[0], model.config.high[0]
    x = torch.from_numpy((vol - low) / (high - low))[None, None]
    with torch.no_grad():
        y = net.eval()(x)[0, 0].numpy() * (high - low) + low
    ref = model.predict(vol, "ZYX", tta=False, precision="float32")
    assert y.shape == vol.shape and np.abs(y - ref).max() < 1e-4
    with torch.no_grad():  # two channels, a batch of two: channel-major stacks, per-sample slices
        two = torch.cat([x, 2 * x], 1)
        stacked = net.stack(torch.cat([two, -two]))
    k, n = model.z_context, vol.shape[0]
    assert stacked.shape == (2 * n, 2 * (2 * k + 1), 32, 40)
    for z in range(n):
        for j, i in enumerate(context_slices(z, k, n)):
            assert torch.equal(stacked[z, j], x[0, 0, i]) and torch.equal(stacked[z, 2 * k + 1 + j], 2 * x[0, 0, i])
            assert torch.equal(stacked[n + z, j], -x[0, 0, i])


def test_masking_hides_the_centre_slice_only_and_targets_it():
    rng = np.random.default_rng(0)
    batch = torch.from_numpy(rng.random((2, 1, 5, 32, 32)).astype(np.float32))
    gen = torch.Generator().manual_seed(0)
    cfg = TrainConfig(masked_fraction=0.02)
    spots = BlindSpots((32, 32), mask_offsets(np.ones((5, 1), bool)), cfg.masked_fraction, cfg.replacement)
    x, target, w = masked_inputs(batch, spots, gen, 2)
    assert x.shape == (2, 5, 32, 32) and target.shape == (2, 1, 32, 32) and w.shape == (2, 1, 32, 32)
    assert torch.equal(target, batch[:, :, 2])
    changed = (x != batch[:, 0]).flatten(2).any(-1)  # per slice-channel: touched at all?
    assert changed[:, 2].all() and not changed[:, [0, 1, 3, 4]].any()
    assert w.sum() > 0 and bool((x[:, 2] != batch[:, 0, 2])[w[:, 0] > 0].all())  # active pixels replaced


def test_a_context_model_reads_its_neighbours_and_tiles_exactly(model2, volume):
    assert model2.z_context == 2 and model2.spatial_ndim == 2
    assert model2.config.architecture.in_channels == 5 and model2.n_channels == 1
    full = model2.predict(volume, "ZYX", tta=False)
    tiled = model2.predict(volume, "ZYX", tta=False, tile=64)
    assert full.shape == volume.shape and np.abs(full - tiled).max() < 1e-4
    near, far = volume.copy(), volume.copy()
    near[4] += 1.0  # a neighbour of slice 3
    far[6] += 1.0  # three slices away
    assert np.abs(model2.predict(near, "ZYX", tta=False)[3] - full[3]).max() > 1e-3
    assert np.abs(model2.predict(far, "ZYX", tta=False)[3] - full[3]).max() < 1e-6
    with pytest.raises(AxesError, match="neighbouring slice"):
        model2.predict(volume[0], "YX")


def test_context_survives_saving_and_resuming(model2, volume, tmp_path):
    model2.save(tmp_path / "m.pt")
    back = load_model(tmp_path / "m.pt")
    assert back.z_context == 2
    assert np.allclose(back.predict(volume, tta=False), model2.predict(volume, tta=False), atol=1e-6)
    more = train(volume, "ZYX", "1x5x1", TrainConfig(steps=2, z_context=0, **FAST), resume=back)
    assert more.z_context == 2  # the model's own context, whatever the config says
    with pytest.raises(DataError, match="thinner than 5 slices"):
        train(volume[:4], "ZYX", "1x5x1", TrainConfig(steps=1, **FAST), resume=back)


def test_context_shrinks_to_what_thin_volumes_allow_and_needs_independent_z_noise(volume):
    assert train(volume[:3], "ZYX", "1x5x1", TrainConfig(steps=1, z_context=2, **FAST)).z_context == 1
    thin = train(volume[:2], "ZYX", "1x5x1", TrainConfig(steps=1, z_context=2, **FAST))
    assert thin.z_context == 0 and thin.config.architecture.in_channels == 1
    # noise correlated across Z: neighbours would leak it, so no context (3D net, or plain slices)
    assert train(volume, "ZYX", "1x5x3", TrainConfig(steps=1, z_context=2, z_net="2d", **FAST)).z_context == 0
    assert train(volume, "ZYX", "1x5x3", TrainConfig(steps=1, z_context=2, patch_size_z=4, **FAST)).spatial_ndim == 3
    assert train(volume[0], "YX", "5x1", TrainConfig(steps=1, z_context=2, **FAST)).z_context == 0


def test_predict_dask_equals_tiled_prediction_with_context(model2, volume):
    pytest.importorskip("dask")
    from napari_structn2v.prediction.distributed import predict_dask

    vol = np.concatenate([volume] * 3)  # 21 slices: two Z blocks with a halo between them
    lazy = predict_dask(model2, vol, "ZYX", tta=False)
    assert np.abs(lazy.compute(scheduler="synchronous") - model2.predict(vol, "ZYX", tta=False)).max() < 1e-4


def test_bmz_export_of_a_context_model_runs_in_bioimageio_and_comes_back(model1, volume, tmp_path):
    """Z-context packages: volumes in, ZContextUNet weights, Z halo k; bioimageio.core reproduces our
    prediction from both weight formats, and load_model gives back the same model."""
    import io
    import zipfile

    yaml = pytest.importorskip("yaml")
    pytest.importorskip("bioimageio.core")
    from napari_structn2v.bmz import export as bmz

    if bmz.incompatibility() is not None:
        pytest.skip(bmz.incompatibility())
    with pytest.raises(AxesError, match="neighbouring slice"):
        bmz.export_bmz(model1, tmp_path / "slice.zip", image=volume[0], axes="YX")
    out = bmz.export_bmz(model1, tmp_path / "context.zip", image=volume, axes="ZYX")
    passed, report = bmz.test_bmz(out)
    assert passed, report

    with zipfile.ZipFile(out) as zf:
        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        test_in = np.load(io.BytesIO(zf.read("test_input.npy")))
        test_out = np.load(io.BytesIO(zf.read("test_output.npy")))
        scripted = torch.jit.load(io.BytesIO(zf.read("weights_torchscript.pt")))
        readme = zf.read("README.md").decode()
    arch = rdf["weights"]["pytorch_state_dict"]["architecture"]
    assert arch["callable"] == "ZContextUNet" and arch["kwargs"]["z_context"] == 1
    assert arch["kwargs"]["in_channels"] == 3 and arch["kwargs"]["out_channels"] == 1
    in_axes = {a.get("id", a["type"]): a for a in rdf["inputs"][0]["axes"]}
    out_axes = {a.get("id", a["type"]): a for a in rdf["outputs"][0]["axes"]}
    assert list(in_axes) == ["batch", "channel", "z", "y", "x"] and len(in_axes["channel"]["channel_names"]) == 1
    assert in_axes["z"]["size"] == {"min": 3, "step": 1} and out_axes["z"]["halo"] == 1
    assert bmz.halo(model1)[0] == 1 and bmz.min_input_shape(model1)[0] == 3
    assert test_in.shape[:3] == (1, 1, 7) and rdf["config"]["napari_structn2v"]["z_context"] == 1
    assert "Z context" in readme
    # the test output is our own prediction, end slices included
    ours = model1.predict(test_in[0, 0], "ZYX", tta=False, precision="float32")
    np.testing.assert_allclose(test_out[0, 0], ours, atol=1e-5, rtol=0)
    # the TorchScript weights take any number of slices (scripted stacking), not only the test's 7
    low, high = model1.config.low[0], model1.config.high[0]
    vol = volume[1:6, :32, :44]
    with torch.no_grad():
        y = scripted(torch.from_numpy((vol - low) / (high - low))[None, None])[0, 0].numpy() * (high - low) + low
    np.testing.assert_allclose(y, model1.predict(vol, "ZYX", tta=False, precision="float32"), atol=1e-4, rtol=0)

    back = load_model(out)
    assert back.z_context == 1 and back.config.architecture == model1.config.architecture
    np.testing.assert_array_equal(back.mask, model1.mask)
    other = np.random.default_rng(7).random((6, 40, 52)).astype(np.float32)
    np.testing.assert_allclose(back.predict(other, tta=False), model1.predict(other, tta=False), atol=1e-4, rtol=0)
    np.testing.assert_allclose(back.predict(other), model1.predict(other), atol=1e-4, rtol=0)


def test_model_resolve_axes_counts_the_datas_channels(model1):
    assert model1.config.architecture.in_channels == 3  # the centre slice and one on each side
    assert model1.resolve_axes(3) == "ZYX"
    with pytest.raises(AxesError, match="Z axis"):
        model1.resolve_axes(2, "YX")
