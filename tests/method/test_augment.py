"""augment (napari_structn2v.method.augment): flips and turns move the blind mask with the data, and only
those that keep the mask are used (issue 17: an asymmetric mask must not be flipped)."""
import numpy as np
import pytest
import torch

from napari_structn2v.method.augment import (
    ALL_TRANSFORMS,
    apply_transform,
    augment,
    symmetric_transforms,
    transform_array,
)
from napari_structn2v.method.blindspot import blind_mask_batch, mask_offsets
from napari_structn2v.method.masks import box_mask, parse_mask_spec
from tests.helpers import expected_hidden, gen


def diagonal(n: int = 5) -> np.ndarray:
    return np.eye(n, dtype=bool)


def ell(n: int = 5) -> np.ndarray:
    """An L: the centre and equal arms to the right and downwards."""
    m = np.zeros((n, n), bool)
    m[n // 2, n // 2 :] = True
    m[n // 2 :, n // 2] = True
    return m


@pytest.mark.parametrize(
    "mask, codes",
    [
        (parse_mask_spec("7x1"), (0, 1, 2, 3)),  # a line: every flip, no turn
        (box_mask(3, 3), ALL_TRANSFORMS),
        (diagonal(), (0, 3, 4, 7)),  # the half turn and the transposes, no single flip
        (ell(), (0, 4)),  # only the transpose swaps its arms onto each other
        (np.pad(ell(3), ((0, 0), (0, 2))), (0,)),  # a 3x5 L: nothing but the identity
        (np.stack([diagonal(3)] * 3), (0, 3, 4, 7)),  # 3D masks are judged whole
    ],
)
def test_symmetric_transforms_keep_the_mask(mask, codes):
    assert symmetric_transforms(mask) == codes
    for c in codes:
        assert np.array_equal(transform_array(mask, c), mask)
    assert symmetric_transforms(mask, square=False) == tuple(c for c in codes if c < 4)


def test_apply_transform_is_transform_array():
    x = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    for c in ALL_TRANSFORMS:
        np.testing.assert_array_equal(apply_transform(torch.from_numpy(x), c).numpy(), transform_array(x, c))


@pytest.mark.parametrize("mask", [parse_mask_spec("7x1"), box_mask(3, 3), diagonal(), ell()])
def test_augmentation_keeps_the_hidden_pattern_the_mask(mask):
    """After any drawn transform the hidden pixels around each active pixel are still the mask itself
    (with a diagonal or an L, a flip would turn them into another shape and leak the noise)."""
    x = torch.rand(4, 1, 32, 32, generator=gen(10)) + 5
    x[:, :, 0, 0] = 4.0
    masked, w = blind_mask_batch(x, mask_offsets(mask), fraction=0.02, generator=gen(11), replacement="uniform")
    g = gen(12)
    seen = set()
    for _ in range(24):
        am, ax, aw = augment((masked, x, w), generator=g, transforms=symmetric_transforms(mask))
        np.testing.assert_array_equal((am != ax)[:, 0].numpy(), expected_hidden(aw, mask))
        seen.add(tuple(aw.flatten().nonzero()[:3, 0].tolist()))
    assert len(seen) > 1  # it did transform


def test_transposes_need_square_patches():
    x = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    g = gen(0)
    for _ in range(16):
        (y,) = augment((x,), generator=g, transforms=(4,))
        assert torch.equal(y, x)  # identity, not a shape change
