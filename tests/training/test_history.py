"""The loss history travels with the model (training provenance) and exports as CSV."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from napari_structn2v.config import TrainConfig
from napari_structn2v.errors import DataError, OutputError
from napari_structn2v.model import load_model
from napari_structn2v.synthetic import make_sample
from napari_structn2v.training.history import (
    MAX_POINTS,
    loss_csv_text,
    loss_history,
    save_loss_csv,
    thin_curve,
    training_curves,
)
from napari_structn2v.training.loop import TrainStep, Validation, train_iter

FAST = dict(patch_size=32, batch_size=2, base_filters=4, depth=1, device="cpu", val_every=4, val_fraction=0.25)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 10-step model, the events it emitted, and its file."""
    noisy = make_sample("2d", seed=0, size=64)["noisy"]
    events = list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=10, **FAST)))
    model = events[-1].model
    path = model.save(tmp_path_factory.mktemp("hist") / "m.pt")
    return noisy, events, model, path


def test_model_file_carries_train_and_validation_losses(trained):
    _, events, _, path = trained
    curves = loss_history(load_model(path))
    steps = [(e.step, e.loss) for e in events if isinstance(e, TrainStep)]
    vals = [(e.step, e.val_loss) for e in events if isinstance(e, Validation)]
    assert [s for s, _ in curves["loss"]] == list(range(1, 11))
    np.testing.assert_allclose([v for _, v in curves["loss"]], [v for _, v in steps], rtol=1e-5)
    assert [s for s, _ in curves["val_loss"]] == [s for s, _ in vals] == [4, 8, 10]
    np.testing.assert_allclose([v for _, v in curves["val_loss"]], [v for _, v in vals], rtol=1e-5)


def test_resume_appends_to_the_history(trained):
    noisy, _, model, _ = trained
    events = list(train_iter(noisy, "YX", "3x1", TrainConfig(steps=3, **FAST), resume=model))
    curves = loss_history(events[-1].model)
    assert [s for s, _ in curves["loss"]] == list(range(1, 14))
    assert [s for s, _ in curves["val_loss"]] == [4, 8, 10, 13]


def test_long_runs_are_thinned_by_averaging():
    pairs = [(s, float(s)) for s in range(1, 5001)]
    thin = thin_curve(pairs)
    assert len(thin) <= MAX_POINTS and thin[-1][0] == 5000
    assert thin[0] == [3, 2.0]  # steps 1-3 averaged, not step 1 alone
    curves = training_curves([1.0] * 30_000, 30_000)
    assert len(curves["loss"]) <= MAX_POINTS and curves["loss"][-1][0] == 30_000


def test_csv_has_one_row_per_step(trained, tmp_path):
    _, _, model, _ = trained
    rows = list(csv.reader(loss_csv_text(model).splitlines()))
    assert rows[0] == ["step", "train_loss", "val_loss"]
    assert [int(r[0]) for r in rows[1:]] == list(range(1, 11))
    assert rows[4][2] and not rows[1][2]  # step 4 has a validation loss, step 1 none
    out = save_loss_csv(model, tmp_path / "loss.csv")
    assert out.read_text() == loss_csv_text(model)


def test_csv_errors_are_clear(trained, tmp_path):
    _, _, model, _ = trained
    (tmp_path / "loss.csv").write_text("keep")
    with pytest.raises(OutputError, match="already exists"):
        save_loss_csv(model, tmp_path / "loss.csv")
    with pytest.raises(OutputError, match="extension"):
        save_loss_csv(model, tmp_path / "loss.txt")
    assert (tmp_path / "loss.csv").read_text() == "keep"
    save_loss_csv(model, tmp_path / "loss.csv", overwrite=True)
    with pytest.raises(DataError, match="no loss history"):
        save_loss_csv({"steps_done": 5}, tmp_path / "old.csv")
    assert not (tmp_path / "old.csv").exists()
