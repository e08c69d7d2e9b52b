"""BioImage Model Zoo: export -> bioimageio.core test -> import -> same prediction; foreign packages."""
from __future__ import annotations

import ast
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_structn2v.bmz import export as bmz
from napari_structn2v.cli import main
from napari_structn2v.errors import ModelFileError
from napari_structn2v.method.masks import box_mask, cross_mask
from napari_structn2v.model import StructN2VModel, load_model
from tests.helpers import untrained_model

HAVE_CORE = importlib.util.find_spec("bioimageio") is not None and importlib.util.find_spec("bioimageio.core") is not None
needs_bmz = pytest.mark.skipif(
    not HAVE_CORE or bmz.incompatibility() is not None,
    reason=f"bioimageio.core unusable here: {bmz.incompatibility() if HAVE_CORE else 'not installed'}",
)


def _model(channels: int = 1, axes: str = "YX", **arch_kwargs) -> StructN2VModel:
    low, high = [100.0 + 50 * c for c in range(channels)], [900.0 + 200 * c for c in range(channels)]
    # non-trivial batch-norm statistics, so that a lost buffer would change the output
    return untrained_model(axes, box_mask(5, 1), channels=channels, low=low, high=high, seed=3, bn_spread=0.2,
                           training={"steps_done": 7, "seed": 0}, base_filters=8, **arch_kwargs)


def _image(shape, seed=0, lo=100.0, hi=900.0) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) * (hi - lo) + lo).astype(np.float32)


# -- no bioimageio needed ---------------------------------------------------------------------------
def test_unet_source_is_standalone(tmp_path):
    """unet.py is shipped as the package's architecture: it must import only torch and the stdlib."""
    src = Path(bmz.__file__).parents[1] / "nn" / "unet.py"
    tree = ast.parse(src.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "unet.py must not use relative imports"
            roots.add(node.module.split(".")[0])
    assert roots <= {"torch", "math", "dataclasses", "__future__", "typing", "collections"}, roots
    # loaded on its own, as bioimage.io consumers do, it rebuilds the same network from plain kwargs
    copy = tmp_path / "standalone_unet.py"
    copy.write_bytes(src.read_bytes())
    spec = importlib.util.spec_from_file_location("standalone_unet_test", copy)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        model = _model(n2v2=True)
        net = module.UNet(**model.config.architecture.to_dict())
        net.load_state_dict(model.net.state_dict(), strict=True)
        x = torch.rand(1, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(net.eval()(x), model.net(x))
    finally:
        del sys.modules[spec.name]


def test_halo_makes_tiles_seamless():
    """Cropping the halo from a tile's output leaves exactly the full-image prediction."""
    model = _model()
    (hy, hx), (my, mx) = bmz.halo(model), bmz.min_input_shape(model)
    radius = model.config.architecture.receptive_radius()
    assert hy >= radius[0] and hy % 4 == 0 and my == 2 * hy + 4
    x = torch.from_numpy(np.random.default_rng(1).random((1, 1, 160, 160), dtype=np.float32))
    with torch.no_grad():
        full = model.net(x)
        tile = model.net(x[..., 40:40 + my, 52:52 + mx])
    inner = tile[..., hy:my - hy, hx:mx - hx]
    ref = full[..., 40 + hy:40 + my - hy, 52 + hx:52 + mx - hx]
    assert torch.max(torch.abs(inner - ref)) < 1e-4
    # a halo of half the receptive field would not be enough (so the check above can fail)
    small = hy // 2
    tile_s = tile[..., small:my - small, small:mx - small]
    ref_s = full[..., 40 + small:40 + my - small, 52 + small:52 + mx - small]
    assert torch.max(torch.abs(tile_s - ref_s)) > 1e-3


def test_test_input_of_a_2d_network_over_z_slices_is_the_middle_slice():
    model = _model(axes="ZYX")  # a 2D network trained over the Z slices of volumes
    vol = _image((5, 70, 90))
    x = bmz._test_input(model, vol, None)
    np.testing.assert_array_equal(x, vol[2, 1:69, 1:89][None, None])


def _write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_foreign_and_broken_packages_get_clear_errors(tmp_path):
    foreign = _write_zip(
        tmp_path / "other.zip",
        {"rdf.yaml": b"type: model\nname: SomeoneElsesUNet\nformat_version: 0.5.4\nweights: {}\n"},
    )
    with pytest.raises(ModelFileError, match="not made by napari-structn2v"):
        load_model(foreign)
    dataset = _write_zip(tmp_path / "data.zip", {"rdf.yaml": b"type: dataset\nname: cells\n"})
    with pytest.raises(ModelFileError, match="not a model"):
        load_model(dataset)
    plain = _write_zip(tmp_path / "plain.zip", {"readme.txt": b"hello"})
    with pytest.raises(ModelFileError, match="not a bioimage.io model package"):
        load_model(plain)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"definitely not a zip")
    with pytest.raises(ModelFileError, match="not a readable bioimage.io package"):
        load_model(not_zip)
    assert not bmz.is_bmz_package(not_zip) and bmz.is_bmz_package(foreign)


def test_native_model_files_still_load(tmp_path):
    model = _model()
    path = model.save(tmp_path / "m.pt")
    assert not bmz.is_bmz_package(path)
    np.testing.assert_array_equal(load_model(path).mask, model.mask)


def test_export_without_usable_bioimageio_is_one_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bmz, "incompatibility", lambda: "BioImage Model Zoo export needs bioimageio.spec: pip install x")
    model_path = _model().save(tmp_path / "m.pt")
    assert main(["export-bmz", str(model_path), str(tmp_path / "out.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("structn2v: error: BioImage Model Zoo export needs") and "Traceback" not in err
    assert not (tmp_path / "out.zip").exists()


# -- with bioimageio.spec / bioimageio.core ---------------------------------------------------------
@needs_bmz
def test_export_core_test_import_same_prediction(tmp_path):
    model = _model()
    image = _image((70, 90))  # smaller than the 256 cap: used whole after cropping to 68 x 88
    out = bmz.export_bmz(model, tmp_path / "structn2v.zip", image=image, authors=["Test Author"])
    passed, report = bmz.test_bmz(out)
    assert passed, report

    with zipfile.ZipFile(out) as zf:
        names = set(zf.namelist())
        import yaml

        rdf = yaml.safe_load(zf.read("rdf.yaml"))
        test_in = np.load(io.BytesIO(zf.read("test_input.npy")))
        readme = zf.read("README.md").decode()
    assert {"rdf.yaml", "unet.py", "weights.pt", "weights_torchscript.pt", "cover.png", "README.md"} <= names
    assert rdf["format_version"].startswith("0.5")
    assert set(rdf["weights"]) == {"pytorch_state_dict", "torchscript"}
    assert rdf["weights"]["pytorch_state_dict"]["architecture"]["callable"] == "UNet"
    assert test_in.shape == (1, 1, 68, 88)
    out_axes = {a.get("id", a["type"]): a for a in rdf["outputs"][0]["axes"]}
    assert out_axes["y"]["halo"] == bmz.halo(model)[0] and out_axes["x"]["halo"] == bmz.halo(model)[1]
    pre = next(p for p in rdf["inputs"][0]["preprocessing"] if p["id"] == "scale_linear")
    assert pre["kwargs"]["gain"] == pytest.approx(1 / 800) and pre["kwargs"]["offset"] == pytest.approx(-100 / 800)
    assert {c["doi"] for c in rdf["cite"]} >= {"10.1109/ISBI45749.2020.9098336", "10.1109/CVPR.2019.00223"}
    assert rdf["config"]["napari_structn2v"]["training"]["steps_done"] == 7
    assert "## Validation" in readme

    loaded = load_model(out)
    assert loaded.axes == model.axes and loaded.config.training["steps_done"] == 7
    np.testing.assert_array_equal(loaded.mask, model.mask)
    other = _image((75, 130), seed=5)
    np.testing.assert_allclose(loaded.predict(other), model.predict(other), atol=1e-4, rtol=0)


@needs_bmz
def test_export_multichannel_and_cli(tmp_path, capsys):
    """Two channels (per-channel scale_linear), exported through the CLI with --test."""
    model = _model(channels=2, axes="CYX", depth=1)
    model_path = model.save(tmp_path / "two.pt")
    out = tmp_path / "two.zip"
    assert main(["export-bmz", str(model_path), str(out), "--author", "A. Person", "--name", "two channel test", "--test"]) == 0
    assert "bioimageio.core test: passed" in capsys.readouterr().out
    loaded = load_model(out)
    image = np.stack([_image((64, 72), seed=1), _image((64, 72), seed=2, lo=150, hi=1100)])
    np.testing.assert_allclose(loaded.predict(image, "CYX"), model.predict(image, "CYX"), atol=1e-4, rtol=0)
    # an existing package is never overwritten without --overwrite
    before = out.stat().st_mtime_ns
    assert main(["export-bmz", str(model_path), str(out)]) == 2
    assert "exists" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main(["export-bmz", str(model_path), str(tmp_path / "two.bin")]) == 2
    assert ".zip" in capsys.readouterr().err
    assert not any(p.name.endswith(".part") for p in tmp_path.iterdir())


@needs_bmz
def test_export_3d_cross_mask(tmp_path):
    model = untrained_model("ZYX", cross_mask(3, 3)[None], high=[1.0], training={"steps_done": 1}, spatial_ndim=3,
                            base_filters=4, depth=1)
    out = bmz.export_bmz(model, tmp_path / "vol.zip")  # default input: the synthetic 3D sample
    passed, report = bmz.test_bmz(out)
    assert passed, report
    vol = _image((20, 40, 36), lo=0, hi=1)
    np.testing.assert_allclose(load_model(out).predict(vol), model.predict(vol), atol=1e-4, rtol=0)


@needs_bmz
def test_export_multichannel_z_context(tmp_path):
    """Two channels, 2 slices of Z context: channel-major stacks and per-channel scale_linear agree
    between our prediction, the package (both weight formats) and the re-imported model."""
    model = untrained_model("CZYX", box_mask(5, 1), channels=2, low=[100.0, 150.0], high=[900.0, 1100.0], seed=1,
                            training={"steps_done": 1}, z_context=2, base_filters=4, depth=1, in_channels=2 * 5)
    image = np.stack([_image((6, 40, 44), seed=1), _image((6, 40, 44), seed=2, lo=150, hi=1100)])
    out = bmz.export_bmz(model, tmp_path / "ctx2.zip", image=image, axes="CZYX")
    passed, report = bmz.test_bmz(out)
    assert passed, report
    loaded = load_model(out)
    assert loaded.z_context == 2 and loaded.n_channels == 2
    other = np.stack([_image((5, 36, 52), seed=3), _image((5, 36, 52), seed=4, lo=150, hi=1100)])
    np.testing.assert_allclose(loaded.predict(other, "CZYX"), model.predict(other, "CZYX"), atol=1e-4, rtol=0)


# -- the Predict widget --------------------------------------------------------------------------
@pytest.fixture
def predict_widget(make_napari_viewer, qtbot, monkeypatch):
    pytest.importorskip("napari")
    from napari.utils import notifications

    notes: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    for kind in notes:
        monkeypatch.setattr(notifications, f"show_{kind}", lambda m, kind=kind: notes[kind].append(str(m)))
    viewer = make_napari_viewer()
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-structn2v", "Predict")
    qtbot.waitUntil(lambda: widget.devices_ready, timeout=60_000)
    return viewer, widget, notes


def test_widget_rejects_foreign_package_with_a_notification(predict_widget, tmp_path):
    _viewer, widget, notes = predict_widget
    foreign = _write_zip(tmp_path / "other.zip", {"rdf.yaml": b"type: model\nname: OtherNet\n"})
    assert not widget.export_button.isEnabled()  # no model yet
    assert widget.export_bmz(tmp_path / "x.zip") is None and "no model" in notes["error"][-1]
    assert not widget.load_model(foreign)
    assert "not made by napari-structn2v" in notes["error"][-1] and widget.state.model is None


@needs_bmz
def test_widget_exports_and_reopens_package(predict_widget, tmp_path, qtbot):
    viewer, widget, notes = predict_widget
    model = _model()
    widget.state.model = model
    assert widget.export_button.isEnabled()
    viewer.add_image(_image((80, 96), seed=4), name="img")
    widget.image_combo.set_layer("img")
    out = tmp_path / "from_widget.zip"
    assert widget.export_bmz(out) is not None
    assert not widget.export_button.isEnabled()  # one export at a time
    qtbot.waitUntil(lambda: widget._export_worker is None, timeout=120_000)
    assert not notes["error"], notes["error"]
    assert out.is_file() and str(out) in notes["info"][-1] and widget.export_button.isEnabled()
    with zipfile.ZipFile(out) as zf:
        assert np.load(io.BytesIO(zf.read("test_input.npy"))).shape == (1, 1, 80, 96)  # from the layer
    widget.state.model = None
    assert widget.load_model(out)
    img = _image((64, 64), seed=9)
    np.testing.assert_allclose(widget.state.model.predict(img), model.predict(img), atol=1e-4, rtol=0)
    # exporting onto the existing file without the dialog's confirmation fails with a notification
    assert widget.export_bmz(out) is not None
    qtbot.waitUntil(lambda: widget._export_worker is None, timeout=120_000)
    assert "exists" in notes["error"][-1]
