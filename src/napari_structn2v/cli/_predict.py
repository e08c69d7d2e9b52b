"""``structn2v predict``: denoise files, folders or globs of images, streamed tile by tile."""
from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError
from ._console import IMAGE_SUFFIXES, Progress, log


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``predict`` command and its options."""
    r = sub.add_parser("predict", parents=[common], help="denoise images with a trained model (streamed tile by tile)")
    r.add_argument("model")
    r.add_argument("inputs", nargs="+", metavar="input",
                   help="image(s): .tif, .tiff, .npy, .zarr or .ome.zarr files, folders of them, or globs ('raw/*.tif')")
    where = r.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", help="denoised image to write for one input (.tif, .tiff, .npy, .zarr or .ome.zarr)")
    where.add_argument("--out-dir", help="folder for the denoised images of several inputs (same names as the inputs)")
    r.add_argument("--cluster", help="predict with dask: local:N (a LocalCluster of N workers) or tcp://HOST:PORT "
                   "(an existing dask scheduler); needs the big extra")
    r.add_argument("--axes", help="axes of INPUT (default: the model's, adapted)")
    r.add_argument("--tile", type=int, default=256)
    r.add_argument("--overlap", type=int, help="tile overlap (default: from the receptive field)")
    r.add_argument("--device", default="auto")
    add_tta_options(r)
    r.add_argument("--overwrite", action="store_true", help="replace an existing output (even the input)")
    r.set_defaults(func=cmd_predict)


def _expand_inputs(patterns: Sequence[str]) -> list[Path]:
    """Input paths from files, folders (their images, sorted) and globs (``'raw/*.tif'``)."""
    import glob

    from ..io.formats import image_format

    found: list[Path] = []
    for text in patterns:
        p = Path(text)
        if p.is_dir() and image_format(p) != "zarr":
            items = sorted(q for q in p.iterdir() if image_format(q) and not q.name.startswith("."))
            if not items:
                raise DataError(f"the folder {text!r} holds no images (.tif, .tiff, .npy, .zarr)")
            found += items
        elif not p.exists() and glob.has_magic(text):
            items = sorted(Path(q) for q in glob.glob(text) if image_format(q))
            if not items:
                raise DataError(f"no images match {text!r}")
            found += items
        else:
            found.append(p)  # a missing file is reported by open_image, naming it
    return list(dict.fromkeys(found))


def _predict_targets(args: argparse.Namespace, inputs: list[Path]) -> list[tuple[Path, bool]]:
    """One checked output per input (--out for one input, --out-dir DIR/<input name> for many),
    with whether it may be replaced at the end (--overwrite and a file there now: one that
    appears later is never replaced)."""
    from ..io.images import check_output, check_output_folder

    if args.out is not None:
        if len(inputs) != 1:
            raise DataError(f"--out names one output but {len(inputs)} inputs were given; use --out-dir for several")
        targets = [Path(args.out)]
    else:
        folder = check_output_folder(args.out_dir, option="--out-dir")
        targets = [folder / p.name for p in inputs]
        twice = sorted({t.name for t in targets if targets.count(t) > 1})
        if twice:
            raise DataError(f"several inputs are named {twice[0]!r}; they would overwrite each other in --out-dir")
    option = "--out" if args.out is not None else "--out-dir file"
    for src, dst in zip(inputs, targets):
        check_output(
            dst, option=option, overwrite=args.overwrite, inputs={"the input image": src},
            protected={"the model file": args.model, **{f"the input image {str(q)!r}": q for q in inputs if q != src}},
            suffixes=IMAGE_SUFFIXES,
        )
    return [(t, bool(args.overwrite) and t.exists()) for t in targets]


def cmd_predict(args: argparse.Namespace) -> int:
    from ..model import load_model

    inputs = _expand_inputs(args.inputs)
    targets = _predict_targets(args, inputs)
    model = load_model(args.model)
    client = None
    if args.cluster:
        from ..prediction.distributed import connect

        client = connect(args.cluster)
    try:
        for src, (dst, replace) in zip(inputs, targets):
            _predict_one(model, src, dst, args, client, replace=replace)
    finally:
        if client is not None:
            client.close()
    return 0


def _predict_one(model, src: Path, dst: Path, args: argparse.Namespace, client, *, replace: bool) -> None:
    """Denoise one input file into ``dst``, streaming tile by tile (or block by block on a cluster)."""
    from ..io.images import open_image, open_output
    from ..prediction.predict import TileDone

    opened = open_image(src)
    image = opened.data
    axes = args.axes
    if axes is None and opened.axes is not None and len(opened.axes) == image.ndim:
        axes = opened.axes  # the file says which axes it has (OME-Zarr, our TIFFs)
    axes = model.check_input(image, axes)
    t0 = time.perf_counter()
    with open_output(dst, image.shape, axes=axes, scale=opened.scale, replace=replace) as out, \
            Progress(src.name, "tile", quiet=args.quiet, lines=10) as progress:
        if client is not None:
            from ..prediction.distributed import predict_on_cluster

            for done, total in predict_on_cluster(model, image, axes, out, client, tile=args.tile, overlap=args.overlap,
                                                  tta=tta_choice(args)):
                progress.update(done, total, f"block {done}/{total}")
        else:
            events = model.predict_iter(
                image, axes, tile=args.tile, overlap=args.overlap, device=args.device, tta=tta_choice(args), check=False, out=out
            )
            for event in events:
                if isinstance(event, TileDone):
                    progress.update(event.index, event.total, f"tile {event.index}/{event.total}")
    dt = time.perf_counter() - t0
    size = int(np.prod(image.shape))
    log.info("denoised %s (axes %s) in %.1fs (%.2f MPix/s); written to %s", tuple(image.shape), axes, dt, size / dt / 1e6, dst)


def add_tta_options(parser: argparse.ArgumentParser) -> None:
    """``--no-tta`` and ``--half-turn`` (``predict`` and ``denoise``): the test-time averaging."""
    tta = parser.add_mutually_exclusive_group()
    tta.add_argument("--no-tta", action="store_true", help="one pass instead of the mean over the flips that keep the "
                     "mask's orientation (4x faster, about 0.3 dB worse)")
    tta.add_argument("--half-turn", action="store_true", help="two passes, the image and its 180-degree turn, instead of "
                     "the 4 flips (about 2x faster, 0.2-0.3 dB below them)")


def tta_choice(args: argparse.Namespace) -> bool | str:
    """The ``tta`` argument of prediction for ``--no-tta`` / ``--half-turn`` (default: the flips)."""
    if args.no_tta:
        return False
    return "half-turn" if args.half_turn else True
