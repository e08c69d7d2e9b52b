import numpy as np
import pytest

from napari_structn2v.errors import DataError
from napari_structn2v.noise import (
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
