import numpy as np
import pytest

from napari_structn2v.errors import DataError
from napari_structn2v.noise.analysis import (
    MAX_CONTAMINATION,
    MAX_CONTAMINATION_MULTI,
    MAX_DETECTABLE,
    analyze_noise,
    autocorrelation,
    find_background,
    power_spectrum,
    suggest_mask,
)
from napari_structn2v.synthetic import correlated_noise, make_sample


def test_autocorrelation_finds_x_line():
    noise = correlated_noise((128, 128), axis=-1, half_len=4, decay=2.0, rng=1)
    ac = autocorrelation(noise, max_lag=10)
    assert ac.shape == (21, 21)
    assert ac[10, 10] == pytest.approx(1.0)
    assert ac.argmax() == ac.size // 2
    # strongly correlated along X, not along Y
    assert ac[10, 11] > 0.6 and abs(ac[11, 10]) < 0.05
    # beyond twice the kernel half-length the correlated part is gone
    assert abs(ac[10, 10 + 9]) < 0.05


def test_suggestion_2d_x_and_y():
    ana = analyze_noise(correlated_noise((256, 256), axis=-1, rng=2))
    assert ana.mask.shape[0] == 1 and 7 <= ana.mask.shape[1] <= 13
    assert ana.report().splitlines()[-1] == ana.spec
    ana_y = analyze_noise(correlated_noise((256, 256), axis=-2, rng=3))
    assert ana_y.mask.shape[1] == 1 and ana_y.mask.shape[0] >= 7
    assert set(ana_y.profiles) == {"X", "Y"}


def test_suggestion_3d_y_line():
    noise = correlated_noise((24, 96, 96), axis=-2, half_len=6, decay=3.0, rng=4)
    ana = analyze_noise(noise, axes="ZYX")
    d, h, w = ana.mask.shape
    assert d == 1 and w == 1 and h >= 9
    assert ana.spec == f"1x{h}x1"


def test_white_noise_gives_n2v():
    rng = np.random.default_rng(0)
    assert analyze_noise(rng.normal(size=(256, 256))).spec == "1x1"
    assert analyze_noise(rng.normal(size=(16, 64, 64))).spec == "1x1x1"


def test_small_odd_roi_and_stack_axes():
    rng = np.random.default_rng(1)
    ac = autocorrelation(rng.normal(size=(13, 21)), max_lag=16)
    assert ac.shape == (13, 21)  # lags limited to half the region
    assert ac[6, 10] == pytest.approx(1.0)
    stack = correlated_noise((5, 40, 40), axis=-1, rng=5)
    ac_s = autocorrelation(stack, axes="SYX", max_lag=5)
    assert ac_s.shape == (11, 11) and ac_s[5, 6] > 0.5


def test_bad_regions():
    with pytest.raises(DataError, match="constant"):
        autocorrelation(np.ones((32, 32)))
    with pytest.raises(DataError, match="NaN"):
        autocorrelation(np.full((32, 32), np.nan))
    with pytest.raises(DataError):
        autocorrelation(np.zeros((4, 4, 4, 4)))


def test_power_spectrum_shows_x_correlation():
    ps = power_spectrum(correlated_noise((128, 128), axis=-1, sigma_p=0.0, rng=6))
    assert ps.shape == (128, 128)
    # X-correlated noise: low X frequencies carry more power than high ones
    assert ps[:, 64 - 4 : 64 + 4].mean() > ps[:, :8].mean() + 0.5


def test_suggest_mask_threshold_rule():
    ac = np.zeros((9, 9))
    ac[4, 4] = 1
    ac[4, 3:6] = 0.5
    ac[4, 2] = ac[4, 6] = 0.05  # below min_corr
    assert suggest_mask(ac).shape == (1, 3)
    assert suggest_mask(ac, min_corr=0.01).shape == (1, 5)


def test_find_background_picks_empty_tiles():
    sample = make_sample("2d", seed=3)
    clean = sample["clean"]
    bg = find_background(sample["noisy"])
    assert bg.axes == "YX" and bg.tile == 32 and len(bg.regions) >= 4
    assert all(r.shape == (32, 32) for r in bg.regions)
    # the chosen tiles hold less signal than the average tile
    chosen = np.mean([clean[y : y + 32, x : x + 32].mean() for y, x in bg.corners])
    assert chosen < 0.5 * clean.mean()
    ana = analyze_noise(bg.regions, axes=bg.axes)
    assert ana.reliable and ana.mask.shape[0] == 1 and 9 <= ana.mask.shape[1] <= 13


def test_find_background_small_image_keeps_every_tile():
    # a 64x64 image has 4 tiles of 32; one alone gave a confident 1x1 before (issue 9)
    noise = correlated_noise((64, 64), axis=-1, rng=11)
    bg = find_background(noise)
    assert len(bg.regions) == 4
    ana = analyze_noise(bg.regions)
    assert ana.mask.shape[0] == 1 and ana.mask.shape[1] >= 7
    with pytest.raises(DataError, match="too small"):
        find_background(np.zeros((6, 40)))


def test_dark_frame_gives_the_same_mask_with_and_without_signal_removal():
    for kind in ("2d", "3d"):
        dark = make_sample(kind, seed=0)["dark"]
        plain = analyze_noise(dark, signal_sigma=None).mask
        cleaned = analyze_noise(dark).mask
        assert all(abs(a - b) <= 2 for a, b in zip(plain.shape, cleaned.shape)), (plain.shape, cleaned.shape)
    dark2 = correlated_noise((256, 256), axis=-1, rng=21)
    assert analyze_noise(dark2, signal_sigma=None).spec == analyze_noise(dark2).spec


def test_signal_gradient_does_not_grow_the_mask():
    # a strong smooth gradient plus X-correlated noise: the plain estimate sees long-range
    # correlation everywhere, the signal-removed one finds the 11x1 of the dark frame
    noise = correlated_noise((96, 96), axis=-1, rng=7)
    yy, xx = np.mgrid[:96, :96]
    signal = 0.6 * np.exp(-((yy - 20) ** 2 + (xx - 80) ** 2) / (2 * 30.0**2))
    region = noise + signal
    plain = analyze_noise(region, signal_sigma=None)
    assert plain.mask.shape[0] > 3  # the 13x11-like failure
    assert plain.contamination > 0.1 and not plain.reliable
    ana = analyze_noise(region)
    assert ana.mask.shape[0] == 1 and 9 <= ana.mask.shape[1] <= 13


@pytest.mark.parametrize("size", [32, 48, 64])
def test_roi_sizes_agree_with_dark_frame(size):
    sample = make_sample("2d", seed=0)
    ref = analyze_noise(sample["dark"]).mask.shape
    noise = sample["dark"]  # pure-noise ROIs at several positions
    hits = 0
    positions = [(y, x) for y in (0, 100, 200) for x in (0, 100, 200) if y + size <= 256 and x + size <= 256]
    for y, x in positions:
        m = analyze_noise(noise[y : y + size, x : x + size]).mask.shape
        hits += all(abs(a - b) <= 2 for a, b in zip(m, ref))
    assert hits >= len(positions) - 1, (size, hits, len(positions))


def test_tiny_roi_warns_instead_of_confident_n2v():
    dark = correlated_noise((64, 64), axis=-1, rng=8)
    tiny = analyze_noise(dark[:8, :8])
    assert not tiny.reliable and tiny.detectable > MAX_DETECTABLE
    assert any("too few pixels" in w for w in tiny.warnings)
    assert tiny.n_pixels == 64
    big = analyze_noise(dark)
    assert big.reliable and big.detectable < MAX_DETECTABLE
    assert "reliable" in big.report().splitlines()[-3]


def test_pooling_several_rois_beats_one():
    noise = correlated_noise((4, 24, 24), axis=-1, rng=9)
    singles = [analyze_noise(n) for n in noise]
    pooled = analyze_noise(list(noise))
    assert pooled.n_regions == 4 and pooled.n_pixels == 4 * 24 * 24
    assert pooled.detectable < min(s.detectable for s in singles)
    # pooling sums pixel pairs: the plain estimate equals that of a stack of the same regions
    np.testing.assert_allclose(
        autocorrelation(list(noise)), autocorrelation(noise, axes="SYX"), atol=1e-6
    )
    # regions of different sizes pool too
    mixed = analyze_noise([noise[0], noise[1, :16, :20]])
    assert mixed.n_pixels == 24 * 24 + 16 * 20
    with pytest.raises(DataError):
        analyze_noise([noise[0], noise[:2]], axes=None)  # YX with ZYX


def test_correlation_reaching_the_window_edge_warns():
    # noise correlated over 20 px analysed with lags +-4: the extent cannot be known
    noise = correlated_noise((128, 128), axis=-1, half_len=12, decay=8.0, rng=10)
    ana = analyze_noise(noise, max_lag=4)
    assert ana.mask.shape[1] == 9 and any("does not fade" in w for w in ana.warnings)


def test_mask_region_follows_straight_paths_from_the_centre():
    # an 11x1-like line (lags 0..4 correlated) and, one row off, a ridge that is high by chance
    ac = np.zeros((9, 21))
    ac[4, 10 - 4 : 10 + 5] = [0.25, 0.4, 0.6, 0.8, 1.0, 0.8, 0.6, 0.4, 0.25]
    # a detour: face-connected to the line at lag 4, but the straight path to it leaves the line
    ac[3, 14:19] = ac[5, 2:7] = 0.15
    assert suggest_mask(ac, floor=0.03).shape == (1, 9)  # the connected rule gave 17x3
    # a parallel ridge that a straight path reaches diagonally but that touches no correlated lag
    ac2 = np.zeros((9, 21))
    ac2[4, 6:15] = ac[4, 6:15]
    ac2[3, 15:20] = ac2[5, 1:6] = 0.15
    assert suggest_mask(ac2, floor=0.03).shape == (1, 9)
    # a real 2D correlation (a blob) is still found whole
    yy, xx = np.mgrid[-4:5, -10:11]
    blob = np.exp(-(yy**2 + xx**2) / (2 * 1.5**2))
    assert suggest_mask(blob, floor=0.01).shape == (7, 7)


def test_contamination_ignores_the_noise_own_correlation():
    # long noise lines (21 px) leave much of their variance in the blur; none of it is signal
    for seed in range(3):
        long = analyze_noise(correlated_noise((64, 64), axis=-1, half_len=10, decay=5.0, rng=seed))
        short = analyze_noise(correlated_noise((32, 32), axis=-1, rng=seed))
        assert long.contamination < 0.03 and short.contamination < 0.03
        assert not any("signal" in w for w in long.warnings + short.warnings)


def test_blobs_in_the_roi_are_reported_as_signal():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    noise = correlated_noise((48, 48), axis=-1, rng=rng)
    points = np.zeros((48, 48))
    points[tuple(rng.integers(4, 44, (2, 5)))] = 1
    blobs = ndimage.gaussian_filter(points, 3.0)
    ana = analyze_noise(noise + 0.5 * blobs / blobs.max())
    assert ana.contamination > MAX_CONTAMINATION and not ana.reliable
    assert any(w.startswith("the region holds signal") for w in ana.warnings)
    assert analyze_noise(noise).contamination < MAX_CONTAMINATION_MULTI


@pytest.mark.parametrize("seed", range(6))
def test_z_constant_fibre_gives_a_correct_or_warned_mask(seed):
    # issue 9: ROIs over the 3D sample's fibres (constant along Z) suggested 9x15x7 and the like,
    # unwarned; a Y-line noise alone gives 1xHx1
    rng = np.random.default_rng(seed)
    noise = correlated_noise((7, 32, 32), axis=-2, half_len=6, decay=3.0, rng=rng)
    yy, xx = np.mgrid[:32, :32]
    angle = rng.uniform(0, np.pi)
    dist = np.abs(np.cos(angle) * (xx - 16) + np.sin(angle) * (yy - 16))
    fibre = 0.5 * np.exp(-(dist**2) / (2 * 1.5**2))
    ana = analyze_noise(noise + fibre[None], axes="ZYX")
    d, h, w = ana.mask.shape
    assert (d == 1 and w == 1 and h >= 11) or not ana.reliable, (ana.spec, ana.warnings)
    clean = analyze_noise(noise, axes="ZYX")
    assert clean.mask.shape[0] == clean.mask.shape[2] == 1 and clean.reliable


def test_mask_along_two_axes_with_some_signal_is_warned():
    from napari_structn2v.noise.analysis import _warnings

    ac = np.zeros((7, 31, 31), dtype=np.float32)
    mask = np.ones((5, 13, 5), dtype=bool)
    text = _warnings("ZYX", ac, mask, 10**5, 0.1, 0.05)
    assert len(text) == 1 and "extends along X and Y and Z" in text[0] and "1x13x1" in text[0]
    assert _warnings("ZYX", ac, mask, 10**5, 0.1, 0.01) == []  # a clean region: a 3D mask is fine
    assert _warnings("ZYX", ac, np.ones((1, 13, 1), dtype=bool), 10**5, 0.1, 0.05) == []
    # a diagonal has no line along one axis to offer instead
    (diag,) = _warnings("YX", ac[3], np.eye(9, dtype=bool), 10**5, 0.1, 0.05)
    assert "extends along X and Y" in diag and "alone" not in diag


def test_seed_level_is_needed_not_just_growth():
    # lags 1..3 at 2.5 floors: above the growth level (2 floors) but nothing significant (4 floors);
    # before, the centre itself counted as the seed and this grew to 7x1
    ac = np.zeros((9, 9))
    ac[4, 4] = 1
    ac[4, 1:4] = ac[4, 5:8] = 0.25
    assert suggest_mask(ac, floor=0.1).shape == (1, 1)
    ac[4, 3] = ac[4, 5] = 0.45  # lag 1 significant: the path from it grows through lags 2, 3
    assert suggest_mask(ac, floor=0.1).shape == (1, 7)


@pytest.mark.parametrize("corner", [(0, 0), (32, 32), (64, 0), (64, 64)])
def test_signal_axes_that_a_finer_removal_does_not_confirm_are_left_out(corner):
    # 64 px ROIs over the 3D sample's blobs and fibres suggested 9x15x7, 7x15x7, 5x17x5 before;
    # its dark frame gives 1x15x1
    y, x = corner
    noisy = make_sample("3d", seed=0)["noisy"]
    ana = analyze_noise(noisy[13:20, y : y + 64, x : x + 64], axes="ZYX")
    d, h, w = ana.mask.shape
    assert d == 1 and w == 1 and 13 <= h <= 17, ana.spec
    assert not ana.reliable and ana.contamination > MAX_CONTAMINATION
    assert any("fades when finer structure is removed" in t for t in ana.warnings), ana.warnings


def test_noise_correlated_along_two_axes_keeps_its_mask():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    # Gaussian-correlated noise, 0.6 px along Y and 3 px along X: a real 2D correlation
    aniso = analyze_noise(ndimage.gaussian_filter(rng.normal(size=(256, 256)), (0.6, 3)))
    assert aniso.mask.shape[0] == 3 and aniso.mask.shape[1] >= 13, aniso.spec
    assert aniso.contamination < MAX_CONTAMINATION and aniso.reliable
    blob = analyze_noise(ndimage.gaussian_filter(rng.normal(size=(256, 256)), 0.7))
    assert blob.spec == "3x3" and blob.reliable


def test_background_of_a_volume_is_searched_in_slabs_and_trusted():
    """Tiles through the whole depth of the 3D sample all held some cell: the best of them gave 13 %
    smooth signal and an analysis that called itself unreliable. 8-slice tiles find empty slabs."""
    from napari_structn2v.noise.analysis import analyze_noise, find_background
    from napari_structn2v.synthetic import make_sample

    s = make_sample("3d", seed=0)
    background = find_background(s["noisy"], axes="ZYX")
    assert background.depth == 8 and len(background.z_starts) == len(background.regions)
    assert {r.shape for r in background.regions} == {(8, 32, 32)}
    analysis = analyze_noise(background.regions, axes=background.axes)
    assert analysis.reliable, analysis.warnings
    assert analysis.mask.shape == analyze_noise(s["dark"], axes="ZYX").mask.shape  # the dark frame's mask
    flat = find_background(s["noisy"], axes="ZYX", tile_z=64)  # the old whole-depth tiles
    assert not analyze_noise(flat.regions, axes=flat.axes).reliable


def _diagonal_noise(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Noise correlated along the main YX diagonal (exp kernel, offsets (i, i), |i| <= 4)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    k = np.exp(-np.abs(np.arange(-4, 5)) / 2.0)
    kernel = np.diag(k / np.sqrt((k**2).sum()))
    w = rng.standard_normal(shape).reshape(-1, *shape[-2:])
    lines = np.stack([ndimage.convolve(x, kernel, mode="wrap") for x in w]).reshape(shape)
    return 0.12 * lines + 0.04 * rng.standard_normal(shape)


def test_diagonal_correlation_gives_a_diagonal_mask():
    # its lags touch only at corners: face connectivity left the centre alone (1x1, plain N2V)
    ana = analyze_noise(_diagonal_noise((4, 96, 96)), axes="SYX")
    n = ana.mask.shape[0]
    assert ana.mask.shape == (n, n) and n >= 7
    np.testing.assert_array_equal(ana.mask, np.eye(n, dtype=bool))
    assert ana.spec is None and ana.reliable
    lines = ana.report().splitlines()
    assert lines[-1] == f"custom {n}x{n} ({n} px)" and lines[-2].strip() == "." * (n - 1) + "#"
    # the anti-diagonal, likewise
    anti = analyze_noise(_diagonal_noise((4, 96, 96))[..., ::-1], axes="SYX")
    np.testing.assert_array_equal(anti.mask, np.eye(anti.mask.shape[0], dtype=bool)[:, ::-1])


def test_thin_regions_keep_their_shape_and_full_ones_become_boxes():
    cross = np.zeros((11, 11))
    cross[5, 1:10] = cross[1:10, 5] = 0.5
    cross[5, 5] = 1.0
    mask = suggest_mask(cross, floor=0.01)
    assert mask.shape == (9, 9) and mask.sum() == 17 and mask[4].all() and mask[:, 4].all()
    # a diagonal below the seed level is chance, not a correlation
    diag = np.zeros((9, 9))
    diag[np.arange(9), np.arange(9)] = 0.11
    diag[4, 4] = 1.0
    assert suggest_mask(diag, floor=0.03).shape == (1, 1)
    diag[3, 3] = diag[5, 5] = 0.3
    assert suggest_mask(diag, floor=0.03).sum() == 9
    # a chance lag beside a line at a corner does not join it (0.12 < the 0.28 seed of 32 px ROIs)
    line = np.zeros((9, 21))
    line[4, 6:15] = [0.25, 0.4, 0.6, 0.8, 1.0, 0.8, 0.6, 0.4, 0.25]
    line[3, 15] = line[5, 5] = 0.12
    assert suggest_mask(line, floor=0.07).shape == (1, 9)


def test_confirming_axes_keeps_a_thin_mask_middle_line():
    from napari_structn2v.noise.analysis import _confirm_axes

    noise = correlated_noise((4, 64, 64), axis=-1, half_len=4, decay=2.0, rng=3)
    cross = np.zeros((5, 11), dtype=bool)  # X, the longest axis, stays
    cross[2] = cross[:, 5] = True
    rule = dict(max_lag=16, min_corr=0.1, n_sigma=4.0)
    kept = _confirm_axes([noise], cross, rule)  # the X-line noise does not confirm Y
    np.testing.assert_array_equal(kept, np.ones((1, 11), dtype=bool))


def test_a_dark_frame_is_analysed_without_the_signal_removal_bias():
    from scipy import ndimage

    # isotropic noise (a Gaussian blob, sigma 1.2 px): the removal took a third of its
    # correlation at lag 3 and cut the mask to 5x5; 7x7 trains 1.4 dB better
    rng = np.random.default_rng(0)
    blob = ndimage.gaussian_filter(rng.standard_normal((4, 128, 128)), (0, 1.2, 1.2), mode="wrap")
    as_dark = analyze_noise(blob, axes="SYX", dark=True)
    as_region = analyze_noise(blob, axes="SYX")
    assert as_dark.mask.shape == (7, 7) and as_region.mask.shape == (5, 5)
    # shading that changes from frame to frame (not a fixed pattern) keeps the removal: the line stays
    from napari_structn2v.noise.analysis import _dark_estimate
    from napari_structn2v.noise.autocorr import as_stacks

    yy = np.mgrid[:128, :128][0] / 128.0
    shaded = correlated_noise((4, 128, 128), axis=-1, rng=2) + 0.3 * yy[None] * np.arange(4)[:, None, None]
    ana = analyze_noise(shaded, axes="SYX", dark=True)
    assert ana.mask.shape[0] == 1 and 9 <= ana.mask.shape[1] <= 13, ana.mask.shape
    assert analyze_noise(shaded, axes="SYX", signal_sigma=None).mask.shape[0] > 1  # what plain would give
    stacks, _ = as_stacks(shaded, "SYX")
    removed = (None, 0.0, np.ones((1, 11), dtype=bool))
    rule = dict(max_lag=16, min_corr=0.1, n_sigma=4.0)
    assert _dark_estimate(stacks, rule, removed) is removed  # its plain correlation does not fade
    assert _dark_estimate(as_stacks(blob, "SYX")[0], rule, removed)[2].shape == (7, 7)
    # so does a dark frame too small to be reliable (the reliability levels are the removal's)
    small = analyze_noise(blob[0, :32, :32], dark=True)
    assert small.warnings and small.mask.shape == analyze_noise(blob[0, :32, :32]).mask.shape
