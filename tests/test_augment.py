"""augment (napari_structn2v.augment): flips and rotations move the blind mask with the data."""
import numpy as np
import torch

from napari_structn2v.augment import augment
from napari_structn2v.blindspot import blind_mask_batch, mask_offsets
from napari_structn2v.masks import box_mask, parse_mask_spec
from tests.helpers import expected_hidden, gen


def test_augmentation_moves_mask_with_data():
    x = torch.rand(4, 1, 32, 32, generator=gen(10)) + 5
    x[:, :, 0, 0] = 4.0
    mask = parse_mask_spec("7x1")
    masked, w = blind_mask_batch(x, mask_offsets(mask), fraction=0.02, generator=gen(11), replacement="uniform")
    g = gen(12)
    for _ in range(8):
        am, ax, aw = augment((masked, x, w), generator=g, rotate=False)
        # the hidden pixels are still the 7x1 horizontal lines around the active pixels
        np.testing.assert_array_equal((am != ax)[:, 0].numpy(), expected_hidden(aw, mask))
    # with rotation allowed, a symmetric mask stays consistent too
    sq = box_mask(3, 3)
    masked, w = blind_mask_batch(x, mask_offsets(sq), fraction=0.02, generator=gen(13), replacement="uniform")
    for _ in range(8):
        am, ax, aw = augment((masked, x, w), generator=g, rotate=True)
        np.testing.assert_array_equal((am != ax)[:, 0].numpy(), expected_hidden(aw, sq))
