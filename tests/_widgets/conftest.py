"""Fixtures of the widget tests: a real napari viewer, and the notifications it would show."""
from __future__ import annotations

import pytest


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


@pytest.fixture
def notes(monkeypatch):
    """Record error/warning notifications instead of showing them."""
    from napari.utils import notifications

    seen: dict[str, list[str]] = {"error": [], "warning": [], "info": []}
    monkeypatch.setattr(notifications, "show_error", lambda m: seen["error"].append(str(m)))
    monkeypatch.setattr(notifications, "show_warning", lambda m: seen["warning"].append(str(m)))
    monkeypatch.setattr(notifications, "show_info", lambda m: seen["info"].append(str(m)))
    return seen
