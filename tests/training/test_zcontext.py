"""How a mask and the axes choose the network (napari_structn2v.training.zcontext); the Z-context models end to
end are in integration/test_z_context.py."""
from napari_structn2v.config import TrainConfig


def test_network_mask_takes_the_central_plane_for_a_2d_net_over_slices():
    from napari_structn2v.training.zcontext import network_mask

    mask, slices, want = network_mask("ZYX", "1x5x1", TrainConfig(z_context=2), None)
    assert slices and mask.shape == (5, 1) and want == 2
    mask, slices, want = network_mask("ZYX", "1x3x3", TrainConfig(z_net="2d", z_context=2), None)
    assert slices and mask.shape == (3, 1) and want == 0  # the noise spans Z: no context
    mask, slices, want = network_mask("YX", "3x1", TrainConfig(z_context=2), None)
    assert not slices and mask.shape == (1, 3) and want == 0
