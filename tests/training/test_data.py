"""Training data (napari_structn2v.training.data): the validation split and the patch sampler's transfers."""
import numpy as np
import pytest
import torch

from napari_structn2v.training.data import PatchSampler, split_validation, validation_patch


def test_validation_takes_the_requested_rows_not_a_whole_patch():
    """Issue 17: a 128-row image with 64-px patches lost half its rows (64) to validation."""
    img = np.zeros((1, 1, 128, 96), np.float32)
    train, val = split_validation([img], 0.1, (64, 64), multiple=4)
    assert val[0].shape[-2] == 16 and train[0].shape[-2] == 112  # round(12.8) = 13 -> 16, a multiple of 4
    assert validation_patch(val, (64, 64)) == (16, 64)
    big = np.zeros((1, 1, 1024, 96), np.float32)
    train, val = split_validation([big], 0.1, (64, 64), multiple=4)
    assert val[0].shape[-2] == 104 and validation_patch(val, (64, 64)) == (64, 64)
    assert validation_patch(val, (3, 64, 64)) == (3, 64, 64)


def test_too_small_images_train_only():
    small = np.zeros((1, 1, 70, 96), np.float32)
    train, val = split_validation([small], 0.1, (64, 64), multiple=4)
    assert val == [] and train[0].shape == small.shape
    assert validation_patch([], (64, 64)) == (64, 64)


def test_training_validates_on_a_small_image():
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import Validation, train_iter

    img = np.random.default_rng(0).random((128, 64)).astype(np.float32)
    cfg = TrainConfig(steps=4, patch_size=64, batch_size=2, base_filters=4, depth=2, val_every=2, device="cpu")
    vals = [e for e in train_iter(img, "YX", "3x1", cfg) if isinstance(e, Validation)]
    assert len(vals) == 2 and all(np.isfinite(v.val_loss) for v in vals)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lazy_batches_reach_the_gpu_through_pinned_memory():
    from napari_structn2v.training.data import LazyImage

    src = np.random.default_rng(0).random((2, 40, 40)).astype(np.float32)
    lazy = LazyImage(src, "SYX")
    sampler = PatchSampler([lazy], (16, 16), rng=np.random.default_rng(0), device=torch.device("cuda"))
    batch = sampler.sample(4)
    assert batch.device.type == "cuda" and batch.shape == (4, 1, 16, 16)
    ref = PatchSampler([lazy], (16, 16), rng=np.random.default_rng(0), device=torch.device("cpu")).sample(4)
    assert torch.equal(batch.cpu(), ref)
