import pytest
import torch

from napari_structn2v.unet import UNet, UNetConfig


@pytest.mark.parametrize(
    "kwargs, shape",
    [
        (dict(), (2, 1, 32, 48)),
        (dict(n2v2=True), (2, 1, 32, 32)),
        (dict(in_channels=2, out_channels=2, depth=3), (1, 2, 64, 40)),
        (dict(spatial_ndim=3), (1, 1, 8, 16, 16)),
        (dict(spatial_ndim=3, kernel_size=(3, 5, 5), pool=(1, 2, 2)), (1, 1, 5, 16, 16)),
    ],
)
def test_shapes(kwargs, shape):
    net = UNet(**kwargs).eval()
    with torch.no_grad():
        out = net(torch.randn(shape))
    assert out.shape == shape


def test_paper_defaults():
    cfg = UNetConfig()
    assert cfg.kernel_size == (3, 3) and cfg.pool == (2, 2) and cfg.base_filters == 16 and cfg.depth == 2
    assert UNetConfig(**cfg.to_dict()) == cfg


@pytest.mark.parametrize("kwargs", [dict(), dict(n2v2=True), dict(spatial_ndim=3, kernel_size=(3, 5, 5), pool=(1, 2, 2))])
def test_receptive_radius_bounds_the_real_field(kwargs):
    torch.manual_seed(0)
    net = UNet(**kwargs).eval()
    nd = net.config.spatial_ndim
    size = (24, 96, 96) if nd == 3 else (128, 128)
    x = torch.randn((1, 1, *size), requires_grad=True)
    centre = tuple(s // 2 for s in size)
    net(x)[(0, 0, *centre)].backward()
    reach = (x.grad[0, 0].abs() > 0).nonzero()
    radius = net.config.receptive_radius()
    for d in range(nd):
        extent = (reach[:, d] - centre[d]).abs().max().item()
        assert extent <= radius[d], (d, extent, radius)
        assert extent >= radius[d] // 2  # the bound is not absurdly loose


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_norm_options_forward_and_backward(norm):
    import torch

    from napari_structn2v.unet import UNet, UNetConfig

    net = UNet(UNetConfig(base_filters=8, norm=norm))
    y = net(torch.randn(2, 1, 32, 32))
    y.mean().backward()
    kinds = {type(m).__name__ for m in net.modules()}
    assert ("BatchNorm2d" in kinds) == (norm == "batch") and ("GroupNorm" in kinds) == (norm == "group")


def test_old_configs_without_norm_still_load():
    from napari_structn2v.unet import UNetConfig

    assert UNetConfig(batch_norm=False).norm == "none"
    assert UNetConfig(**UNetConfig(norm="group").to_dict()).norm == "group"
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="layer")
