"""How the noise analysis is put in words: the report and the verdict (the picture is
``_acf_view``'s, drawn in the dock)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..method.masks import describe_mask


def report_text(analysis: Any) -> str:
    """The suggested mask, threshold and noise floor, and how reliable the estimate is."""
    return (
        f"Suggested mask: {describe_mask(analysis.mask)} (W x H{' x D' if analysis.mask.ndim == 3 else ''})\n"
        f"threshold {analysis.threshold:.3f}, noise floor {analysis.floor:.4f}\n"
        f"{getattr(analysis, 'reliability', lambda: '')()}"
    )


def verdict_text(analysis: Any) -> str:
    """What to make of an analysis: its reliability warnings, and the Z advice for 3D masks."""
    lines = [f"⚠ {w[0].upper()}{w[1:]}." for w in getattr(analysis, "warnings", [])]
    if not lines:
        lines.append("✓ Reliable: enough pixels, no signal detected.")
    fixed = getattr(analysis, "fixed_pattern", None)
    if fixed is not None and fixed.found:
        lines.append(f"Fixed pattern: {fixed.share:.0%} of a dark frame's variance repeats in every frame; "
                     f"Train subtracts it (the model stores it) and the mask is for the rest.")
    mask = np.asarray(analysis.mask)
    if mask.ndim == 3 and mask.shape[0] == 1 and analysis.autocorrelation.shape[0] > 1:
        # what the core does with such a mask (zcontext.network_mask): Train needs no other setting
        lines.append(
            f"The noise is independent across Z: Train fits a 2D network over the slices with the "
            f"{mask.shape[2]}x{mask.shape[1]} mask (faster than a 3D one); nothing to change."
        )
    return "\n".join(lines)
