"""``structn2v analyze-noise``, and the blind mask of ``train --mask`` (a spec, a file, or ``auto``)."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from ._console import IMAGE_SUFFIXES, log

#: what :func:`~napari_structn2v.method.masks.save_mask` writes
MASK_SUFFIXES = (".npy", ".tif", ".tiff")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``analyze-noise`` command and its options."""
    a = sub.add_parser("analyze-noise", parents=[common], help="autocorrelation of pure noise and a suggested blind mask")
    a.add_argument("noise", help="TIFF of pure noise (dark frame) or an image with an empty region (--roi)")
    a.add_argument("--axes", help="axes over STCZYX (default: YX for 2D, ZYX for 3D)")
    a.add_argument(
        "--roi", action="append",
        help="region Y0:Y1,X0:X1 or Z0:Z1,Y0:Y1,X0:X1 holding only noise; repeat to pool several",
    )
    a.add_argument("--max-lag", type=int, default=16, help="largest lag shown (default 16)")
    a.add_argument("--out-autocorr", help="write the autocorrelation to this file (.tif, .tiff or .npy)")
    a.add_argument(
        "--out-mask", help="write the suggested mask to this file (.npy, .tif or .tiff), for train --mask FILE"
    )
    a.add_argument("--overwrite", action="store_true", help="replace an existing --out-autocorr / --out-mask file")
    a.set_defaults(func=cmd_analyze)


def _parse_roi(text: str, image: np.ndarray, axes: str) -> np.ndarray:
    """Crop ``image`` to ``Y0:Y1,X0:X1`` or ``Z0:Z1,Y0:Y1,X0:X1`` over its spatial axes."""
    from ..axes import spatial_axes

    sp = spatial_axes(axes)
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 3) or len(parts) > len(sp):
        raise DataError(f"--roi {text!r} must be Y0:Y1,X0:X1 (or Z0:Z1,Y0:Y1,X0:X1 for 3D data)")
    letters = sp[-len(parts):]
    index = [slice(None)] * image.ndim
    for letter, part in zip(letters, parts):
        try:
            a, b = (int(v) for v in part.split(":"))
        except ValueError:
            raise DataError(f"--roi part {part!r} is not of the form START:STOP with integers") from None
        size = image.shape[axes.index(letter)]
        if a >= b:
            raise DataError(f"--roi {letter} range {a}:{b} is empty; START must be below STOP")
        if a < 0:
            raise DataError(f"--roi {letter} range {a}:{b} starts before 0; positions count from 0 (the image spans 0:{size})")
        if b > size:
            raise DataError(f"--roi {letter} range {a}:{b} ends past the image, which spans 0:{size}")
        index[axes.index(letter)] = slice(a, b)
    return image[tuple(index)]


def _axes_for(image: np.ndarray, axes: str | None) -> str:
    from ..axes import guess_axes, validate_axes

    return validate_axes(axes, image.ndim) if axes else guess_axes(image.shape)


def cmd_analyze(args: argparse.Namespace) -> int:
    from ..io.images import check_output, read_image, write_image
    from ..noise.analysis import analyze_noise
    from ..prediction.predict import check_dtype, check_finite

    if args.max_lag < 1:
        raise ConfigError("max_lag", f"must be >= 1, got {args.max_lag}")
    if args.out_autocorr:
        check_output(
            args.out_autocorr, option="--out-autocorr", overwrite=args.overwrite,
            protected={"the noise image": args.noise}, suffixes=IMAGE_SUFFIXES,  # an autocorrelation is another kind of image
        )
        replace = bool(args.overwrite) and Path(args.out_autocorr).exists()
    if args.out_mask:
        protected = {"the noise image": args.noise, **({"--out-autocorr": args.out_autocorr} if args.out_autocorr else {})}
        check_output(args.out_mask, option="--out-mask", overwrite=args.overwrite, protected=protected, suffixes=MASK_SUFFIXES, store=False)
    image = read_image(args.noise)
    check_dtype(image, f"{args.noise}")
    check_finite(image, f"{args.noise}")
    axes = _axes_for(image, args.axes)
    regions = [_parse_roi(roi, image, axes) for roi in args.roi] if args.roi else [image]
    # a whole file is a dark frame or stack: look for a pattern that repeats in every frame too
    result = analyze_noise(regions if args.roi else image, axes=axes, max_lag=args.max_lag, dark=not args.roi)
    if args.out_autocorr:
        write_image(args.out_autocorr, result.autocorrelation, axes=result.axes, replace=replace)
        log.info("autocorrelation written to %s", args.out_autocorr)
    if args.out_mask:
        from ..method.masks import save_mask

        Path(args.out_mask).parent.mkdir(parents=True, exist_ok=True)
        save_mask(args.out_mask, result.mask)
        log.info("mask written to %s (train --mask %s)", args.out_mask, args.out_mask)
    elif result.spec is None:
        log.info("the suggested mask is not a box, so no WxH spec names it: --out-mask FILE saves it for train --mask FILE")
    shapes = ", ".join(str(r.shape) for r in regions)
    log.info("%s: %s %s, axes %s", args.noise, "regions" if len(regions) > 1 else "shape", shapes, axes)
    _warn(result)
    print(result.report(), flush=True)  # the result: its last line is the mask spec
    return 0


def _warn(result: object) -> None:
    """The reliability warnings of a noise analysis, one ``warning:`` line each on stderr."""
    for text in getattr(result, "warnings", []):
        log.warning("%s", text)


def dark_pattern(dark: str | None, axes: str):
    """The camera's fixed pattern in the dark frame(s) of ``train --dark`` (a
    :class:`~napari_structn2v.noise.fixed_pattern.FixedPattern`), or None without ``--dark``."""
    if not dark:
        return None
    from ..io.images import read_image
    from ..noise.fixed_pattern import estimate_fixed_pattern

    noise = read_image(dark)
    found = estimate_fixed_pattern(noise, axes if noise.ndim == len(axes) else None, image_axes=axes)
    log.info("%s", found.report())
    return found


def resolve_mask(spec: str, images: list[np.ndarray], axes: str, dark: str | None) -> np.ndarray:
    """The blind mask of ``train --mask``: a spec such as ``9x1``, a mask file, or ``auto`` (the mask a
    noise analysis of ``dark``, else of the first image's darkest, flattest tiles, suggests; see
    :func:`~napari_structn2v.pipeline.choose_mask`)."""
    from ..method.masks import describe_mask, load_mask, parse_mask_spec

    if spec.lower() == "auto":
        from ..io.images import read_image
        from ..pipeline import choose_mask

        noise = read_image(dark) if dark else None
        noise_axes = _dark_axes(noise, axes, dark) if dark else None
        chosen = choose_mask(images[0], axes, dark=noise, dark_axes=noise_axes, strict=False)
        log.info("mask auto: suggested %s from %s", describe_mask(chosen.mask), dark or chosen.source)
        _warn(chosen.analysis)
        return chosen.mask
    if Path(spec).is_file() or _names_a_file(spec):
        return load_mask(spec)  # a missing file: "mask file ... does not exist"
    return parse_mask_spec(spec)


def _names_a_file(spec: str) -> bool:
    """Whether ``--mask`` names a file rather than a ``WxH`` spec: a mask file's extension or a folder in it."""
    return Path(spec).suffix.lower() in (".npy", ".tif", ".tiff", ".txt") or "/" in spec or os.sep in spec


def _dark_axes(noise: np.ndarray, axes: str, dark: str) -> str:
    """The axes of the ``--dark`` noise for training on ``axes``: the same, or a stack of such
    frames (``S`` first) with one dimension more; anything else is named as the dark frame's fault."""
    from ..axes import dark_axes, frame_axes

    found = dark_axes(noise.ndim, axes)
    if found is not None:
        return found
    frame = frame_axes(axes)
    raise DataError(
        f"the dark frame {dark!r} has {noise.ndim} dimensions (shape {tuple(noise.shape)}); for training axes {axes} "
        f"give one {frame} frame ({len(frame)}D) or a stack of them ({len(frame) + 1}D)"
    )
