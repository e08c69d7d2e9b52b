"""Same seed, same results: the package before and after the restructure (issue 20), bitwise.

    python same_seed.py OLD_SRC NEW_SRC [WORKDIR]

OLD_SRC / NEW_SRC are ``src`` folders (each holding ``napari_structn2v``). For each tree a fresh
Python process (one torch thread) runs, with the public API only (``napari_structn2v.X``):

- ``analyze_noise`` on the dark frame of a 2D synthetic sample -> autocorrelation and suggested mask;
- ``train`` 50 steps with seed 0 on the noisy sample (CPU) -> weights, loss history;
- ``model.predict`` on another synthetic image (tiles of 64, test-time augmentation on);
- ``model.save`` -> a model file, and a bioimage.io-style zip (rdf.yaml with ``config.napari_structn2v``
  and the state dict, as ``export_bmz`` writes them; bioimageio.spec is not needed to read one);
- then it loads the OTHER tree's model file and zip with ``load_model`` and predicts the same image.

Every array is compared with ``np.array_equal`` (bitwise for floats: same values, same dtype and shape);
a control run of the NEW tree twice shows the run itself is deterministic. Exit status 0 when all agree.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r'''
import io, json, sys, zipfile
from pathlib import Path
import numpy as np
import torch
torch.set_num_threads(1)
import napari_structn2v as s
from napari_structn2v.synthetic import make_sample

out = Path(sys.argv[1])
sample = make_sample("2d", seed=0, size=128)
analysis = s.analyze_noise(sample["dark"], axes="YX")
mask = np.asarray(analysis.mask, bool)
cfg = s.TrainConfig(steps=50, seed=0, batch_size=8, patch_size=32, val_every=25, device="cpu")
model = s.train(sample["noisy"], "YX", mask, cfg)
test = make_sample("2d", seed=1, size=96)["noisy"]
pred = model.predict(test, "YX", tile=64, device="cpu")
hist = s.loss_history(model)
model.save(out / "model.pt")
# a package as export_bmz writes it (rdf.yaml config + the network's state dict)
buf = io.BytesIO()
torch.save({k: v.detach().cpu() for k, v in model.net.state_dict().items()}, buf)
import yaml
rdf = {"type": "model", "name": "same seed", "weights": {"pytorch_state_dict": {"source": "weights.pt"}},
       "config": {"napari_structn2v": json.loads(model.config.to_json())}}
with zipfile.ZipFile(out / "package.zip", "w") as zf:
    zf.writestr("rdf.yaml", yaml.safe_dump(rdf))
    zf.writestr("weights.pt", buf.getvalue())
arrays = {"acf": np.asarray(analysis.autocorrelation), "mask": mask, "pred": pred,
          "train_loss": np.asarray(hist["loss"], float), "val_loss": np.asarray(hist["val_loss"], float)}
arrays.update({"w_" + k: v.detach().cpu().numpy() for k, v in model.net.state_dict().items()})
np.savez(out / "arrays.npz", **arrays)
other = Path(sys.argv[2]) if len(sys.argv) > 2 else None
if other is not None:
    for name in ("model.pt", "package.zip"):
        m = s.load_model(other / name)
        np.save(out / f"other_{name.split('.')[0]}_pred.npy", m.predict(test, "YX", tile=64, device="cpu"))
print(s.__file__)
'''


def run(src: str, out: Path, other: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": src, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = [sys.executable, "-c", CHILD, str(out)] + ([str(other)] if other else [])
    res = subprocess.run(args, env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"run with {src} failed:\n{res.stderr[-3000:]}")
    print(f"  ran {res.stdout.strip()}")


def compare(a: Path, b: Path) -> list[str]:
    import numpy as np

    x, y = np.load(a / "arrays.npz"), np.load(b / "arrays.npz")
    bad = [k for k in sorted(set(x) | set(y)) if k not in x or k not in y or not np.array_equal(x[k], y[k])
           or x[k].dtype != y[k].dtype]
    return bad, len(set(x) | set(y))


def main() -> int:
    import numpy as np

    old_src, new_src = sys.argv[1], sys.argv[2]
    work = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(tempfile.mkdtemp(prefix="same_seed_"))
    print(f"work folder {work}")
    run(old_src, work / "old")
    run(new_src, work / "new", other=work / "old")  # the new tree loads the old tree's files
    run(new_src, work / "new_again")
    run(old_src, work / "old_again", other=work / "new")  # and the old tree the new tree's
    result = {}
    for label, (a, b) in {"old vs new": ("old", "new"), "new vs new (control)": ("new", "new_again"),
                          "old vs old (control)": ("old", "old_again")}.items():
        bad, n = compare(work / a, work / b)
        result[label] = {"arrays": n, "different": bad}
    new_pred = np.load(work / "new" / "arrays.npz")["pred"]
    old_pred = np.load(work / "old" / "arrays.npz")["pred"]
    result["new tree, old model file"] = bool(np.array_equal(np.load(work / "new" / "other_model_pred.npy"), old_pred))
    result["new tree, old package zip"] = bool(np.array_equal(np.load(work / "new" / "other_package_pred.npy"), old_pred))
    result["old tree, new model file"] = bool(np.array_equal(np.load(work / "old_again" / "other_model_pred.npy"), new_pred))
    result["old tree, new package zip"] = bool(np.array_equal(np.load(work / "old_again" / "other_package_pred.npy"), new_pred))
    x = np.load(work / "new" / "arrays.npz")
    result["summary"] = {"pred_shape": list(new_pred.shape), "pred_mean": float(new_pred.mean()),
                         "final_train_loss": float(x["train_loss"][-1, 1]) if x["train_loss"].ndim == 2 else None,
                         "mask": "x".join(map(str, x["mask"].shape[::-1]))}
    print(json.dumps(result, indent=1))
    ok = all(not v["different"] for k, v in result.items() if isinstance(v, dict) and "different" in v) and all(
        v for v in result.values() if isinstance(v, bool))
    print("SAME" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
