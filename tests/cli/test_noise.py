"""``structn2v analyze-noise`` (napari_structn2v.cli._noise)."""
import tifffile

from napari_structn2v.cli import main


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
