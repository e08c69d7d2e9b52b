import subprocess
import sys

import numpy as np
import pytest
import tifffile

from napari_structn2v.cli import main
from napari_structn2v.model_io import load_model
from napari_structn2v.synthetic import correlated_noise, make_sample


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    s = make_sample("2d", seed=1, size=64)
    tifffile.imwrite(d / "noisy.tif", s["noisy"])
    tifffile.imwrite(d / "dark.tif", correlated_noise((128, 128), axis=-1, rng=2))
    tifffile.imwrite(d / "stack.tif", np.stack([s["noisy"], s["noisy"][::-1]]))
    return d


def test_analyze_noise_last_line_is_spec(files, capsys, tmp_path):
    out = tmp_path / "ac.tif"
    assert main(["analyze-noise", str(files / "dark.tif"), "--out-autocorr", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    spec = lines[-1]
    w, h = (int(v) for v in spec.split("x"))
    assert h == 1 and w >= 7
    assert tifffile.imread(out).shape == (33, 33)
    assert main(["analyze-noise", str(files / "dark.tif"), "--roi", "10:60,20:90"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith("x1")


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


def test_train_with_spec_ignores_dark_and_file_mask(files, tmp_path, capsys):
    np.save(tmp_path / "mask.npy", np.ones((1, 3), bool))
    model = tmp_path / "m.pt"
    assert main(["train", str(files / "stack.tif"), "--axes", "SYX", "--mask", str(tmp_path / "mask.npy"),
                 "--dark", str(files / "dark.tif"), "--out", str(model), "--steps", "2", "--patch", "32", "--batch", "2"]) == 0
    assert load_model(model).mask.shape == (1, 3)
    assert main(["train", str(files / "noisy.tif"), "--axes", "YX", "--mask", "auto", "--out", str(model),
                 "--steps", "2", "--patch", "32", "--batch", "2", "--overwrite"]) == 0
    captured = capsys.readouterr()
    assert "darkest, flattest 32x32 tiles" in captured.out
    # a 64x64 image pools all 4 tiles: a real line, not the confident 1x1 of issue 9
    assert load_model(model).mask.shape[1] >= 7


def test_analyze_noise_warns_on_stderr_and_pools_rois(files, capsys):
    assert main(["analyze-noise", str(files / "dark.tif"), "--roi", "0:8,0:8"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: too few pixels")
    assert "x" in captured.out.strip().splitlines()[-1]  # the last stdout line stays the spec
    assert main(["analyze-noise", str(files / "dark.tif")]) == 0
    assert capsys.readouterr().err == ""
    rois = ["--roi", "0:32,0:32", "--roi", "40:72,40:72", "--roi", "90:122,0:32"]
    assert main(["analyze-noise", str(files / "dark.tif"), *rois]) == 0
    captured = capsys.readouterr()
    assert "in 3 regions" in captured.out and captured.out.strip().splitlines()[-1].endswith("x1")


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze-noise", "missing.tif"], "does not exist"),
        (["analyze-noise", "{noisy}", "--roi", "0:10"], "--roi"),
        (["analyze-noise", "{noisy}", "--roi", "0:100,0:10"], "outside the image"),
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


def test_package_import_is_light():
    code = (
        "import sys, napari_structn2v as s; assert 'torch' not in sys.modules; "
        "assert not any(m.startswith(('qtpy', 'PyQt5', 'napari.')) for m in sys.modules); "
        "s.parse_mask_spec('9x1'); assert 'torch' not in sys.modules; print(s.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_ctrl_c_in_train_saves_the_model_so_far(files, tmp_path):
    import os
    import signal
    import time

    out = tmp_path / "stopped.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_structn2v.cli", "train", str(files / "noisy.tif"), "--axes", "YX", "--mask", "3x1",
         "--out", str(out), "--steps", "1000000", "--patch", "32", "--batch", "2", "--filters", "8", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    deadline = time.monotonic() + 120
    line = ""
    while not line.startswith("step ") and time.monotonic() < deadline:  # the first step is printed
        line = proc.stdout.readline()
        assert line or proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    model = load_model(out)
    assert model.config.training["stopped"] is True
    assert 1 <= model.config.training["steps_done"] < 1_000_000
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]  # no temporary file left


def test_outputs_keep_format_and_axes(files, tmp_path, capsys):
    model = tmp_path / "m.pt"
    assert main(["train", str(files / "noisy.tif"), "--axes", "YX", "--mask", "3x1", "--out", str(model),
                 "--steps", "2", "--patch", "32", "--batch", "2", "--filters", "8"]) == 0
    four = tmp_path / "four.tif"
    tifffile.imwrite(four, np.stack([tifffile.imread(files / "stack.tif")] * 2))  # (2, 2, 64, 64)
    assert main(["predict", str(model), str(four), "--axes", "TSYX", "--out", str(tmp_path / "o.tif")]) == 0
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.series[0].shape == (2, 2, 64, 64) and tif.series[0].axes == "TSYX"
    assert main(["predict", str(model), str(files / "noisy.tif"), "--out", str(tmp_path / "o.npy")]) == 0
    assert np.load(tmp_path / "o.npy").shape == (64, 64)  # a real .npy, not a TIFF under that name


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    from napari_structn2v import io

    target = tmp_path / "keep.tif"
    io.write_image(target, np.ones((8, 8)))
    before = target.read_bytes()

    def broken(fh, *args, **kwargs):
        fh.write(b"half a TIFF")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(OSError):
        io.write_image(target, np.zeros((8, 8)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]
