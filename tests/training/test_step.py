"""The pieces of one optimisation step (napari_structn2v.training.step): mixed precision, EMA, evaluation,
the loss read-back, and a training loop that never waits for the device."""
import pytest
import torch

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_train_step_helpers():
    from napari_structn2v.training.step import EMA, autocast, autocast_dtype, evaluate

    assert autocast_dtype(torch.device("cpu"), amp=False) is None
    with autocast(torch.device("cpu"), None):
        assert not torch.is_autocast_enabled("cpu")
    net = torch.nn.Conv2d(1, 1, 1, bias=False)
    ema = EMA(net, decay=0.99)
    with torch.no_grad():
        net.weight.fill_(1.0)
        ema.net.weight.fill_(0.0)
    ema.update()  # warm-up: weight 1 - 2/11 on the old average, not 0.99
    assert torch.allclose(ema.net.weight, torch.full_like(net.weight, 9 / 11))
    x = torch.ones(2, 1, 4, 4)
    net.train()
    loss = evaluate(net, [(x, 2 * x, torch.ones_like(x))], None)
    assert loss == pytest.approx(1.0) and net.training  # the mode is restored


class SyncCounter:
    """A ``TorchDispatchMode`` that counts the ops that make the host wait for the device (issue 18):
    scalar reads, ``nonzero``, boolean-mask ``index``/``index_put``, ``masked_select``, ``unique`` and
    ``repeat_interleave`` without ``output_size``; reads of Adam's own host-side step counters are
    excepted (they are CPU tensors on every device)."""

    def __init__(self):
        import collections

        import torch.optim.optimizer as optimizer_module
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self
        self.ops = collections.Counter()
        self.optimizers = []

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                counter.see(func.overloadpacket.__name__, args, kwargs or {})
                return func(*args, **(kwargs or {}))

        self.mode = Mode()
        self.hook = optimizer_module.register_optimizer_step_pre_hook(lambda opt, a, k: self.optimizers.append(opt))

    def see(self, name: str, args, kwargs) -> None:
        if name == "_local_scalar_dense":
            if not any(args[0] is st.get("step") for opt in self.optimizers for st in opt.state.values()):
                self.ops[name] += 1
        elif name in ("nonzero", "masked_select", "_unique2", "unique_dim", "unique_consecutive", "_unique"):
            self.ops[name] += 1
        elif name in ("index", "index_put", "index_put_", "_index_put_impl_"):
            if any(t is not None and t.dtype == torch.bool for t in args[1]):
                self.ops[name + "(bool)"] += 1
        elif name == "repeat_interleave" and kwargs.get("output_size") is None:
            self.ops[name] += 1

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        self.hook.remove()

    @property
    def total(self) -> int:
        return sum(self.ops.values())


def _fifty_counted_steps(img, axes, mask, cfg):
    """The TrainStep events of a 50-step run, checked to be steps 1-50 with finite losses, and the
    SyncCounter that counted its synchronising ops."""
    import numpy as np

    from napari_structn2v.training.loop import TrainStep, train_iter

    with SyncCounter() as c:
        events = list(train_iter(img.astype(np.float32), axes, mask, cfg))
    steps = [e for e in events if isinstance(e, TrainStep)]
    assert [e.step for e in steps] == list(range(1, 51)) and all(np.isfinite(e.loss) for e in steps)
    return steps, c


def test_sync_counter_sees_what_it_counts():
    x = torch.arange(6.0)
    with SyncCounter() as c:
        x[x > 2].sum().item()
        torch.nonzero(x)
        x.unique()
    assert c.ops["index(bool)"] == 1 and c.ops["_local_scalar_dense"] == 1 and c.ops["nonzero"] == 1 and c.total == 4


@pytest.mark.parametrize("replacement", ["segment", "random_pixel", "uniform"])
@pytest.mark.parametrize("kind", ["2d", "3d", "z_context"])
def test_training_steps_do_not_wait_for_the_device(kind, replacement):
    """At most one host sync per 25 steps (7 per step before): 50 steps and the final validation."""
    import numpy as np

    from napari_structn2v.config import TrainConfig

    rng = np.random.default_rng(0)
    common = dict(steps=50, patch_size=16, batch_size=2, base_filters=4, depth=1, device="cpu", replacement=replacement,
                  val_every=1000)
    if kind == "2d":
        img, axes, mask, cfg = rng.random((64, 64)), "YX", "5x1", TrainConfig(**common)
    elif kind == "3d":
        img, axes, mask, cfg = rng.random((24, 48, 48)), "ZYX", "3x1x3", TrainConfig(z_net="3d", patch_size_z=8, **common)
    else:
        img, axes, mask, cfg = rng.random((12, 48, 48)), "ZYX", "5x1", TrainConfig(z_net="2d", z_context=1, **common)
    steps, c = _fifty_counted_steps(img, axes, mask, cfg)
    assert c.total <= 2, c.ops


def test_loss_queue_hands_back_every_loss_in_order():
    from napari_structn2v.training.step import LossQueue

    q = LossQueue(torch.device("cpu"))
    for i in range(3):
        q.put(torch.tensor(float(i)), i)
    assert q.ready() == [(0, 0.0), (1, 1.0), (2, 2.0)] and q.ready(wait=True) == []


@pytest.mark.cuda
@CUDA
def test_loss_queue_on_cuda_arrives_without_waiting():
    from napari_structn2v.training.step import LossQueue

    q = LossQueue(torch.device("cuda"), max_pending=4)
    got = []
    for i in range(10):
        q.put(torch.full((), float(i), device="cuda"), i)
        got += q.ready()
        assert len(q.pending) <= 4
    got += q.ready(wait=True)
    assert got == [(i, float(i)) for i in range(10)]


def test_autocast_is_not_entered_without_a_dtype(monkeypatch):
    from napari_structn2v.training.step import autocast

    def refuse(*a, **k):  # older torch refuses even a disabled autocast on MPS
        raise RuntimeError("autocast entered")

    monkeypatch.setattr(torch, "autocast", refuse)
    with autocast(torch.device("mps"), None):
        pass


@pytest.mark.cuda
@CUDA
@pytest.mark.parametrize("kind", ["2d", "3d"])
@pytest.mark.parametrize("amp", [True, False])
def test_cuda_training_does_not_wait_for_the_device(kind, amp):
    """On a GPU: mixed precision (bfloat16, or float16 with the fused Adam's loss scaling), channels
    last, cuDNN benchmark; still at most one sync per 25 steps, and every step's loss arrives."""
    import numpy as np

    from napari_structn2v.config import TrainConfig

    rng = np.random.default_rng(0)
    common = dict(steps=50, patch_size=32, batch_size=8, base_filters=8, device="cuda", amp=amp, val_every=1000)
    if kind == "2d":
        img, axes, mask, cfg = rng.random((4, 96, 96)), "SYX", "5x1", TrainConfig(**common)
    else:
        img, axes, mask, cfg = rng.random((24, 64, 64)), "ZYX", "3x1x3", TrainConfig(z_net="3d", patch_size_z=8, **common)
    steps, c = _fifty_counted_steps(img, axes, mask, cfg)
    assert np.mean([e.loss for e in steps[-10:]]) < np.mean([e.loss for e in steps[:10]])
    assert c.total <= 2, c.ops
    assert torch.backends.cudnn.benchmark


@pytest.mark.parametrize("major, dtype", [(8, torch.bfloat16), (9, torch.bfloat16), (7, torch.float16)])
def test_cuda_precision_follows_the_card(monkeypatch, major, dtype):
    """bfloat16 on Ampere and later (no loss scaling), float16 with a GradScaler before."""
    from napari_structn2v.training.step import autocast_dtype

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, 0))
    assert autocast_dtype(torch.device("cuda:0"), amp=True) is dtype
    assert autocast_dtype(torch.device("cuda:0"), amp=False) is None
    assert autocast_dtype(torch.device("mps"), amp=True) is None
