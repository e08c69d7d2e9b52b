import numpy as np
import pytest

from napari_structn2v.config import TrainConfig
from napari_structn2v.errors import DataError, MaskError, StructN2VError
from napari_structn2v.model import load_model
from napari_structn2v.synthetic import make_sample
from napari_structn2v.training.loop import Preview, TrainDone, TrainStep, Validation, train, train_iter

FAST = dict(patch_size=32, batch_size=4, base_filters=8, val_every=10)


@pytest.fixture(scope="module")
def sample():
    return make_sample("2d", seed=0, size=96)


def test_short_run_lowers_loss_and_emits_events(sample, tmp_path):
    cfg = TrainConfig(steps=60, lr=2e-3, preview_every=20, schedule="cosine", **FAST)
    events = list(train_iter(sample["noisy"], "YX", "5x1", cfg, preview_image=sample["noisy"][:32, :48], checkpoint_dir=tmp_path))
    steps = [e for e in events if isinstance(e, TrainStep)]
    vals = [e for e in events if isinstance(e, Validation)]
    previews = [e for e in events if isinstance(e, Preview)]
    assert [s.step for s in steps] == list(range(1, 61))
    assert np.mean([s.loss for s in steps[-10:]]) < 0.5 * np.mean([s.loss for s in steps[:10]])
    assert len(vals) == 6 and vals[-1].val_loss < vals[0].val_loss
    assert previews and previews[-1].image.shape == (32, 48) and previews[-1].image.dtype == np.float32
    done = events[-1]
    assert isinstance(done, TrainDone) and not done.stopped and done.step == 60
    assert steps[-1].lr < steps[0].lr  # cosine schedule in steps
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    assert load_model(tmp_path / "last.pt").config.training["steps_done"] == 60


def test_stop_keeps_model_and_resume_counts_on(sample):
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 5

    events = list(train_iter(sample["noisy"], "YX", "3x1", TrainConfig(steps=100, **FAST), should_stop=should_stop))
    done = events[-1]
    assert done.stopped and done.step == 5
    assert done.model.config.training["stopped"] is True
    more = list(train_iter(sample["noisy"], "YX", "3x1", TrainConfig(steps=7, **FAST), resume=done.model))
    assert more[-1].step == 12 and [e.step for e in more if isinstance(e, TrainStep)][0] == 6


def test_seeded_runs_are_reproducible(sample):
    cfg = TrainConfig(steps=5, seed=3, **FAST)
    a = [e.loss for e in train_iter(sample["noisy"], "YX", "3x1", cfg) if isinstance(e, TrainStep)]
    b = [e.loss for e in train_iter(sample["noisy"], "YX", "3x1", cfg) if isinstance(e, TrainStep)]
    assert a == b


def test_multiple_images_axes_and_3d():
    rng = np.random.default_rng(0)
    imgs = [rng.random((2, 40, 48)).astype(np.float32), rng.random((1, 64, 36)).astype(np.float32)]
    model = train(imgs, "SYX", "3x1", TrainConfig(steps=3, val_fraction=0, **FAST))
    assert model.axes == "SYX" and model.predict(imgs[0]).shape == imgs[0].shape
    vol = rng.random((12, 40, 40)).astype(np.float32)
    m3 = train(vol, "ZYX", "1x5x1", TrainConfig(steps=2, patch_size_z=8, z_net="3d", **FAST))
    assert m3.mask.shape == (1, 5, 1) and m3.spatial_ndim == 3 and m3.predict(vol).shape == vol.shape
    rgbish = rng.random((2, 40, 40)).astype(np.float32)
    mc = train(rgbish, "CYX", "3x1", TrainConfig(steps=2, **FAST))
    assert mc.n_channels == 2 and mc.predict(rgbish).shape == rgbish.shape


def test_bad_inputs_have_clear_errors(sample):
    img = sample["noisy"]
    with pytest.raises(MaskError, match="larger than the training patch"):
        train(img, "YX", "41x1", TrainConfig(steps=1, **FAST))
    with pytest.raises(MaskError, match="spatial dimensions"):
        train(img, "YX", "1x3x3", TrainConfig(steps=1, **FAST))
    with pytest.raises(DataError, match="smaller than the training patch"):
        train(img[:20], "YX", "3x1", TrainConfig(steps=1, **FAST))
    with pytest.raises(DataError, match="dimensions"):
        train(img, "SYX", "3x1", TrainConfig(steps=1, **FAST))
    with pytest.raises(StructN2VError, match="multiple of"):
        train(img, "YX", "3x1", TrainConfig(steps=1, patch_size=30, batch_size=2))
    with pytest.raises(DataError, match="NaN"):
        train(np.full((64, 64), np.nan), "YX", "3x1", TrainConfig(steps=1, **FAST))
    with pytest.raises(StructN2VError, match="CUDA is not available"):
        train(img, "YX", "3x1", TrainConfig(steps=1, device="cuda", **FAST))


def test_volumes_with_noise_independent_across_z_get_a_2d_net_over_slices():
    from napari_structn2v.training.loop import over_slices

    rng = np.random.default_rng(1)
    vol = rng.random((6, 40, 40)).astype(np.float32)
    m = train(vol, "ZYX", "1x5x1", TrainConfig(steps=2, z_context=0, **FAST))
    assert m.spatial_ndim == 2 and m.mask.shape == (5, 1) and m.axes == "ZYX"
    out = m.predict(vol, tta=False)
    # slice by slice: each Z slice predicted alone gives the same
    assert np.allclose(out[2], m.predict(vol[2], "YX", tta=False), atol=1e-5)
    assert over_slices("ZYX", np.ones((3, 5, 1), bool)) is False  # correlated across Z: 3D
    assert over_slices("ZYX", np.ones((3, 5, 1), bool), "2d") is True
    assert over_slices("SYX", np.ones((5, 1), bool)) is False
    m2 = train(vol, "ZYX", "1x5x3", TrainConfig(steps=2, z_net="2d", **FAST))
    assert m2.spatial_ndim == 2 and m2.mask.shape == (5, 1)  # the central plane of the mask
