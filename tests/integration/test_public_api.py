"""The public API: every name of ``napari_structn2v.__all__`` resolves to the object its module
defines, and the lazy table (what runs) names the modules the ``TYPE_CHECKING`` imports (what type
checkers and the API reference read) name. The modules moved into subpackages in 0.2 (issue 20)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import napari_structn2v

NAMES = [n for n in napari_structn2v.__all__ if n != "__version__"]


@pytest.mark.parametrize("name", NAMES)
def test_every_public_name_resolves(name):
    obj = getattr(napari_structn2v, name)
    module = importlib.import_module(f"napari_structn2v.{napari_structn2v._LAZY[name]}")
    assert getattr(module, name) is obj
    assert obj.__module__.startswith("napari_structn2v.")


def test_the_lazy_table_matches_the_type_checking_imports():
    tree = ast.parse(Path(napari_structn2v.__file__).read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    imported = {a.name: node.module for node in block.body for a in node.names}
    assert imported == {name: napari_structn2v._LAZY[name] for name in NAMES}
