"""``structn2v train`` (napari_structn2v.cli._train): masks from a spec, a file or the dark frame; Ctrl-C."""
import numpy as np

from napari_structn2v.cli import main
from napari_structn2v.model import load_model
from tests.cli.helpers import interrupt_after_first_step


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


def test_ctrl_c_in_train_saves_the_model_so_far(files, tmp_path):
    out = tmp_path / "stopped.pt"
    returncode, _, stderr = interrupt_after_first_step(
        "train", str(files / "noisy.tif"), "--axes", "YX", "--mask", "3x1",
        "--out", str(out), "--steps", "1000000", "--patch", "32", "--batch", "2", "--filters", "8", "--device", "cpu",
    )
    assert returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    model = load_model(out)
    assert model.config.training["stopped"] is True
    assert 1 <= model.config.training["steps_done"] < 1_000_000
    assert not [p for p in tmp_path.iterdir() if p.name != out.name]  # no temporary file left
