"""Time budgets (issue #8): parse_duration, Budget, and train_iter under max_time_s."""
import time

import numpy as np
import pytest

from napari_structn2v.config import TrainConfig, parse_duration
from napari_structn2v.errors import StructN2VError
from napari_structn2v.synthetic import make_sample
from napari_structn2v.training.budget import Budget, lr_factor
from napari_structn2v.training.loop import TrainDone, TrainStep, train_iter

FAST = dict(patch_size=32, batch_size=4, base_filters=8, val_every=10)


@pytest.mark.parametrize("text, seconds", [("90", 90), ("90s", 90), ("3m", 180), ("1h", 3600), ("1m30s", 90), (2.5, 2.5), ("0.5m", 30)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "3 minutes", "-5", "0", "5d", "1m-3s"])
def test_parse_duration_rejects(text):
    with pytest.raises(StructN2VError, match="duration"):
        parse_duration(text)


def test_budget_progress_is_the_further_of_steps_and_time():
    b = Budget(steps=100, max_time_s=None)
    assert b.progress(25) == 0.25 and not b.done(99) and b.done(100)
    t = Budget(steps=None, max_time_s=1000.0)
    t.t0 -= 500.0  # pretend 500 s have passed
    assert 0.49 < t.progress(10) < 0.51
    assert t.total_steps(10) in (19, 20, 21)  # 10 steps in half the time -> about 20 in all
    both = Budget(steps=10, max_time_s=1000.0)
    both.t0 -= 500.0
    assert both.progress(8) == 0.8 and both.total_steps(8) == 10
    with pytest.raises(StructN2VError, match="budget"):
        Budget(None, None)


def test_cosine_factor_follows_progress():
    assert lr_factor("cosine", 0.0) == pytest.approx(1.0)
    assert lr_factor("cosine", 1.0) == pytest.approx(0.05)
    assert lr_factor("constant", 0.7) == 1.0


def test_time_budget_ends_training_and_decays_the_rate():
    noisy = make_sample("2d", seed=0, size=64)["noisy"]
    list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=1, **FAST)))  # one-off kernel set-up outside the budget
    cfg = TrainConfig(steps=None, max_time_s=2.0, schedule="cosine", **FAST)
    t0 = time.perf_counter()
    events = list(train_iter(noisy, "YX", "3x1", cfg))
    took = time.perf_counter() - t0
    steps = [e for e in events if isinstance(e, TrainStep)]
    done = events[-1]
    assert isinstance(done, TrainDone) and not done.stopped and done.step == steps[-1].step > 1
    assert 2.0 <= took < 20  # it ran until the budget was used, then stopped
    # the cosine schedule followed the elapsed time (each step's rate is set before it runs, so a slow
    # last step under load still has a rate from somewhat before the end)
    assert steps[-1].lr < 0.5 * steps[0].lr
    assert steps[-1].total_steps == steps[-1].step  # the estimate of the total ends exact
    assert done.model.config.training["config"]["max_time_s"] == 2.0


def test_steps_end_first_when_both_are_given():
    noisy = make_sample("2d", seed=0, size=64)["noisy"]
    events = list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=4, max_time_s=600, **FAST)))
    assert events[-1].step == 4


def test_ema_model_differs_from_raw_weights_and_predicts():
    noisy = make_sample("2d", seed=0, size=64)["noisy"]
    plain = list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=20, **FAST)))[-1].model
    ema = list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=20, ema=0.9, **FAST)))[-1].model
    a = plain.predict(noisy, tta=False)
    b = ema.predict(noisy, tta=False)
    assert a.shape == b.shape and np.isfinite(b).all()
    assert not np.allclose(a, b)  # the averaged weights are what the model keeps
