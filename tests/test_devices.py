"""Device choice (napari_structn2v.devices): a device asked for and absent is one clear error naming it."""
import pytest
import torch

from napari_structn2v.devices import available_devices, resolve_device
from napari_structn2v.errors import StructN2VError


@pytest.fixture
def no_accelerator(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def test_auto_falls_back_to_the_cpu(no_accelerator):
    assert resolve_device("auto") == torch.device("cpu") and resolve_device(None) == torch.device("cpu")
    assert available_devices() == ["cpu"]


@pytest.mark.parametrize("name, words", [("cuda", "'cuda' asked for, but CUDA"), ("cuda:1", "'cuda:1' asked for, but CUDA"),
                                         ("mps", "'mps' asked for, but MPS"), ("MPS", "'mps' asked for, but MPS")])
def test_an_absent_accelerator_is_named(no_accelerator, name, words):
    with pytest.raises(StructN2VError, match=words):
        resolve_device(name)


def test_a_missing_cuda_index_is_named(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda") == torch.device("cuda:0")
    with pytest.raises(StructN2VError, match="'cuda:3' does not exist; this machine has 1 CUDA device"):
        resolve_device("cuda:3")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "xla"])
def test_unknown_devices_are_refused(name):
    with pytest.raises(StructN2VError, match=name):
        resolve_device(name)
