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


def test_analyze_noise_writes_a_mask_no_spec_names(tmp_path, capsys):
    import numpy as np

    from tests.noise.test_analysis import _diagonal_noise

    dark = tmp_path / "dark.tif"
    tifffile.imwrite(dark, _diagonal_noise((2, 96, 96)).astype(np.float32))
    assert main(["analyze-noise", str(dark), "--axes", "SYX"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip().splitlines()[-1].startswith("custom ") and "--out-mask FILE saves it" in captured.out
    out = tmp_path / "masks" / "diag.npy"
    assert main(["analyze-noise", str(dark), "--axes", "SYX", "--out-mask", str(out)]) == 0
    saved = np.load(out)
    assert saved.shape[0] == saved.shape[1] and (saved == np.eye(saved.shape[0], dtype=bool)).all()
    # an existing file is not replaced without --overwrite; the noise image never
    assert main(["analyze-noise", str(dark), "--axes", "SYX", "--out-mask", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["analyze-noise", str(dark), "--axes", "SYX", "--out-mask", str(out), "--overwrite"]) == 0
    assert main(["analyze-noise", str(dark), "--axes", "SYX", "--out-mask", str(tmp_path / "m.png")]) == 2
    before = dark.read_bytes()
    assert main(["analyze-noise", str(dark), "--axes", "SYX", "--out-mask", str(dark), "--overwrite"]) == 2
    assert "the noise image" in capsys.readouterr().err.strip().splitlines()[-1] and dark.read_bytes() == before
