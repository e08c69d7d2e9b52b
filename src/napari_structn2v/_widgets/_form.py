"""The Train dock's setting widgets, built from the settings table (:mod:`napari_structn2v.settings`)."""
from __future__ import annotations

from typing import Any

from qtpy.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QSpinBox, QWidget

from ..settings import DOCK_SETTINGS, Setting
from ._devices import DeviceCombo

#: the time budget's units: range, single step and start value of the box in each. 1500 steps is
#: about 1-2 minutes on a laptop CPU, so 3 minutes is a good first budget; seconds allow a 30 s
#: first try (a minute was the least before)
TIME_UNITS = {"seconds": (5, 24 * 3600, 15, 30), "minutes": (1, 24 * 60, 1, 3)}
SECONDS_PER = {"seconds": 1.0, "minutes": 60.0}


def spin_box(lo: float, hi: float, value: float, *, step: float | None = None,
             decimals: int | None = None) -> QSpinBox | QDoubleSpinBox:
    """A QSpinBox (``decimals`` None) or QDoubleSpinBox over ``[lo, hi]`` set to ``value``."""
    if decimals is None:
        box = QSpinBox()
        box.setRange(int(lo), int(hi))
        box.setValue(int(value))
        if step:
            box.setSingleStep(int(step))
    else:
        box = QDoubleSpinBox()
        box.setDecimals(decimals)
        box.setRange(lo, hi)
        box.setValue(value)
        if step:
            box.setSingleStep(step)
    return box


def _widget(s: Setting) -> QWidget:
    """The widget of one setting, at the dock's start value."""
    if s.kind == "bool":
        widget = QCheckBox(s.label)
        widget.setChecked(s.start)
    elif s.kind == "choice":
        widget = QComboBox()
        widget.addItems(s.choices)
        widget.setCurrentText(s.start)
    elif s.kind == "device":
        widget = DeviceCombo(warm_training=True)  # lists the devices once torch is imported in the background
        widget.setCurrentText(s.start)
    elif s.kind in ("int", "float", "budget"):
        widget = spin_box(*s.limits, s.start, step=s.step, decimals=s.decimals)
    else:
        raise ValueError(f"the dock cannot show a {s.kind!r} setting ({s.field})")
    if s.tooltip:
        widget.setToolTip(s.tooltip)
    return widget


def set_time_unit(box: QSpinBox, unit: str) -> None:
    """Give a budget box the range, single step and start value of a :data:`TIME_UNITS` unit."""
    lo, hi, step, start = TIME_UNITS[unit]
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setValue(start)


class SettingsForm:
    """One widget per setting the Train dock shows; :meth:`values` reads them back.

    ``widgets`` maps each setting's dock attribute (``steps``, ``patch``, ``lr``, ...) to its widget.
    The step budget comes with ``budget_unit``: in minutes it sets ``max_time_s`` instead of ``steps``.
    """

    def __init__(self, settings: tuple[Setting, ...] = DOCK_SETTINGS) -> None:
        self.settings = settings
        self.widgets: dict[str, QWidget] = {s.name: _widget(s) for s in settings}
        self.budget_unit = QComboBox()
        self.budget_unit.addItems(["steps", *TIME_UNITS])
        self.budget_unit.setToolTip(
            "Seconds or minutes: train until the time is up (validation included); the learning-rate schedule "
            "follows the time"
        )
        self.budget_unit.currentTextChanged.connect(self._budget_unit_changed)

    def add_rows(self, form: QFormLayout, *, advanced: bool) -> None:
        """Add the main (or the *Advanced*) settings to ``form``, in the table's order."""
        for s in self.settings:
            if s.advanced != advanced:
                continue
            widget = self.widgets[s.name]
            if s.kind == "budget":
                row = QHBoxLayout()
                row.addWidget(widget, 1)
                row.addWidget(self.budget_unit)
                form.addRow(s.label, row)
            elif s.kind == "bool":
                form.addRow(widget)  # a check box carries its own label
            else:
                form.addRow(s.label, widget)

    def values(self) -> dict[str, Any]:
        """The TrainConfig keywords set in the form."""
        values: dict[str, Any] = {}
        for s in self.settings:
            widget = self.widgets[s.name]
            if s.kind == "budget":
                per = SECONDS_PER.get(self.budget_unit.currentText())
                values[s.field] = None if per else int(widget.value())
                values["max_time_s"] = float(widget.value()) * per if per else None
            elif s.kind == "bool":
                values[s.field] = widget.isChecked()
            elif s.kind in ("choice", "device"):
                values[s.field] = widget.currentText()
            else:
                values[s.field] = widget.value()
        return values

    def _budget_unit_changed(self, unit: str) -> None:
        for s in self.settings:
            if s.kind != "budget":
                continue
            box = self.widgets[s.name]
            if unit in TIME_UNITS:
                set_time_unit(box, unit)
            else:
                box.setRange(*s.limits)
                box.setSingleStep(s.step)
                box.setValue(s.start)
