"""``structn2v info`` and ``structn2v export-bmz``: a model file described, or packaged for bioimage.io."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ._console import log


def add_export_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``export-bmz`` command and its options."""
    b = sub.add_parser("export-bmz", parents=[common], help="write a model as a BioImage Model Zoo package (bioimage.io, .zip)")
    b.add_argument("model", help="model file (.pt) from train")
    b.add_argument("out", help="package to write (.zip)")
    b.add_argument("--input", help="image for the test tensors and the cover (default: the synthetic sample)")
    b.add_argument("--axes", help="axes of --input (default: the model's, adapted)")
    b.add_argument("--name", help="model name shown in the zoo")
    b.add_argument("--author", action="append", help="author name (repeat for several)")
    b.add_argument("--license", default="CC-BY-4.0", help="SPDX license of the weights (default CC-BY-4.0)")
    b.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    b.add_argument("--test", action="store_true", help="run bioimageio.core's model test on the package (offline)")
    b.set_defaults(func=cmd_export_bmz)


def add_info_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """The ``info`` command and its options."""
    i = sub.add_parser("info", parents=[common], help="describe a model file; --loss-csv writes its loss history")
    i.add_argument("model", help="model file (.pt) or one of our bioimage.io packages (.zip)")
    i.add_argument("--loss-csv", help="write the loss history to this file (.csv: step,train_loss,val_loss)")
    i.add_argument("--overwrite", action="store_true", help="replace an existing --loss-csv file")
    i.set_defaults(func=cmd_info)


def model_summary(model: Any) -> str:
    """A few lines on a model: axes, network, mask, training provenance, stored loss history."""
    from ..method.masks import describe_mask

    arch = model.config.architecture
    tr = model.config.training if isinstance(model.config.training, dict) else {}
    hist = tr.get("history") or {}
    lines = [
        f"axes {model.axes}, {arch.spatial_ndim}D U-Net (depth {arch.depth}, {arch.base_filters} base filters, "
        f"{model.n_channels} channel(s){', N2V2' if arch.n2v2 else ''})",
        f"blind mask {describe_mask(model.mask)}",
    ]
    if tr:
        run = f"trained {tr.get('steps_done', '?')} steps{' (stopped early)' if tr.get('stopped') else ''}"
        if tr.get("final_loss") is not None:
            run += f", final loss {tr['final_loss']:.4g}"
        if hist.get("best_val_loss") is not None:
            run += f", best validation loss {hist['best_val_loss']:.4g} at step {hist.get('best_step')}"
        lines.append(run)
        lines.append(f"on {tr.get('device', '?')} in {tr.get('elapsed_s', '?')} s, {tr.get('date', '?')}")
    if hist.get("loss"):
        lines.append(f"loss history: {len(hist['loss'])} training and {len(hist.get('val_loss', []))} validation points "
                     "(--loss-csv FILE.csv writes them)")
    else:
        lines.append("loss history: none stored (a model from an older napari-structn2v)")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    from ..io.images import check_output
    from ..model import load_model
    from ..training.history import loss_history, save_loss_csv

    if args.loss_csv:  # before loading: a bad output name is reported at once
        check_output(args.loss_csv, option="--loss-csv", overwrite=args.overwrite,
                     protected={"the model file": args.model}, suffixes=(".csv",))
    model = load_model(args.model)
    if args.loss_csv:
        loss_history(model)  # a model without history: the error comes before the summary
    print(f"{args.model}: " + model_summary(model), flush=True)
    if args.loss_csv:
        path = save_loss_csv(model, args.loss_csv, overwrite=args.overwrite, option="--loss-csv")
        log.info("loss history written to %s", path)
    return 0


def cmd_export_bmz(args: argparse.Namespace) -> int:
    from ..bmz.export import export_bmz, test_bmz
    from ..model import load_model

    model = load_model(args.model)
    image = None
    if args.input:
        from ..io.images import read_image

        image = read_image(args.input)
    out = export_bmz(
        model, args.out, image=image, axes=args.axes, name=args.name, authors=args.author or ["napari-structn2v user"],
        license=args.license, overwrite=args.overwrite,
    )
    log.info("bioimage.io model package written to %s", out)
    if args.test:
        passed, report = test_bmz(out)
        print(f"bioimageio.core test: {'passed' if passed else 'FAILED'}")
        if not passed:
            print(report, file=sys.stderr)
            return 1
    return 0
