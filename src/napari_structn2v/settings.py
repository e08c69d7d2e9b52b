"""The user-facing training settings, declared once.

:data:`SETTINGS` is one row per :class:`~napari_structn2v.config.TrainConfig` field that a user can
set: its label in the Train dock (``_widgets/_form.py`` builds the dock's form from it) and its
option of ``structn2v train`` (``cli/_train.py`` builds the options from it). Neither side types a
default or a list of choices: defaults are TrainConfig's dataclass defaults, choices those of the
field's rule in :data:`~napari_structn2v.config.RULES`. The dock's spin-box ranges are narrower than
the rules (what is sensible to offer, and what a Qt spin box holds); ``tests/test_settings.py``
checks that they lie inside the rules' bounds. Torch-free and Qt-free.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .config import RULES, TrainConfig

#: kinds of setting. "budget": the step budget (the dock pairs it with a steps/minutes unit, whose
#: minutes set ``max_time_s``; the CLI leaves it unset when ``--time`` is given); "duration": a time
#: budget the CLI reads with :func:`~napari_structn2v.config.parse_duration`; "device": a torch device
#: name (the dock offers the devices found)
KINDS = ("int", "float", "choice", "bool", "device", "budget", "duration")

_DEFAULTS = {f.name: f.default for f in fields(TrainConfig)}


@dataclass(frozen=True)
class Setting:
    """How one TrainConfig field is shown in the Train dock and on the ``train`` command line.

    ``label``: the dock's row label (a check box's text for ``"bool"``); empty when the dock does
    not show the field. ``flags``: the CLI option(s); empty when the CLI has none. ``help``: the CLI
    help, where ``{default}`` stands for TrainConfig's default. ``limits``, ``step`` and
    ``decimals``: the dock's spin box (``decimals`` only for floats). ``attr``: the dock's attribute
    holding the widget (the field name unless given). ``dock_default``: a start value in the dock
    that deliberately differs from TrainConfig's (None: TrainConfig's).
    """

    field: str
    kind: str
    label: str = ""
    flags: tuple[str, ...] = ()
    help: str | None = None
    tooltip: str = ""
    limits: tuple[float, float] | None = None
    step: float | None = None
    decimals: int | None = None
    advanced: bool = False
    attr: str = ""
    dock_default: Any = None

    @property
    def default(self) -> Any:
        """TrainConfig's default of the field."""
        return _DEFAULTS[self.field]

    @property
    def start(self) -> Any:
        """The value the dock starts with."""
        return self.default if self.dock_default is None else self.dock_default

    @property
    def name(self) -> str:
        """The dock's attribute for the widget."""
        return self.attr or self.field

    @property
    def dest(self) -> str:
        """argparse's attribute for the option (from the first flag, as argparse derives it)."""
        return self.flags[0].lstrip("-").replace("-", "_")

    @property
    def choices(self) -> tuple[str, ...]:
        """The values of a ``"choice"`` setting, from the field's rule in config.RULES."""
        return tuple(RULES[self.field].options)

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """(lo, hi) of the field's rule in config.RULES (None: unbounded)."""
        return RULES[self.field].bounds

    @property
    def cli_help(self) -> str | None:
        """The CLI help with the default filled in."""
        return None if self.help is None else self.help.format(default=self.default)


#: in the order of the dock's form (main settings, then *Advanced*); the CLI lists them in this order too
SETTINGS: tuple[Setting, ...] = (
    Setting("steps", "budget", "Train for", ("--steps",),
            "optimiser steps (default {default} without --time; with --time: no step limit)",
            tooltip="The budget: optimiser steps, or minutes of wall-clock time", limits=(1, 1_000_000), step=100),
    Setting("max_time_s", "duration", "", ("--time",),
            "wall-clock budget: 90, 90s, 3m, 1h, 1m30s (with --steps: whichever ends first)"),
    Setting("patch_size", "int", "Patch (YX)", ("--patch",), "YX patch side (default {default})",
            limits=(8, 1024), step=8, attr="patch"),
    Setting("patch_size_z", "int", "Patch (Z)", ("--patch-z",), "Z patch side for 3D (default {default})",
            limits=(4, 256), step=4, attr="patch_z"),
    Setting("batch_size", "int", "Batch", ("--batch",), "patches per step (default {default})",
            limits=(1, 1024), attr="batch"),
    # the rule excludes 0.5 (half the data would be held out); the box steps by 0.05
    Setting("val_fraction", "float", "Validation fraction", ("--val-fraction",),
            limits=(0.0, 0.45), step=0.05, decimals=2),
    Setting("device", "device", "Device", ("--device",), "auto, cpu, cuda, cuda:N or mps"),
    # the dock shows a live preview unless asked not to; scripts and the CLI have no use for one
    Setting("preview_every", "int", "Preview every", tooltip="Steps between preview updates (0: no preview)",
            limits=(0, 100_000), step=10, dock_default=50),
    # Advanced
    Setting("lr", "float", "Learning rate", ("--lr",), "Adam learning rate (default {default:g})",
            limits=(1e-6, 1.0), step=1e-4, decimals=6, advanced=True),
    Setting("schedule", "choice", "", ("--schedule",), "learning-rate schedule over the budget (default {default})",
            advanced=True),
    Setting("masked_fraction", "float", "Masked fraction", limits=(0.001, 0.5), step=0.005, decimals=3,
            advanced=True),
    Setting("depth", "int", "U-Net depth", ("--depth",), limits=(1, 5), advanced=True),
    Setting("base_filters", "int", "Base filters", ("--filters",),
            "base filters of the U-Net (default {default}, doubling per level)", limits=(4, 256), step=8,
            advanced=True),
    Setting("n2v2", "bool", "N2V2 (blur-pool, no top skip)", ("--n2v2",),
            "N2V2 variant (blur-pool, no top skip connection)", advanced=True),
    Setting("seed", "int", "Seed", ("--seed",), limits=(0, 2**31 - 1), advanced=True),
    Setting("amp", "bool", "Mixed precision (float16 on CUDA, bfloat16 on CPUs that have it)", advanced=True),
    Setting("z_net", "choice", "Network for volumes", ("--z-net",),
            "data with Z: a 2D network over the slices or a 3D one (auto: 2D when the mask does not extend along Z)",
            tooltip="For data with a Z axis. auto: a 2D network over the Z slices when the blind mask does not "
            "extend along Z (noise independent across Z), else a 3D network", advanced=True),
    Setting("z_context", "int", "Neighbour slices (2D net)", ("--z-context",),
            "2D network over Z slices: neighbouring slices on each side it also reads (default {default})",
            tooltip="2D network over Z slices: neighbouring slices on each side it also reads (their noise is "
            "independent, their signal is not). 0: each slice alone", limits=(0, 8), advanced=True),
    Setting("augment", "bool", "Flip/rotate augmentation", advanced=True),
    Setting("val_every", "int", "Validate every", limits=(1, 100_000), step=10, advanced=True),
)

#: the settings the Train dock shows, and those ``structn2v train`` has options for
DOCK_SETTINGS = tuple(s for s in SETTINGS if s.label)
CLI_SETTINGS = tuple(s for s in SETTINGS if s.flags)


def option_of() -> dict[str, str]:
    """The CLI option of each TrainConfig field that has one (to name it in error messages)."""
    return {s.field: s.flags[0] for s in CLI_SETTINGS}

