import pickle

import numpy as np
import pytest
import torch

from napari_structn2v.errors import ModelFileError
from napari_structn2v.method.masks import cross_mask
from napari_structn2v.model import load_model
from tests.helpers import untrained_model


def _model():
    return untrained_model("SYX", cross_mask(5, 3), low=[1.5], high=[7.25], seed=1, training={"steps_done": 12},
                           base_filters=8, n2v2=True)


def test_round_trip(tmp_path):
    model = _model()
    path = model.save(tmp_path / "sub" / "m.structn2v")
    loaded = load_model(path)
    assert loaded.axes == "SYX"
    np.testing.assert_array_equal(loaded.mask, model.mask)
    assert loaded.config.low == [1.5] and loaded.config.high == [7.25]
    assert loaded.config.architecture == model.config.architecture
    assert loaded.config.training["steps_done"] == 12
    assert "torch_version" in loaded.config.training
    img = np.random.default_rng(0).random((48, 64)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict(img), model.predict(img), atol=1e-6)
    assert "cross" not in repr(loaded) and "custom 5x3" in repr(loaded)


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "nope.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(bad)
    model_path = _model().save(tmp_path / "ok.pt")
    truncated = tmp_path / "trunc.pt"
    truncated.write_bytes(model_path.read_bytes()[:2000])
    with pytest.raises(ModelFileError):
        load_model(truncated)


def test_other_torch_files_are_rejected(tmp_path):
    p = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, p)
    with pytest.raises(ModelFileError, match="not a napari-structn2v model"):
        load_model(p)
    torch.save({"config": '{"format": "other"}', "state_dict": {}}, p)
    with pytest.raises(ModelFileError, match="unknown format"):
        load_model(p)


class _Evil:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickled_code_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pt"
    torch.save({"config": "{}", "state_dict": {}, "payload": _Evil()}, p, pickle_module=pickle)
    with pytest.raises(ModelFileError):
        load_model(p)
    assert not (tmp_path / "PWNED").exists()


def test_mismatched_weights(tmp_path):
    model = _model()
    blob = {"config": model.config.to_json(), "state_dict": {"head.weight": torch.zeros(1)}}
    p = tmp_path / "m.pt"
    torch.save(blob, p)
    with pytest.raises(ModelFileError, match="do not match"):
        load_model(p)
