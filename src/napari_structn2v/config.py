"""Training configuration (a plain dataclass that checks itself; stored with every model).

Every field is checked on construction against :data:`RULES`, a table of one rule per field;
rules that tie several fields together live in :data:`CROSS_RULES`. A new field gets its rule by
adding one line to the table (``tests/test_config.py`` fails for a field without one).
"""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError, StructN2VError

#: a rule takes the field's name and value and returns the value in its stored form
#: (plain int/float/bool/tuple, so the config stays JSON-able) or raises ConfigError
Rule = Callable[[str, Any], Any]


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """An int (numpy integers accepted; bools and floats such as 2.5 refused) in ``[lo, hi]``."""

    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(name, f"must be an integer, got {value!r}")
        value = int(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(name, f"must be {_range_text(lo, hi)}, got {value}")
        return value

    check.bounds = (lo, hi)  # read by the settings table (napari_structn2v.settings)
    return check


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """A finite number in ``[lo, hi]`` (``lo_open``/``hi_open``: that end excluded)."""

    def check(name: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(name, f"must be a number, got {value!r}")
        value = float(value)
        bad = not math.isfinite(value)
        bad |= lo is not None and (value < lo or (lo_open and value == lo))
        bad |= hi is not None and (value > hi or (hi_open and value == hi))
        if bad:
            raise ConfigError(name, f"must be a finite number {_range_text(lo, hi, lo_open, hi_open)}, got {value}")
        return value

    check.bounds = (lo, hi)
    return check


def boolean() -> Rule:
    """True or False (numpy bools accepted; 0/1 and strings refused)."""

    def check(name: str, value: Any) -> bool:
        if type(value).__name__ not in ("bool", "bool_"):
            raise ConfigError(name, f"must be True or False, got {value!r}")
        return bool(value)

    return check


def choice(*options: str, lower: bool = True) -> Rule:
    """One of ``options`` (compared lower-cased when ``lower``)."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise ConfigError(name, f"must be one of {', '.join(map(repr, options))}, got {value!r}")
        v = value.lower() if lower else value
        if v not in options:
            raise ConfigError(name, f"must be one of {', '.join(map(repr, options))}, got {value!r}")
        return v

    check.options = options
    return check


def text() -> Rule:
    """A non-empty string."""

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(name, f"must be a non-empty string, got {value!r}")
        return value

    return check


def per_axis(lo: int, hi: int, *, odd: bool = False) -> Rule:
    """None, an int, or a sequence of 2 or 3 ints (one per spatial axis), each in ``[lo, hi]``."""
    one = integer(lo, hi)

    def check(name: str, value: Any) -> int | tuple[int, ...] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
        if isinstance(items, (str, bytes)) or not hasattr(items, "__len__") or len(items) not in (1, 2, 3):
            raise ConfigError(name, f"must be None, an integer or 2-3 integers (one per spatial axis), got {value!r}")
        out = tuple(one(name, v) for v in items)
        if odd and any(v % 2 == 0 for v in out):
            raise ConfigError(name, f"must be odd, got {value!r}")
        return out[0] if isinstance(value, numbers.Integral) else out

    return check


def optional(rule: Rule) -> Rule:
    """None, or a value that passes ``rule``."""

    def check(name: str, value: Any) -> Any:
        return None if value is None else rule(name, value)

    check.__dict__.update(rule.__dict__)  # the bounds or options of ``rule``
    return check


def _num(v: float) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


def _range_text(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{_num(lo)}, {_num(hi)}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {_num(lo)}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {_num(hi)}"
    return "valid"

_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(h|m|min|s|sec)?", re.IGNORECASE)
_UNIT_S = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in a duration such as ``90``, ``"90s"``, ``"3m"``, ``"1h"`` or ``"1m30s"``.

    Raises :class:`StructN2VError` for anything else, or for a duration that is not positive.
    """
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        s = str(text).strip().replace(" ", "")
        pos, seconds = 0, 0.0
        for m in _DURATION.finditer(s):
            if m.start() != pos:
                break
            seconds += float(m.group(1)) * _UNIT_S[m.group(2).lower() if m.group(2) else None]
            pos = m.end()
        if not s or pos != len(s):
            raise StructN2VError(f"cannot read the duration {text!r}; write e.g. 90, 90s, 3m, 1h or 1m30s")
    if not math.isfinite(seconds) or seconds <= 0:
        raise StructN2VError(f"the duration must be positive, got {text!r}")
    return seconds


@dataclass
class TrainConfig:
    """Settings of one StructN2V training run.

    Defaults follow the StructN2V paper where it is specific (2-level U-Net, doubling filters,
    ~2 % active pixels, Adam, percentile normalisation) and are sized for a laptop CPU otherwise.

    Attributes
    ----------
    steps : int or None
        Total optimiser steps. None: no step limit (``max_time_s`` must be set).
    max_time_s : float or None
        Wall-clock budget in seconds, validation and checkpoints included. With both budgets,
        training ends at whichever comes first, and the learning-rate schedule follows the
        budget that is further along (users think in minutes, not steps).
    patch_size : int
        Side of the square YX training patch (a multiple of ``2 ** depth``).
    patch_size_z : int
        Z side of 3D patches.
    batch_size : int
        Patches per step.
    lr : float
        Adam learning rate (peak, with ``schedule="cosine"``).
    schedule : {"constant", "cosine"}
        Learning-rate schedule over the budget (steps or time, whichever is further along):
        constant, or cosine decay to 5 % of ``lr`` at the end. Cosine from 1e-3 is the default:
        at 6000 steps on sparse2d_x (about the steps 210 s give on 2 cores) it scored 32.50 dB,
        against 32.17 for cosine from 4e-4, 31.93 for constant 4e-4 with weight averaging and
        31.52 for constant 4e-4 (with test-time flips; ``benchmarks/README.md``).
    masked_fraction : float
        Fraction of active (loss) pixels per patch: exactly ``round(fraction * pixels)``, one per
        cell of a grid (stratified). Refused when the blind masks around them would leave under
        1 % of the patch visible (:func:`check_masked_fraction`).
    replacement : {"segment", "random_pixel", "uniform"}
        What hidden pixels become (see :func:`~napari_structn2v.method.blindspot.blind_mask_batch`).
    val_fraction : float
        Share of each image (rows at the bottom) held out for validation; 0 disables it.
    val_every : int
        Steps between validation evaluations.
    seed : int
        Seed of every random choice (patches, active pixels, replacement values, init).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda:0"``, ``"mps"``.
    amp : bool
        Mixed precision: bfloat16 autocast on CUDA devices that have it (Ampere and later) and
        on CPUs with native bfloat16 (AVX-512 BF16 / AMX), where it nearly doubles the 2D
        training rate (373 -> 700 patches/s, batch 16 x 64^2, 2 threads); float16 autocast with
        loss scaling on older CUDA devices; ignored elsewhere (MPS: full precision).
    augment : bool
        Random flips and 90-degree turns in YX, each only when the blind mask is the same after
        it (a line keeps its flips, a square all eight, a diagonal the half turn and the
        transposes), applied after masking to input, target and loss weights together.
    preview_every : int
        Steps between :class:`~napari_structn2v.events.Preview` events (0: never).
    depth, base_filters, n2v2, norm, kernel_size, pool : U-Net architecture (see
        :class:`~napari_structn2v.nn.unet.UNetConfig`; None: 3-pixel kernels and 2x pooling).
    z_net : {"auto", "2d", "3d"}
        For data with a Z axis: ``"3d"`` trains a 3D network, ``"2d"`` a 2D network over the Z
        slices (Z becomes a sample axis and the mask its central YX plane), ``"auto"`` the 2D one
        when the blind mask does not extend along Z, i.e. the noise is independent across Z.
        At equal time on a CPU the 2D network wins there by far (see the README).
    z_context : int
        Neighbouring Z slices on each side that a 2D network over the slices also sees, as
        extra input channels (0: each slice alone). Used only when the noise is independent
        across Z (the blind mask has no Z extent), so the neighbours carry the signal but none
        of the hidden pixels' noise. Capped at what the shortest volume allows. One slice on
        each side is the default: on dev3d_y at 3000 steps it scored 28.63 dB against 27.60 for
        none (+TTA), and 2 or 3 slices gave 28.63 and 28.68 at a lower step rate.
    ema : float
        Decay of an exponential moving average of the weights (0: off). The model keeps the
        averaged weights, which smooths out the noise of the self-supervised gradient.
    pmin, pmax : float
        Percentiles mapped to 0 and 1 by the normalisation (per channel).
    """

    steps: int | None = 1500
    max_time_s: float | None = None
    patch_size: int = 64
    patch_size_z: int = 16
    batch_size: int = 16
    lr: float = 1e-3
    schedule: str = "cosine"
    masked_fraction: float = 0.02
    replacement: str = "segment"
    val_fraction: float = 0.1
    val_every: int = 100
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    augment: bool = True
    preview_every: int = 0
    depth: int = 2
    base_filters: int = 16
    n2v2: bool = False
    norm: str = "batch"
    ema: float = 0.0
    z_net: str = "auto"
    z_context: int = 1
    kernel_size: int | tuple[int, ...] | None = None
    pool: int | tuple[int, ...] | None = None
    pmin: float = 0.1
    pmax: float = 99.9

    def __post_init__(self) -> None:
        for f in fields(self):
            rule = RULES.get(f.name)
            if rule is not None:
                object.__setattr__(self, f.name, rule(f.name, getattr(self, f.name)))
        for check in CROSS_RULES:
            check(self)

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        d = asdict(self)
        for key in ("kernel_size", "pool"):
            if isinstance(d[key], tuple):
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Build from a dict, ignoring unknown keys (files from newer versions)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def _pmin_below_pmax(cfg: TrainConfig) -> None:
    if cfg.pmin >= cfg.pmax:
        raise ConfigError("pmin", f"must be below pmax, got pmin={cfg.pmin:g} and pmax={cfg.pmax:g}")


#: one rule per TrainConfig field. Bounds are what the code can run, not what is sensible:
#: the upper bounds only stop typos (a 10**9-step run is ~30 years on a laptop CPU).
RULES: dict[str, Rule] = {
    "steps": optional(integer(1, 10**9)),
    "max_time_s": optional(real(0, 10**7, lo_open=True)),  # 10**7 s: four months
    "patch_size": integer(4, 4096),
    "patch_size_z": integer(1, 1024),
    "batch_size": integer(1, 10**9),  # whether it fits in memory is checked by resources.py
    "lr": real(0, 1, lo_open=True),
    "schedule": choice("constant", "cosine"),
    "masked_fraction": real(0, 0.5, lo_open=True),  # at most half of each patch active; see check_masked_fraction
    "replacement": choice("segment", "random_pixel", "uniform"),
    "val_fraction": real(0, 0.5, hi_open=True),
    "val_every": integer(1),
    "seed": integer(0, 2**63 - 1),  # numpy and torch seeds are unsigned 64-bit
    "device": text(),
    "amp": boolean(),
    "augment": boolean(),
    "preview_every": integer(0),
    "depth": integer(1, 6),  # 6 poolings need patches >= 64 per axis already
    "base_filters": integer(1, 1024),
    "n2v2": boolean(),
    "norm": choice("batch", "group", "none"),
    "ema": real(0, 1, hi_open=True),
    "z_net": choice("auto", "2d", "3d"),
    "z_context": integer(0, 16),
    "kernel_size": per_axis(1, 31, odd=True),
    "pool": per_axis(1, 8),
    "pmin": real(0, 100),
    "pmax": real(0, 100),
}

#: the least share of each patch that the blind masks must leave visible to the network
MIN_VISIBLE = 0.01


def check_masked_fraction(fraction: float, mask_pixels: int) -> None:
    """Raise :class:`ConfigError` when ``fraction`` active pixels, each hiding a mask of
    ``mask_pixels``, would leave (about) no visible pixels: less than :data:`MIN_VISIBLE` of the
    patch, estimated as ``(1 - fraction) ** mask_pixels``. 0.5 with a 1x1 mask leaves half, 0.34
    with an 11x1 mask 1 %; the default 0.02 with 11x1 leaves 80 %."""
    visible = (1.0 - fraction) ** mask_pixels
    if visible < MIN_VISIBLE:
        most = 1.0 - MIN_VISIBLE ** (1.0 / mask_pixels)
        raise ConfigError("masked_fraction", f"{fraction:g} with a {mask_pixels}-pixel blind mask hides about "
                          f"{100 * (1 - visible):.4g} % of every patch, leaving nothing to learn from; use at most {most:.2g}")


def _some_budget(cfg: TrainConfig) -> None:
    if cfg.steps is None and cfg.max_time_s is None:
        raise ConfigError("steps", "and max_time_s are both None; give a step budget, a time budget, or both")


def _patch_fits_the_pooling(cfg: TrainConfig) -> None:
    """The U-Net halves the patch ``depth`` times (pooling ``pool`` in Y and X): its YX side must
    be a multiple of ``pool ** depth``, or training fails later (a 33-pixel patch at depth 2)."""
    pool = cfg.pool if cfg.pool is not None else 2
    yx = (pool, pool) if isinstance(pool, int) else tuple(pool)[-2:] if len(pool) > 1 else (pool[0], pool[0])
    multiple = math.lcm(*(p**cfg.depth for p in yx))
    if cfg.patch_size % multiple:
        why = f"pooling {yx[0]}" if yx[0] == yx[1] else f"pooling {yx[0]}x{yx[1]}"
        raise ConfigError("patch_size", f"must be a multiple of {multiple} ({why} at depth {cfg.depth}), got {cfg.patch_size}")


#: checks over several fields, run after the per-field rules
CROSS_RULES: list[Callable[[TrainConfig], None]] = [_pmin_below_pmax, _some_budget, _patch_fits_the_pooling]
