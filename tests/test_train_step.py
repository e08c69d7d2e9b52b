"""The pieces of one optimisation step (napari_structn2v.train_step): mixed precision, EMA, evaluation."""
import pytest


def test_train_step_helpers():
    import torch

    from napari_structn2v.train_step import EMA, autocast, autocast_dtype, evaluate

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
