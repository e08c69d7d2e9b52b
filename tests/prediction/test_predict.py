import warnings

import numpy as np
import pytest
import torch

from napari_structn2v.errors import AxesError, DataError
from napari_structn2v.prediction.predict import PredictDone, TileDone
from tests.helpers import untrained_model


def _model(nd=2, channels=1, axes="YX", **kw):
    # non-trivial batch-norm statistics
    return untrained_model(axes, channels=channels, bn_spread=0.1, spatial_ndim=nd, base_filters=8, **kw)


def test_tiled_equals_untiled_2d():
    model = _model()
    img = np.random.default_rng(0).random((150, 213)).astype(np.float32) * 2
    full = model.predict(img, tile=1024)
    tiled = model.predict(img, tile=96)
    assert tiled.shape == img.shape and tiled.dtype == np.float32
    border = 8
    inner = (slice(border, -border), slice(border, -border))
    np.testing.assert_allclose(tiled[inner], full[inner], atol=1e-4)
    # seamless: no jump across tile borders beyond the image's own variation
    assert np.abs(tiled - full).max() < 1e-3


def test_tiles_stream_and_cover_everything():
    model = _model()
    img = np.random.default_rng(1).random((2, 100, 120)).astype(np.float32)
    seen = np.zeros(img.shape, bool)
    events = list(model.predict_iter(img, "SYX", tile=64, overlap=32))
    tiles = [e for e in events if isinstance(e, TileDone)]
    assert isinstance(events[-1], PredictDone) and not events[-1].stopped
    assert tiles[-1].index == tiles[-1].total == len(tiles) > 2
    for t in tiles:
        assert t.data.shape == img[t.region].shape
        np.testing.assert_array_equal(events[-1].image[t.region], t.data)
        seen[t.region] = True
    assert seen.all()


def test_tiled_equals_untiled_3d_and_channels():
    model = _model(nd=3, axes="ZYX")
    vol = np.random.default_rng(2).random((20, 70, 90)).astype(np.float32)
    full = model.predict(vol, tile=512)
    radius = model.config.architecture.receptive_radius()
    tiled = model.predict(vol, tile=2 * max(radius) + 24)
    assert sum(isinstance(e, TileDone) for e in model.predict_iter(vol, tile=2 * max(radius) + 24)) > 2
    np.testing.assert_allclose(tiled[4:-4, 8:-8, 8:-8], full[4:-4, 8:-8, 8:-8], atol=1e-4)
    m2 = _model(channels=2, axes="CYX")
    img = np.random.default_rng(3).random((40, 50, 2)).astype(np.float32)
    out = m2.predict(img, "YXC", tile=1024)
    assert out.shape == img.shape
    ref = m2.predict(np.moveaxis(img, -1, 0), "CYX", tile=1024)
    np.testing.assert_allclose(np.moveaxis(out, -1, 0), ref, atol=1e-5)


def test_stop_and_errors():
    model = _model()
    img = np.zeros((128, 128), np.float32)
    calls = iter([False, True])
    events = list(model.predict_iter(img, tile=64, overlap=16, should_stop=lambda: next(calls, True)))
    assert events[-1].stopped and sum(isinstance(e, TileDone) for e in events) == 1
    with pytest.raises(AxesError, match="3D"):  # a 3D model cannot take a 2D image
        _model(nd=3, axes="ZYX").predict(np.zeros((32, 32), np.float32), "YX")
    vol = np.random.default_rng(1).random((3, 32, 32)).astype(np.float32)
    by_slice = model.predict(vol, "ZYX", tta=False)  # a 2D model goes slice by slice
    assert np.allclose(by_slice[1], model.predict(vol[1], "YX", tta=False), atol=1e-5)
    with pytest.raises(DataError, match="too small"):
        model.predict(img, tile=16, overlap=32)
    with pytest.raises(DataError, match="channel"):
        model.predict(np.zeros((3, 32, 32)), "CYX")


def test_default_axes_adapt_to_image():
    model = _model(axes="SYX")
    assert model.predict(np.zeros((40, 40), np.float32)).shape == (40, 40)
    assert model.predict(np.zeros((2, 40, 40), np.float32)).shape == (2, 40, 40)


def test_tta_transforms_keep_the_mask_orientation():
    from napari_structn2v.prediction.predict import tta_transforms

    line = np.zeros((1, 9), bool)
    line[0, :] = True
    assert tta_transforms(line) == ((), (-1,), (-2,), (-1, -2))  # no 90-degree turns for a line
    assert len(tta_transforms(np.ones((3, 3), bool))) == 8  # square-symmetric: turns too
    assert tta_transforms(line, enabled=False) == ((),)


def test_tta_keeps_an_asymmetric_mask():
    """A diagonal keeps the half turn and the transposes, an L only the transpose (issue 17: a
    flipped diagonal or L hides other pixels than the network learned to ignore)."""
    from napari_structn2v.prediction.predict import tta_transforms

    assert tta_transforms(np.eye(5, dtype=bool)) == ((), (-1, -2), ("T",), (-1, -2, "T"))
    ell = np.zeros((5, 5), bool)
    ell[2, 2:] = ell[2:, 2] = True
    assert tta_transforms(ell) == ((), ("T",))
    assert tta_transforms(np.pad(ell, ((0, 0), (0, 2)))) == ((),)


def _unequivariant_model():
    """A 1x5-masked model whose output changes under flips (so averaging them is visible)."""
    model = untrained_model("YX", np.ones((1, 5), bool), high=[1.0], base_filters=4)
    with torch.no_grad():
        model.net.head.weight.normal_(std=0.5)  # make the net far from flip-equivariant
    return model


def test_tta_prediction_is_the_mean_over_flips():
    model = _unequivariant_model()
    img = np.random.default_rng(0).random((32, 40)).astype(np.float32)
    plain = model.predict(img, tta=False)
    flips = [plain]
    for dims in ((1,), (0,), (0, 1)):
        flips.append(np.flip(model.predict(np.ascontiguousarray(np.flip(img, dims)), tta=False), dims))
    assert np.allclose(model.predict(img, tta=True), np.mean(flips, axis=0), atol=1e-5)
    assert not np.allclose(plain, np.mean(flips, axis=0), atol=1e-4)


def test_half_turn_tta_transforms():
    """"half-turn": the identity and the 180-degree turn, where the mask keeps the turn."""
    from napari_structn2v.prediction.predict import tta_transforms

    line = np.ones((1, 5), bool)
    assert tta_transforms(line, "half-turn") == ((), (-1, -2))
    assert tta_transforms(line, "Half-Turn") == ((), (-1, -2))
    assert tta_transforms(np.ones((3, 3), bool), "half-turn") == ((), (-1, -2))  # no quarter turns
    assert tta_transforms(np.eye(5, dtype=bool), "half-turn") == ((), (-1, -2))
    ell = np.zeros((5, 5), bool)
    ell[2, 2:] = ell[2:, 2] = True
    assert tta_transforms(ell, "half-turn") == ((),)  # an L is not kept by the half turn: one pass


def test_half_turn_tta_prediction_is_the_mean_of_two_passes():
    model = _unequivariant_model()
    img = np.random.default_rng(1).random((32, 40)).astype(np.float32)
    plain = model.predict(img, tta=False)
    turned = np.flip(model.predict(np.ascontiguousarray(np.flip(img, (0, 1))), tta=False), (0, 1))
    half = model.predict(img, tta="half-turn")
    assert np.allclose(half, (plain + turned) / 2, atol=1e-5)
    assert not np.allclose(half, model.predict(img, tta=True), atol=1e-4)  # not the 4 flips


@pytest.mark.parametrize("bad", ["all", "halfturn", 2, None, 1.0])
def test_bad_tta_option_is_refused(bad):
    from napari_structn2v.errors import ConfigError, StructN2VError
    from napari_structn2v.prediction.predict import tta_transforms

    model = untrained_model("YX", np.ones((1, 5), bool), high=[1.0], base_filters=4)
    with pytest.raises(ConfigError, match="tta"):
        tta_transforms(np.ones((1, 5), bool), bad)
    with pytest.raises(StructN2VError, match="'half-turn'"):
        model.predict(np.zeros((16, 16), np.float32), tta=bad)


def _mirror_pad(x, multiple):
    """The far-edge padding before issue 17: a mirror of the last pixels."""
    pads = [(0, 0)] + [(0, (-s) % m) for s, m in zip(x.shape[1:], multiple)]
    return np.pad(x, pads, mode="reflect") if any(p[1] for p in pads) else x


def _edge_stripes(model, width: int, seed: int) -> tuple[float, float]:
    """Residual lag-1 correlation along X over the last 3 columns, and RMS error there, of ``model``
    on a 512-row image ``width`` px wide with X-correlated noise."""
    from napari_structn2v.synthetic import clean_image, correlated_noise

    clean = clean_image((512, width), rng=np.random.default_rng(10 + seed))
    noisy = clean + correlated_noise(clean.shape, axis=-1, half_len=4, rng=np.random.default_rng(20 + seed))
    r = model.predict(noisy, tta=False, precision="float32") - clean
    lag1 = np.mean([np.corrcoef(r[:, c], r[:, c - 1])[0, 1] for c in range(width - 3, width)])
    return float(lag1), float(np.sqrt(np.mean(r[:, -3:] ** 2)))


def test_the_far_edge_keeps_fewer_stripes_than_a_mirror(monkeypatch):
    """Issue 17: a 9x1-masked model's last columns. Padding them (125 px: 3 columns to the pooling
    multiple of 4) with a mirror repeats pixels within the mask's reach; a line's mean does not."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.prediction import predict as prediction
    from napari_structn2v.synthetic import clean_image, correlated_noise
    from napari_structn2v.training.loop import train

    rng = np.random.default_rng(0)
    clean = clean_image((128, 128), rng=rng)
    noisy = clean + correlated_noise(clean.shape, axis=-1, half_len=4, rng=rng)
    model = train(noisy, "YX", "9x1", TrainConfig(steps=300, patch_size=32, batch_size=8, base_filters=8,
                                                  device="cpu", val_fraction=0, seed=0))
    fixed = np.mean([_edge_stripes(model, 125, s) for s in range(3)], axis=0)
    monkeypatch.setattr(prediction, "pad_to_multiple", _mirror_pad)
    mirror = np.mean([_edge_stripes(model, 125, s) for s in range(3)], axis=0)
    assert fixed[0] < mirror[0] - 0.02  # stripe level of the last columns (measured 0.59 vs 0.64)
    # and no larger error there: the two are within 2 % of each other and the order flips with the
    # model's last bits (0.0881 vs 0.0868 in a full run, where earlier tests changed torch's state)
    assert fixed[1] < mirror[1] * 1.03


def test_group_norm_models_warn_when_tiled():
    """Issue 17: a group norm's statistics are the tile's, so tiles change the result; say so."""
    from napari_structn2v.errors import StructN2VWarning

    model = untrained_model("YX", base_filters=8, norm="group")
    img = np.random.default_rng(0).random((128, 128)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        whole = model.predict(img, tile=128, tta=False, precision="float32")  # one tile: no warning
    with pytest.warns(StructN2VWarning, match="group norms"):
        tiled = model.predict(img, tile=64, tta=False, precision="float32")
    assert np.abs(tiled - whole).max() > 1e-3  # the warning is about a real difference
    batch_model = untrained_model("YX", base_filters=8, bn_spread=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        batch_model.predict(img, tile=64, tta=False)  # batch norm: tiles agree, no warning


@pytest.mark.parametrize(("nd", "axes", "shape"), [(2, "ZYX", (8, 60, 60)), (3, "ZYX", (24, 36, 36))])
def test_the_tile_order_does_not_change_the_result(nd, axes, shape):
    model = _model(nd=nd, axes="YX" if nd == 2 else "ZYX")
    vol = np.random.default_rng(7).random(shape).astype(np.float32)
    kw = {"tile": 48 if nd == 2 else 32, "overlap": 16, "tta": False, "precision": "float32"}
    plain = list(model.predict_iter(vol, axes, **kw))
    focused = list(model.predict_iter(vol, axes, focus={"Z": 5 if nd == 2 else 17}, near={"Y": 50, "X": 5}, **kw))
    first = [e.region for e in focused if isinstance(e, TileDone)][0]
    assert first[0].start <= (5 if nd == 2 else 17) < first[0].stop  # the focused slice came first
    assert [e.region for e in plain if isinstance(e, TileDone)][0][0].start == 0
    np.testing.assert_array_equal(focused[-1].image, plain[-1].image)
