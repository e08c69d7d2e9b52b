"""``structn2v`` as a whole (napari_structn2v.cli: main, the parser, console output and progress; and
``python -m napari_structn2v.cli``): end to end, one-line errors, logging instead of prints, a tqdm
bar on terminals, --quiet."""
import logging
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_structn2v.cli import _console, main
from napari_structn2v.model import load_model
from tests.cli.helpers import TRAIN


def test_train_predict_end_to_end(files, capsys, tmp_path):
    model = tmp_path / "any name.bin"
    rc = main([
        "train", str(files / "noisy.tif"), str(files / "noisy.tif"), "--axes", "YX", "--mask", "auto",
        "--dark", str(files / "dark.tif"), "--out", str(model), "--steps", "8", "--patch", "32", "--batch", "4",
    ])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "mask auto: suggested" in out and "step      8/8" in out
    m = load_model(model)
    assert m.mask.shape[0] == 1 and m.mask.shape[1] > 1
    resumed = tmp_path / "resumed.pt"
    assert main(["train", str(files / "noisy.tif"), "--axes", "YX", "--mask", "3x1", "--out", str(resumed),
                 "--steps", "3", "--patch", "32", "--batch", "4", "--resume", str(model)]) == 0
    assert "resuming" in capsys.readouterr().out
    assert load_model(resumed).config.training["steps_done"] == 11
    pred = tmp_path / "den.tif"
    assert main(["predict", str(model), str(files / "stack.tif"), "--out", str(pred), "--axes", "SYX", "--tile", "64"]) == 0
    res = tifffile.imread(pred)
    assert res.shape == (2, 64, 64) and res.dtype == np.float32


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze-noise", "missing.tif"], "does not exist"),
        (["analyze-noise", "{noisy}", "--roi", "0:10"], "--roi"),
        (["analyze-noise", "{noisy}", "--roi", "0:100,0:10"], "--roi Y range 0:100 ends past the image, which spans 0:64"),
        (["analyze-noise", "{noisy}", "--axes", "YQ"], "Q"),
        (["train", "{noisy}", "--axes", "YX", "--mask", "8x1", "--out", "m.pt"], "odd"),
        (["train", "{noisy}", "--axes", "ZYX", "--mask", "3x1", "--out", "m.pt"], "dimensions"),
        (["train", "{noisy}", "--axes", "YX", "--mask", "65x1", "--out", "m.pt", "--patch", "32"], "larger than the training patch"),
        (["train", "{noisy}", "--axes", "YX", "--mask", "3x1", "--out", "m.pt", "--device", "cuda:3"], "CUDA"),
        (["predict", "{noisy}", "{noisy}", "--out", "o.tif"], "not a readable"),
        (["predict", "missing.pt", "{noisy}", "--out", "o.tif"], "does not exist"),
    ],
)
def test_user_errors_are_one_line(files, capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(noisy=files / "noisy.tif") for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("structn2v: error:")
    assert message in err
    assert "Traceback" not in err


def test_console_script_and_fast_import(files):
    out = subprocess.run([sys.executable, "-m", "napari_structn2v.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "structn2v" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "napari_structn2v.cli", "predict", "x.pt", "y.tif", "--out", "z.tif"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_quiet_prints_nothing_before_or_after_the_command(model_files, tmp_path, capsys):
    assert main(["-q", "train", str(model_files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "o.tif"), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert load_model(tmp_path / "m.pt").config.training["steps_done"] == 6
    assert tifffile.imread(tmp_path / "o.tif").shape == (64, 64)


def test_quiet_keeps_errors_warnings_and_results(model_files, tmp_path, capsys):
    assert main(["-q", "predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(model_files / "noisy.tif")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("structn2v: error: ") and len(err.splitlines()) == 1
    assert main(["analyze-noise", str(model_files / "dark.tif"), "--roi", "0:8,0:8", "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: too few pixels")
    assert captured.out.strip().splitlines()[-1].endswith("x1")  # the report, last line the spec
    assert "shape" not in captured.out  # the information line is gone


def test_without_a_terminal_progress_is_milestone_lines_on_stdout(model_files, tmp_path, capsys):
    assert main(["train", str(model_files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr()
    assert "step      6/6" in out.out and "model saved to" in out.out
    assert out.err == ""  # no bar in logs and pipes


def test_on_a_terminal_a_tqdm_bar_replaces_the_lines(model_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_console, "_terminal", lambda: True)
    assert main(["train", str(model_files / "noisy.tif"), *TRAIN, "--out", str(tmp_path / "m.pt")]) == 0
    captured = capsys.readouterr()
    assert "train: 100%" in captured.err and "6/6" in captured.err and "loss=" in captured.err
    assert "step " not in captured.out and "model saved to" in captured.out
    assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "o.tif"),
                 "--tile", "64"]) == 0
    captured = capsys.readouterr()
    assert "noisy.tif: 100%" in captured.err and "tile" in captured.err
    assert "denoised (64, 64)" in captured.out
    assert main(["-q", "predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "o2.tif")]) == 0
    assert capsys.readouterr().err == ""  # --quiet silences the bar too


def test_messages_go_through_logging(model_files, tmp_path, capsys):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = logging.getLogger("napari_structn2v.cli")
    keep = Keep()
    logger.addHandler(keep)
    try:
        assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "o.tif")]) == 0
        assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "o.tif")]) == 2
    finally:
        logger.removeHandler(keep)
    assert any(r.levelno == logging.INFO and "denoised" in r.getMessage() for r in records)
    assert any(r.levelno == logging.ERROR and "already exists" in r.getMessage() for r in records)
    package = logging.getLogger("napari_structn2v")
    assert not package.handlers and package.propagate  # the console handler lives only during main()
