"""``structn2v info`` (napari_structn2v.cli._model): the summary and --loss-csv."""
from __future__ import annotations

import csv

import numpy as np

from napari_structn2v.cli import main
from napari_structn2v.model import load_model


def test_info_summarises_and_writes_the_loss_csv(model_files, tmp_path, capsys):
    out = tmp_path / "loss.csv"
    assert main(["info", str(model_files / "m.pt"), "--loss-csv", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "blind mask 3x1" in stdout and "trained 6 steps" in stdout and "loss history: 6 training" in stdout
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["step", "train_loss", "val_loss"] and [r[0] for r in rows[1:]] == [str(s) for s in range(1, 7)]
    assert all(np.isfinite(float(r[1])) for r in rows[1:]) and rows[6][2] and not rows[5][2]  # validated at the end
    for argv, message in (
        (["info", str(model_files / "m.pt"), "--loss-csv", str(out)], "already exists"),
        (["info", str(model_files / "m.pt"), "--loss-csv", str(tmp_path / "loss.txt")], "extension"),
        (["info", str(model_files / "m.pt"), "--loss-csv", str(model_files / "m.pt"), "--overwrite"], "is the model file"),
        (["info", str(tmp_path / "missing.pt")], "does not exist"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith("structn2v: error: ") and message in err, err


def test_info_on_a_model_without_history(model_files, tmp_path, capsys):
    model = load_model(model_files / "m.pt")
    del model.config.training["history"]["loss"]
    model.save(tmp_path / "old.pt")
    assert main(["info", str(tmp_path / "old.pt")]) == 0
    assert "none stored" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "old.pt"), "--loss-csv", str(tmp_path / "l.csv")]) == 2
    captured = capsys.readouterr()
    assert "no loss history" in captured.err and captured.out == "" and not (tmp_path / "l.csv").exists()
