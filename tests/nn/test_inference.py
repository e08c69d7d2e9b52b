"""The inference copy of a network, number formats, batched test-time augmentation and batched tiles
(src/napari_structn2v/nn/inference.py and its use by prediction.py)."""
import numpy as np
import pytest
import torch

from napari_structn2v.errors import ConfigError
from napari_structn2v.nn.inference import (
    fold_batch_norms,
    forward_tta,
    inference_net,
    items_per_pass,
    resolve_precision,
)
from napari_structn2v.prediction.predict import TileDone
from tests.helpers import untrained_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _model(nd=2, axes="YX", **kw):
    return untrained_model(axes, bn_spread=0.1, spatial_ndim=nd, base_filters=8, **kw)


@pytest.mark.parametrize("nd", [2, 3])
def test_folded_batch_norms_compute_the_same_function(nd):
    net = _model(nd, "YX" if nd == 2 else "ZYX").net
    x = torch.rand((2, 1) + (16,) * nd)
    folded = fold_batch_norms(__import__("copy").deepcopy(net))
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-4)


def test_inference_net_leaves_the_model_alone():
    model = _model()
    before = {k: v.clone() for k, v in model.net.state_dict().items()}
    twin = inference_net(model.net, torch.device("cpu"), torch.bfloat16)
    assert twin is not model.net and next(twin.parameters()).dtype == torch.bfloat16
    after = model.net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


def test_precision_names():
    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) == torch.float32
    assert resolve_precision("BFloat16", cpu) == torch.bfloat16
    assert resolve_precision("auto", torch.device("meta")) == torch.float32  # unknown devices: float32
    with pytest.raises(ConfigError, match="precision.*float32"):
        resolve_precision("half-ish", cpu)
    with pytest.raises(ConfigError, match="precision"):
        _model().predict(np.zeros((32, 32), np.float32), precision="int8")


def test_batched_tta_equals_one_transform_per_pass():
    net = _model(mask=np.ones((3, 3), bool)).net.eval()
    transforms = [(), (-1,), (-2,), (-1, -2), ("T",), (-1, "T"), (-2, "T"), (-1, -2, "T")]
    for shape in ((2, 1, 32, 32), (2, 1, 32, 48)):  # square: one pass; not square: the turns take a second
        x = torch.rand(shape)
        with torch.no_grad():
            batched = forward_tta(net, x, transforms, torch.float32, together=True)  # CUDA's way
            got = forward_tta(net, x, transforms, torch.float32)  # the CPU's: one pass per transform
            one = [forward_tta(net, x, [t], torch.float32) for t in transforms]
        torch.testing.assert_close(batched, torch.stack(one).mean(0), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got, torch.stack(one).mean(0), atol=1e-5, rtol=1e-4)
        ref = net(x.transpose(-1, -2)).transpose(-1, -2)  # a turn undone on the output
        torch.testing.assert_close(one[4], ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_batched_tiles_equal_one_tile_per_pass_and_stream_in_order(precision):
    model = _model(axes="SYX")
    img = np.random.default_rng(0).random((2, 150, 213)).astype(np.float32) * 2
    one = list(model.predict_iter(img, tile=64, precision=precision, batch=1))
    many = list(model.predict_iter(img, tile=64, precision=precision, batch=7))
    tiles1 = [e for e in one if isinstance(e, TileDone)]
    tiles7 = [e for e in many if isinstance(e, TileDone)]
    assert [t.index for t in tiles7] == list(range(1, len(tiles1) + 1)) and tiles7[-1].total == len(tiles1)
    for a, b in zip(tiles1, tiles7):
        assert a.region == b.region
        np.testing.assert_allclose(a.data, b.data, atol=1e-5 if precision == "float32" else 2e-2)
    with pytest.raises(ConfigError, match="batch"):
        model.predict(img, batch=0)


def test_bfloat16_stays_close_to_float32_and_tiles_agree():
    model = _model()
    img = np.random.default_rng(1).random((150, 213)).astype(np.float32) * 2
    ref = model.predict(img, tile=1024, precision="float32")
    bf = model.predict(img, tile=1024, precision="bfloat16")
    assert np.abs(bf - ref).max() < 0.02 * np.ptp(ref)  # bfloat16 keeps 8 bits: ~0.4 % per value
    np.testing.assert_allclose(model.predict(img, tile=96, precision="bfloat16"), bf, atol=1e-2)


def test_batch_size_is_one_tile_on_the_cpu():
    net = _model().net
    assert items_per_pass(net, torch.zeros(1, 1, 64, 64), torch.float32, 4) == 1


@pytest.mark.cuda
@cuda
def test_cuda_prediction_matches_the_cpu_and_batches_tiles():
    model = _model(axes="SYX")
    img = np.random.default_rng(0).random((3, 300, 260)).astype(np.float32) * 2
    ref = model.predict(img, tile=128, device="cpu", precision="float32")
    for precision, tol in (("float32", 1e-3), ("float16", 1e-2), ("auto", 1e-2)):
        got = model.predict(img, tile=128, device="cuda", precision=precision)
        np.testing.assert_allclose(got, ref, atol=tol * np.ptp(ref))
    inet = inference_net(model.net, torch.device("cuda"), torch.float16)
    n = items_per_pass(inet, torch.zeros(1, 1, 128, 128, device="cuda"), torch.float16, 4)
    assert 1 <= n <= 64 // 4
    events = list(model.predict_iter(img, tile=128, device="cuda"))
    tiles = [e for e in events if isinstance(e, TileDone)]
    assert [t.index for t in tiles] == list(range(1, len(tiles) + 1))


@pytest.mark.cuda
@cuda
def test_cuda_3d_and_z_context_prediction_match_the_cpu():
    vol = np.random.default_rng(2).random((12, 70, 90)).astype(np.float32) * 2
    for model in (_model(3, "ZYX"), untrained_model("ZYX", bn_spread=0.1, base_filters=8, in_channels=3, z_context=1)):
        ref = model.predict(vol, "ZYX", tile=64, device="cpu", precision="float32")
        got = model.predict(vol, "ZYX", tile=64, device="cuda", precision="float16")
        np.testing.assert_allclose(got, ref, atol=1e-2 * np.ptp(ref))
