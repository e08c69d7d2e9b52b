"""Prediction with dask: any scheduler, from threads on a laptop to a SLURM cluster.

:func:`predict_dask` returns a lazy dask array built with ``map_overlap``: each block is predicted
with the network's halo (the receptive-field radius rounded up to the pooling multiple, the margin
:func:`~napari_structn2v.prediction.predict.predict_tiles` uses), and its chunks are the tiles' cores, so
the result equals tiled prediction. The model enters the graph once, as one delayed object, so a
distributed scheduler ships it to each worker once, not with every block.

dask (and ``distributed`` for :func:`connect`) are optional: the ``big`` extra.
"""
from __future__ import annotations

import logging
from collections.abc import Generator, Sequence
from typing import Any

import numpy as np

from ..axes import spatial_axes
from ..errors import ConfigError, StructN2VError
from .tiling import core_sizes, covering_tile, tile_geometry


def _import_dask():
    try:
        import dask
        import dask.array as da
    except ImportError as exc:
        raise StructN2VError("dask prediction needs dask: pip install 'napari-structn2v[big]'") from exc
    return dask, da


#: Z slices per block for models with Z context: a block of 16 plus 2 x 2 halo slices predicts
#: 20 slices to keep 16 (with 1 slice per block it would predict 5 to keep 1)
Z_CONTEXT_CHUNK = 16


def _predict_block(block: np.ndarray, model: Any, axes: str, margins: tuple[int, ...], tta: bool | str, device: str) -> np.ndarray:
    """Predict one overlapped block as a single tile (map_overlap trims the halo afterwards)."""
    import torch

    from .predict import predict_tiles, tta_transforms

    arch = model.config.architecture
    sp = spatial_axes(axes)[-arch.spatial_ndim:]
    tile = covering_tile([block.shape[axes.index(a)] for a in sp], margins, arch.multiple)
    dev = torch.device("cpu" if device == "auto" else device)
    model.net.to(dev)
    gen = predict_tiles(
        model.net, block, axes, low=np.asarray(model.config.low), high=np.asarray(model.config.high),
        multiple=arch.multiple, radius=arch.receptive_radius(), tile=tile, overlap=[2 * m for m in margins],
        device=dev, tta=tta_transforms(model.mask, tta), z_context=getattr(model, "z_context", 0),
    )
    result = None
    for event in gen:
        result = getattr(event, "image", result)
    return result


def _without_pattern(model: Any, array: Any, axes: str, da: Any) -> Any:
    """``array`` minus the model's camera fixed pattern, still lazy (dask arithmetic for a dask
    array, else read piece by piece); ``array`` itself when the model has none."""
    pattern = getattr(model.config, "fixed_pattern", None)
    if pattern is None:
        return array
    from ..noise.fixed_pattern import PatternSubtracted

    lazy = PatternSubtracted(array, axes, pattern)  # checks the size
    if not isinstance(array, da.Array):
        return lazy
    shape = [1] * len(axes)
    shape[lazy.iy], shape[lazy.ix] = pattern.shape
    return array.astype(np.float32) - pattern.reshape(shape)


def predict_dask(
    model: Any,
    array: Any,
    axes: str | None = None,
    *,
    tile: int | Sequence[int] = 256,
    overlap: int | Sequence[int] | None = None,
    tta: bool | str = True,
    device: str = "cpu",
    check: bool = True,
) -> Any:
    """Denoise ``array`` lazily: a dask array of the same shape, float32, computed block by block.

    Parameters
    ----------
    model : StructN2VModel
    array : array-like
        numpy, memmap, zarr or dask; not read here (except by the input checks, block by block).
    axes : str, optional
        The array's axes (default: the model's, adapted as in ``model.predict``).
    tile : int or sequence
        Block side including the halo, per spatial axis (an int: Y and X; Z capped at 32 + halo),
        as for tiled prediction; the blocks' cores are the tiles' cores.
    overlap, tta, device
        As for :meth:`StructN2VModel.predict_iter`.
    check : bool
        Run the model's input checks first (NaN, channels, axes, intensity range).

    Returns
    -------
    dask.array.Array
        Compute it with any scheduler (``.compute()``, ``.to_zarr(...)``, a distributed
        ``Client``); it equals ``model.predict(array, axes, tile=tile, ...)`` to float rounding.
    """
    dask, da = _import_dask()
    from .predict import check_tta

    tta = check_tta(tta)  # in the caller, not in every block on a worker
    arch = model.config.architecture
    ax = model.check_input(array, axes) if check else model.resolve_axes(len(array.shape), axes)
    margins, tiles = tile_geometry(arch.receptive_radius(), arch.multiple, tile, overlap)
    margins = tuple(margins)
    nd = arch.spatial_ndim
    sp = spatial_axes(ax)[-nd:]
    chunks = []
    for a, size in zip(ax, array.shape):
        if a in sp:
            d = sp.index(a)
            chunks.append(core_sizes(int(size), tiles[d], margins[d], arch.multiple[d]))
        elif a == "Z" and model.z_context:
            chunks.append(Z_CONTEXT_CHUNK)  # each block also predicts its Z halo: keep it a small share
        else:
            chunks.append(-1 if a == "C" else 1)
    array = _without_pattern(model, array, ax, da)
    if isinstance(array, da.Array):
        darr = array.rechunk(tuple(chunks))
    else:
        darr = da.from_array(array, chunks=tuple(chunks), asarray=False, fancy=False)
    # an axis in one block needs no halo (and dask refuses a halo longer than the axis)
    halo_of = dict(zip(sp, margins))
    if model.z_context:  # a 2D net over Z slices: Z is no network axis, but blocks need the neighbours
        halo_of["Z"] = model.z_context
    depth = {i: halo_of.get(a, 0) if len(darr.chunks[i]) > 1 else 0 for i, a in enumerate(ax)}
    shipped = dask.delayed(model, pure=True, traverse=False)  # one graph key: each worker gets it once
    return darr.map_overlap(
        _predict_block, depth=depth, boundary="none", trim=True, dtype=np.float32, meta=np.empty((0,) * len(ax), np.float32),
        model=shipped, axes=ax, margins=margins, tta=tta, device=device,
    )


def predict_on_cluster(
    model: Any, array: Any, axes: str, out: Any, client: Any, **kwargs
) -> Generator[tuple[int, int], None, None]:
    """Compute :func:`predict_dask` on ``client`` and write each finished block into ``out``
    here (any array-like: the output file need not be reachable from the workers); yields
    ``(blocks done, blocks in all)``."""
    from dask.array.core import slices_from_chunks
    from distributed import as_completed

    result = predict_dask(model, array, axes, check=False, **kwargs)
    regions = slices_from_chunks(result.chunks)
    blocks = result.to_delayed().ravel().tolist()
    futures = client.compute(blocks)
    where = {f.key: r for f, r in zip(futures, regions)}
    for done, future in enumerate(as_completed(futures), start=1):
        out[where[future.key]] = future.result()
        future.release()
        yield done, len(futures)


def connect(spec: str) -> Any:
    """A ``distributed.Client`` for ``local:N`` (a new LocalCluster of N single-threaded worker
    processes, closed with the client) or ``tcp://HOST:PORT`` (an existing scheduler; any dask
    address with a scheme). The address is checked first: a malformed one is a
    :class:`ConfigError`, a scheduler that refuses or does not answer within
    :data:`PROBE_S` seconds a :class:`StructN2VError`, instead of a traceback or a 30 s wait."""
    try:
        from distributed import Client
    except ImportError as exc:
        raise StructN2VError("--cluster needs dask.distributed: pip install 'napari-structn2v[big]'") from exc
    text = spec.strip()
    if text.startswith("local:"):
        n = text[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ConfigError("cluster", f"local:N needs a positive number of workers, got {spec!r}")
        # the nanny logs "Worker process still alive after 4.0 seconds, killing" (and heartbeats
        # to a closing scheduler log tracebacks) at every close: our own cluster's shutdown is no news
        return Client(n_workers=int(n), threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR)
    if "://" in text:  # tcp://, tls://, ucx://, inproc:// (a scheduler in this process)
        scheme = text.split("://", 1)[0].lower()
        if scheme in ("tcp", "tls"):
            _probe(*scheduler_address(text), text)
        try:
            return Client(text, timeout=30)
        except (OSError, ValueError, TypeError) as exc:
            raise StructN2VError(f"cannot reach the dask scheduler at {text}: {exc}") from exc
    raise ConfigError("cluster", f"must be local:N or tcp://HOST:PORT, got {spec!r}")


#: seconds a scheduler has to accept a connection before --cluster gives up (it answers in
#: milliseconds on a cluster network; the 30 s of distributed's own timeout only delayed the error)
PROBE_S = 5.0


def scheduler_address(text: str) -> tuple[str, int]:
    """``(host, port)`` of ``tcp://HOST:PORT`` (or ``tls://``); :class:`ConfigError` naming what is missing."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    host = parts.hostname
    if not host:
        raise ConfigError("cluster", f"{text!r} names no scheduler host; write tcp://HOST:PORT")
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rsplit(":", 1)[-1]
        raise ConfigError("cluster", f"{text!r} has the port {port_text!r}; a port is a number from 1 to 65535") from None
    if port is None or port == 0:
        raise ConfigError("cluster", f"{text!r} names no scheduler port; write tcp://HOST:PORT (dask's default port is 8786)")
    return host, port


def _probe(host: str, port: int, text: str) -> None:
    """Open and close one TCP connection to the scheduler, so that a wrong address fails at once."""
    import socket

    try:
        socket.create_connection((host, port), timeout=PROBE_S).close()
    except socket.gaierror as exc:
        raise StructN2VError(f"cannot reach the dask scheduler at {text}: unknown host {host!r}") from exc
    except ConnectionRefusedError as exc:
        raise StructN2VError(f"cannot reach the dask scheduler at {text}: connection refused (is a scheduler running there?)") from exc
    except TimeoutError as exc:
        raise StructN2VError(f"cannot reach the dask scheduler at {text}: no answer within {PROBE_S:g} s") from exc
    except OSError as exc:
        raise StructN2VError(f"cannot reach the dask scheduler at {text}: {exc.strerror or exc}") from exc
