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
        if layer is not None and layer not in combo.choices:
            combo.refresh()  # a layer just inserted: another dock heard of it before this combo
        if layer is not None and layer in combo.choices:
            combo.value = layer
        elif not name and getattr(combo, "_nullable", False):
            combo.value = None

    combo.changed.connect(to_state)
    owner._listen(getattr(state.events, field), from_state)
    _follow_renames(owner, to_state)
    shared = getattr(state, field)
    if shared and find_layer(owner.viewer, shared) is not None:
        from_state(shared)
    else:
        to_state()


def share_layer_checklist(owner: Any, checklist: Any) -> None:
    """Keep a :class:`~._layers.LayerChecklist` (Train's images) and ``owner.state.image`` in step:
    checking layers makes the first of them the shared image; a shared image chosen elsewhere that
    is not checked becomes the only checked one (one that is, among several, changes nothing)."""
    state = owner.state

    def to_state() -> None:
        names = checklist.checked_names()
        if names:
            state.image = names[0]

    def from_state(name: str) -> None:
        layer = find_layer(owner.viewer, name) if name else None
        # by identity: during a rename the list may still show the old name
        if layer is not None and not any(checked is layer for checked in checklist.layers()):
            checklist.set_checked([name])

    checklist.checks_changed.connect(to_state)  # not on a refresh: a rename or a new layer is no choice
    owner._listen(state.events.image, from_state)
    if state.image and find_layer(owner.viewer, state.image) is not None:
        from_state(state.image)
    else:
        to_state()


def _follow_renames(owner: Any, to_state: Any) -> None:
    """A renamed layer keeps its place in the pickers; its new name goes to the state."""
    renamed = getattr(owner.viewer.layers.events, "renamed", None)  # napari >= 0.4.19
    if renamed is not None:
        owner._listen(renamed, lambda *_: to_state())
