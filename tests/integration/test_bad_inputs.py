"""A careless user against the CLI and the API: every mistake is one clear message (exit 2 /
a StructN2VError subclass), and no input or existing file changes by a single byte.

One case or more per class of issue 7: data loss, late failure, unchecked options and shapes,
silent wrong results; and per item of issue 19: a full disk, a folder made read-only, a file that
appears at the output meanwhile, SIGTERM, hand-edited model files and misleading messages. The
full-disk and read-only cases run on a real 2 MB tmpfs (root mounts it, as in CI; they skip with
the reason where mounting is not permitted); the signals are real SIGTERMs to a real subprocess.
"""
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_structn2v import errors
from napari_structn2v.cli import main
from napari_structn2v.config import TrainConfig
from napari_structn2v.io.images import write_image
from napari_structn2v.model import load_model
from napari_structn2v.synthetic import correlated_noise, make_sample
from napari_structn2v.training.loop import train

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
    (d / "ck").mkdir()
    (d / "ck" / "last.pt").write_bytes(b"the checkpoint of another run")
    write_image(d / "existing.zarr", np.ones((8, 8), np.float32), axes="YX")
    np.save(d / "dark4d.npy", np.zeros((2, 3, 64, 64), np.float32))
    tifffile.imwrite(d / "darkstack.tif", np.stack([correlated_noise((64, 64), axis=-1, rng=i) for i in range(3)]))
    write_image(d / "lost.zarr", img, axes="YX")
    attrs = (d / "lost.zarr" / ".zattrs")
    attrs.write_text(attrs.read_text().replace('"path": "0"', '"path": "7"'))
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
    ("analyze over the dark frame even with --overwrite", ["analyze-noise", "dark.tif", "--out-autocorr", "dark.tif",
                                                          "--overwrite"], "is the noise image; writing there would destroy it"),
    ("checkpoints over another run's", [*TRAIN, "--out", "new.pt", "--checkpoint-dir", "ck"],
     "--checkpoint-dir file last.pt"),
    ("train into a zarr store even with --overwrite", [*TRAIN, "--out", "existing.zarr", "--overwrite"], "is a folder"),
    # misleading messages (issue 19)
    ("missing mask file", [*TRAIN, "--mask", "gone.npy", "--out", "new.pt"], "mask file 'gone.npy' does not exist"),
    ("reversed roi", ["analyze-noise", "dark.tif", "--roi", "10:5,0:64"], "--roi Y range 10:5 is empty; START must be below"),
    ("empty roi", ["analyze-noise", "dark.tif", "--roi", "5:5,0:64"], "--roi Y range 5:5 is empty"),
    ("patch not fitting the net", [*TRAIN, "--patch", "33", "--out", "new.pt"], "--patch must be a multiple of 4"),
    ("negative roi", ["analyze-noise", "dark.tif", "--roi", "-10:5,0:64"], "--roi Y range -10:5 starts before 0"),
    ("roi past the image", ["analyze-noise", "dark.tif", "--roi", "0:10,0:99"], "--roi X range 0:99 ends past the image"),
    ("4D dark frame for YX", [*TRAIN, "--mask", "auto", "--dark", "dark4d.npy", "--out", "new.pt"],
     "the dark frame 'dark4d.npy' has 4 dimensions"),
    ("multiscales naming a missing dataset", ["predict", "m.pt", "lost.zarr", "--out", "o.tif"],
     "its OME multiscales metadata name the dataset '7', which the store does not hold"),
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
    # issue 19
    ("read-only out", lambda w, m: m.predict(_img(w), out=_read_only(_img(w))), errors.OutputError, "out= is read-only"),
    ("patch 33", lambda w, m: TrainConfig(patch_size=33), errors.ConfigError,
     "patch_size must be a multiple of 4 (pooling 2 at depth 2), got 33"),
]


def _read_only(a):
    out = np.zeros(a.shape, np.float32)
    out.flags.writeable = False
    return out


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


# -- issue 19: the world misbehaves -----------------------------------------------------------
def _cli(*args, cwd, **kwargs):
    """``structn2v ARGS`` in a subprocess (a crash such as SIGBUS must not take pytest with it)."""
    env = {**os.environ, "PYTHONPATH": str(Path(errors.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "napari_structn2v.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture
def small_disk(work):
    """``work/full``: a real 2 MB tmpfs, unmounted afterwards."""
    d = work / "full"
    d.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(d)], capture_output=True, text=True)
    if done.returncode != 0:
        d.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'not root'}): the full-disk cases need one")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def _fill(disk, leave=8 << 10):
    """Fill ``disk`` but for about ``leave`` bytes."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))


def _disk_hashes(work):
    """The user's files outside the tmpfs (its content is checked on its own)."""
    return {k: v for k, v in hashes(work).items() if not k.startswith("full")}


@pytest.mark.parametrize("name", ["o.tif", "o.npy", "o.zarr"])
def test_predict_on_a_full_disk_is_one_line_and_leaves_no_part_file(work, small_disk, name):
    """A memory-mapped .tif/.npy output on a full disk was a SIGBUS (exit -7, nothing said) and a
    hidden .part file that kept the disk full."""
    (small_disk / "keep.tif").write_bytes(b"an older result")
    _fill(small_disk)
    before = _disk_hashes(work)
    on_disk = sorted(p.name for p in small_disk.iterdir())
    proc = _cli("predict", "m.pt", "img.tif", "--out", f"full/{name}", "--no-tta", cwd=work)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("structn2v: error: cannot write")
    assert "No space left on device" in err
    assert sorted(p.name for p in small_disk.iterdir()) == on_disk  # no .part left behind
    assert (small_disk / "keep.tif").read_bytes() == b"an older result"
    assert _disk_hashes(work) == before


def test_train_on_a_full_disk_rescues_the_model(work, small_disk, capsys):
    """torch turned the full disk into a RuntimeError that skipped the rescue: a traceback, and the
    trained model was lost."""
    _fill(small_disk)
    before = _disk_hashes(work)
    rc = main([*TRAIN, "--out", "full/m.pt", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "cannot write 'full/m.pt': No space left on device" in err and "the trained model was saved to" in err
    rescued = [k for k in _disk_hashes(work) if k.startswith("structn2v-rescued-")]
    assert len(rescued) == 1 and rescued[0] in err
    assert load_model(work / rescued[0]).config.training["steps_done"] == 2
    after = _disk_hashes(work)
    del after[rescued[0]]
    assert after == before and sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_train_with_a_full_checkpoint_dir_warns_and_saves_the_model(work, small_disk, capsys):
    """A checkpoint that cannot be written ended the training (with a traceback)."""
    _fill(small_disk)
    before = _disk_hashes(work)
    rc = main([*TRAIN, "--out", "new.pt", "--checkpoint-dir", "full/ck", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 0, err
    assert err.splitlines() == [err] and err.startswith("warning: checkpoint best.pt not written")
    assert "No space left on device" in err and "training goes on without checkpoints" in err
    after = _disk_hashes(work)
    assert load_model(work / "new.pt") and after.pop("new.pt") and after == before
    assert sorted(p.name for p in (small_disk / "ck").iterdir()) == []


@contextlib.contextmanager
def _after_training(monkeypatch, action):
    """Run ``action()`` when training ends, before the model is saved: the world changing while
    the user waited."""
    from napari_structn2v.cli import _train

    original = _train._run_training

    def wrapped(*args, **kwargs):
        done = original(*args, **kwargs)
        action()
        return done

    monkeypatch.setattr(_train, "_run_training", wrapped)
    yield


def test_train_into_a_folder_made_read_only_meanwhile_rescues_the_model(work, small_disk, monkeypatch, capsys):
    before = _disk_hashes(work)

    def read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)

    with _after_training(monkeypatch, read_only):
        rc = main([*TRAIN, "--out", "full/m.pt", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "'full/m.pt' cannot be written in 'full': Read-only file system" in err
    after = _disk_hashes(work)
    rescued = [k for k in after if k.startswith("structn2v-rescued-")]
    assert len(rescued) == 1 and load_model(work / rescued[0])
    assert f"the trained model was saved to '{work / rescued[0]}' instead" in err
    del after[rescued[0]]
    assert after == before and list(small_disk.iterdir()) == []


def test_train_into_a_folder_removed_meanwhile_saves_the_model_there(work, monkeypatch, capsys):
    (work / "runs").mkdir()
    before = hashes(work)
    with _after_training(monkeypatch, lambda: shutil.rmtree(work / "runs")):
        rc = main([*TRAIN, "--out", "runs/m.pt", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    after = hashes(work)
    assert load_model(work / "runs" / "m.pt") and after.pop("runs/m.pt") and after == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["plain", "overwrite"])
def test_train_never_replaces_a_file_that_appeared_at_out_meanwhile(work, monkeypatch, capsys, overwrite):
    """Two `train --out same.pt` at once both said "model saved"; one model was gone."""
    before = hashes(work)
    with _after_training(monkeypatch, lambda: (work / "same.pt").write_bytes(b"the other run's model")):
        rc = main([*TRAIN, "--out", "same.pt", "--quiet", *overwrite])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "'same.pt' appeared during the training and was left as it is" in err
    assert "the trained model was saved to 'same.structn2v-1.pt' instead" in err
    assert (work / "same.pt").read_bytes() == b"the other run's model"
    assert load_model(work / "same.structn2v-1.pt")
    after = hashes(work)
    assert after.pop("same.pt") and after.pop("same.structn2v-1.pt") and after == before


def test_predict_never_replaces_a_file_that_appeared_at_out_meanwhile(work, monkeypatch, capsys):
    from napari_structn2v.model import StructN2VModel

    original = StructN2VModel.predict_iter

    def racing(self, *args, **kwargs):
        (work / "o.tif").write_bytes(b"someone else's result")
        return (yield from original(self, *args, **kwargs))

    monkeypatch.setattr(StructN2VModel, "predict_iter", racing)
    before = hashes(work)
    rc = main(["predict", "m.pt", "img.tif", "--out", "o.tif", "--quiet", "--no-tta"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "'o.tif' appeared while the result was being written" in err, err
    assert (work / "o.tif").read_bytes() == b"someone else's result"
    assert tifffile.imread(work / "o.structn2v-1.tif").shape == (64, 64)
    after = hashes(work)
    assert after.pop("o.tif") and after.pop("o.structn2v-1.tif") and after == before


def _wait_for(proc, predicate, what, timeout=240):
    t0 = time.monotonic()
    while not predicate():
        if proc.poll() is not None:
            pytest.fail(f"the command ended (rc {proc.returncode}) before {what}: {proc.stderr.read()}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"no {what} after {timeout} s")
        time.sleep(0.05)


def test_sigterm_during_train_saves_the_model_like_ctrl_c(work):
    """SIGTERM (SLURM's time limit, docker stop) exited 143 with nothing saved and nothing said."""
    before = hashes(work)
    proc = _cli(*TRAIN[:6], "--steps", "100000", "--patch", "32", "--batch", "2", "--filters", "8", "--device", "cpu",
                "--out", "new.pt", cwd=work)
    lines = []
    _wait_for(proc, lambda: lines.append(proc.stdout.readline()) or lines[-1].startswith("step "), "a training step")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "terminated (SIGTERM): stopping after this step and saving the model so far" in err
    assert "Traceback" not in err and "the model so far is saved to new.pt" in out
    model = load_model(work / "new.pt")
    assert model.config.training["stopped"] and 0 < model.config.training["steps_done"] < 100000
    after = hashes(work)
    assert after.pop("new.pt") and after == before


@pytest.mark.parametrize("name", ["o.tif", "o.zarr"])
def test_sigterm_during_predict_removes_the_part_file(work, name):
    big = np.tile(tifffile.imread(work / "img.tif"), (32, 32))  # 2048 x 2048 in 1024+ tiles: seconds of prediction
    tifffile.imwrite(work / "big.tif", big)
    before = hashes(work)
    proc = _cli("predict", "m.pt", "big.tif", "--out", name, "--tile", "64", cwd=work)
    lines = []
    _wait_for(proc, lambda: lines.append(proc.stdout.readline()) or lines[-1].startswith("tile "), "a finished tile")
    assert any(p.name.endswith(".part") for p in work.iterdir())  # the output being written
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "structn2v: terminated (SIGTERM); unfinished outputs were removed"
    assert "Traceback" not in err
    assert hashes(work) == before  # no .part file, no output


def test_closed_stdout_ends_info_quietly(work):
    """`structn2v info m.pt | head -1` said "error: Broken pipe" and exited 2."""
    proc = _cli("info", "m.pt", cwd=work)
    proc.stdout.close()  # the reader went away before the summary was written
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 141 and err == ""


def test_closed_stdout_does_not_stop_predict(work):
    """Information lines to a closed pipe (`structn2v predict ... | head -1`): the result is still
    written, and no "--- Logging error ---" report."""
    proc = _cli("predict", "m.pt", "img.tif", "--out", "o.tif", "--no-tta", cwd=work)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 0 and err == ""
    assert tifffile.imread(work / "o.tif").shape == (64, 64)


def _edited_model(work, edit):
    """m.pt with its stored config changed by ``edit(config dict)``, as a hand edit would."""
    import json

    import torch

    blob = torch.load(work / "m.pt", weights_only=True)
    config = json.loads(blob["config"])
    edit(config)
    blob["config"] = json.dumps(config)
    torch.save(blob, work / "edited.pt")
    return work / "edited.pt"


def _set(path, value):
    def edit(config):
        *keys, last = path.split(".")
        node = config
        for key in keys:
            node = node[key]
        node[last] = value
    return edit


EDITED_MODELS = [
    ("depth -1", _set("architecture.depth", -1), "the model's architecture.depth must be in [1, 6], got -1"),
    ("string low", _set("normalization.low", ["low"]), "the model's normalization.low must be a number, got 'low'"),
    ("pool 0", _set("architecture.pool", [0, 0]), "the model's architecture.pool must be in [1, 8], got 0"),
    ("huge filters", _set("architecture.base_filters", 1e7), "the model's architecture.base_filters must be an integer"),
    ("pool 1 (no weights to tell)", _set("architecture.pool", [1, 1]),
     "the model's architecture.pool is [1, 1] but the model was trained with [2, 2]"),
    ("bad axes", _set("axes", "QQ"), "the model's stored axes are invalid: axes 'QQ' contain 'Q'"),
    ("high below low", _set("normalization.high", [-1e9]), "the model's normalization.high must be above low"),
    ("3D mask for a 2D net", _set("mask", [[[1]]]), "the model's mask must be 2D for the 2D network"),
    ("no architecture", lambda c: c.pop("architecture"), "the model's architecture is missing"),
    ("z context without its channels", _set("z_context", 2), "the model's architecture.in_channels must be 5"),
    ("other weights", _set("architecture.base_filters", 4), "the weights do not match the stored architecture"),
    ("unknown architecture field", _set("architecture.wings", 2), "the model's architecture.wings is not an architecture setting"),
]


@pytest.mark.parametrize("edit, words", [c[1:] for c in EDITED_MODELS], ids=[c[0] for c in EDITED_MODELS])
def test_hand_edited_model_file_is_one_clear_error(work, capsys, edit, words):
    """Tracebacks (TypeError, ValueError, ZeroDivisionError, a 3.6 PB allocation) or a silent
    wrong architecture before."""
    path = _edited_model(work, edit)
    before = hashes(work)
    with pytest.raises(errors.ModelFileError) as info:
        load_model(path)
    assert words in str(info.value) and str(info.value).startswith("'") and "\n" not in str(info.value)
    rc = main(["predict", str(path), "img.tif", "--out", "o.tif"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err] and words in err and "Traceback" not in err
    assert hashes(work) == before


def test_non_finite_weights_are_refused(work):
    import torch

    blob = torch.load(work / "m.pt", weights_only=True)
    name = next(iter(blob["state_dict"]))
    blob["state_dict"][name] = torch.full_like(blob["state_dict"][name], float("nan"))
    torch.save(blob, work / "nan.pt")
    with pytest.raises(errors.ModelFileError, match=f"the weights hold NaN or infinite values \\(in {name}\\)"):
        load_model(work / "nan.pt")


@pytest.mark.parametrize("kind, words", [
    ("folder", "is a folder; give the model file (.pt or .zip) inside it"),
    ("symlink loop", "is a symbolic link loop, not a file"),
    ("fifo", "is not a regular file (a pipe, socket or device)"),
    ("dangling symlink", "is a symbolic link to a missing file"),
])
def test_model_path_that_is_no_file_is_named_for_what_it_is(work, capsys, kind, words):
    """A folder, a symlink loop or a FIFO as the model were all "does not exist"."""
    path = work / "model-thing"
    if kind == "folder":
        path.mkdir()
    elif kind == "symlink loop":
        path.symlink_to(path)
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(work / "gone.pt")
    before = hashes(work) if kind == "folder" else None
    rc = main(["predict", str(path), "img.tif", "--out", "o.tif"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err] and words in err, err
    assert not (work / "o.tif").exists() and (before is None or hashes(work) == before)


def test_mask_auto_reads_a_dark_stack_as_frames(work, capsys):
    """A 3-frame dark stack for YX training was read as ZYX, and the error was about a 5x1x3
    mask the user never gave."""
    before = hashes(work)
    rc = main([*TRAIN, "--mask", "auto", "--dark", "darkstack.tif", "--out", "new.pt"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    # 11x1, as a 256x256 frame of this noise gives (the signal removal, not used on dark frames
    # since 2026-12-08, cut it to 9x1)
    assert "mask auto: suggested 11x1 from darkstack.tif" in captured.out
    after = hashes(work)
    assert after.pop("new.pt") and after == before


@pytest.mark.parametrize("axes, words", [
    ("QQ", "axes 'QQ' contain 'Q'"),
    ("ZYX", "axes 'ZYX' have 3 letters but the image has 2 dimensions"),
])
def test_bad_axes_metadata_are_named_as_the_files_and_ignored(work, capsys, axes, words):
    """Bad zarr axes attributes were blamed on the user; wrong-length ones were dropped silently."""
    import zarr

    arr = zarr.open_array(str(work / "plain.zarr"), mode="w", shape=(64, 64), dtype="float32", zarr_format=2)
    arr[:] = _img(work)
    arr.attrs["axes"] = axes
    before = hashes(work)
    rc = main(["predict", "m.pt", "plain.zarr", "--out", "o.tif", "--quiet", "--no-tta"])
    err = capsys.readouterr().err.strip()
    assert rc == 0, err
    assert err.splitlines() == [err] and err.startswith(f"warning: ignoring the axes metadata of 'plain.zarr' ({words}")
    after = hashes(work)
    assert after.pop("o.tif") and after == before


@pytest.mark.parametrize("address, words", [
    ("tcp://", "--cluster 'tcp://' names no scheduler host; write tcp://HOST:PORT"),
    ("tcp://host:notaport", "--cluster 'tcp://host:notaport' has the port 'notaport'; a port is a number from 1 to 65535"),
    ("tcp://127.0.0.1", "names no scheduler port"),
    ("tcp://127.0.0.1:1", "cannot reach the dask scheduler at tcp://127.0.0.1:1: connection refused"),
])
def test_cluster_address_is_checked_and_fails_fast(work, capsys, address, words):
    """Tracebacks, and a refused connection waited out a 30 s timeout (its message was another)."""
    pytest.importorskip("distributed")
    before = hashes(work)
    rc = main(["predict", "m.pt", "img.tif", "--out", "o.tif", "--cluster", address])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.splitlines() == [err] and words in err, err
    assert hashes(work) == before


def test_own_local_cluster_closes_without_worker_noise(capfd):
    """`predict --cluster local:2` printed distributed's "Worker process still alive after 4.0
    seconds, killing" twice on every run: the nanny's shutdown warnings of our own cluster."""
    pytest.importorskip("distributed")
    import logging

    from napari_structn2v.prediction.distributed import connect

    client = connect("local:1")
    try:
        assert client.submit(sum, [1, 2]).result() == 3
        logging.getLogger("distributed.nanny").warning("Worker process still alive after %.1f seconds, killing", 4.0)
    finally:
        client.close()
    assert "still alive" not in capfd.readouterr().err


def test_torch_tensors_are_taken_as_arrays(work):
    """A torch tensor as training data was a bare TypeError ("Cannot interpret 'torch.float32'")."""
    import torch

    img = _img(work).astype(np.float32)
    from_tensor = train(torch.from_numpy(img), "YX", "3x1", TrainConfig(**FAST))
    from_numpy = train(img, "YX", "3x1", TrainConfig(**FAST))
    for a, b in zip(from_tensor.net.state_dict().values(), from_numpy.net.state_dict().values()):
        torch.testing.assert_close(a, b)
    np.testing.assert_array_equal(from_numpy.predict(torch.from_numpy(img), tta=False), from_numpy.predict(img, tta=False))
