"""``structn2v predict`` (napari_structn2v.cli._predict)."""
import numpy as np
import tifffile

from napari_structn2v.cli import main


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


def test_half_turn_and_no_tta_choose_the_test_time_passes(model_files, tmp_path, capsys):
    """``--half-turn`` predicts what ``tta="half-turn"`` does, ``--no-tta`` one pass; both at once is a
    one-line usage error (exit 2)."""
    from napari_structn2v import load_model

    model = load_model(model_files / "m.pt")
    noisy = tifffile.imread(model_files / "noisy.tif")
    for flag, tta in (("--half-turn", "half-turn"), ("--no-tta", False)):
        out = tmp_path / f"{tta}.tif"
        assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(out), flag, "--quiet"]) == 0
        np.testing.assert_allclose(tifffile.imread(out), model.predict(noisy, tta=tta), atol=1e-5)
    capsys.readouterr()
    assert main(["predict", str(model_files / "m.pt"), str(model_files / "noisy.tif"), "--out", str(tmp_path / "x.tif"),
                 "--half-turn", "--no-tta"]) == 2
    assert "not allowed with" in capsys.readouterr().err
