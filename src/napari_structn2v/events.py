"""The typed events that long jobs yield (torch-free, so GUIs and scripts can import them cheaply).

Training (:func:`napari_structn2v.training.loop.train_iter`) yields :class:`TrainStep`,
:class:`Validation`, :class:`Preview` and finally :class:`TrainDone`; prediction
(:meth:`napari_structn2v.model.StructN2VModel.predict_iter`) yields :class:`TileDone` per tile and
finally :class:`PredictDone`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .model import StructN2VModel


@dataclass(frozen=True)
class TrainStep:
    """One optimiser step done."""

    step: int
    total_steps: int
    loss: float
    lr: float
    elapsed_s: float
    eta_s: float
    patches_per_s: float


@dataclass(frozen=True)
class Validation:
    """Validation loss (masked loss on fixed held-out patches with fixed masks)."""

    step: int
    val_loss: float
    best: bool


@dataclass(frozen=True)
class Preview:
    """The current model's output on the preview image (same shape, input intensity scale)."""

    step: int
    image: np.ndarray


@dataclass(frozen=True)
class TrainDone:
    """Training ended; ``stopped`` is True when ``should_stop`` ended it early."""

    model: StructN2VModel
    stopped: bool
    step: int


TrainEvent = TrainStep | Validation | Preview | TrainDone


@dataclass(frozen=True)
class TileDone:
    """One tile finished: ``data`` belongs at ``region`` of the output (in the input's axes)."""

    index: int
    total: int
    region: tuple[slice, ...]
    data: np.ndarray


@dataclass(frozen=True)
class PredictDone:
    """Prediction finished (``stopped``: ended early by ``should_stop``)."""

    image: np.ndarray
    stopped: bool = False
