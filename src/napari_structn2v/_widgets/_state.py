"""Evented state shared by the dock widgets of one viewer.

The chosen blind mask flows from the noise widget and the mask designer to the training widget, and
the trained model from the training widget to the predict widget, through one
:class:`StructN2VState` per viewer (see :func:`get_state`). Widgets listen to ``state.events``.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psygnal import evented

if TYPE_CHECKING:
    import napari


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.shape(a) == np.shape(b) and np.array_equal(a, b))
    return a is b


@evented(
    equality_operators={"mask": _same, "suggested_mask": _same, "model": _same, "analysis": _same}
)
@dataclass
class StructN2VState:
    """What the widgets of one viewer share.

    Attributes
    ----------
    mask : np.ndarray or None
        The blind mask to train with: bool, ``(H, W)`` or ``(D, H, W)``, odd sides, centre set.
    suggested_mask : np.ndarray or None
        The last mask suggested by the noise analysis.
    analysis_source : str
        Name of the image layer whose noise was analysed last ("" if none); its autocorrelation
        layer is ``"<analysis_source> autocorrelation"``.
    analysis : NoiseAnalysis or None
        The last noise analysis (autocorrelation, profiles, suggested mask).
    model : StructN2VModel or None
        The model trained (or loaded) last.
    image : str
        Name of the image layer being denoised ("" if none): chosen once, in any dock, and
        followed by the others.
    dark : str
        Name of the dark-frame layer (pure noise) chosen for it ("" if none).
    """

    mask: Any = None
    suggested_mask: Any = None
    analysis_source: str = ""
    analysis: Any = None
    model: Any = None
    image: str = ""
    dark: str = ""


_STATES: weakref.WeakKeyDictionary[Any, StructN2VState] = weakref.WeakKeyDictionary()


def _unwrap(viewer: Any) -> Any:
    # napari hands plugins a PublicOnlyProxy; key the state on the viewer itself so that every
    # widget of the same viewer shares one state object.
    return getattr(viewer, "__wrapped__", viewer)


def get_state(viewer: napari.Viewer) -> StructN2VState:
    """The state shared by the widgets docked in ``viewer`` (created on first use)."""
    key = _unwrap(viewer)
    state = _STATES.get(key)
    if state is None:
        state = StructN2VState()
        _STATES[key] = state
    return state
