"""The package as PyPI serves it: metadata, version from one place, wheel contents, Qt6 first."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import napari_structn2v

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
SRC = Path(napari_structn2v.__file__).resolve().parent


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child python that imports the same napari_structn2v as this test."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC.parent), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def test_version_has_one_source():
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    attr = _pyproject()["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "napari_structn2v.__version__"
    parts = napari_structn2v.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:3])


def test_cli_version_prints_package_version():
    out = subprocess.run(
        [sys.executable, "-m", "napari_structn2v.cli", "--version"], capture_output=True, text=True, env=_env()
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"structn2v {napari_structn2v.__version__}"


def test_import_loads_no_torch_qt_or_bmz():
    code = (
        "import sys, napari_structn2v; "
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'qtpy', 'PyQt5', 'PyQt6', 'PySide6', 'napari', 'bioimageio', 'xarray')]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_license_and_metadata():
    project = _pyproject()["project"]
    assert project["license"] == "BSD-3-Clause"
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause" in text and "Neither the name of the copyright holder" in text
    classifiers = project["classifiers"]
    assert "Framework :: napari" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Operating System ::") for c in classifiers)
    # every supported minor version is declared, and only those
    py_versions = {c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")}
    assert py_versions == {"3.10", "3.11", "3.12"}
    assert project["requires-python"] == ">=3.10"
    # PEP 639: the SPDX expression replaces the license classifier
    assert not any(c.startswith("License ::") for c in classifiers)
    assert {"Homepage", "Bug Tracker", "Source Code"} <= set(project["urls"])


def test_dependencies_qt6_first_and_no_binding_at_runtime():
    project = _pyproject()["project"]
    bindings = ("pyqt5", "pyqt6", "pyside2", "pyside6")
    runtime = [d.lower() for d in project["dependencies"]]
    assert not any(d.startswith(bindings) for d in runtime), "a Qt binding in the runtime dependencies"
    assert not any(d.startswith("napari") for d in runtime)
    testing = [d.lower() for d in project["optional-dependencies"]["testing"]]
    assert any(d.startswith("pyqt6") for d in testing)
    assert not any(d.startswith("pyqt5") for d in testing)
    bmz = [d.lower() for d in project["optional-dependencies"]["bmz"]]
    assert any(d.startswith("bioimageio.core") for d in bmz)
    # the extras must not drag in torch: users pick the CPU or the CUDA build themselves
    assert not any(d.startswith("torch") for extra in ("bmz", "testing") for d in project["optional-dependencies"][extra])


def test_tox_has_a_qt_backend_axis():
    text = (ROOT / "tox.ini").read_text()
    envlist = next(line for line in text.splitlines() if line.startswith("envlist"))
    for backend in ("pyqt6", "pyqt5", "pyside6"):
        assert backend in envlist
        assert f"{backend}: QT_API = {backend}" in text


@pytest.mark.skipif(importlib.util.find_spec("PyQt6") is None, reason="PyQt6 not installed")
def test_qt_api_pyqt6_avoids_napari_pyqt5_deprecation():
    """Under QT_API=pyqt6 (CI, tox) qtpy and napari run on Qt6, so napari shows no PyQt5 warning."""
    code = (
        "import qtpy; from napari._qt import qt_main_window as m; "
        "print(qtpy.API_NAME, getattr(m, 'SHOW_QT_WARNING', False))"  # a napari without the flag warns never
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(QT_API="pyqt6"), timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["PyQt6", "False"]


def test_ruff_and_pre_commit_configured():
    ruff = _pyproject()["tool"]["ruff"]
    assert ruff["target-version"] == "py310"
    assert {"E", "F", "I", "UP", "B"} <= set(ruff["lint"]["select"])
    hooks = (ROOT / ".pre-commit-config.yaml").read_text()
    assert "ruff-pre-commit" in hooks


def _can_build_offline() -> bool:
    """``build --no-isolation`` needs build and the backend pyproject.toml asks for, installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("build")
        setuptools_major = int(version("setuptools").split(".")[0])
    except PackageNotFoundError:
        return False
    return setuptools_major >= 77


@pytest.mark.skipif(not _can_build_offline(), reason="needs 'build' and setuptools>=77 installed")
def test_wheel_contents(tmp_path):
    """The wheel holds the manifest, the torch-only U-Net source (BMZ architecture) and the
    license, and no tests; its metadata carries the version and the SPDX license."""
    out = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    (wheel,) = tmp_path.glob("napari_structn2v-*.whl")
    assert wheel.name.startswith(f"napari_structn2v-{napari_structn2v.__version__}-py3-none-any")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = zf.read(meta_name).decode()
    assert "napari_structn2v/napari.yaml" in names
    assert "napari_structn2v/nn/unet.py" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith("tests/") for n in names)
    assert f"Version: {napari_structn2v.__version__}" in meta
    assert "License-Expression: BSD-3-Clause" in meta
    assert "Provides-Extra: bmz" in meta


def test_package_import_is_light():
    code = (
        "import sys, napari_structn2v as s; assert 'torch' not in sys.modules; "
        "assert not any(m.startswith(('qtpy', 'PyQt5', 'napari.')) for m in sys.modules); "
        "s.parse_mask_spec('9x1'); assert 'torch' not in sys.modules; print(s.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_model_files_store_the_package_version(tiny_model, tmp_path):
    """A model file records the version that wrote it, the one ``structn2v --version`` and the wheel show."""
    from napari_structn2v import load_model

    path = tmp_path / "m.pt"
    tiny_model.save(path)
    assert load_model(path).config.training["napari_structn2v_version"] == napari_structn2v.__version__


def test_changelog_releases_the_package_version():
    """CHANGELOG.md (Keep a Changelog): an Unreleased section first, then the newest release is
    ``__version__``, and every release heading has its link."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\]", text, flags=re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert headings[1] == napari_structn2v.__version__
    for name in headings:
        assert re.search(rf"^\[{re.escape(name)}\]: https://", text, flags=re.MULTILINE), name
    dated = re.findall(r"^## \[[\d.]+\] - (\d{4}-\d{2}-\d{2})$", text, flags=re.MULTILINE)
    assert len(dated) == len(headings) - 1 and dated == sorted(dated, reverse=True)
