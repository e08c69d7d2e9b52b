"""masked_mse (napari_structn2v.method.losses): the loss sees the active pixels only."""
import numpy as np
import torch

from napari_structn2v.method.blindspot import blind_mask_batch, mask_offsets
from napari_structn2v.method.losses import masked_mse
from napari_structn2v.method.masks import box_mask
from tests.helpers import gen


def test_loss_only_sees_active_pixels():
    x = torch.rand(2, 1, 32, 32, generator=gen(8))
    _, w = blind_mask_batch(x, mask_offsets(box_mask(5, 1)), fraction=0.02, generator=gen(9))
    pred = torch.zeros_like(x, requires_grad=True)
    loss = masked_mse(pred, x, w)
    loss.backward()
    nonzero = pred.grad[:, 0] != 0
    np.testing.assert_array_equal(nonzero.numpy(), w[:, 0].numpy() > 0)
    expected = ((x - 0) ** 2)[w > 0].mean()
    assert torch.isclose(loss, expected)
