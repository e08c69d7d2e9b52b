"""Reading a bioimage.io package written by :func:`~napari_structn2v.bmz.export.export_bmz`: whether a
file is one, and its model config and weights. Needs only torch and PyYAML (imported when a package is
read), neither bioimageio.spec nor napari; :func:`~napari_structn2v.model.load_model` opens packages
through it, and :mod:`~napari_structn2v.bmz.spec` writes the config under :data:`CONFIG_KEY`.
"""
from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

from ..errors import ModelFileError, StructN2VError

#: key under ``config`` in rdf.yaml that holds our model config (mask, normalisation, provenance)
CONFIG_KEY = "napari_structn2v"


class BMZError(StructN2VError):
    """A BioImage Model Zoo export or test failed, or its optional dependencies are missing."""


def is_bmz_package(path: str | os.PathLike) -> bool:
    """True if ``path`` is a zip archive holding a bioimage.io description (rdf.yaml)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return any(n in ("rdf.yaml", "bioimageio.yaml") or n.endswith(".bioimageio.yaml") for n in zf.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_package(path: str | os.PathLike, *, map_location: str = "cpu") -> tuple[str, dict, str]:
    """The parts of a package written by :func:`~napari_structn2v.bmz.export.export_bmz`: its model
    config as JSON, its weights and a label naming the file in messages
    (:func:`~napari_structn2v.model.model_from_parts` makes the model of them).

    The config is read from ``config.napari_structn2v`` of rdf.yaml and the weights from its
    ``pytorch_state_dict`` entry (loaded with ``weights_only=True``: no pickled code runs).

    Raises
    ------
    ModelFileError
        Not a bioimage.io package, a package from another tool, or a corrupt one.
    """
    import torch
    import yaml

    p = Path(path)
    label = repr(str(p))
    try:
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            rdf_name = next(
                (n for n in names if n in ("rdf.yaml", "bioimageio.yaml") or n.endswith(".bioimageio.yaml")), None
            )
            if rdf_name is None:
                raise ModelFileError(f"{label} is a zip archive but not a bioimage.io model package (no rdf.yaml)")
            rdf = yaml.safe_load(zf.read(rdf_name))
            if not isinstance(rdf, dict) or rdf.get("type") != "model":
                raise ModelFileError(f"{label} is a bioimage.io package but not a model")
            ours = (rdf.get("config") or {}).get(CONFIG_KEY)
            if not isinstance(ours, dict):
                raise ModelFileError(
                    f"{label} is a bioimage.io model ({rdf.get('name', 'unnamed')!r}) not made by napari-structn2v; "
                    "only packages exported by napari-structn2v can be opened here (run other zoo models "
                    "with bioimageio.core, deepImageJ or ilastik)"
                )
            source = ((rdf.get("weights") or {}).get("pytorch_state_dict") or {}).get("source")
            if isinstance(source, dict):  # a file description rather than a plain name
                source = source.get("source")
            if not isinstance(source, str) or source not in names:
                raise ModelFileError(f"{label}: the package lacks its pytorch_state_dict weights")
            state = torch.load(io.BytesIO(zf.read(source)), map_location=map_location, weights_only=True)
            if ours.get("z_context") and isinstance(state, dict):
                # a Z-context package's weights are ZContextUNet's: the U-Net is its submodule ``net``
                state = {n[len("net."):] if n.startswith("net.") else n: v for n, v in state.items()}
    except ModelFileError:
        raise
    except (OSError, zipfile.BadZipFile, yaml.YAMLError) as exc:
        raise ModelFileError(f"{label} is not a readable bioimage.io package ({type(exc).__name__})") from exc
    except Exception as exc:
        raise ModelFileError(f"{label}: cannot read the package's weights ({type(exc).__name__})") from exc
    return json.dumps(ours), state, label
