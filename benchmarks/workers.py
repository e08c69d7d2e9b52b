"""Throughput of predict_dask vs workers (issue 10): threads, LocalCluster of 1 and 2 workers.

A synthetic float32 zarr volume is denoised by a small 3D network (untrained weights: speed does
not depend on training), once in a single process (``model.predict``, the reference) and then
with :func:`~napari_structn2v.predict_dask` on each scheduler. Every result must equal the
reference to 1e-5 (asserted). Cluster rows run twice on the same cluster: the first run includes
the workers' imports and the model's shipping, the second is the steady state.

    python benchmarks/workers.py                       # 32 x 1024 x 1024, tile 256
    python benchmarks/workers.py --shape 16 256 256    # a quick check

Writes ``results/workers.md`` and ``results/workers.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-5  # the issue's bound for predict_dask against single-process prediction


def _model():
    import torch

    from napari_structn2v.method.masks import box_mask
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig

    torch.manual_seed(0)
    arch = UNetConfig(spatial_ndim=3, in_channels=1, out_channels=1, base_filters=4, depth=2)
    return StructN2VModel(UNet(arch).eval(), new_model_config("ZYX", box_mask(1, 3, 1), [0.0], [1.0], arch, {}))


def _timed(fn) -> tuple[np.ndarray, float]:
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def _cluster_run(model, src, tile: int, client) -> np.ndarray:
    """One run as the CLI's ``--cluster`` does it: each block written here as it arrives."""
    from napari_structn2v.prediction.distributed import predict_on_cluster

    out = np.zeros(src.shape, np.float32)
    for _ in predict_on_cluster(model, src, "ZYX", out, client, tile=tile, tta=False):
        pass
    return out


def _on_cluster(model, src, tile: int, workers: int, glibc_defaults: bool = False) -> list[tuple[np.ndarray, float]]:
    """Two runs on one LocalCluster of ``workers`` single-threaded processes (``local:N``).
    distributed starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
    mmap threshold at 128 kB; ``glibc_defaults`` leaves that variable out."""
    import dask

    from napari_structn2v.prediction.distributed import connect

    unset = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None} if glibc_defaults else {}
    with dask.config.set(unset):
        client = connect(f"local:{workers}")
    try:
        return [_timed(lambda: _cluster_run(model, src, tile, client)) for _ in range(2)]
    finally:
        client.close()


def measure(shape: tuple[int, int, int], tile: int, folder: str) -> list[dict]:
    import torch
    import zarr

    from napari_structn2v import predict_dask

    src = zarr.create_array(f"{folder}/in.zarr", shape=shape, chunks=(16, 256, 256), dtype="float32")
    src[:] = np.random.default_rng(0).random(shape, dtype=np.float32)
    model = _model()
    rows = []

    def add(name: str, workers: str, result: np.ndarray, seconds: float, note: str = "") -> None:
        diff = float(np.abs(result - reference).max())
        assert diff <= TOLERANCE, f"{name}: max difference {diff:.2e} > {TOLERANCE}"
        rows.append({"row": name, "workers": workers, "seconds": seconds, "mvox_s": np.prod(shape) / seconds / 1e6, "max_diff": diff, "note": note})
        print(f"{name}: {seconds:.1f} s, max |diff| {diff:.1e}", flush=True)

    torch.set_num_threads(1)
    reference, seconds = _timed(lambda: model.predict(src, "ZYX", tile=tile, tta=False))
    add("single process (model.predict), 1 torch thread", "1", reference, seconds, "the reference")
    torch.set_num_threads(2)
    add("single process (model.predict), 2 torch threads", "1 (2 threads)", *_timed(lambda: model.predict(src, "ZYX", tile=tile, tta=False)))
    torch.set_num_threads(1)  # each dask thread runs its own single-threaded forward passes
    for n in (1, 2):
        lazy = predict_dask(model, src, "ZYX", tile=tile, tta=False)
        add(f"predict_dask, threads scheduler, {n} thread(s)", str(n), *_timed(lambda lazy=lazy, n=n: lazy.compute(scheduler="threads", num_workers=n)))
    for n in (1, 2):
        first, second = _on_cluster(model, src, tile, n)
        add(f"predict_dask, LocalCluster {n} worker(s), first run", str(n), *first, "includes worker imports, model shipping")
        add(f"predict_dask, LocalCluster {n} worker(s), second run", str(n), *second)
    for n in (1, 2):
        _, second = _on_cluster(model, src, tile, n, glibc_defaults=True)
        add(f"predict_dask, LocalCluster {n} worker(s), second run, glibc defaults", str(n), *second,
            "workers without distributed's MALLOC_TRIM_THRESHOLD_=65536")
    return rows


def write(rows: list[dict], shape: tuple[int, ...], tile: int, command: str) -> Path:
    head = (
        f"# predict_dask throughput vs workers\n\n`{command}`: a {'x'.join(map(str, shape))} float32 zarr volume "
        f"({np.prod(shape) / 1e6:.1f} MVox), a 3D U-Net (4 filters, depth 2, untrained), tile {tile}, no TTA. "
        "**The machine has 2 CPU cores, shared with other jobs** (run at nice 19): more than 2 workers cannot "
        "help here, and the rows are noisy. LocalCluster workers are single-threaded processes "
        "(`--cluster local:N`); each result equals the single-process one to 1e-5 (asserted).\n\n"
        "| how | workers | time (s) | MVox/s (MPix/s) | max abs diff vs reference | note |\n|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['row']} | {r['workers']} | {r['seconds']:.1f} | {r['mvox_s']:.2f} | {r['max_diff']:.1e} | {r['note']} |"
        for r in rows
    ]
    out = HERE / "results" / "workers.md"
    out.write_text(head + "\n".join(lines) + "\n")
    (HERE / "results" / "workers.json").write_text(json.dumps({"shape": list(shape), "tile": tile, "rows": rows}, indent=1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", type=int, nargs=3, default=[32, 1024, 1024], help="ZYX of the volume")
    p.add_argument("--tile", type=int, default=256)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    shape = tuple(args.shape)
    with tempfile.TemporaryDirectory(prefix="structn2v_workers_") as folder:
        rows = measure(shape, args.tile, folder)
    command = "python benchmarks/workers.py" + ("" if shape == (32, 1024, 1024) and args.tile == 256 else f" --shape {' '.join(map(str, shape))} --tile {args.tile}")
    print(f"written to {write(rows, shape, args.tile, command)}")


if __name__ == "__main__":
    main()
