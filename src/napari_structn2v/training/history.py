"""The loss history a model carries in its training provenance, and its CSV export.

Training stores two curves under ``model.config.training["history"]``: ``"loss"`` (training loss)
and ``"val_loss"`` (validation loss), each a list of ``[step, loss]`` pairs with steps counted over
all runs of a resumed model. Long runs are thinned to at most :data:`MAX_POINTS` pairs by averaging
neighbouring points (so no step's loss is simply dropped). Torch-free: the CLI, the widgets and
scripts read it from any loaded model.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError

#: most (step, loss) pairs kept per curve in a model file (a 30 000-step run keeps every 15th mean)
MAX_POINTS = 2000
#: the CSV's header
CSV_COLUMNS = ("step", "train_loss", "val_loss")


def _pairs(values: Iterable[Sequence[float]]) -> list[list[float]]:
    """``[[int step, float loss], ...]`` from any pairs (JSON lists, tuples)."""
    return [[int(s), float(v)] for s, v in values]


def thin_curve(pairs: Iterable[Sequence[float]], limit: int = MAX_POINTS) -> list[list[float]]:
    """At most ``limit`` pairs: runs of ``k`` neighbours become (last step, mean loss) until they fit."""
    points = _pairs(pairs)
    if len(points) <= limit:
        return points
    k = -(-len(points) // limit)  # ceil
    thinned = []
    for i in range(0, len(points), k):
        group = points[i : i + k]
        thinned.append([group[-1][0], sum(v for _, v in group) / len(group)])
    return thinned


def _round(pairs: list[list[float]]) -> list[list[float]]:
    """Six significant digits: a 2000-point curve stays ~40 kB in the model's JSON."""
    return [[s, float(f"{v:.6g}")] for s, v in pairs]


def training_curves(
    losses: Sequence[float],
    steps_done: int,
    val_losses: Iterable[Sequence[float]] = (),
    earlier: Mapping[str, Any] | None = None,
) -> dict[str, list[list[float]]]:
    """The ``loss`` and ``val_loss`` curves for a model's provenance.

    ``losses`` are this run's per-step training losses (the last one at ``steps_done``),
    ``val_losses`` this run's ``(step, loss)`` validations, ``earlier`` the ``history`` of a
    resumed model (its curves come first).
    """
    earlier = earlier or {}
    first = steps_done - len(losses) + 1
    train = _pairs(earlier.get("loss", [])) + [[first + i, float(v)] for i, v in enumerate(losses)]
    val = _pairs(earlier.get("val_loss", [])) + _pairs(val_losses)
    return {"loss": _round(thin_curve(train)), "val_loss": _round(thin_curve(val))}


def loss_history(model: Any) -> dict[str, list[tuple[int, float]]]:
    """The ``{"loss": [(step, loss), ...], "val_loss": [...]}`` curves stored with ``model``.

    ``model`` is a :class:`~napari_structn2v.model.StructN2VModel` (or its training dict).
    Raises :class:`~napari_structn2v.errors.DataError` when the model has no loss history (trained
    before napari-structn2v stored it, or never trained).
    """
    training = model if isinstance(model, Mapping) else getattr(getattr(model, "config", None), "training", None)
    history = (training or {}).get("history") or {}
    if not history.get("loss"):
        raise DataError("the model has no loss history (it was saved by an older napari-structn2v, or never trained)")
    return {key: [(int(s), float(v)) for s, v in history.get(key, [])] for key in ("loss", "val_loss")}


def loss_csv_text(model: Any) -> str:
    """The loss history as CSV text: ``step,train_loss,val_loss``, one row per step with a value."""
    curves = loss_history(model)
    rows: dict[int, list[str]] = {}
    for column, key in ((1, "loss"), (2, "val_loss")):
        for step, value in curves[key]:
            rows.setdefault(step, ["", ""])[column - 1] = repr(value)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for step in sorted(rows):
        writer.writerow([step, *rows[step]])
    return out.getvalue()


def save_loss_csv(model: Any, path: str | Path, *, overwrite: bool = False, option: str = "loss CSV") -> Path:
    """Write the model's loss history to ``path`` (``.csv``, atomically); returns the path.

    Raises :class:`~napari_structn2v.errors.DataError` for a model without loss history and
    :class:`~napari_structn2v.errors.OutputError` for an existing file (without ``overwrite``),
    another extension than ``.csv`` or an unwritable folder.
    """
    from ..io.images import check_output, write_atomic

    text = loss_csv_text(model)  # first: no empty file for a model without history
    p = check_output(path, option=option, overwrite=overwrite, suffixes=(".csv",))
    return write_atomic(p, lambda fh: fh.write(text.encode("utf-8")), replace=None if overwrite else False)
