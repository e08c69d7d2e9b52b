"""The one-call pipeline (napari_structn2v.pipeline): mask from a dark frame or the background, the stop on an
unreliable suggestion, an explicit mask, should_stop in training and prediction, the result and its model."""
import subprocess
import sys
import warnings

import numpy as np
import pytest

from napari_structn2v.config import TrainConfig
from napari_structn2v.errors import StructN2VError, StructN2VWarning
from napari_structn2v.events import PredictDone, TileDone, TrainDone, TrainStep
from napari_structn2v.noise.analysis import analyze_noise, find_background
from napari_structn2v.pipeline import (
    MIN_STEPS,
    DenoiseDone,
    MaskChosen,
    UnreliableNoiseError,
    choose_mask,
    denoise,
    denoise_iter,
    too_few_steps,
)
from napari_structn2v.synthetic import correlated_noise, make_sample

#: a network that learns the 64x64 sample in 100 steps (0.6 s on a CPU): mean within 2 % of the
#: input's, error to the clean image half the noise's
TINY = dict(patch_size=32, batch_size=4, base_filters=8, depth=1, lr=4e-3, device="cpu")


def tiny(steps: int = 3, **kw) -> TrainConfig:
    return TrainConfig(steps=steps, **{**TINY, **kw})


@pytest.fixture(scope="module")
def sample64():
    """64x64: its 4 background tiles hold signal (an unreliable suggestion); its dark frame gives 11x1."""
    return make_sample("2d", seed=1, size=64)


@pytest.fixture(scope="module")
def sample128():
    """128x128: its 4 darkest, flattest tiles give a reliable 9x1."""
    return make_sample("2d", seed=1, size=128)


def test_dark_frame_gives_the_mask(sample64):
    events = list(denoise_iter(sample64["noisy"], "YX", dark=sample64["dark"], config=tiny()))
    chosen = events[0]
    assert isinstance(chosen, MaskChosen)
    assert chosen.source == "the dark frame" and chosen.corners is None and chosen.tile is None
    expected = analyze_noise(sample64["dark"], axes="YX")
    assert chosen.analysis.spec == chosen.spec == expected.spec == "11x1"
    done = events[-1]
    assert isinstance(done, DenoiseDone) and done.analysis is chosen and not done.stopped
    np.testing.assert_array_equal(done.model.mask, expected.mask)
    # the order of the phases: mask, training, prediction, result
    kinds = [type(e) for e in events]
    assert kinds.index(TrainDone) < kinds.index(TileDone) < kinds.index(PredictDone) == len(kinds) - 2


def test_background_gives_the_mask(sample128):
    image = sample128["noisy"]
    events = list(denoise_iter(image, "YX", config=tiny()))
    chosen = events[0]
    background = find_background(image, axes="YX")
    expected = analyze_noise(background.regions, axes="YX")
    assert chosen.analysis.reliable and chosen.analysis.spec == expected.spec
    assert chosen.corners == background.corners and len(chosen.corners) == 4 and chosen.tile == 32
    assert chosen.source == "the 4 darkest, flattest 32x32 tiles of the image"
    np.testing.assert_array_equal(events[-1].model.mask, expected.mask)


def test_unreliable_background_stops_before_training(sample64):
    events = []
    with pytest.raises(UnreliableNoiseError) as info:
        for event in denoise_iter(sample64["noisy"], "YX", config=tiny()):
            events.append(event)
    assert events == []  # nothing was trained (nor announced as chosen)
    exc = info.value
    assert not exc.chosen.analysis.reliable and exc.chosen.tile == 32 and len(exc.chosen.corners) == 4
    message = str(exc)
    assert "\n" not in message and message.count(". ") == 0
    assert exc.chosen.analysis.warnings[0] in message  # why
    assert "11x1" in message and "dark frame" in message and "pass the mask" in message  # what, and what to do
    with pytest.raises(UnreliableNoiseError):
        denoise(sample64["noisy"], "YX", config=tiny())
    # choose_mask alone: the same stop, or the suggestion anyway when not strict
    with pytest.raises(UnreliableNoiseError):
        choose_mask(sample64["noisy"], "YX")
    assert choose_mask(sample64["noisy"], "YX", strict=False).analysis.spec == exc.chosen.analysis.spec


def test_unreliable_dark_frame_is_used_with_warnings(sample64):
    dark = sample64["dark"][:32, :32]  # 1024 px: too few to be reliable
    assert analyze_noise(dark, axes="YX").warnings
    with pytest.warns(StructN2VWarning, match="the dark frame: too few pixels"):
        result = denoise(sample64["noisy"], "YX", dark=dark, config=tiny())
    assert result.analysis.source == "the dark frame" and result.image is not None


def test_explicit_mask_skips_the_analysis(sample64):
    events = list(denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny()))
    assert not any(isinstance(e, MaskChosen) for e in events)
    assert events[-1].analysis is None and events[-1].model.mask.shape == (1, 3)
    result = denoise(sample64["noisy"], "YX", mask=np.ones((1, 5), bool), config=tiny())
    assert result.analysis is None and result.model.mask.shape == (1, 5)


def test_result_is_denoised_in_the_input_scale_and_the_model_is_usable(sample64, tmp_path):
    scale, offset = 1000.0, 500.0  # not the [0, 1] of normalisation
    image = sample64["noisy"] * scale + offset
    clean = sample64["clean"] * scale + offset
    result = denoise(image, "YX", mask="11x1", config=tiny(100))
    out = result.image
    assert out.shape == image.shape and out.dtype == np.float32 and np.isfinite(out).all()
    # the input's scale, not normalisation's [0, 1]: after 100 steps of a tiny net the mean may sit
    # 0.1 std off (0.11 measured since the exact active-pixel fraction); [0, 1] would be 2.5 std off
    assert abs(out.mean() - image.mean()) < 0.2 * image.std()
    assert np.abs(out - clean).mean() < 0.7 * np.abs(image - clean).mean()
    # the model predicts the same again, also after a round trip through a file
    np.testing.assert_allclose(result.model.predict(image, "YX"), out, rtol=1e-5, atol=1e-3)
    from napari_structn2v.model import load_model

    path = result.model.save(tmp_path / "m.pt")
    np.testing.assert_allclose(load_model(path).predict(image, "YX"), out, rtol=1e-5, atol=1e-3)


def test_time_budget_and_its_parsing(sample128):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = denoise(sample128["noisy"], "YX", time="1s", mask="9x1", tta=False)
    cfg = result.model.config.training["config"]
    assert cfg["max_time_s"] == 1.0 and cfg["steps"] is None
    steps = result.model.config.training["steps_done"]
    assert steps >= 1
    # too few steps for a useful model (on a CPU, always in 1 s): the user is told
    expected = [too_few_steps(steps)] if steps < MIN_STEPS else []
    assert [str(w.message) for w in caught if issubclass(w.category, StructN2VWarning)] == expected
    with pytest.raises(StructN2VError, match="duration"):
        denoise(sample128["noisy"], "YX", time="3x")


def test_too_few_steps():
    assert too_few_steps(MIN_STEPS) is None and too_few_steps(MIN_STEPS * 10) is None
    assert too_few_steps(MIN_STEPS - 1).startswith(f"only {MIN_STEPS - 1} training step(s) ran")


def test_stop_before_the_first_step_gives_no_image(sample64):
    events = list(denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(), should_stop=lambda: True))
    assert not any(isinstance(e, (TrainStep, TileDone)) for e in events)
    done = events[-1]
    assert done.image is None and done.model is None and done.stopped


def test_stop_in_training_still_predicts_with_the_model_so_far(sample64):
    steps = []
    events = []
    for event in denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(10_000), tile=32,
                              should_stop=lambda: len(steps) >= 2):  # a flag that stays set
        events.append(event)
        if isinstance(event, TrainStep):
            steps.append(event)
    done = events[-1]
    assert len(steps) == 2 and done.stopped and done.model.config.training["steps_done"] == 2
    tiles = [e for e in events if isinstance(e, TileDone)]
    assert len(tiles) == tiles[0].total > 1  # every tile: the spent stop does not end prediction
    assert not any(e.stopped for e in events if isinstance(e, PredictDone))


def test_stop_in_prediction(sample64):
    flag = {"stop": False}
    events = []
    for event in denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(), tile=32, should_stop=lambda: flag["stop"]):
        events.append(event)
        if isinstance(event, TileDone):
            flag["stop"] = True
    tiles = [e for e in events if isinstance(e, TileDone)]
    assert len(tiles) == 1 < tiles[0].total
    assert events[-2].stopped and events[-1].stopped and events[-1].image is not None


def test_second_stop_after_a_cleared_flag_ends_prediction(sample64):
    """A GUI's Stop flag: set in training (it ends), cleared on TrainDone, set again in prediction (it ends too)."""
    flag = {"stop": False}
    events = []
    for event in denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(10_000), tile=32, should_stop=lambda: flag["stop"]):
        events.append(event)
        if isinstance(event, TrainStep):
            flag["stop"] = True
        elif isinstance(event, TrainDone):
            flag["stop"] = False
        elif isinstance(event, TileDone):
            flag["stop"] = True
    tiles = [e for e in events if isinstance(e, TileDone)]
    assert events[-1].model.config.training["steps_done"] == 1
    assert len(tiles) == 1 < tiles[0].total and events[-1].stopped


def test_bad_input_is_refused_before_any_work(sample64):
    image = sample64["noisy"].copy()
    with pytest.raises(StructN2VError, match="axes"):
        next(denoise_iter(image, "ZYX"))
    image[3, 4] = np.nan
    with pytest.raises(StructN2VError, match="NaN"):
        next(denoise_iter(image, "YX", dark=sample64["dark"]))
    with pytest.raises(StructN2VError, match="the dark frame is complex"):
        next(denoise_iter(sample64["noisy"], "YX", dark=sample64["dark"].astype(complex)))


def test_volume_with_a_2d_dark_frame():
    s = make_sample("3d", seed=2, size=64)
    chosen = choose_mask(s["noisy"], "ZYX", dark=s["dark"][5])
    assert chosen.analysis.axes == "YX" and chosen.mask.ndim == 2 and chosen.mask.shape[0] > 1  # along Y


def test_lazy_names_and_no_torch_at_import():
    import napari_structn2v

    assert napari_structn2v.denoise is denoise
    assert napari_structn2v.UnreliableNoiseError is UnreliableNoiseError
    code = "import sys, napari_structn2v.pipeline; print([m for m in sys.modules if m.split('.')[0] == 'torch'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_bad_tta_option_fails_before_training(sample64):
    """A typo in ``tta`` is named at once, not after the training budget is spent."""
    events = denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(10_000), tta="all")
    with pytest.raises(StructN2VError, match="tta"):
        next(events)


def test_focus_orders_prediction_and_a_callable_is_read_when_it_starts(sample64):
    with pytest.raises(StructN2VError, match="focus"):
        next(denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(), focus={"Z": 3}))
    calls = []

    def focus():  # where a viewer looks when prediction starts, not when training did
        calls.append(sum(isinstance(e, TrainDone) for e in events))
        return None, {"Y": 63, "X": 63}

    events = []
    for event in denoise_iter(sample64["noisy"], "YX", mask="3x1", config=tiny(), tile=32, focus=focus):
        events.append(event)
    assert calls == [1]
    tiles = [e.region for e in events if isinstance(e, TileDone)]
    assert len(tiles) > 2 and tiles[0][0].stop == tiles[0][1].stop == 64  # the bottom-right tile first


def test_a_dark_stack_for_a_2d_image_is_frames(sample64):
    # a stack of 2D dark frames was read as a volume: a 3D mask (11x1x1) that training refused
    dark = np.stack([correlated_noise((64, 64), axis=-1, rng=i) for i in range(4)])
    chosen = choose_mask(sample64["noisy"], "YX", dark=dark)
    assert chosen.mask.ndim == 2 and chosen.mask.shape[0] == 1 and chosen.analysis.axes == "YX"
    result = denoise(sample64["noisy"], "YX", dark=dark, config=TrainConfig(steps=2, **TINY))
    assert result.model.mask.ndim == 2 and result.image.shape == sample64["noisy"].shape
