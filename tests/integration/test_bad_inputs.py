"""A careless user against the CLI and the API: every mistake is one clear message (exit 2 /
a StructN2VError subclass), and no input or existing file changes by a single byte.

One case or more per class of issue 7: data loss, late failure, unchecked options and shapes,
silent wrong results.
"""
import hashlib
import shutil
import warnings

import numpy as np
import pytest
import tifffile

from napari_structn2v import errors
from napari_structn2v.cli import main
from napari_structn2v.config import TrainConfig
from napari_structn2v.io import write_image
from napari_structn2v.model_io import load_model
from napari_structn2v.synthetic import correlated_noise, make_sample
from napari_structn2v.training import train

FAST = dict(steps=2, patch_size=32, batch_size=2, base_filters=8, device="cpu", val_fraction=0)


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """The user's files: images, a model, an unrelated file, a folder."""
    d = tmp_path_factory.mktemp("bad_inputs")
    img = make_sample("2d", seed=1, size=64)["noisy"].astype(np.float32)
    tifffile.imwrite(d / "img.tif", img)
    tifffile.imwrite(d / "dark.tif", correlated_noise((64, 64), axis=-1, rng=2).astype(np.float32))
    nan = img.copy()
    nan[5, 5] = np.nan
    tifffile.imwrite(d / "nan.tif", nan)
    tifffile.imwrite(d / "rgb.tif", np.stack([img] * 3, axis=-1), photometric="rgb")
    u16 = np.clip((img - img.min()) * 5000, 0, 65535).astype(np.uint16)  # ~0-10,000: model saw ~0-1
    tifffile.imwrite(d / "u16.tif", u16)
    np.save(d / "cplx.npy", img.astype(np.complex64))
    np.save(d / "empty.npy", np.zeros((0, 64), np.float32))
    tifffile.imwrite(d / "existing.tif", np.ones((4, 4), np.uint8))
    (d / "existing.pt").write_bytes(b"the user's other model")
    (d / "afolder").mkdir()
    (d / "demo").mkdir()
    tifffile.imwrite(d / "demo" / "noisy.tif", np.ones((4, 4), np.uint8))
    model = train(img, "YX", "3x1", TrainConfig(**FAST))
    model.save(d / "m.pt")
    return d


@pytest.fixture
def work(src, tmp_path, monkeypatch):
    """A fresh copy of the user's files as the current folder."""
    d = tmp_path / "w"
    shutil.copytree(src, d)
    monkeypatch.chdir(d)
    return d


def hashes(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


TRAIN = ["train", "img.tif", "--axes", "YX", "--mask", "3x1", "--steps", "2", "--patch", "32", "--batch", "2",
         "--filters", "8", "--device", "cpu"]

CLI_CASES = [
    # data loss: an output named like an input, the model or an existing file
    ("predict over its input", ["predict", "m.pt", "img.tif", "--out", "img.tif"], "is the input image"),
    ("predict over the model", ["predict", "m.pt", "img.tif", "--out", "m.pt"], "is the model file"),
    ("predict over a file", ["predict", "m.pt", "img.tif", "--out", "existing.tif"], "already exists"),
    ("train over its image", [*TRAIN, "--out", "img.tif"], "is the input image"),
    ("train over its image even with --overwrite", [*TRAIN, "--out", "img.tif", "--overwrite"], "would destroy it"),
    ("train over a file", [*TRAIN, "--out", "existing.pt"], "already exists"),
    ("train over the resumed model", [*TRAIN, "--resume", "m.pt", "--out", "m.pt"], "is the model being resumed"),
    ("analyze over the dark frame", ["analyze-noise", "dark.tif", "--out-autocorr", "dark.tif"], "is the noise image"),
    ("demo over an earlier demo", ["demo", "--out", "demo", "--steps", "1"], "already exists"),
    # late failure: the output place is checked before any work
    ("train into a folder", [*TRAIN, "--out", "afolder"], "is a folder"),
    ("train under a file", [*TRAIN, "--out", "existing.tif/m.pt"], "is a file, not a folder"),
    ("checkpoints into a file", [*TRAIN, "--out", "new.pt", "--checkpoint-dir", "existing.tif"], "is a file, not a folder"),
    # unchecked options and shapes
    ("negative lr", [*TRAIN, "--out", "new.pt", "--lr", "-1"], "--lr must be a finite number in (0, 1]"),
    ("nan lr", [*TRAIN, "--out", "new.pt", "--lr", "nan"], "--lr must be a finite number"),
    ("lr not a number", [*TRAIN, "--out", "new.pt", "--lr", "abc"], "invalid float value: 'abc'"),
    ("negative depth", [*TRAIN, "--out", "new.pt", "--depth", "-1"], "--depth must be in [1, 6]"),
    ("no filters", [*TRAIN, "--out", "new.pt", "--filters", "0"], "--filters must be in [1, 1024]"),
    ("negative seed", [*TRAIN, "--out", "new.pt", "--seed", "-1"], "--seed must be in [0,"),
    ("zero steps", [*TRAIN, "--out", "new.pt", "--steps", "0"], "--steps must be in [1,"),
    ("negative z context", [*TRAIN, "--out", "new.pt", "--z-context", "-1"], "--z-context must be in [0, 16]"),
    ("huge z context", [*TRAIN, "--out", "new.pt", "--z-context", "99"], "--z-context must be in [0, 16]"),
    ("huge mask", [*TRAIN, "--out", "new.pt", "--mask", "99999999x99999999"], "mask sides must be between 1 and 4095"),
    ("huge batch", [*TRAIN, "--out", "new.pt", "--batch", "100000000"], "does not fit in memory"),
    ("empty image", ["train", "empty.npy", "--axes", "YX", "--mask", "3x1", "--out", "new.pt"], "empty image"),
    ("negative overlap", ["predict", "m.pt", "img.tif", "--out", "o.tif", "--overlap", "-100"], "--overlap must be a non-negative"),
    ("zero tile", ["predict", "m.pt", "img.tif", "--out", "o.tif", "--tile", "0"], "--tile must be a positive"),
    ("zero max lag", ["analyze-noise", "dark.tif", "--max-lag", "0"], "--max-lag must be >= 1"),
    # silent wrong results
    ("one NaN pixel", ["predict", "m.pt", "nan.tif", "--out", "o.tif"], "1 NaN or infinite"),
    ("RGB taken as 64 images", ["predict", "m.pt", "rgb.tif", "--out", "o.tif"], "looks like RGB"),
    ("complex input", ["predict", "m.pt", "cplx.npy", "--out", "o.tif"], "is complex"),
    ("complex training data", ["train", "cplx.npy", "--axes", "YX", "--mask", "3x1", "--out", "new.pt"], "not real-valued"),
    ("png named output", ["predict", "m.pt", "img.tif", "--out", "o.png"], "unknown extension '.png'"),
    ("resume on another scale", ["train", "u16.tif", "--axes", "YX", "--mask", "3x1", "--steps", "2", "--patch", "32",
                                 "--batch", "2", "--resume", "m.pt", "--out", "new.pt"], "cannot resume"),
]


@pytest.mark.parametrize("argv, message", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_cli_mistake_is_one_line_and_changes_no_file(work, capsys, argv, message):
    before = hashes(work)
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    lines = [line for line in err.splitlines() if not line.startswith(("training StructN2V", "resuming"))]
    assert len(lines) == 1 and lines[0].startswith("structn2v: error: "), err
    assert message in lines[0]
    assert "Traceback" not in err
    assert hashes(work) == before  # nothing changed, nothing added (no temporary files either)


def test_cli_warns_on_another_intensity_scale(work, capsys):
    before = hashes(work)
    assert main(["predict", "m.pt", "u16.tif", "--out", "out.tif"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and "far outside the range the model was normalised on" in err
    after = hashes(work)
    assert after.pop("out.tif") and after == before


def test_cli_overwrite_replaces_only_when_asked(work, capsys):
    before = hashes(work)
    assert main(["predict", "m.pt", "img.tif", "--out", "existing.tif", "--overwrite"]) == 0
    after = hashes(work)
    assert after.pop("existing.tif") != before.pop("existing.tif") and after == before
    assert tifffile.imread(work / "existing.tif").shape == (64, 64)


# -- API ------------------------------------------------------------------------------------
def _img(work, name="img.tif"):
    return tifffile.imread(work / name)


API_CASES = [
    # (id, call(work, model), error class, words)
    ("val_every=0", lambda w, m: TrainConfig(val_every=0), errors.ConfigError, "val_every must be >= 1"),
    ("steps=2.5", lambda w, m: TrainConfig(steps=2.5), errors.ConfigError, "steps must be an integer"),
    ("pmin>pmax", lambda w, m: TrainConfig(pmin=99, pmax=1), errors.ConfigError, "pmin must be below pmax"),
    ("empty array", lambda w, m: train(np.zeros((0, 64)), "YX", "3x1", TrainConfig(**FAST)), errors.DataError, "empty"),
    ("huge mask", lambda w, m: train(_img(w), "YX", "99999999x99999999", TrainConfig(**FAST)), errors.MaskError, "4095"),
    ("huge batch", lambda w, m: train(_img(w), "YX", "3x1", TrainConfig(**{**FAST, "batch_size": 10**8})),
     errors.ResourceError, "does not fit in memory"),
    ("resume other scale", lambda w, m: train(_img(w, "u16.tif"), "YX", "3x1", TrainConfig(**FAST), resume=m),
     errors.DataError, "cannot resume"),
    ("NaN pixel", lambda w, m: m.predict(_img(w, "nan.tif")), errors.DataError, "NaN"),
    ("RGB image", lambda w, m: m.predict(_img(w, "rgb.tif")), errors.AxesError, "looks like RGB"),
    ("complex image", lambda w, m: m.predict(np.load(w / "cplx.npy")), errors.DataError, "complex"),
    ("bool image", lambda w, m: m.predict(_img(w) > 0), errors.DataError, "boolean"),
    ("channels", lambda w, m: m.predict(np.stack([_img(w)] * 2), "CYX"), errors.DataError, "1 channel(s), the image has 2"),
    ("tile 0", lambda w, m: m.predict(_img(w), tile=0), errors.ConfigError, "tile must be a positive"),
    ("overlap -100", lambda w, m: m.predict(_img(w), overlap=-100), errors.ConfigError, "overlap must be a non-negative"),
    ("save over a file", lambda w, m: m.save(w / "existing.pt", overwrite=False), errors.OutputError, "already exists"),
    ("save into a folder", lambda w, m: m.save(w / "afolder"), errors.OutputError, "is a folder"),
    ("png output", lambda w, m: write_image(w / "o.png", _img(w)), errors.OutputError, "unknown extension"),
]


@pytest.mark.parametrize("call, error, words", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_api_mistake_raises_its_error_and_changes_no_file(work, call, error, words):
    model = load_model(work / "m.pt")
    before = hashes(work)
    with pytest.raises(error) as info:
        call(work, model)
    assert isinstance(info.value, errors.StructN2VError)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert hashes(work) == before


def test_api_warns_on_another_intensity_scale_and_keeps_the_input(work):
    model = load_model(work / "m.pt")
    image = _img(work, "u16.tif")
    copy = image.copy()
    with pytest.warns(errors.IntensityWarning, match="far outside"):
        model.predict(image)
    np.testing.assert_array_equal(image, copy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", errors.IntensityWarning)
        model.predict(_img(work))  # the training data's own scale: no warning
