"""The whole StructN2V pipeline in one call: choose the blind mask, train, denoise the image.

:func:`denoise_iter` is the generator (the napari dock's ``Auto-denoise`` runs it in a thread
worker, ``structn2v denoise`` drains it with a progress bar); :func:`denoise` drains it for
scripts. The mask comes from a dark frame when one is given, else from the darkest, flattest
tiles of the image itself (:func:`choose_mask`); a suggestion that the noise analysis calls
unreliable stops the pipeline (:class:`UnreliableNoiseError`) before any training, since a wrong
mask wastes the whole budget (too small: the correlated noise is learnt and kept; too large:
detail is lost).

Torch-free at import: torch is loaded when training starts. No Qt.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import DataError, StructN2VWarning
from .events import PredictDone, Preview, TileDone, TrainDone, TrainStep, Validation
from .method.masks import describe_mask

if TYPE_CHECKING:
    from .config import TrainConfig
    from .model import StructN2VModel
    from .noise.analysis import NoiseAnalysis

__all__ = [
    "DEFAULT_TIME_S", "DenoiseDone", "DenoiseResult", "MaskChosen", "UnreliableNoiseError",
    "choose_mask", "denoise", "denoise_iter", "too_few_steps",
]

#: default training budget (s): the README's "3 minutes is a good first run on a laptop"; on the
#: benchmarks' 2 CPU cores 210 s gave about 6000 steps, 32.50 dB on sparse2d_x (README, cosine row)
DEFAULT_TIME_S = 180.0
#: fewer training steps than this leave the default network worse than its input: on one dev2d_x
#: image (mask 11x1, CPU, default settings) 100 steps gave 0.4 dB below the noisy input, 200 steps
#: 9.7 dB above it (10, 25, 50 steps: 9.8, 8.7, 6.4 dB below)
MIN_STEPS = 200
#: what :func:`UnreliableNoiseError` advises by default (the CLI names its options instead)
ADVICE = "give a dark frame, draw a region that holds only noise, or pass the mask yourself"


@dataclass(frozen=True)
class MaskChosen:
    """The blind mask suggested for the image: the first event of :func:`denoise_iter`.

    ``analysis`` is :func:`~napari_structn2v.noise.analysis.analyze_noise`'s result (``mask``, ``spec``,
    ``reliable``, ``warnings``, ``report()``); ``source`` says what was analysed, in words;
    ``corners`` are the YX corners of the background tiles and ``tile`` their side (both None
    for a dark frame).
    """

    analysis: NoiseAnalysis
    source: str
    corners: list[tuple[int, int]] | None = None
    tile: int | None = None

    @property
    def mask(self) -> np.ndarray:
        """The suggested blind mask (bool, ``(H, W)`` or ``(D, H, W)``)."""
        return self.analysis.mask

    @property
    def spec(self) -> str | None:
        """The suggested mask as a ``WxH[xD]`` spec, e.g. ``"11x1"``; None for a shape that is not a box
        (a diagonal line: :func:`~napari_structn2v.method.masks.describe_mask` names any)."""
        return self.analysis.spec


@dataclass(frozen=True)
class DenoiseDone:
    """The last event of :func:`denoise_iter`.

    ``image`` is the denoised image (float32, the input's shape, axes and intensity scale), or
    None when a stop came before the first training step. ``model`` is the trained model (None
    likewise), ``analysis`` the :class:`MaskChosen` (None for a mask given explicitly).
    ``stopped`` is True when ``should_stop`` ended training or prediction early; a prediction
    stopped early leaves zeros in the tiles not yet done.
    """

    image: np.ndarray | None
    model: StructN2VModel | None
    analysis: MaskChosen | None
    stopped: bool = False


DenoiseEvent = MaskChosen | TrainStep | Validation | Preview | TrainDone | TileDone | PredictDone | DenoiseDone


@dataclass(frozen=True)
class DenoiseResult:
    """What :func:`denoise` returns: the denoised ``image``, the trained ``model`` (save it with
    ``model.save(path)``, reuse it with ``model.predict``), the mask's ``analysis`` (None for a
    mask given explicitly) and whether a stop ended the run early."""

    image: np.ndarray | None
    model: StructN2VModel | None
    analysis: MaskChosen | None
    stopped: bool = False


class UnreliableNoiseError(DataError):
    """The noise analysis of the image's background is not reliable and no dark frame was given.

    ``chosen`` is the unreliable :class:`MaskChosen` (to show the suggestion and its tiles
    anyway); :meth:`sentence` words the message with other advice (the CLI names its options).
    """

    def __init__(self, chosen: MaskChosen, advice: str = ADVICE) -> None:
        self.chosen = chosen
        super().__init__(self.sentence(advice))

    def sentence(self, advice: str) -> str:
        """One sentence: which suggestion, why it cannot be trusted, and ``advice``."""
        a = self.chosen.analysis
        why = "; ".join(a.warnings) or "the analysis is not reliable"
        return f"the blind mask {describe_mask(a.mask)} suggested by {self.chosen.source} cannot be trusted ({why}), so nothing was trained; {advice}"


def choose_mask(
    image: np.ndarray,
    axes: str,
    *,
    dark: np.ndarray | None = None,
    dark_axes: str | None = None,
    strict: bool = True,
) -> MaskChosen:
    """The blind mask the noise suggests for ``image``: from ``dark`` when given, else from the
    darkest, flattest tiles of ``image`` (:func:`~napari_structn2v.noise.background.find_background`).

    Parameters
    ----------
    image : np.ndarray
        The noisy image, with ``axes`` (over ``STCZYX``; finite real numbers).
    axes : str
        Axes of ``image``.
    dark : np.ndarray, optional
        A dark frame (pure noise of the same camera/scanner).
    dark_axes : str, optional
        Axes of ``dark``; default :func:`~napari_structn2v.axes.dark_axes`: ``axes`` when it has as
        many dimensions as ``image``, a frame of the image's spatial axes, or a stack of such frames
        (``SYX`` for 2D data); else ``YX`` (2D) or ``ZYX`` (3D).
    strict : bool
        Raise :class:`UnreliableNoiseError` when the background's suggestion is not reliable (a
        dark frame's is always used, its ``warnings`` kept in the analysis). ``False`` returns
        it anyway (``structn2v train --mask auto`` warns and trains).

    Returns
    -------
    MaskChosen
        The analysis, its source in words, and the background tiles' corners and side.
    """
    from .axes import dark_axes as axes_of_dark
    from .axes import validate_axes
    from .noise.analysis import analyze_noise, find_background

    ax = validate_axes(axes, np.ndim(image))
    if dark is not None:
        # a stack of 2D dark frames for 2D data is frames, not a volume (it gave a 3D mask that
        # training on the 2D data then refused)
        noise_axes = dark_axes if dark_axes is not None else axes_of_dark(np.ndim(dark), ax)
        # dark=True: a stack of dark frames also shows the camera's fixed pattern (removed before the
        # mask is read, carried as analysis.fixed_pattern); one frame gives the plain analysis
        return MaskChosen(analyze_noise(dark, axes=noise_axes, dark=True), "the dark frame")
    background = find_background(image, axes=ax)
    n, t = len(background.regions), background.tile
    chosen = MaskChosen(
        analyze_noise(background.regions, axes=background.axes),
        f"the {n} darkest, flattest {t}x{t} tiles of the image",
        corners=list(background.corners),
        tile=t,
    )
    if strict and not chosen.analysis.reliable:
        raise UnreliableNoiseError(chosen)
    return chosen


def too_few_steps(steps: int) -> str | None:
    """A warning sentence when ``steps`` steps of the default network are likely too few to improve
    on the input (fewer than :data:`MIN_STEPS`), else None."""
    if steps >= MIN_STEPS:
        return None
    return (f"only {steps} training step(s) ran, and the default network needs about {MIN_STEPS} to improve on "
            f"its input; give it more time (or a faster device)")


def _train_config(time_s: float | str, config: TrainConfig | None, preview: bool) -> TrainConfig:
    """``config``, or the default settings with a ``time_s`` budget (and the dock's preview rate)."""
    from .config import TrainConfig, parse_duration
    from .settings import SETTINGS

    if config is not None:
        return config
    preview_every = next(s for s in SETTINGS if s.field == "preview_every").dock_default if preview else 0
    return TrainConfig(steps=None, max_time_s=parse_duration(time_s), preview_every=preview_every)


class _StopAgain:
    """``should_stop`` for prediction after training: a stop that ended training is spent (the
    model so far still denoises the image); only a new one, after ``should_stop`` has returned
    False once, stops prediction. A caller with a persistent flag clears it on ``TrainDone`` to
    allow a second stop."""

    def __init__(self, should_stop: Callable[[], bool], spent: bool) -> None:
        self.should_stop = should_stop
        self.armed = not spent

    def __call__(self) -> bool:
        stop = bool(self.should_stop())
        if not self.armed:
            self.armed = not stop
            return False
        return stop


def denoise_iter(
    image: np.ndarray,
    axes: str,
    *,
    dark: np.ndarray | None = None,
    dark_axes: str | None = None,
    mask: np.ndarray | str | None = None,
    time_s: float | str = DEFAULT_TIME_S,
    config: TrainConfig | None = None,
    tta: bool | str = True,
    tile: int | Sequence[int] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview_image: np.ndarray | None = None,
    focus: Mapping[str, float] | Callable[[], tuple[Mapping[str, float] | None, Mapping[str, float] | None]] | None = None,
) -> Iterator[DenoiseEvent]:
    """Choose the mask, train on ``image`` and denoise it, yielding typed events.

    Parameters
    ----------
    image : np.ndarray
        The noisy image (axes ``axes``); it is both the training data and what is denoised.
    axes : str
        Axes over ``STCZYX``, e.g. ``"YX"``, ``"ZYX"``, ``"SYX"``.
    dark, dark_axes
        A dark frame for the mask, and its axes (see :func:`choose_mask`). A stack of dark frames
        in which the camera's fixed pattern shows (without ``mask``) also has the pattern
        subtracted in training and stored in the model (:func:`~napari_structn2v.noise.analysis.analyze_noise`
        with ``dark=True``).
    mask : np.ndarray or str, optional
        The blind mask (bool array or a ``WxH[xD]`` spec such as ``"9x1"``); skips the analysis.
    time_s : float or str
        Training budget: seconds or a duration such as ``"90s"``, ``"3m"`` (default 3 minutes).
    config : TrainConfig, optional
        All training settings, its budget included (``time_s`` is then not used).
    tta : bool or "half-turn"
        Average the flips that keep the mask's orientation in prediction (4x slower, ~0.3 dB better);
        ``"half-turn"``: only the identity and the 180-degree turn (2 passes).
    tile : int or sequence, optional
        Prediction tile side (default: :meth:`~napari_structn2v.model.StructN2VModel.predict_iter`'s).
    should_stop : callable, optional
        Returning True ends training; the model so far then denoises the image (unless no step
        ran). A new stop during prediction (``should_stop`` returning False once after training,
        then True; or True when training ended on its budget) ends prediction.
    preview_image : np.ndarray, optional
        Predicted during training as :class:`~napari_structn2v.events.Preview` events (axes
        ``axes`` without S and T); without ``config``, every 50 steps (the dock's rate).
    focus : mapping or callable, optional
        Which tiles are denoised first (axis letter -> data coordinate, e.g. ``{"Z": 15}``; see
        :func:`~napari_structn2v.prediction.tiling.plan_tiles`), or a callable returning ``(focus, near)``,
        called when prediction starts (a viewer's slice then, not when training started). The
        result does not depend on it.

    Yields
    ------
    MaskChosen (unless ``mask`` is given), then training's TrainStep, Validation, Preview and
    TrainDone, then prediction's TileDone and PredictDone, and finally :class:`DenoiseDone`.

    Raises
    ------
    UnreliableNoiseError
        No ``mask`` and no ``dark``, and the background's suggestion is not reliable.
    StructN2VError
        Any other bad input (axes, data, settings), before training starts.
    """
    from .axes import validate_axes

    ax = validate_axes(axes, np.ndim(image))
    cfg = _train_config(time_s, config, preview_image is not None)  # a bad budget fails before the analysis
    if not callable(focus):
        from .prediction.tiling import check_point

        check_point(focus, ax, "focus")  # before training, not after it
    from .prediction.predict import check_dtype, check_finite, check_tta  # torch from here on

    check_tta(tta)  # before training, not after it
    check_dtype(image)
    check_finite(image)
    if dark is not None:
        check_dtype(dark, "the dark frame")
        check_finite(dark, "the dark frame")
    chosen = None
    if mask is None:
        chosen = choose_mask(image, ax, dark=dark, dark_axes=dark_axes)
        mask = chosen.mask
        yield chosen
    fixed = chosen.analysis.fixed_pattern if chosen is not None else None
    pattern = fixed if fixed is not None and fixed.found else None  # a dark stack's repeating pattern
    done = yield from _train(image, ax, mask, cfg, should_stop, preview_image, pattern)
    if done.step == 0:  # stopped before the first step
        yield DenoiseDone(None, None, chosen, stopped=True)
        return
    predict_stop = _StopAgain(should_stop, spent=done.stopped) if should_stop is not None else None
    kwargs: dict[str, Any] = {"tile": tile} if tile is not None else {}
    kwargs["focus"], kwargs["near"] = focus() if callable(focus) else (focus, None)
    result, stopped = None, done.stopped
    for event in done.model.predict_iter(image, ax, device=cfg.device, tta=tta, should_stop=predict_stop, **kwargs):
        yield event
        if isinstance(event, PredictDone):
            result, stopped = event.image, stopped or event.stopped
    yield DenoiseDone(result, done.model, chosen, stopped=stopped)


def _train(image: np.ndarray, axes: str, mask: Any, cfg: TrainConfig, should_stop: Callable[[], bool] | None,
           preview_image: np.ndarray | None, fixed_pattern: Any = None) -> Iterator[Any]:
    """Yield :func:`~napari_structn2v.training.loop.train_iter`'s events; return its TrainDone."""
    from .training.loop import train_iter

    done = None
    for event in train_iter(image, axes, mask, cfg, should_stop=should_stop, preview_image=preview_image,
                            fixed_pattern=fixed_pattern):
        yield event
        if isinstance(event, TrainDone):
            done = event
    return done


def denoise(
    image: np.ndarray,
    axes: str,
    *,
    dark: np.ndarray | None = None,
    time: float | str = DEFAULT_TIME_S,
    mask: np.ndarray | str | None = None,
    config: TrainConfig | None = None,
    tta: bool | str = True,
    callback: Callable[[DenoiseEvent], None] | None = None,
    **kwargs: Any,
) -> DenoiseResult:
    """Denoise ``image`` with a StructN2V model trained on it: the mask from ``dark`` or the
    image's background, ``time`` of training (``180``, ``"90s"``, ``"3m"``), then prediction.

    Runs :func:`denoise_iter` to the end (its other keywords pass through: ``dark_axes``,
    ``tile``, ``should_stop``, ``preview_image``); ``callback`` sees every event. A dark frame
    whose analysis is not reliable is still used, with a
    :class:`~napari_structn2v.errors.StructN2VWarning` per reason; a time budget too short for a
    useful model (:func:`too_few_steps`) warns too.

    Examples
    --------
    >>> from napari_structn2v import denoise
    >>> result = denoise(noisy, "YX", time="3m")          # doctest: +SKIP
    >>> result.image, result.analysis.spec                # doctest: +SKIP
    >>> result.model.save("model.pt")                     # doctest: +SKIP
    """
    done = None
    for event in denoise_iter(image, axes, dark=dark, mask=mask, time_s=time, config=config, tta=tta, **kwargs):
        if callback is not None:
            callback(event)
        if isinstance(event, MaskChosen):
            for text in event.analysis.warnings:
                warnings.warn(f"{event.source}: {text}", StructN2VWarning, stacklevel=2)
        elif isinstance(event, TrainDone) and config is None and event.step and too_few_steps(event.step):
            warnings.warn(too_few_steps(event.step), StructN2VWarning, stacklevel=2)
        elif isinstance(event, DenoiseDone):
            done = event
    return DenoiseResult(done.image, done.model, done.analysis, done.stopped)
