import pytest
import torch

from napari_structn2v.nn.unet import UNet, UNetConfig


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

    from napari_structn2v.nn.unet import UNet, UNetConfig

    net = UNet(UNetConfig(base_filters=8, norm=norm))
    y = net(torch.randn(2, 1, 32, 32))
    y.mean().backward()
    kinds = {type(m).__name__ for m in net.modules()}
    assert ("BatchNorm2d" in kinds) == (norm == "batch") and ("GroupNorm" in kinds) == (norm == "group")


def test_old_configs_without_norm_still_load():
    from napari_structn2v.nn.unet import UNetConfig

    assert UNetConfig(batch_norm=False).norm == "none"
    assert UNetConfig(**UNetConfig(norm="group").to_dict()).norm == "group"
    with pytest.raises(ValueError, match="norm"):
        UNetConfig(norm="layer")


@pytest.mark.parametrize("pool", [(2, 2), (3, 3), (4, 2), (1, 3)])
@pytest.mark.parametrize("size", [(24, 24), (26, 25), (27, 31)])
def test_blurpool_is_the_blurred_max_pool_for_any_pool(pool, size):
    """BlurPool = [1 2 1] blur of the stride-1 max over the plain max-pool's windows, subsampled
    at their starts; the output has the plain max-pool's size for any pool and side (issue 17)."""
    from napari_structn2v.nn.unet import BlurPool

    torch.manual_seed(0)
    x = torch.randn(1, 2, *size)
    bp = BlurPool(2, 2, pool)
    plain = torch.nn.functional.max_pool2d(x, pool)
    out = bp(x)
    assert out.shape == plain.shape
    # the reference: the max over each window i * p .. i * p + p - 1 (clamped), blurred across windows
    pad = [0, pool[1] - 1, 0, pool[0] - 1]
    m = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x, pad, mode="replicate"), pool, stride=1)
    blur_pad = [1 if pool[1] > 1 else 0] * 2 + [1 if pool[0] > 1 else 0] * 2
    ref = torch.nn.functional.conv2d(torch.nn.functional.pad(m, blur_pad, mode="reflect"), bp.kernel, groups=2)
    ref = ref[..., : plain.shape[-2] * pool[0] : pool[0], : plain.shape[-1] * pool[1] : pool[1]]
    assert torch.allclose(out, ref, atol=1e-6)
