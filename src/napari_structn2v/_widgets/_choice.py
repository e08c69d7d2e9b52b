"""One image choice for all docks: layer pickers kept in step with the shared state.

The image being denoised (and its dark frame) is chosen once, in any dock, and every other dock of
the viewer follows (``StructN2VState.image`` / ``.dark`` hold the layer names). Main thread only.
"""
from __future__ import annotations

from typing import Any

from ._layers import find_layer


def share_layer_choice(owner: Any, combo: Any, field: str) -> None:
    """Keep ``combo`` (a :class:`~._layers.LayerCombo`) and ``owner.state.<field>`` in step.

    A choice in the combo goes to the state; a choice made elsewhere (another dock) is shown here.
    An empty image combo (no layers yet) leaves the shared choice alone; an empty dark-frame combo
    clears it. ``owner`` is a dock with ``state``, ``viewer`` and ``_listen`` (connections to the
    state are released with the dock).
    """
    state = owner.state

    def to_state(*_: Any) -> None:
        layer = combo.layer()
        name = layer.name if layer is not None else ""
        if name or field != "image":
            setattr(state, field, name)

    def from_state(name: str) -> None:
        if name == combo.currentText():
            return
        layer = find_layer(owner.viewer, name) if name else None
        if layer is not None and layer in combo.choices:
            combo.value = layer
        elif not name and getattr(combo, "_nullable", False):
            combo.value = None

    combo.changed.connect(to_state)
    owner._listen(getattr(state.events, field), from_state)
    shared = getattr(state, field)
    if shared and find_layer(owner.viewer, shared) is not None:
        from_state(shared)
    else:
        to_state()


def share_layer_checklist(owner: Any, checklist: Any) -> None:
    """Keep a :class:`~._layers.LayerChecklist` (Train's images) and ``owner.state.image`` in step:
    the first checked layer is the shared image; a shared image not yet checked becomes the only
    checked one (several checked layers stay checked while the first of them is the shared one)."""
    state = owner.state

    def to_state() -> None:
        names = checklist.checked_names()
        if names:
            state.image = names[0]

    def from_state(name: str) -> None:
        names = checklist.checked_names()
        if name and (not names or names[0] != name) and find_layer(owner.viewer, name) is not None:
            checklist.set_checked([name])

    checklist.selection_changed.connect(to_state)
    owner._listen(state.events.image, from_state)
    if state.image and find_layer(owner.viewer, state.image) is not None:
        from_state(state.image)
    else:
        to_state()
