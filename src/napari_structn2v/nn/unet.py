"""U-Net for 2D and 3D images, with the optional N2V2 variant (blur-pool, no top skip), and
:class:`ZContextUNet`, a 2D U-Net over the Z slices of a volume that also reads neighbouring slices.

This file imports only torch and the standard library: BioImage Model Zoo packages ship it as the
architecture of their ``pytorch_state_dict`` weights."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

NORMS = ("batch", "group", "none")


@dataclass
class UNetConfig:
    """Architecture of :class:`UNet` (stored in model files).

    ``kernel_size`` and ``pool`` are per spatial axis (ZYX order in 3D). Defaults: 3x3 convs,
    2x2 pooling and 16 base filters in 2D, as in the StructN2V paper; 3x3x3 convs and 2x2x2 pooling
    in 3D (the paper's 3x5x5 / 1x2x2 net is 2.6x slower to train on a CPU; pass
    ``kernel_size=(3, 5, 5), pool=(1, 2, 2)`` for it).
    """

    spatial_ndim: int = 2
    in_channels: int = 1
    out_channels: int = 1
    depth: int = 2
    base_filters: int = 16
    kernel_size: tuple[int, ...] | None = None
    pool: tuple[int, ...] | None = None
    n2v2: bool = False
    batch_norm: bool = True
    norm: str | None = None

    def __post_init__(self) -> None:
        nd = self.spatial_ndim
        if self.norm is None:  # files written before ``norm`` existed carry only ``batch_norm``
            self.norm = "batch" if self.batch_norm else "none"
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        self.batch_norm = self.norm == "batch"
        if nd not in (2, 3):
            raise ValueError(f"spatial_ndim must be 2 or 3, got {nd}")
        if isinstance(self.kernel_size, list):
            self.kernel_size = tuple(self.kernel_size)
        if isinstance(self.pool, list):
            self.pool = tuple(self.pool)
        if self.kernel_size is None:
            self.kernel_size = (3,) * nd
        elif isinstance(self.kernel_size, int):
            self.kernel_size = (self.kernel_size,) * nd
        if self.pool is None:
            self.pool = (2,) * nd
        elif isinstance(self.pool, int):
            self.pool = (self.pool,) * nd
        self.kernel_size = tuple(int(k) for k in self.kernel_size)
        self.pool = tuple(int(p) for p in self.pool)
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError(f"kernel sizes must be odd, got {self.kernel_size}")

    @property
    def multiple(self) -> tuple[int, ...]:
        """Input sides must be multiples of this (pooling factor ** depth)."""
        return tuple(p**self.depth for p in self.pool)

    def receptive_radius(self) -> tuple[int, ...]:
        """Upper bound of the receptive-field radius per axis, in pixels."""
        radius = []
        for k, p in zip(self.kernel_size, self.pool):
            half, r, s = (k - 1) // 2, 0, 1
            for _ in range(self.depth):
                r += 2 * half * s + (p - 1) * s + (s if self.n2v2 and p > 1 else 0)
                s *= p
            r += 2 * half * s
            for _ in range(self.depth):
                r += (p - 1) * s // p
                s //= p
                r += 2 * half * s
            radius.append(r)
        return tuple(radius)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kernel_size"] = list(self.kernel_size)
        d["pool"] = list(self.pool)
        return d


def _conv(nd: int):
    return nn.Conv2d if nd == 2 else nn.Conv3d


def _bn(nd: int):
    return nn.BatchNorm2d if nd == 2 else nn.BatchNorm3d


def _norm_layer(nd: int, kind: str, channels: int) -> nn.Module | None:
    if kind == "batch":
        return _bn(nd)(channels)
    if kind == "group":
        # groups of 4 channels: 4 groups at the 16-filter top level
        return nn.GroupNorm(max(1, channels // 4), channels)
    return None


class ConvBlock(nn.Sequential):
    """Two (conv -> [norm] -> ReLU) layers: ``cin -> mid -> out`` channels (out defaults to mid)."""

    def __init__(self, nd: int, cin: int, mid: int, kernel: tuple[int, ...], norm: str, out: int | None = None):
        layers: list[nn.Module] = []
        pad = tuple(k // 2 for k in kernel)
        for c_in, c_out in ((cin, mid), (mid, out or mid)):
            layers.append(_conv(nd)(c_in, c_out, kernel, padding=pad, bias=norm == "none"))
            layer = _norm_layer(nd, norm, c_out)
            if layer is not None:
                layers.append(layer)
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class BlurPool(nn.Module):
    """Max-blur-pool (Zhang 2019) as used by N2V2: max (stride 1), [1 2 1] blur, subsample."""

    def __init__(self, nd: int, channels: int, pool: tuple[int, ...]):
        super().__init__()
        self.nd, self.pool = nd, pool
        k1 = torch.tensor([1.0, 2.0, 1.0])
        kernel = torch.ones(())
        for p in pool:
            kernel = kernel[..., None] * (k1 if p > 1 else torch.ones(1))
        kernel = kernel / kernel.sum()
        self.register_buffer("kernel", kernel[None, None].repeat(channels, 1, *([1] * nd)))
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, C, *(S // pool))``, the sizes of the plain max-pool."""
        pool_fn = nn.functional.max_pool2d if self.nd == 2 else nn.functional.max_pool3d
        conv_fn = nn.functional.conv2d if self.nd == 2 else nn.functional.conv3d
        sizes = x.shape[2:]
        # a window of p at stride 1 needs p - 1 more pixels to keep the size: then window i * p
        # is the plain max-pool's window i (the former one pixel fitted p = 2 only: a 26-px side
        # pooled by 3 gave 9 outputs, not 8)
        pad_max = []
        for p in reversed(self.pool):
            pad_max += [0, p - 1]
        x = pool_fn(nn.functional.pad(x, pad_max, mode="replicate"), self.pool, stride=1)
        pad_blur = []
        for p in reversed(self.pool):
            pad_blur += [1, 1] if p > 1 else [0, 0]
        x = conv_fn(nn.functional.pad(x, pad_blur, mode="reflect"), self.kernel, groups=self.channels)
        sl = (slice(None), slice(None), *(slice(0, (s // p) * p, p) for s, p in zip(sizes, self.pool)))
        return x[sl]


class UNet(nn.Module):
    """U-Net over ``(B, C, [Z,] Y, X)`` tensors.

    ``depth`` poolings, ``base_filters`` doubling per level, nearest upsampling and skip
    connections; with ``n2v2=True`` max-pooling becomes max-blur-pooling and the top-level skip
    connection is removed (Höck et al. 2022), which suppresses checkerboard artefacts.
    Input sides must be multiples of ``config.multiple``.
    """

    def __init__(self, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        cfg = config or UNetConfig(**kwargs)
        self.config = cfg
        nd, f, k = cfg.spatial_ndim, cfg.base_filters, cfg.kernel_size
        self.down = nn.ModuleList()
        self.pools = nn.ModuleList()
        cin = cfg.in_channels
        for level in range(cfg.depth):
            cout = f * 2**level
            self.down.append(ConvBlock(nd, cin, cout, k, cfg.norm))
            if cfg.n2v2:
                self.pools.append(BlurPool(nd, cout, cfg.pool))
            else:
                self.pools.append((nn.MaxPool2d if nd == 2 else nn.MaxPool3d)(cfg.pool))
            cin = cout
        # CSBDeep layout (the network of the N2V and StructN2V papers): the last conv of the
        # bottom and of each decoder level halves the channels, which cuts ~25 % of the FLOPs.
        self.bottom = ConvBlock(nd, cin, f * 2**cfg.depth, k, cfg.norm, out=f * 2 ** max(0, cfg.depth - 1))
        self.up = nn.ModuleList()
        cin = f * 2 ** max(0, cfg.depth - 1)
        for level in reversed(range(cfg.depth)):
            skip = 0 if (cfg.n2v2 and level == 0) else f * 2**level
            cout = f * 2 ** max(0, level - 1)
            self.up.append(ConvBlock(nd, cin + skip, f * 2**level, k, cfg.norm, out=cout))
            cin = cout
        self.head = _conv(nd)(cin, cfg.out_channels, 1)
        self.upsample = nn.Upsample(scale_factor=cfg.pool, mode="nearest")
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        # a small output layer: the first predictions are near 0 (the data's low percentile)
        # instead of large random values, which avoids a wasted first phase of training
        nn.init.normal_(self.head.weight, std=1e-2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        skips = []
        for block, pool in zip(self.down, self.pools):
            x = block(x)
            skips.append(x)
            x = pool(x)
        x = self.bottom(x)
        for i, block in enumerate(self.up):
            level = cfg.depth - 1 - i
            x = self.upsample(x)
            if not (cfg.n2v2 and level == 0):
                x = torch.cat([x, skips[level]], dim=1)
            x = block(x)
        return self.head(x)


def context_of(z: int, k: int, n: int) -> list[int]:
    """The ``2k + 1`` slices a 2D network with ``k`` slices of Z context reads for slice ``z`` of ``n``.

    Inside the volume ``z - k .. z + k``; a neighbour beyond an end is replaced by its mirror on the
    other side (``z - d`` for ``z + d``), else by the nearest slice that is not ``z``; never by
    ``z`` itself, whose noise a neighbour must not carry. Plain int loops, so that TorchScript
    compiles it; :func:`napari_structn2v.prediction.predict.context_slices` uses the same function.
    """
    out: list[int] = []
    for d in range(-k, k + 1):
        if d == 0 or (z + d >= 0 and z + d < n):
            out.append(z + d)
        elif z - d >= 0 and z - d < n:
            out.append(z - d)
        else:
            c = min(max(z + d, 0), n - 1)
            if c != z:
                out.append(c)
            elif z + 1 < n:
                out.append(z + 1)
            else:
                out.append(z - 1)
    return out


def context_index(n: int, k: int) -> list[int]:
    """:func:`context_of` for each of ``n`` slices, concatenated: ``(2k + 1) * n`` indices, slice
    ``z``'s at ``z * (2k + 1) .. z * (2k + 1) + 2k``."""
    out: list[int] = []
    for z in range(n):
        out.extend(context_of(z, k, n))
    return out


class ZContextUNet(nn.Module):
    """A 2D :class:`UNet` (submodule ``net``) applied to every Z slice of ``(B, C, Z, Y, X)``
    volumes, reading ``z_context`` neighbouring slices on each side as extra input channels.

    For slice ``z`` the network's input is the ``C * (2k + 1)`` channels ``c * (2k + 1) + j``
    holding channel ``c`` of slice ``context_index(Z, k)[z * (2k + 1) + j]`` (channel-major, as
    in training); its output is slice ``z`` of the result, ``(B, C, Z, Y, X)``. ``net`` needs
    ``in_channels == out_channels * (2k + 1)``; ``Y`` and ``X`` must be multiples of
    ``net.config.multiple``, and ``Z`` at least 2.
    """

    def __init__(self, z_context: int = 1, config: UNetConfig | None = None, **kwargs):
        super().__init__()
        k = int(z_context)
        if k < 1:
            raise ValueError(f"z_context must be at least 1, got {z_context}")
        self.net = UNet(config, **kwargs)
        cfg = self.net.config
        if cfg.spatial_ndim != 2 or cfg.in_channels != cfg.out_channels * (2 * k + 1):
            raise ValueError(
                f"a network with Z context {k} must be 2D with in_channels = out_channels * {2 * k + 1}; "
                f"got a {cfg.spatial_ndim}D one with {cfg.in_channels} -> {cfg.out_channels} channels"
            )
        self.z_context = k

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, Z, Y, X)`` -> the network's input for every slice, ``(B * Z, C * (2k + 1), Y, X)``."""
        if x.dim() != 5:
            raise ValueError("expected a (batch, channel, z, y, x) tensor")
        b, c, n, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3], x.shape[4]
        if n < 2:
            raise ValueError("a model that uses neighbouring Z slices needs at least 2 slices")
        width = 2 * self.z_context + 1
        idx = torch.tensor(context_index(n, self.z_context), dtype=torch.long, device=x.device)
        x = x.index_select(2, idx).reshape(b, c, n, width, h, w)
        return x.permute(0, 2, 1, 3, 4, 5).reshape(b * n, c * width, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n = x.shape[0], x.shape[2]
        y = self.net(self.stack(x))
        return y.reshape(b, n, y.shape[1], y.shape[2], y.shape[3]).permute(0, 2, 1, 3, 4).contiguous()


def padded_shape(shape: tuple[int, ...], multiple: tuple[int, ...]) -> tuple[int, ...]:
    """Smallest shape >= ``shape`` whose sides are multiples of ``multiple``."""
    return tuple(int(math.ceil(s / m) * m) for s, m in zip(shape, multiple))
