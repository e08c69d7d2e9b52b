"""Atomic, format-keeping writes (napari_structn2v.io.images)."""
import numpy as np
import pytest
import tifffile


def test_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    from napari_structn2v.io import images as io

    target = tmp_path / "keep.tif"
    io.write_image(target, np.ones((8, 8)))
    before = target.read_bytes()

    def broken(fh, *args, **kwargs):
        fh.write(b"half a TIFF")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", broken)
    with pytest.raises(io.OutputError, match="cannot write .*keep.tif.*: No space left on device"):
        io.write_image(target, np.zeros((8, 8)))
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]
