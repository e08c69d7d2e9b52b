"""Fixtures shared by the whole suite (plain helpers are in helpers.py; the widget tests' viewer
fixtures in _widgets/conftest.py, the CLI tests' input files in cli/conftest.py)."""
import copy

import pytest

from tests.helpers import structured_image


@pytest.fixture(scope="session")
def tiny_trained():
    """A model trained for 2 steps (YX, 3x1 mask, 8 filters, CPU) on ``structured_image(64)``, once
    per session. Shared: a test must not change it; take ``tiny_model`` for a copy of its own."""
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train

    return train(
        structured_image(64), "YX", "3x1",
        TrainConfig(steps=2, patch_size=32, batch_size=2, base_filters=8, device="cpu", val_fraction=0),
    )


@pytest.fixture
def tiny_model(tiny_trained):
    """The tiny trained model, a copy for this test alone."""
    return copy.deepcopy(tiny_trained)
