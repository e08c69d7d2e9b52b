"""The napari manifest is valid, lazy, and its sample data loads (no viewer needed)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import napari_structn2v

MANIFEST = Path(napari_structn2v.__file__).parent / "napari.yaml"
WIDGETS = {
    "Noise analysis": "napari_structn2v._widgets.noise_analysis:NoiseAnalysisWidget",
    "Blind mask": "napari_structn2v._widgets.mask_designer:BlindMaskWidget",
    "StructN2V": "napari_structn2v._widgets.structn2v:StructN2VWidget",
    "Train": "napari_structn2v._widgets.train:TrainWidget",
    "Predict": "napari_structn2v._widgets.predict:PredictWidget",
}


def test_manifest_validates():
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    assert manifest.name == "napari-structn2v"
    commands = {c.id: c for c in manifest.contributions.commands}
    assert all(cid.startswith("napari-structn2v.") for cid in commands)
    widgets = {w.display_name: commands[w.command].python_name for w in manifest.contributions.widgets}
    assert widgets == WIDGETS
    menus = {menu: [item.command for item in items] for menu, items in manifest.contributions.menus.items()}
    assert menus == {"napari/layers/filter": ["napari-structn2v.denoise_with_saved_model"]}
    contributable = pytest.importorskip("napari._app_model.constants._menus").is_menu_contributable
    assert all(contributable(menu) for menu in menus)  # napari ignores a menu id it does not open
    samples = {s.display_name for s in manifest.contributions.sample_data}
    assert samples == {"2D structured-noise sample", "3D structured-noise sample"}
    for command in commands.values():  # every python_name resolves to its defining module
        module, _, attr = command.python_name.partition(":")
        mod = __import__(module, fromlist=[attr])
        assert callable(getattr(mod, attr))


def test_entry_point_points_at_manifest():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="napari.manifest") if ep.name == "napari-structn2v"]
    assert eps and eps[0].value == "napari_structn2v:napari.yaml"


@pytest.mark.parametrize(
    "module",
    [
        "napari_structn2v",
        "napari_structn2v._sample_data",
        "napari_structn2v._widgets.noise_analysis",
        "napari_structn2v._widgets.mask_designer",
        "napari_structn2v._widgets.train",
        "napari_structn2v._widgets.predict",
        "napari_structn2v._widgets.menu",
    ],
)
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("kind, ndim", [("2d", 2), ("3d", 3)])
def test_sample_data_layers(kind, ndim):
    from napari_structn2v import _sample_data

    layers = getattr(_sample_data, f"make_sample_{kind}")()
    assert [t[2] for t in layers] == ["image", "image"]
    (noisy, noisy_meta, _), (dark, dark_meta, _) = layers
    assert noisy.ndim == ndim and dark.shape == noisy.shape
    assert noisy.dtype == np.float32
    assert noisy_meta["name"].endswith("structured noise") and "dark" in dark_meta["name"]
