"""Signal connections recorded where they are made and released in one place.

The shared state and the viewer's layer list outlive a dock widget, so every slot a widget connects
to them is recorded in a :class:`Connections` and disconnected when the widget goes
(:class:`~napari_structn2v._widgets._worker.CleanupMixin` releases the widget's own). Widgets'
signals between their own Qt children die with them and are not recorded.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

_log = logging.getLogger(__name__)


def disconnect_quietly(emitter: Any, slot: Callable) -> None:
    """Disconnect ``slot`` from ``emitter`` at teardown; an emitter already gone is logged at debug.

    psygnal and napari's emitters tolerate a slot that is no longer connected; a Qt signal raises
    TypeError for it, and RuntimeError when its C++ object was deleted with the viewer.
    """
    try:
        emitter.disconnect(slot)
    except Exception as exc:  # noqa: BLE001 - teardown: the viewer may be gone, nothing to tell the user
        _log.debug("not disconnecting %r: %s: %s", slot, type(exc).__name__, exc)


class Connections:
    """The connections one owner made to emitters that outlive it, released together."""

    def __init__(self) -> None:
        self._made: list[tuple[Any, Callable]] = []

    def connect(self, emitter: Any, slot: Callable) -> None:
        """Connect ``slot`` to ``emitter`` (a psygnal, napari or Qt signal) and record it."""
        emitter.connect(slot)
        self._made.append((emitter, slot))

    def release(self) -> None:
        """Disconnect everything recorded (latest first); safe to call again."""
        made, self._made = self._made, []
        for emitter, slot in reversed(made):
            disconnect_quietly(emitter, slot)

    def __len__(self) -> int:
        return len(self._made)
