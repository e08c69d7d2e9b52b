"""``structn2v denoise`` (napari_structn2v.cli._denoise): end to end, the stop on an unreliable mask, outputs
checked before any work, bad input, Ctrl-C."""
import numpy as np
import pytest
import tifffile

from napari_structn2v.cli import main
from napari_structn2v.model import load_model
from napari_structn2v.noise.analysis import analyze_noise
from napari_structn2v.synthetic import make_sample
from tests.cli.helpers import interrupt_after_first_step


def _denoise(*args: str) -> int:
    return main(["denoise", *map(str, args)])


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 128x128 image whose darkest, flattest tiles give a reliable mask (9x1)."""
    path = tmp_path_factory.mktemp("denoise") / "big.tif"
    tifffile.imwrite(path, make_sample("2d", seed=1, size=128)["noisy"])
    return path


def test_dark_frame_end_to_end(files, tmp_path, capsys):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    assert _denoise(files / "noisy.tif", "--out", out, "--dark", files / "dark.tif", "--time", "1s", "--save-model", model) == 0
    captured = capsys.readouterr()
    spec = analyze_noise(tifffile.imread(files / "dark.tif")).spec
    assert f"blind mask {spec}, suggested by the dark frame {files / 'dark.tif'}" in captured.out
    assert "reliable" in captured.out and "axes guessed" in captured.out
    assert f"model saved to {model}" in captured.out and f"written to {out}" in captured.out
    # 1 s is too short for a useful model, and the user is told so (one warning line, nothing else)
    steps = load_model(model).config.training["steps_done"]
    if steps < 200:
        assert captured.err == f"warning: only {steps} training step(s) ran, and the default network needs about 200 " \
            "to improve on its input; give it more time (or a faster device)\n"
    else:
        assert captured.err == ""
    noisy = tifffile.imread(files / "noisy.tif")
    result = tifffile.imread(out)
    assert result.shape == noisy.shape and result.dtype == np.float32
    m = load_model(model)
    assert m.config.training["config"]["max_time_s"] == 1.0 and m.config.training["steps_done"] >= 1
    assert m.config.training["mask"] == spec
    # the saved model is the one that denoised the image (with the flips of TTA)
    np.testing.assert_allclose(m.predict(noisy, "YX"), result, rtol=1e-4, atol=1e-4)


def test_background_mask_and_quiet(big, tmp_path, capsys):
    out = tmp_path / "out.npy"
    assert _denoise(big, "--out", out, "--time", "1s", "--axes", "YX") == 0
    captured = capsys.readouterr()
    assert "blind mask 9x1, suggested by the 4 darkest, flattest 32x32 tiles of the image" in captured.out
    assert "axes guessed" not in captured.out
    assert np.load(out).shape == (128, 128)
    assert _denoise(big, "--out", out, "--time", "1s", "--overwrite", "-q") == 0
    captured = capsys.readouterr()
    assert captured.out == "" and all(line.startswith("warning: only ") for line in captured.err.splitlines())


def test_unreliable_suggestion_stops_unless_a_mask_is_given(files, tmp_path, capsys):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    assert _denoise(files / "noisy.tif", "--out", out, "--time", "1s", "--save-model", model) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("structn2v: error: the blind mask ")
    assert "cannot be trusted (the region holds signal" in lines[0] and "--dark" in lines[0] and "--mask" in lines[0]
    assert "step " not in captured.out and not out.exists() and not model.exists()
    # with --mask the analysis is skipped; --no-tta predicts in one pass
    assert _denoise(files / "noisy.tif", "--out", out, "--time", "1s", "--mask", "3x1", "--no-tta", "--save-model", model) == 0
    captured = capsys.readouterr()
    assert "suggested" not in captured.out
    m = load_model(model)
    assert m.mask.shape == (1, 3)
    noisy = tifffile.imread(files / "noisy.tif")
    np.testing.assert_allclose(m.predict(noisy, "YX", tta=False), tifffile.imread(out), rtol=1e-4, atol=1e-4)


def test_axes_of_a_stack(files, tmp_path):
    out = tmp_path / "out.tif"
    assert _denoise(files / "stack.tif", "--out", out, "--axes", "SYX", "--mask", "3x1", "--time", "1s", "-q") == 0
    assert tifffile.imread(out).shape == (2, 64, 64)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--out", "{noisy}"], "--out '{noisy}' is the input image"),
        (["--out", "{dark}", "--dark", "{dark}"], "the dark frame"),
        (["--out", "{existing}"], "already exists"),
        (["--out", "{tmp}/o.png"], "--out"),
        (["--out", "{tmp}/o.tif", "--save-model", "{noisy}"], "--save-model"),
        (["--out", "{tmp}/o.tif", "--save-model", "{tmp}/o.tif"], "--save-model and --out name the same file"),
        (["--out", "{tmp}/o.tif", "--time", "3x"], "cannot read the duration '3x'"),
        (["--out", "{tmp}/o.tif", "--axes", "ZYX"], "axes 'ZYX' have 3 letters but the image has 2 dimensions"),
        (["--out", "{tmp}/o.tif", "--mask", "9y1"], "9y1"),
    ],
)
def test_bad_options_fail_in_one_line_before_any_work(files, tmp_path, capsys, extra, message):
    existing = tmp_path / "existing.tif"
    existing.write_bytes(b"keep")
    before = {p: p.read_bytes() for p in (files / "noisy.tif", files / "dark.tif")}
    names = dict(noisy=files / "noisy.tif", dark=files / "dark.tif", existing=existing, tmp=tmp_path)
    args = [a.format(**names) for a in extra]
    assert _denoise(files / "noisy.tif", "--time", "1s", *args) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("structn2v: error: ") and message.format(**names) in lines[0], captured.err
    assert "step " not in captured.out
    assert existing.read_bytes() == b"keep" and {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.tif"]


def test_bad_images(tmp_path, capsys):
    image = make_sample("2d", seed=1, size=64)["noisy"]
    image[5, 6] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", image)
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((64, 64, 3), np.uint8), photometric="rgb")
    np.save(tmp_path / "cplx.npy", np.zeros((64, 64), complex))
    tifffile.imwrite(tmp_path / "tiny.tif", np.zeros((4, 4), np.float32))
    cases = [
        ("nope.tif", "does not exist"),
        ("nan.tif", "1 NaN or infinite"),
        ("rgb.tif", "looks like RGB"),
        ("cplx.npy", "is complex"),
        ("tiny.tif", "too small"),
    ]
    for name, message in cases:
        assert _denoise(tmp_path / name, "--out", tmp_path / "o.tif", "--time", "1s") == 2, name
        captured = capsys.readouterr()
        assert captured.err.startswith("structn2v: error: ") and captured.err.count("\n") == 1, captured.err
        assert message in captured.err and "Traceback" not in captured.err, captured.err
        assert "step " not in captured.out and not (tmp_path / "o.tif").exists()


def test_ctrl_c_stops_training_and_still_denoises_and_saves(files, tmp_path):
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    returncode, stdout, stderr = interrupt_after_first_step(
        "denoise", str(files / "noisy.tif"), "--out", str(out), "--dark", str(files / "dark.tif"), "--time", "1h",
        "--save-model", str(model),
    )
    assert returncode == 130, stderr
    assert "interrupted: stopping training after this step; the model so far will denoise the image" in stderr
    assert "Traceback" not in stderr
    assert "denoising with the model so far" in stdout and f"written to {out}" in stdout
    m = load_model(model)
    assert m.config.training["stopped"] is True and 1 <= m.config.training["steps_done"]
    assert tifffile.imread(out).shape == (64, 64)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "out.tif"]  # no temporary file left


def test_ctrl_c_in_prediction_abandons_the_image_and_keeps_the_model(tmp_path):
    image = tmp_path / "big.tif"
    tifffile.imwrite(image, make_sample("2d", seed=3, size=1024)["noisy"])  # 25 tiles of 256, with TTA: seconds
    out, model = tmp_path / "out.tif", tmp_path / "m.pt"
    returncode, stdout, stderr = interrupt_after_first_step(
        "denoise", str(image), "--out", str(out), "--mask", "9x1", "--time", "1s", "--save-model", str(model),
        "--device", "cpu", prefix="tile ",
    )
    assert returncode == 130, stderr
    assert f"warning: the image was not denoised; the trained model is in {model}" in stderr
    assert "structn2v: interrupted" in stderr and "Traceback" not in stderr
    assert f"model saved to {model}" in stdout and load_model(model).config.training["stopped"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.tif", "m.pt"]  # no image, no temporary file


def test_a_dark_stack_for_a_2d_image(files, tmp_path, capsys):
    # 3 dark frames for a YX image were read as a volume: an 11x1x1 mask, then an error in training
    from napari_structn2v.synthetic import correlated_noise

    stack = tmp_path / "darkstack.tif"
    tifffile.imwrite(stack, np.stack([correlated_noise((128, 128), axis=-1, rng=i) for i in range(3)]), photometric="minisblack")
    out = tmp_path / "out.tif"
    assert _denoise(files / "noisy.tif", "--axes", "YX", "--out", out, "--dark", stack, "--time", "1s", "--no-tta") == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("blind mask "))
    assert line.split()[2].endswith("x1,") and line.split()[2].count("x") == 1, line
    assert tifffile.imread(out).shape == tifffile.imread(files / "noisy.tif").shape
