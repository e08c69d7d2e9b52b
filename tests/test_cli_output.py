"""CLI manners: logging instead of prints, a tqdm bar on terminals, --quiet, `info --loss-csv`."""
from __future__ import annotations

import csv
import logging

import numpy as np
import pytest
import tifffile

from napari_structn2v import cli
from napari_structn2v.cli import main
from napari_structn2v.model_io import load_model
from napari_structn2v.synthetic import correlated_noise, make_sample

TRAIN = ["--axes", "YX", "--mask", "3x1", "--steps", "6", "--patch", "32", "--batch", "2", "--filters", "4", "--depth", "1",
         "--device", "cpu", "--val-fraction", "0.25"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli_output")
    tifffile.imwrite(d / "noisy.tif", make_sample("2d", seed=1, size=64)["noisy"])
    tifffile.imwrite(d / "dark.tif", correlated_noise((96, 96), axis=-1, rng=2))
    assert main(["train", str(d / "noisy.tif"), *TRAIN, "--out", str(d / "m.pt"), "--quiet"]) == 0
    return d


def test_quiet_prints_nothing_before_or_after_the_command(files, tmp_path, capsys):
    assert main(["-q", "train", str(files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    assert main(["predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(tmp_path / "o.tif"), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert load_model(tmp_path / "m.pt").config.training["steps_done"] == 6
    assert tifffile.imread(tmp_path / "o.tif").shape == (64, 64)


def test_quiet_keeps_errors_warnings_and_results(files, tmp_path, capsys):
    assert main(["-q", "predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(files / "noisy.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("structn2v: error: ") and len(err.splitlines()) == 1
    assert main(["analyze-noise", str(files / "dark.tif"), "--roi", "0:8,0:8", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: too few pixels")
    assert captured.out.strip().splitlines()[-1].endswith("x1")  # the report, last line the spec
    assert "shape" not in captured.out  # the information line is gone


def test_without_a_terminal_progress_is_milestone_lines_on_stdout(files, tmp_path, capsys):
    assert main(["train", str(files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr()
    assert "step      6/6" in out.out and "model saved to" in out.out
    assert out.err == ""  # no bar in logs and pipes


def test_on_a_terminal_a_tqdm_bar_replaces_the_lines(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_terminal", lambda: True)
    assert main(["train", str(files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    captured = capsys.readouterr()
    assert "train: 100%" in captured.err and "6/6" in captured.err and "loss=" in captured.err
    assert "step " not in captured.out and "model saved to" in captured.out
    assert main(["predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(tmp_path / "o.tif"),
                 "--tile", "64"]) == 0
    captured = capsys.readouterr()
    assert "noisy.tif: 100%" in captured.err and "tile" in captured.err
    assert "denoised (64, 64)" in captured.out
    assert main(["-q", "predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(tmp_path / "o2.tif")]) == 0
    assert capsys.readouterr().err == ""  # --quiet silences the bar too


def test_messages_go_through_logging(files, tmp_path, capsys):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("napari_structn2v.cli")
    keep = Keep()
    logger.addHandler(keep)
    try:
        assert main(["predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(tmp_path / "o.tif")]) == 0
        assert main(["predict", str(files / "m.pt"), str(files / "noisy.tif"), "--out", str(tmp_path / "o.tif")]) == 2
    finally:
        logger.removeHandler(keep)
    assert any(r.levelno == logging.INFO and "denoised" in r.getMessage() for r in records)
    assert any(r.levelno == logging.ERROR and "already exists" in r.getMessage() for r in records)
    package = logging.getLogger("napari_structn2v")
    assert not package.handlers and package.propagate  # the console handler lives only during main()


def test_info_summarises_and_writes_the_loss_csv(files, tmp_path, capsys):
    out = tmp_path / "loss.csv"
    assert main(["info", str(files / "m.pt"), "--loss-csv", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "blind mask 3x1" in stdout and "trained 6 steps" in stdout and "loss history: 6 training" in stdout
    rows = list(csv.reader(out.read_text().splitlines()))
    assert rows[0] == ["step", "train_loss", "val_loss"] and [r[0] for r in rows[1:]] == [str(s) for s in range(1, 7)]
    assert all(np.isfinite(float(r[1])) for r in rows[1:]) and rows[6][2] and not rows[5][2]  # validated at the end
    for argv, message in (
        (["info", str(files / "m.pt"), "--loss-csv", str(out)], "already exists"),
        (["info", str(files / "m.pt"), "--loss-csv", str(tmp_path / "loss.txt")], "extension"),
        (["info", str(files / "m.pt"), "--loss-csv", str(files / "m.pt"), "--overwrite"], "is the model file"),
        (["info", str(tmp_path / "missing.pt")], "does not exist"),
    ):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and err.startswith("structn2v: error: ") and message in err, err


def test_info_on_a_model_without_history(files, tmp_path, capsys):
    model = load_model(files / "m.pt")
    del model.config.training["history"]["loss"]
    model.save(tmp_path / "old.pt")
    assert main(["info", str(tmp_path / "old.pt")]) == 0
    assert "none stored" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "old.pt"), "--loss-csv", str(tmp_path / "l.csv")]) == 2
    captured = capsys.readouterr()
    assert "no loss history" in captured.err and captured.out == "" and not (tmp_path / "l.csv").exists()
