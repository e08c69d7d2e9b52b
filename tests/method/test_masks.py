import numpy as np
import pytest

from napari_structn2v.errors import MaskError
from napari_structn2v.method.masks import (
    box_mask,
    cross_mask,
    describe_mask,
    load_mask,
    mask_to_spec,
    parse_mask_spec,
    save_mask,
    validate_mask,
)


@pytest.mark.parametrize(
    "spec, shape",
    [("9x1", (1, 9)), ("1x9", (9, 1)), ("1x1", (1, 1)), ("1x17x1", (1, 17, 1)), ("3X5", (5, 3)), (" 5 x 3 x 1 ", (1, 3, 5))],
)
def test_parse_spec_orientation(spec, shape):
    m = parse_mask_spec(spec)
    assert m.shape == shape
    assert m.dtype == bool and m.all()


def test_spec_round_trip():
    for spec in ("9x1", "1x17x1", "1x1", "3x5x7"):
        assert mask_to_spec(parse_mask_spec(spec)) == spec


def test_custom_mask_has_no_spec():
    m = cross_mask(5, 3)
    assert mask_to_spec(m) is None
    assert m[1].all() and m[:, 2].all() and m.sum() == 7
    assert describe_mask(m).startswith("custom 5x3")


@pytest.mark.parametrize("spec", ["8x1", "9", "axb", "9x1x", "0x1", ""])
def test_bad_specs(spec):
    with pytest.raises(MaskError):
        parse_mask_spec(spec)


def test_even_sides_message():
    with pytest.raises(MaskError, match="odd"):
        validate_mask(np.ones((1, 8), bool))


def test_empty_and_non_binary():
    with pytest.raises(MaskError, match="empty"):
        validate_mask(np.zeros((0, 3)))
    with pytest.raises(MaskError, match="no pixel"):
        validate_mask(np.zeros((3, 3)))
    with pytest.raises(MaskError, match="0/1"):
        validate_mask(np.full((3, 3), 2))


def test_centre_is_always_hidden():
    m = np.zeros((3, 3), bool)
    m[0, 0] = True
    assert validate_mask(m)[1, 1]


def test_dimensionality_checks():
    assert validate_mask(box_mask(9, 1), spatial_ndim=3).shape == (1, 1, 9)
    with pytest.raises(MaskError, match="spatial dimensions"):
        validate_mask(box_mask(1, 3, 3), spatial_ndim=2)
    with pytest.raises(MaskError, match="larger than the training patch"):
        validate_mask(box_mask(33, 1), patch_shape=(32, 32))


def test_save_load(tmp_path):
    m = cross_mask(7, 5)
    for name in ("m.npy", "m.tif"):
        save_mask(tmp_path / name, m)
        np.testing.assert_array_equal(load_mask(tmp_path / name), m)
    (tmp_path / "spec.txt").write_text("9x1\n")
    assert load_mask(tmp_path / "spec.txt").shape == (1, 9)
    with pytest.raises(MaskError, match="does not exist"):
        load_mask(tmp_path / "missing.npy")
