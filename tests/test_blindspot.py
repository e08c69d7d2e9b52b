"""The helpers of blind_mask_batch (napari_structn2v.blindspot); the behaviour is in test_masking.py."""
import numpy as np
import pytest
import torch

from napari_structn2v.blindspot import _active_weights, _flat_strides, blind_mask_batch, mask_offsets


def _gen(seed=0):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def test_flat_strides_index_like_numpy():
    spatial = (3, 5, 7)
    strides = _flat_strides(spatial, torch.device("cpu"))
    points = torch.tensor([[0, 0, 0], [1, 2, 3], [2, 4, 6]])
    expected = np.ravel_multi_index(points.numpy().T, spatial)
    np.testing.assert_array_equal((points * strides).sum(-1).numpy(), expected)


def test_active_weights_mark_the_valid_active_pixels_only():
    coords = torch.tensor([[[0, 1], [2, 3]], [[1, 1], [3, 3]]])  # B=2, K=2, (y, x) in a 4x4 patch
    valid = torch.tensor([[True, False], [True, True]])
    flat = torch.zeros(2, 3, 16)
    w = _active_weights(coords, valid, _flat_strides((4, 4), torch.device("cpu")), flat).reshape(2, 1, 4, 4)
    assert w.shape == (2, 1, 4, 4) and w.dtype == flat.dtype
    assert {tuple(p) for p in torch.nonzero(w[:, 0]).tolist()} == {(0, 0, 1), (1, 1, 1), (1, 3, 3)}


def test_unknown_replacement_is_refused():
    x = torch.rand(1, 1, 16, 16)
    with pytest.raises(ValueError, match="replacement must be"):
        blind_mask_batch(x, mask_offsets(np.ones((3, 1), bool)), generator=_gen(), replacement="neighbour")


@pytest.mark.parametrize("replacement", ["segment", "random_pixel", "uniform"])
def test_same_seed_same_masking(replacement):
    x = torch.rand(3, 2, 24, 24, generator=_gen(1))
    offsets = mask_offsets(np.ones((5, 1), bool))
    a = blind_mask_batch(x, offsets, fraction=0.05, generator=_gen(2), replacement=replacement)
    b = blind_mask_batch(x, offsets, fraction=0.05, generator=_gen(2), replacement=replacement)
    assert all(torch.equal(p, q) for p, q in zip(a, b))
