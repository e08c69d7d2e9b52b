"""Input files of the CLI tests, written once per session (no test writes into them)."""
import numpy as np
import pytest
import tifffile

from napari_structn2v.cli import main
from napari_structn2v.synthetic import correlated_noise, make_sample
from tests.cli.helpers import TRAIN


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    """noisy.tif (64x64), a 128x128 dark frame dark.tif and a 2-image stack.tif."""
    d = tmp_path_factory.mktemp("cli")
    s = make_sample("2d", seed=1, size=64)
    tifffile.imwrite(d / "noisy.tif", s["noisy"])
    tifffile.imwrite(d / "dark.tif", correlated_noise((128, 128), axis=-1, rng=2))
    tifffile.imwrite(d / "stack.tif", np.stack([s["noisy"], s["noisy"][::-1]]))
    return d


@pytest.fixture(scope="session")
def model_files(tmp_path_factory):
    """noisy.tif (64x64), a 96x96 dark frame dark.tif and m.pt, trained on noisy.tif with TRAIN."""
    d = tmp_path_factory.mktemp("cli_output")
    tifffile.imwrite(d / "noisy.tif", make_sample("2d", seed=1, size=64)["noisy"])
    tifffile.imwrite(d / "dark.tif", correlated_noise((96, 96), axis=-1, rng=2))
    assert main(["train", str(d / "noisy.tif"), *TRAIN, "--out", str(d / "m.pt"), "--quiet"]) == 0
    return d
