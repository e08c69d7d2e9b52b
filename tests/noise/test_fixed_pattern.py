"""Camera fixed-pattern noise (noise_fixed): detection, estimate, subtraction in training and
prediction, storage in the model file, the CLI's --dark, BMZ refusal."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from napari_structn2v.errors import DataError, StructN2VWarning
from napari_structn2v.noise.fixed_pattern import PatternSubtracted, estimate_fixed_pattern, subtract_pattern
from napari_structn2v.synthetic import camera_noise, clean_image, fixed_pattern

SIDE = 96


def _camera(frames: int, *, pattern: bool = True, seed: int = 0):
    """(noisy ZYX volume, dark stack, true pattern) of a camera with column/row offsets."""
    rng = np.random.default_rng(seed)
    p = fixed_pattern((SIDE, SIDE), rng=rng) if pattern else np.zeros((SIDE, SIDE), np.float32)
    clean = clean_image((6, SIDE, SIDE), rng=rng)
    noisy = camera_noise(clean, rng=rng, pattern=p)
    dark = camera_noise(np.zeros((frames, SIDE, SIDE)), rng=rng, pattern=p)
    return noisy, dark, p


def test_pattern_found_and_estimated_better_than_the_mean():
    _, dark, p = _camera(8)
    found = estimate_fixed_pattern(dark, "ZYX")
    assert found.found and found.n_frames == 8 and found.correlation > 10 * found.chance
    err = np.std(found.pattern - p)
    raw = np.std(dark.mean(0) - dark.mean() - p)
    assert err < 0.3 * raw  # the plain mean keeps 1/8 of the frames' noise
    assert abs(float(found.pattern.mean())) < 1e-6  # zero mean: intensities keep their offset
    assert "repeats in every one of the 8 frames" in found.report()


def test_no_pattern_in_independent_frames_and_one_frame_warns():
    _, dark, _ = _camera(8, pattern=False)
    assert not estimate_fixed_pattern(dark, "ZYX").found
    single = estimate_fixed_pattern(dark[0], "YX", image_axes="ZYX")
    assert not single.found and single.n_frames == 1
    assert "cannot show noise that repeats" in single.warnings[0]
    assert estimate_fixed_pattern(dark[0], "YX", image_axes="SYX").warnings == []


def test_lazy_subtraction_matches_numpy():
    rng = np.random.default_rng(1)
    image = rng.normal(size=(3, 2, 20, 30)).astype(np.float32)
    p = rng.normal(size=(20, 30)).astype(np.float32)
    full = subtract_pattern(image, "TCYX", p)
    np.testing.assert_allclose(full, image - p[None, None])
    lazy = PatternSubtracted(image, "TCYX", p)
    for key in [(slice(0, 2), slice(None), slice(3, 9), slice(5, 25)), (1, 0, slice(None), 7), (2, 1, 4), (Ellipsis, slice(2, 4))]:
        np.testing.assert_allclose(lazy[key], full[key], atol=1e-6)
    with pytest.raises(DataError, match="fixed pattern is 20x30"):
        PatternSubtracted(image[..., :10], "TCYX", p)


def test_analysis_of_a_dark_stack_masks_what_the_pattern_leaves():
    _, dark, _ = _camera(8)
    plain = __import__("napari_structn2v.noise.analysis", fromlist=["analyze_noise"]).analyze_noise(dark, axes="ZYX")
    assert plain.mask.shape[0] > 1 or plain.mask.shape[1] > 1  # the column offsets look like Y/Z correlation
    from napari_structn2v.noise.analysis import analyze_noise

    result = analyze_noise(dark, axes="ZYX", dark=True)
    assert result.fixed_pattern is not None and result.fixed_pattern.found
    assert result.mask.shape[:2] == (1, 1)  # read noise along X alone: a 2D net over the slices
    assert "fixed pattern" in result.report()


def _train(noisy, fixed, steps=2):
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train

    return train(noisy, "ZYX", "5x1", TrainConfig(steps=steps, batch_size=2, patch_size=32), fixed_pattern=fixed)


def test_training_subtracts_stores_and_prediction_applies_the_pattern(tmp_path):
    from napari_structn2v.model import StructN2VModel, load_model

    noisy, dark, _ = _camera(4)
    found = estimate_fixed_pattern(dark, "ZYX")
    model = _train(noisy, found)
    assert model.z_context == 1  # subtracted, the pattern no longer costs the neighbour slices
    np.testing.assert_array_equal(model.config.fixed_pattern, found.pattern)
    assert _train(noisy, None, steps=1).z_context == 1  # the default without a pattern
    path = model.save(tmp_path / "m.pt")
    again = load_model(path)
    np.testing.assert_array_equal(again.config.fixed_pattern, found.pattern)
    assert json.loads(again.config.to_json())["format_version"] == 2
    out = again.predict(noisy, "ZYX", tta=False)
    plain = StructN2VModel(again.net, again.config.__class__(**{**again.config.__dict__, "fixed_pattern": None}))
    np.testing.assert_allclose(out, plain.predict(noisy - found.pattern, "ZYX", tta=False), atol=1e-5)
    with pytest.raises(DataError, match="fixed pattern"):
        again.predict(noisy[:, :64], "ZYX")


def test_predict_dask_applies_the_pattern():
    pytest.importorskip("dask")
    import dask.array as da

    from napari_structn2v.prediction.distributed import predict_dask

    noisy, dark, _ = _camera(4)
    model = _train(noisy, estimate_fixed_pattern(dark, "ZYX"), steps=1)
    want = model.predict(noisy, "ZYX", tta=False)
    for arr in (noisy, da.from_array(noisy, chunks=(2, 48, 48))):
        np.testing.assert_allclose(predict_dask(model, arr, "ZYX", tta=False).compute(), want, atol=1e-5)


def test_files_without_a_pattern_stay_version_1(tmp_path):
    from napari_structn2v.model import load_model

    noisy, _, _ = _camera(2, pattern=False)
    model = _train(noisy, None, steps=1)
    assert json.loads(model.config.to_json())["format_version"] == 1
    assert load_model(model.save(tmp_path / "plain.pt")).config.fixed_pattern is None


def test_one_dark_frame_for_a_volume_warns():
    noisy, dark, _ = _camera(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = _train(noisy, estimate_fixed_pattern(dark[0], "YX"), steps=1)
    assert any(issubclass(w.category, StructN2VWarning) and "repeats" in str(w.message) for w in caught)
    assert model.config.fixed_pattern is None


def test_bmz_export_refuses_a_pattern(tmp_path):
    from napari_structn2v.bmz.export import export_bmz
    from napari_structn2v.bmz.package import BMZError

    noisy, dark, _ = _camera(4)
    model = _train(noisy, estimate_fixed_pattern(dark, "ZYX"), steps=1)
    with pytest.raises(BMZError, match="fixed pattern"):
        export_bmz(model, tmp_path / "m.zip")


def test_cli_train_dark_stack_stores_the_pattern(tmp_path):
    import tifffile

    from napari_structn2v.cli import main
    from napari_structn2v.model import load_model

    noisy, dark, _ = _camera(4)
    tifffile.imwrite(tmp_path / "noisy.tif", noisy)
    tifffile.imwrite(tmp_path / "dark.tif", dark, photometric="minisblack")
    out = tmp_path / "m.pt"
    assert main(["train", str(tmp_path / "noisy.tif"), "--axes", "ZYX", "--mask", "auto", "--dark", str(tmp_path / "dark.tif"),
                 "--out", str(out), "--steps", "1", "--batch", "2", "--patch", "32", "--quiet"]) == 0
    model = load_model(out)
    assert model.config.fixed_pattern is not None and model.z_context == 1
    assert model.mask.shape[:2] == (1, 1) or model.mask.ndim == 2


def test_denoise_with_a_dark_stack_subtracts_the_pattern():
    """denoise() reads the dark stack's pattern through the mask analysis and trains with it; one
    dark frame shows none, and the model then stores none."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.pipeline import choose_mask, denoise

    noisy, dark, _ = _camera(8)
    chosen = choose_mask(noisy, "ZYX", dark=dark, dark_axes="ZYX")
    assert chosen.analysis.fixed_pattern is not None and chosen.analysis.fixed_pattern.found
    cfg = TrainConfig(steps=2, batch_size=2, patch_size=32)
    result = denoise(noisy, "ZYX", dark=dark, dark_axes="ZYX", config=cfg, tta=False)
    np.testing.assert_array_equal(result.model.config.fixed_pattern, chosen.analysis.fixed_pattern.pattern)
    single = denoise(noisy, "ZYX", dark=dark[0], dark_axes="YX", config=cfg, tta=False)
    assert single.model.config.fixed_pattern is None
