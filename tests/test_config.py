"""TrainConfig checks itself on construction, one rule per field."""
import dataclasses
import math

import numpy as np
import pytest

from napari_structn2v.config import CROSS_RULES, RULES, TrainConfig
from napari_structn2v.errors import ConfigError, StructN2VError


def test_every_field_has_a_rule():
    # a new TrainConfig field needs its line in config.RULES
    missing = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in RULES]
    assert not missing, f"TrainConfig fields without a rule in config.RULES: {missing}"
    assert CROSS_RULES


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        (dict(steps=2.5), "steps", "integer"),
        (dict(steps=0), "steps", "[1, 1000000000]"),
        (dict(steps=True), "steps", "integer"),
        (dict(val_every=0), "val_every", ">= 1"),
        (dict(lr=-1.0), "lr", "(0, 1]"),
        (dict(lr=math.nan), "lr", "finite"),
        (dict(lr=math.inf), "lr", "finite"),
        (dict(lr="0.1"), "lr", "number"),
        (dict(pmin=99, pmax=1), "pmin", "below pmax"),
        (dict(pmax=101), "pmax", "[0, 100]"),
        (dict(seed=-1), "seed", "[0, 9223372036854775807]"),
        (dict(depth=-1), "depth", "[1, 6]"),
        (dict(base_filters=0), "base_filters", "[1, 1024]"),
        (dict(batch_size=0), "batch_size", "[1, 1000000000]"),
        (dict(masked_fraction=0.0), "masked_fraction", "(0, 0.5]"),
        (dict(val_fraction=0.5), "val_fraction", "[0, 0.5)"),
        (dict(schedule="linear"), "schedule", "'constant', 'cosine'"),
        (dict(replacement="zero"), "replacement", "'segment'"),
        (dict(amp=1), "amp", "True or False"),
        (dict(device=""), "device", "non-empty"),
        (dict(kernel_size=4), "kernel_size", "odd"),
        (dict(pool=(2, 0)), "pool", "[1, 8]"),
        (dict(preview_every=-5), "preview_every", ">= 0"),
    ],
)
def test_bad_values_are_refused_with_the_field_named(kwargs, field, words):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**kwargs)
    assert isinstance(info.value, StructN2VError)
    assert info.value.field == field
    assert str(info.value).startswith(field) and words in str(info.value)


def test_values_are_stored_as_plain_python():
    cfg = TrainConfig(steps=np.int64(7), lr=np.float32(0.001), amp=np.bool_(False), schedule="Cosine", kernel_size=[3, 5])
    assert type(cfg.steps) is int and type(cfg.lr) is float and cfg.amp is False
    assert cfg.schedule == "cosine" and cfg.kernel_size == (3, 5)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        dataclasses.replace(cfg, steps=-3)  # replace() runs the checks again


def test_masked_fraction_must_leave_visible_pixels():
    """Issue 17: a share of active pixels whose masks hide (nearly) every pixel is refused."""
    from napari_structn2v.config import check_masked_fraction
    from napari_structn2v.errors import ConfigError
    from napari_structn2v.training.loop import train

    check_masked_fraction(0.5, 1)  # half visible
    check_masked_fraction(0.02, 11)
    check_masked_fraction(0.34, 11)
    with pytest.raises(ConfigError, match=r"masked_fraction 0.4 with a 11-pixel blind mask .* at most 0.34"):
        check_masked_fraction(0.4, 11)
    with pytest.raises(ConfigError, match="masked_fraction"):
        train(np.zeros((64, 64), np.float32), "YX", "11x1", TrainConfig(masked_fraction=0.45, steps=1, patch_size=32))
