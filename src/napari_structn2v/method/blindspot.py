"""StructN2V's blind spots: stratified active pixels and the blind-mask replacement around them.

All functions are pure torch, run on the tensors' device and take an explicit ``torch.Generator``.
Tensors are ``(B, C, [Z,] Y, X)``. The masked loss is in :mod:`.losses`, the flips and rotations
applied after masking in :mod:`.augment`; the mask shapes themselves (torch-free) in :mod:`.masks`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

#: the kinds of replacement :func:`blind_mask_batch` offers
REPLACEMENTS = ("segment", "random_pixel", "uniform")


def mask_offsets(mask: np.ndarray) -> torch.Tensor:
    """Offsets ``(M, ndim)`` (int64) of the mask's pixels relative to its centre."""
    mask = np.asarray(mask, dtype=bool)
    centre = np.array([s // 2 for s in mask.shape])
    return torch.from_numpy(np.argwhere(mask) - centre).long()


def grid_cells(size: int, fraction: float, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """Starts and widths (int64) of the stratified grid's cells along one axis of ``size`` pixels:
    ``ceil(size / side)`` cells of whole pixels that tile the axis exactly, ``side`` being the
    float ``(1 / fraction) ** (1 / ndim)``, so no cell is wider than ``side`` (widths differ by at
    most one)."""
    side = (1.0 / fraction) ** (1.0 / ndim)
    n = min(size, math.ceil(size / side - 1e-9))
    bounds = (np.arange(n + 1) * size) // n
    return bounds[:-1].astype(np.int64), np.diff(bounds).astype(np.int64)


def stratified_coords(
    batch: int,
    spatial_shape: tuple[int, ...],
    fraction: float,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """``(B, K, ndim)`` int64 active pixels: ``K = round(fraction * pixels)``, each in its own cell
    of the grid of :func:`grid_cells`; a convenience over :meth:`BlindSpots.active`."""
    spots = BlindSpots(spatial_shape, torch.zeros((1, len(spatial_shape)), dtype=torch.long), fraction, "uniform", device)
    return spots.active(batch, generator)


def shift_table(offsets: np.ndarray, spatial: tuple[int, ...], *, pairs: bool) -> np.ndarray:
    """``(A, ndim)`` int64: the shifts ``s`` (``0 <= s < spatial``) that a replacement source may
    have relative to its active pixel, wrapped at the patch border.

    A source is refused when its copy would put a pixel whose noise is correlated with the
    active pixel's into the hidden pattern. With ``pairs`` (``"segment"``: the pattern of pixels
    around the source fills the pattern around the active pixel) that is every shift in the
    mask's difference set ``{o2 - o}``; else (one pixel per hidden pixel) every mask offset. Of
    an 11x1 mask on 64^2 patches the old draws took 0.2-0.4 % of the sources from inside the mask.
    A mask so large that nothing is left keeps the offsets' own exclusion, then nothing.
    """
    shape = np.asarray(spatial, dtype=np.int64)
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, len(spatial))
    banned = (offs[:, None] - offs[None]).reshape(-1, len(spatial)) if pairs else offs
    for ban in (banned, offs, offs[:0]):
        free = np.ones(spatial, dtype=bool)
        free[tuple(np.remainder(ban, shape).T)] = False
        if free.any():
            return np.argwhere(free).astype(np.int64)
    raise AssertionError("unreachable: an empty ban leaves every shift")


class BlindSpots:
    """The blind-spot masking of one training run: constants made once on the device, then
    :meth:`__call__` per batch without a host sync.

    No step reads a value back or makes a tensor whose shape depends on the data: the number of
    active pixels is fixed, and hidden pixels outside the patch are written to a scratch pixel
    past the patch's end (dropped afterwards) instead of being selected with a boolean mask
    (five host syncs per step before).

    Parameters
    ----------
    spatial : tuple of int
        The patches' spatial shape ``([Z,] Y, X)``.
    offsets : torch.Tensor
        ``(M, ndim)`` mask offsets (see :func:`mask_offsets`).
    fraction : float
        Share of active pixels (see :meth:`active`).
    replacement : {"segment", "random_pixel", "uniform"}
        See :func:`blind_mask_batch`.
    device : torch.device or str
    """

    def __init__(self, spatial: tuple[int, ...], offsets: torch.Tensor, fraction: float, replacement: str,
                 device: torch.device | str = "cpu"):
        if replacement not in REPLACEMENTS:
            raise ValueError(f"replacement must be 'segment', 'random_pixel' or 'uniform', got {replacement!r}")
        self.spatial = tuple(int(s) for s in spatial)
        self.replacement = replacement
        nd = len(self.spatial)
        axes = [grid_cells(s, fraction, nd) for s in self.spatial]
        origin = np.stack(np.meshgrid(*[a for a, _ in axes], indexing="ij"), -1).reshape(-1, nd)
        width = np.stack(np.meshgrid(*[w for _, w in axes], indexing="ij"), -1).reshape(-1, nd)
        self.origin = torch.from_numpy(origin).to(device)
        self.width = torch.from_numpy(width).to(device=device, dtype=torch.float32)
        #: active pixels per patch: the requested share exactly (the grid has at least as many cells)
        self.count = max(1, min(len(origin), round(fraction * math.prod(self.spatial))))
        offs = offsets.detach().cpu().long()
        self.offsets = offs.to(device)
        self.shape_t = torch.tensor(self.spatial, device=device)
        self.strides = _flat_strides(self.spatial, device)
        self.size = math.prod(self.spatial)  # the scratch pixel's flat index
        self.shifts = None
        if replacement != "uniform":
            table = shift_table(offs.numpy(), self.spatial, pairs=replacement == "segment")
            self.shifts = torch.from_numpy(table).to(device)

    def active(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """``(B, K, ndim)`` active pixels: :attr:`count` cells drawn per patch, a random pixel in each.

        A rounded integer cell side missed the requested share (2 % in 3D became 1.56 %, 5 % in
        2D 6.25 %, and every share above 0.44 in 2D made every pixel active); drawing the count
        keeps it exactly, and one pixel per cell keeps the active pixels spread out.
        """
        device = self.origin.device
        keys = torch.rand((batch, self.origin.shape[0]), generator=generator, device=device)
        cell = keys.argsort(-1)[:, : self.count]  # B, K
        jitter = torch.rand((batch, self.count, len(self.spatial)), generator=generator, device=device) * self.width[cell]
        return self.origin[cell] + jitter.long()

    def __call__(self, patches: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masked, weights)`` for ``(B, C, *spatial)`` patches, as :func:`blind_mask_batch`."""
        b, c = patches.shape[:2]
        coords = self.active(b, generator)
        hidden = coords[:, :, None, :] + self.offsets  # B, K, M, nd
        inside = ((hidden >= 0) & (hidden < self.shape_t)).all(-1)
        target = torch.where(inside, (hidden * self.strides).sum(-1), self.size)  # B, K, M
        flat = patches.reshape(b, c, -1)
        values = self._values(flat, coords, generator)  # B, K, M, C
        masked = torch.cat([flat, flat.new_zeros((b, c, 1))], -1)
        bidx = torch.arange(b, device=flat.device)[:, None, None].expand_as(target)
        masked[bidx, :, target] = values
        weights = flat.new_zeros((b, 1, self.size))
        weights[bidx[:, :, 0], 0, (coords * self.strides).sum(-1)] = 1.0
        return masked[..., :-1].reshape(patches.shape), weights.reshape((b, 1, *self.spatial))

    def _values(self, flat: torch.Tensor, coords: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``(B, K, M, C)`` replacement values for the pattern around every active pixel."""
        b, k = coords.shape[:2]
        m = self.offsets.shape[0]
        device = flat.device
        if self.replacement == "uniform":
            lo = flat.amin(-1)[:, None, None, :]  # B, 1, 1, C
            hi = flat.amax(-1)[:, None, None, :]
            u = torch.rand((b, k, m, flat.shape[1]), generator=generator, device=device, dtype=flat.dtype)
            return lo + u * (hi - lo)
        if self.replacement == "segment":
            # one source per active pixel; the pattern around it fills the pattern around the
            # active pixel (wrapped into the patch), with the same texture but not its noise
            pick = torch.randint(0, self.shifts.shape[0], (b, k), generator=generator, device=device)
            src = (coords + self.shifts[pick])[:, :, None, :] + self.offsets
        else:  # random_pixel: an independent source per hidden pixel, outside the active pixel's mask
            pick = torch.randint(0, self.shifts.shape[0], (b, k, m), generator=generator, device=device)
            src = coords[:, :, None, :] + self.shifts[pick]
        src = (torch.remainder(src, self.shape_t) * self.strides).sum(-1)  # B, K, M
        bidx = torch.arange(b, device=device)[:, None, None].expand_as(src)
        return flat[bidx, :, src]


def blind_mask_batch(
    patches: torch.Tensor,
    offsets: torch.Tensor,
    *,
    fraction: float = 0.02,
    generator: torch.Generator,
    replacement: str = "segment",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Hide the blind mask around stratified active pixels (a one-off :class:`BlindSpots`).

    For every active pixel, every pixel of the blind mask around it (``offsets``, clipped to
    the patch) is replaced by a value independent of the noise it hides:

    - ``"segment"`` (default): the mask's pattern of pixels around a random other position of
      the same patch (wrapped at the borders). The hidden pixels get real image content with
      the image's own local texture (e.g. the smoothness of X-correlated noise along X), but
      from elsewhere, so it carries nothing about the active pixel's noise or signal. The
      network learns to ignore what lies under the mask without learning "masked pixels look
      random", so it behaves the same on unmasked images at prediction time. The source is
      never placed so that a copied pixel lies inside the active pixel's mask (see
      :func:`shift_table`).
    - ``"random_pixel"``: independent uniformly drawn pixels of the patch, never from inside
      the active pixel's mask.
    - ``"uniform"``: uniform over the patch's range ``[min, max]`` (CAREamics' StructN2V).

    Why not the simpler ones: random values are rough where real lines are smooth, and the
    ReLU network's response to that roughness is rectified into an offset that it learns to
    subtract; without the mask at prediction time, the whole output is then too dark. Measured
    after 300 steps with an 11x1 mask on the synthetic sample (normalised units, clean mean
    0.36): prediction on masked / unmasked input 0.34 / 0.24 with ``"random_pixel"``, 0.33 /
    0.32 with ``"segment"``; ``"uniform"`` is worse still.
    For a 1x1 mask all three reduce to plain N2V replacements (a random pixel of the patch for
    ``"segment"``).

    N2V's neighbour copying is not offered: it would copy the correlated noise the mask hides.

    Parameters
    ----------
    patches : torch.Tensor
        ``(B, C, [Z,] Y, X)`` float training patches (targets; not modified).
    offsets : torch.Tensor
        ``(M, ndim)`` mask offsets (see :func:`mask_offsets`).
    replacement : {"segment", "random_pixel", "uniform"}

    Returns
    -------
    masked : torch.Tensor
        The input for the network, same shape as ``patches``.
    weights : torch.Tensor
        ``(B, 1, [Z,] Y, X)`` float, 1 at the active pixels, 0 elsewhere.
    """
    return BlindSpots(tuple(patches.shape[2:]), offsets, fraction, replacement, patches.device)(patches, generator)


def _flat_strides(spatial: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``(ndim,)`` int64: the flat index of pixel ``p`` of a ``spatial`` patch is ``(p * strides).sum()``."""
    return torch.tensor([math.prod(spatial[i + 1 :]) for i in range(len(spatial))], device=device)
