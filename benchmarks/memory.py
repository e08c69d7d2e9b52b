"""Peak memory (RSS) of streaming prediction vs image size (issue 10).

A synthetic uint16 zarr volume at x1, x4 and x16 the base size is denoised by a small 3D network
(untrained weights: memory does not depend on training) from zarr to an OME-Zarr output, tile by
tile. Each size runs in a fresh process, so each peak is its own. A flat RSS column means memory
does not grow with the image; the last column is what the whole float32 result alone would take.

    python benchmarks/memory.py            # prints the table, writes benchmarks/results/memory.md
    python benchmarks/memory.py --base 16 128 128 --tile 128
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _child(shape: tuple[int, ...], tile: int, folder: str) -> dict:
    """Run in a fresh process: make the zarr volume, predict it streaming, report RSS (MB)."""
    import numpy as np
    import torch
    import zarr

    from napari_structn2v.io import open_output
    from napari_structn2v.masks import box_mask
    from napari_structn2v.model_io import StructN2VModel, new_model_config
    from napari_structn2v.unet import UNet, UNetConfig

    torch.set_num_threads(1)
    src = zarr.create_array(f"{folder}/in.zarr", shape=shape, chunks=(16, 128, 128), dtype="uint16")
    rng = np.random.default_rng(0)
    for z in range(0, shape[0], 16):  # written slab by slab: the input is never in memory either
        src[z : z + 16] = rng.integers(0, 4000, size=(min(16, shape[0] - z), *shape[1:]), dtype=np.uint16)
    torch.manual_seed(0)
    arch = UNetConfig(spatial_ndim=3, in_channels=1, out_channels=1, base_filters=4, depth=2)
    model = StructN2VModel(UNet(arch).eval(), new_model_config("ZYX", box_mask(1, 3, 1), [0.0], [4000.0], arch, {}))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with open_output(f"{folder}/out.ome.zarr", shape, axes="ZYX") as out:
        model.predict(src, "ZYX", tile=tile, tta=False, out=out)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"shape": list(shape), "seconds": dt, "rss_before_mb": base, "rss_peak_mb": peak}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=int, nargs=3, default=[16, 128, 128], help="ZYX of the x1 volume")
    p.add_argument("--tile", type=int, default=128)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        shape = tuple(json.loads(args.child))
        with tempfile.TemporaryDirectory() as folder:
            print(json.dumps(_child(shape, args.tile, folder)))
        return
    z, y, x = args.base
    rows = []
    for factor, (fy, fx) in ((1, (1, 1)), (4, (2, 2)), (16, (4, 4))):
        shape = (z, y * fy, x * fx)
        env = dict(os.environ, OMP_NUM_THREADS="1")
        run = subprocess.run(
            [sys.executable, __file__, "--tile", str(args.tile), "--child", json.dumps(shape)],
            capture_output=True, text=True, env=env, check=True,
        )
        r = json.loads(run.stdout.strip().splitlines()[-1])
        voxels = z * y * fy * x * fx
        rows.append((f"x{factor}", "x".join(map(str, shape)), voxels * 2 / 2**20, r["rss_before_mb"], r["rss_peak_mb"], voxels * 4 / 2**20, r["seconds"]))
        print(f"x{factor} done in {r['seconds']:.1f} s", flush=True)
    head = "| size | ZYX | uint16 input (MB) | RSS before (MB) | peak RSS (MB) | float32 result (MB) | time (s) |"
    lines = [head, "|" + "---|" * 7]
    lines += [f"| {a} | {b} | {c:.1f} | {d:.0f} | {e:.0f} | {f:.1f} | {g:.1f} |" for a, b, c, d, e, f, g in rows]
    table = "\n".join(lines)
    print(table)
    out = HERE / "results" / "memory.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        "# Peak memory of streaming prediction (zarr in, OME-Zarr out)\n\n"
        f"`python benchmarks/memory.py --base {z} {y} {x} --tile {args.tile}`: a 3D U-Net (4 filters, depth 2, "
        "untrained), no TTA, one CPU thread, each size in a fresh process. 'RSS before' is after the imports, "
        "the model and writing the input; 'peak RSS' is the process's maximum.\n\n" + table + "\n"
    )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
