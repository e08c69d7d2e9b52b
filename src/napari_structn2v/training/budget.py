"""How long training runs and how its learning rate follows: step and wall-clock budgets (torch-free)."""
from __future__ import annotations

import math
import time

from ..errors import StructN2VError


class Budget:
    """A step budget, a wall-clock budget, or both (whichever ends first)."""

    def __init__(self, steps: int | None, max_time_s: float | None):
        if steps is None and max_time_s is None:
            raise StructN2VError("give a step budget, a time budget, or both")
        self.steps, self.max_time_s = steps, max_time_s
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since the budget was made."""
        return time.perf_counter() - self.t0

    def progress(self, step: int) -> float:
        """Fraction of the budget used after ``step`` steps (the larger of steps and time)."""
        p = 0.0
        if self.steps is not None:
            p = step / max(1, self.steps)
        if self.max_time_s is not None:
            p = max(p, self.elapsed() / max(self.max_time_s, 1e-9))
        return min(1.0, p)

    def done(self, step: int) -> bool:
        """True once ``step`` steps or the time have used the whole budget."""
        return self.progress(step) >= 1.0

    def total_steps(self, step: int) -> int:
        """The step count the run will end at (an estimate under a time budget)."""
        p = self.progress(step)
        estimate = int(round(step / p)) if p > 0 else step
        return min(self.steps, estimate) if self.steps is not None else max(step, estimate)


def lr_factor(schedule: str, progress: float) -> float:
    """Learning-rate factor at ``progress`` (0 to 1 of the budget, steps or time)."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        t = min(1.0, max(0.0, progress))
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))
    raise StructN2VError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
