"""Peak memory (RSS) of streaming prediction vs image size (issue 10).

A synthetic uint16 OME-Zarr volume at x1, x4 and x16 the base size is denoised by a small 3D
network (untrained weights: memory does not depend on training) from OME-Zarr to an OME-Zarr
output, tile by tile. The input is written by one fresh process and predicted by another, so each
peak is prediction's own. A flat RSS column means memory does not grow with the image; the
'float32 result' column is what the whole result alone would take in memory.

    python benchmarks/memory.py            # x1/x4/x16 of 16x128x128, tile 128 (a minute)
    python benchmarks/memory.py --target   # x1/x4/x16 of 64x512x512, tile 256 (the default):
                                           # x16 is the issue's 64x2048x2048 (512 MB uint16)
    python benchmarks/memory.py --target --mmap-threshold 1048576   # glibc's MALLOC_MMAP_THRESHOLD_

Each mode keeps its rows in ``results/memory_<mode>.json``; ``results/memory.md`` shows all modes.
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
RESULTS = HERE / "results"
#: the issue's target: 64 x 2048 x 2048 uint16 (512 MB) is x16 of this base
TARGET_BASE = (64, 512, 512)
CHUNKS = (16, 256, 256)  # 2 MB uint16 input chunks, as io.default_chunks gives an output
PREDICT_THREADS = 1  # one torch thread: the machine has 2 shared cores, and RSS hardly depends on it


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """User + system CPU seconds of this process: unlike wall time, not inflated by other jobs."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _make_input(shape: tuple[int, ...], path: str) -> None:
    """Write a uint16 OME-Zarr volume slice by slice (8 MB at 2048 x 2048): never whole in memory."""
    import numpy as np
    import zarr

    from napari_structn2v.io.images import ome_metadata

    group = zarr.open_group(path, mode="w", zarr_format=2)
    arr = group.create_array("0", shape=shape, chunks=tuple(min(c, s) for c, s in zip(CHUNKS, shape)), dtype="uint16")
    group.attrs.update(ome_metadata("ZYX"))
    rng = np.random.default_rng(0)
    step = min(CHUNKS[0], shape[0])  # whole chunks along Z: each chunk is written once
    for z in range(0, shape[0], step):
        arr[z : z + step] = rng.integers(0, 4000, size=(min(step, shape[0] - z), *shape[1:]), dtype=np.uint16)


def _predict(path: str, out_path: str, tile: int) -> dict:
    """In a fresh process: open the OME-Zarr lazily, predict it into an OME-Zarr, report RSS (MB)."""
    import numpy as np
    import torch

    from napari_structn2v.io.images import open_image, open_output
    from napari_structn2v.method.masks import box_mask
    from napari_structn2v.model import StructN2VModel, new_model_config
    from napari_structn2v.nn.unet import UNet, UNetConfig

    torch.set_num_threads(PREDICT_THREADS)
    image = open_image(path)
    assert image.axes == "ZYX" and not isinstance(image.data, np.ndarray)  # lazy, axes from OME metadata
    torch.manual_seed(0)
    arch = UNetConfig(spatial_ndim=3, in_channels=1, out_channels=1, base_filters=4, depth=2)
    model = StructN2VModel(UNet(arch).eval(), new_model_config("ZYX", box_mask(1, 3, 1), [0.0], [4000.0], arch, {}))
    before = _rss_mb()
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    with open_output(out_path, image.data.shape, axes="ZYX") as out:
        model.predict(image.data, image.axes, tile=tile, tta=False, out=out)
        corner = np.asarray(out[-1, -16:, -16:])  # the last tile was written
    seconds = time.perf_counter() - t0
    assert np.isfinite(corner).all() and corner.std() > 0
    return {"seconds": seconds, "cpu_s": _cpu_s() - cpu0, "rss_before_mb": before, "rss_peak_mb": _rss_mb()}


def _run_child(*args: str, mmap_threshold: int | None = None) -> str:
    env = dict(os.environ, OMP_NUM_THREADS=str(PREDICT_THREADS))
    if mmap_threshold:  # glibc: blocks of this size or more get their own mapping, unmapped when freed
        env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    if run.returncode:
        raise SystemExit(f"child {args[:2]} failed:\n{run.stderr}")
    return run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""


def measure(base: tuple[int, int, int], tile: int, mmap_threshold: int | None = None) -> list[dict]:
    """One row per size (x1, x4, x16: Y and X times 1, 2, 4), each in fresh processes."""
    z, y, x = base
    rows = []
    for factor, f in ((1, 1), (4, 2), (16, 4)):
        shape = (z, y * f, x * f)
        with tempfile.TemporaryDirectory(prefix="structn2v_memory_") as folder:
            _run_child("--make-input", json.dumps(shape), f"{folder}/in.ome.zarr")
            r = json.loads(_run_child("--child", json.dumps(shape), f"{folder}/in.ome.zarr", "--tile", str(tile), mmap_threshold=mmap_threshold))
        voxels = z * y * f * x * f
        rows.append({"size": f"x{factor}", "shape": list(shape), "voxels": voxels, **r})
        print(f"x{factor} {shape}: {r['seconds']:.1f} s, peak {r['rss_peak_mb']:.0f} MB", flush=True)
    return rows


def table(rows: list[dict]) -> str:
    head = ("| size | ZYX | uint16 input (MB) | float32 result (MB) | RSS before (MB) | peak RSS (MB) "
            "| wall time (s) | CPU time (s) | MVox per wall s |")
    lines = [head, "|" + "---|" * 9]
    for r in rows:
        v = r["voxels"]
        lines.append(
            f"| {r['size']} | {'x'.join(map(str, r['shape']))} | {v * 2 / 2**20:.1f} | {v * 4 / 2**20:.1f} "
            f"| {r['rss_before_mb']:.0f} | {r['rss_peak_mb']:.0f} | {r['seconds']:.1f} | {r.get('cpu_s', float('nan')):.1f} "
            f"| {v / r['seconds'] / 1e6:.2f} |"
        )
    return "\n".join(lines)


def write_markdown() -> Path:
    """results/memory.md from every mode's JSON."""
    parts = [
        "# Peak memory of streaming prediction (OME-Zarr in, OME-Zarr out)\n",
        "A 3D U-Net (4 filters, depth 2, untrained: the smallest 3D net here; memory does not depend "
        f"on training), no TTA, {PREDICT_THREADS} torch thread, on a machine of 2 shared CPU cores. Each size's input "
        "is written by one fresh process and predicted by another: 'RSS before' is after the imports, "
        "opening the input and building the model; 'peak RSS' is the predicting process's maximum. CPU time is "
        "user + system seconds of the predicting process (not inflated by other jobs, unlike wall time).\n",
        "glibc lets its mmap threshold grow to 32 MB once large blocks are freed: tile buffers below that stay in a "
        "heap that fragments, so the default peak varies from run to run and creeps with the number of tiles. "
        "`--mmap-threshold 1048576` fixes it at 1 MB (blocks of 1 MB or more are unmapped when freed); its cost "
        "on 2D work is in `mmap_threshold.md`.\n",
    ]
    for mode in ("small", "target", "target_mmap"):
        path = RESULTS / f"memory_{mode}.json"
        if path.exists():
            d = json.loads(path.read_text())
            parts.append(f"## {d['title']}\n\n`{d['command']}`\n\n{table(d['rows'])}\n")
    out = RESULTS / "memory.md"
    out.write_text("\n".join(parts))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", action="store_true", help="base 64x512x512, tile 256: x16 is 64x2048x2048")
    p.add_argument("--base", type=int, nargs=3, help="ZYX of the x1 volume (default 16 128 128)")
    p.add_argument("--tile", type=int, help="tile side (default 128; 256 with --target)")
    p.add_argument("--mmap-threshold", type=int, help="set glibc's MALLOC_MMAP_THRESHOLD_ (bytes) in the predicting process")
    p.add_argument("--make-input", nargs=2, help=argparse.SUPPRESS)
    p.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make_input:
        _make_input(tuple(json.loads(args.make_input[0])), args.make_input[1])
        return
    if args.child:
        with tempfile.TemporaryDirectory(prefix="structn2v_memory_out_") as folder:
            print(json.dumps(_predict(args.child[1], f"{folder}/out.ome.zarr", args.tile)))
        return
    base = tuple(args.base or (TARGET_BASE if args.target else (16, 128, 128)))
    tile = args.tile or (256 if args.target else 128)
    rows = measure(base, tile, args.mmap_threshold)
    mode = ("target" if args.target else "small") + ("_mmap" if args.mmap_threshold else "")
    command = "python benchmarks/memory.py" + (" --target" if args.target else "")
    if args.base or args.tile:
        command += f" --base {' '.join(map(str, base))} --tile {tile}"
    title = ("The issue's target: x16 is 64 x 2048 x 2048 uint16 (512 MB)" if args.target
             else "Small volumes (a minute)") + f", tile {tile}"
    if args.mmap_threshold:
        command += f" --mmap-threshold {args.mmap_threshold}"
        title += f", MALLOC_MMAP_THRESHOLD_={args.mmap_threshold}"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"memory_{mode}.json").write_text(json.dumps({"title": title, "command": command, "rows": rows}, indent=1))
    print(table(rows))
    print(f"written to {write_markdown()}")


if __name__ == "__main__":
    main()
