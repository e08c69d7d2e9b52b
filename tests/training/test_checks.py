"""The torch-free input checks shared by training and the Train dock (napari_structn2v.training.checks)."""
import subprocess
import sys

import pytest

from napari_structn2v.config import TrainConfig
from napari_structn2v.errors import DataError, StructN2VError
from napari_structn2v.training.checks import check_patch_fits, check_patch_multiple, check_train_settings, patch_shape


def test_patch_shape_follows_the_network():
    cfg = TrainConfig(patch_size=64, patch_size_z=8)
    assert patch_shape(cfg, 2) == (64, 64)
    assert patch_shape(cfg, 3) == (8, 64, 64)


def test_an_image_smaller_than_the_patch_is_named_with_its_small_sides():
    check_patch_fits([(64, 80), (32, 32)], (32, 32), "YX")  # fits exactly: no error
    with pytest.raises(DataError) as err:
        check_patch_fits([(64, 80), (20, 40)], (32, 32), "YX")
    assert str(err.value) == "image 2 (Y=20) is smaller than the training patch 32x32; use a smaller patch size"
    with pytest.raises(DataError, match=r"image 1 \(Z=3, X=10\) is smaller than the training patch 8x16x16"):
        check_patch_fits([(3, 16, 10)], (8, 16, 16), "ZYX")


def test_patch_must_suit_the_unet_depth():
    check_patch_multiple((32, 64), (4, 4), 2)
    with pytest.raises(StructN2VError, match="patch 30x32 must be a multiple of 4x4 for a depth-2 U-Net"):
        check_patch_multiple((30, 32), (4, 4), 2)


@pytest.mark.parametrize("change, message", [
    (dict(batch_size=0), "steps and batch size must be at least 1"),
    (dict(masked_fraction=0.6), "masked_fraction must be in"),
    (dict(val_fraction=0.5), "val_fraction must be in"),
])
def test_settings_training_cannot_use(change, message):
    cfg = TrainConfig()
    check_train_settings(cfg)
    for k, v in change.items():
        object.__setattr__(cfg, k, v)  # as if changed after construction, past the field checks
    with pytest.raises(StructN2VError, match=message):
        check_train_settings(cfg)


def test_checks_and_budget_are_torch_free():
    code = "import sys, napari_structn2v.training.checks, napari_structn2v.training.budget; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
