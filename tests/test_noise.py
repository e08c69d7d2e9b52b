import numpy as np
import pytest

from napari_structn2v.errors import DataError
from napari_structn2v.noise import analyze_noise, autocorrelation, background_blocks, power_spectrum, suggest_mask
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


def test_background_blocks_find_empty_tiles():
    sample = make_sample("2d", seed=3)
    blocks, axes = background_blocks(sample["noisy"])
    assert axes == "SYX" and blocks.shape[1:] == (32, 32)
    ana = analyze_noise(blocks, axes=axes)
    assert ana.mask.shape[0] == 1 and ana.mask.shape[1] >= 5
