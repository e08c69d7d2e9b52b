"""Big data: lazy inputs, streaming outputs, OME-Zarr, lazy training, dask (issue 10).

Small synthetic arrays only; zarr/dask tests are skipped where those packages are missing."""
import numpy as np
import pytest
import torch

from tests.helpers import untrained_model

torch.set_num_threads(1)


def _model(nd=2, axes="YX", mask=None):
    return untrained_model(axes, mask, spatial_ndim=nd, base_filters=4, depth=2)


class Guarded:
    """An array-like that refuses to be converted whole and records the largest read."""

    def __init__(self, data):
        self.data = data
        self.shape, self.dtype, self.ndim = data.shape, data.dtype, data.ndim
        self.largest = 0

    def __getitem__(self, key):
        block = self.data[key]
        self.largest = max(self.largest, int(np.size(block)))
        return block

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole lazy array was converted")


# -- 1. streaming prediction -----------------------------------------------------------------------
@pytest.mark.parametrize("tta", [False, True])
def test_streaming_into_zarr_equals_in_memory(tmp_path, tta):
    zarr = pytest.importorskip("zarr")
    model = _model()
    img = np.random.default_rng(0).random((3, 90, 110)).astype(np.float32) * 2
    expected = model.predict(img, "SYX", tile=64, tta=tta)
    src = zarr.create_array(tmp_path / "in.zarr", shape=img.shape, chunks=(1, 32, 32), dtype="float32")
    src[:] = img
    out = zarr.create_array(tmp_path / "out.zarr", shape=img.shape, chunks=(1, 32, 32), dtype="float32")
    result = model.predict(src, "SYX", tile=64, tta=tta, out=out)
    assert result is out
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "out.zarr", mode="r")[:], expected)


def test_lazy_input_is_read_tile_by_tile_into_a_memmap(tmp_path, monkeypatch):
    from napari_structn2v.prediction import predict as prediction

    monkeypatch.setattr(prediction, "CHECK_BLOCK_VALUES", 5000)  # as if the image were large
    monkeypatch.setattr(prediction, "INTENSITY_SAMPLES", 2000)
    model = _model()
    img = np.random.default_rng(1).random((4, 80, 100)).astype(np.float32) * 2
    img[0, 0, 0] = 50.0  # an outlier does not matter; the checks below must not read it all at once
    expected = model.predict(img, "SYX", tile=64, tta=False)
    guarded = Guarded(img)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=img.shape)
    model.predict(guarded, "SYX", tile=64, tta=False, out=out)
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), expected)
    assert guarded.largest < img.size  # only tiles, blocks and a strided sample were read


def test_lazy_checks_find_nan_and_bad_out_shape(tmp_path):
    from napari_structn2v.errors import DataError
    from napari_structn2v.prediction.predict import check_finite, iter_blocks

    img = np.zeros((5, 7, 9), np.float32)
    img[4, 6, 8] = np.nan
    with pytest.raises(DataError, match="1 NaN"):
        check_finite(Guarded(img))
    covered = np.zeros(img.shape, int)
    for key in iter_blocks(img.shape, max_values=20):
        covered[key] += 1
    assert (covered == 1).all()
    model = _model()
    with pytest.raises(DataError, match="output array has shape"):
        model.predict(np.zeros((32, 32), np.float32), tta=False, out=np.zeros((32, 31), np.float32))


# -- 2. files: OME-Zarr, memory maps, streaming writers, the CLI -----------------------------------
def test_tif_zarr_round_trip_keeps_axes_and_scale(tmp_path):
    pytest.importorskip("zarr")
    from napari_structn2v.io import images as io

    img = np.random.default_rng(2).random((2, 3, 20, 30)).astype(np.float32)
    io.write_image(tmp_path / "a.tif", img, axes="TZYX")
    opened = io.open_image(tmp_path / "a.tif")
    assert opened.axes == "TZYX"
    io.write_image(tmp_path / "b.ome.zarr", opened.data, axes=opened.axes, scale=(1, 2.0, 0.5, 0.5))
    z = io.open_image(tmp_path / "b.ome.zarr")
    assert not isinstance(z.data, np.ndarray)  # lazy
    assert z.axes == "TZYX" and z.scale == (1.0, 2.0, 0.5, 0.5)
    np.testing.assert_array_equal(z.data[:], img)
    io.write_image(tmp_path / "c.tif", z.data, axes=z.axes)
    back = io.open_image(tmp_path / "c.tif")
    assert back.axes == "TZYX"
    np.testing.assert_array_equal(back.data, img)
    assert not list(tmp_path.glob(".*part*"))  # no temporary files left


def test_big_files_are_memory_mapped(tmp_path, monkeypatch):
    from napari_structn2v.io import images as io

    img = np.arange(2 * 40 * 50, dtype=np.float32).reshape(2, 40, 50)
    io.write_image(tmp_path / "a.tif", img, axes="ZYX")
    io.write_image(tmp_path / "a.npy", img)
    assert type(io.read_image(tmp_path / "a.tif")) is np.ndarray  # small: read as before
    monkeypatch.setattr(io, "MEMMAP_BYTES", 0)
    for name in ("a.tif", "a.npy"):
        data = io.read_image(tmp_path / name)
        assert isinstance(data, np.memmap) and not data.flags.writeable
        np.testing.assert_array_equal(data, img)


def test_streaming_writer_is_atomic(tmp_path):
    pytest.importorskip("zarr")
    from napari_structn2v.io import images as io

    io.write_image(tmp_path / "old.zarr", np.ones((8, 8)), axes="YX")
    with pytest.raises(RuntimeError), io.open_output(tmp_path / "old.zarr", (8, 8), axes="YX") as out:
        out[:4] = 5.0
        raise RuntimeError("interrupted")
    np.testing.assert_array_equal(io.read_image(tmp_path / "old.zarr")[:], 1.0)  # the old store is intact
    with io.open_output(tmp_path / "old.zarr", (8, 8), axes="YX") as out:
        out[:] = 2.0
    np.testing.assert_array_equal(io.read_image(tmp_path / "old.zarr")[:], 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.zarr"]


def _model_file(tmp_path):
    path = tmp_path / "m.pt"
    _model().save(path)
    return path


def test_cli_predicts_tif_to_zarr_and_back(tmp_path, capsys):
    pytest.importorskip("zarr")
    from napari_structn2v.cli import main
    from napari_structn2v.io import images as io

    model = _model_file(tmp_path)
    img = (np.random.default_rng(3).random((2, 40, 50)) * 2).astype(np.float32)
    io.write_image(tmp_path / "in.tif", img, axes="SYX")
    assert main(["predict", str(model), str(tmp_path / "in.tif"), "--out", str(tmp_path / "o.ome.zarr"), "--no-tta"]) == 0
    z = io.open_image(tmp_path / "o.ome.zarr")
    assert z.axes == "SYX"  # taken from the TIFF's metadata, kept in the OME-Zarr
    expected = _model().predict(img, "SYX", tta=False)
    np.testing.assert_allclose(z.data[:], expected, atol=1e-6)
    assert main(["predict", str(model), str(tmp_path / "o.ome.zarr"), "--out", str(tmp_path / "o2.tif"), "--no-tta"]) == 0
    assert io.open_image(tmp_path / "o2.tif").axes == "SYX"
    # never replaced without --overwrite, and a folder that is not a zarr store never at all
    assert main(["predict", str(model), str(tmp_path / "in.tif"), "--out", str(tmp_path / "o.ome.zarr")]) == 2
    assert "already exists" in capsys.readouterr().err
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "plain.zarr" / "keep.txt").write_text("x")
    assert main(["predict", str(model), str(tmp_path / "in.tif"), "--out", str(tmp_path / "plain.zarr"), "--overwrite"]) == 2
    assert "not a zarr store" in capsys.readouterr().err and (tmp_path / "plain.zarr" / "keep.txt").exists()


def test_cli_many_inputs_out_dir_folders_and_globs(tmp_path, capsys):
    from napari_structn2v.cli import main
    from napari_structn2v.io import images as io

    model = _model_file(tmp_path)
    raw = tmp_path / "raw"
    rng = np.random.default_rng(4)
    for name in ("a.tif", "b.tif", "c.npy"):
        io.write_image(raw / name, rng.random((32, 40)).astype(np.float32), axes="YX")
    assert main(["predict", str(model), str(raw / "*.tif"), str(raw / "c.npy"), "--out-dir", str(tmp_path / "o1"), "--no-tta"]) == 0
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == ["a.tif", "b.tif", "c.npy"]
    assert main(["predict", str(model), str(raw), "--out-dir", str(tmp_path / "o2"), "--no-tta"]) == 0
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["a.tif", "b.tif", "c.npy"]
    capsys.readouterr()
    assert main(["predict", str(model), str(raw), "--out", str(tmp_path / "x.tif")]) == 2
    assert "use --out-dir" in capsys.readouterr().err
    assert main(["predict", str(model), str(raw), "--out-dir", str(raw)]) == 2  # over the inputs themselves
    assert "is the input image" in capsys.readouterr().err
    assert main(["predict", str(model), str(tmp_path / "none*.tif"), "--out-dir", str(tmp_path / "o3")]) == 2
    assert "no images match" in capsys.readouterr().err


# -- 3. lazy training ---------------------------------------------------------------------------------
FAST = dict(patch_size=32, patch_size_z=8, batch_size=4, base_filters=4, depth=2, device="cpu", val_fraction=0.2)


def _same_weights(a, b):
    sa, sb = a.net.state_dict(), b.net.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("axes,shape,mask", [("SYX", (3, 48, 64), "3x1"), ("ZYX", (12, 40, 48), "1x3x1")])
def test_lazy_training_equals_in_memory(axes, shape, mask):
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training.loop import train

    img = (np.random.default_rng(5).random(shape) * 1000).astype(np.uint16)
    cfg = TrainConfig(steps=3, seed=7, **FAST)
    in_memory = train(img, axes, mask, cfg)
    guarded = Guarded(img)
    lazy = train(guarded, axes, mask, cfg)
    assert lazy.config.low == in_memory.config.low and lazy.config.high == in_memory.config.high
    assert _same_weights(lazy, in_memory)
    # a different seed gives different weights: the comparison above can fail
    assert not _same_weights(train(Guarded(img), axes, mask, TrainConfig(steps=3, seed=8, **FAST)), in_memory)


def test_lazy_training_from_zarr_reads_patches_on_demand(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training import data
    from napari_structn2v.training.loop import train

    img = (np.random.default_rng(6).random((4, 64, 64)) * 1000).astype(np.float32)
    z = zarr.create_array(tmp_path / "t.zarr", shape=img.shape, chunks=(1, 32, 32), dtype="float32")
    z[:] = img
    cfg = TrainConfig(steps=2, seed=1, **FAST)
    assert _same_weights(train(z, "SYX", "3x1", cfg), train(img, "SYX", "3x1", cfg))
    # percentiles of a lazy image larger than the sample come from random blocks, close to the exact ones
    arrays, _ = data.prepare_arrays(Guarded(img), "SYX")
    assert isinstance(arrays[0], data.LazyImage)
    low, high = data.percentiles(arrays, 1, 99, max_samples=4000)
    exact_low, exact_high = np.percentile(img, (1, 99))
    assert abs(low[0] - exact_low) < 30 and abs(high[0] - exact_high) < 30


class Counting(Guarded):
    """A Guarded array with zarr-like chunks that counts its reads."""

    def __init__(self, data, chunks):
        super().__init__(data)
        self.chunks, self.reads = chunks, 0

    def __getitem__(self, key):
        self.reads += 1
        return super().__getitem__(key)


def test_block_cache_reads_blocks_once_and_stays_within_its_bound():
    from napari_structn2v.training.data import BlockCache, LazyImage

    img = np.random.default_rng(10).integers(0, 1000, (6, 64, 80)).astype(np.uint16)
    src = Counting(img, chunks=(1, 16, 16))
    cache = BlockCache(max_bytes=10 * 16 * 16 * 2)  # room for 10 chunks of 512 bytes
    view = LazyImage(src, "SYX").with_cache(cache)
    assert view.block == (1, 16, 16)  # the source's chunks
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, y, x = int(rng.integers(6)), int(rng.integers(64 - 20)), int(rng.integers(80 - 20))
        np.testing.assert_array_equal(view[n, :, y : y + 20, x : x + 20], img[None, n, y : y + 20, x : x + 20])
        assert cache.nbytes <= cache.max_bytes and len(cache.blocks) <= 10
    assert cache.hits > 0 and src.reads == cache.misses  # a source read only on a miss
    assert src.largest == 16 * 16  # whole chunks, never more
    src.reads = 0
    np.testing.assert_array_equal(view[2, :, 3:9, 5:7], img[None, 2, 3:9, 5:7])
    np.testing.assert_array_equal(view[2, :, 3:9, 5:7], img[None, 2, 3:9, 5:7])
    assert src.reads == 1  # one chunk, read once
    small = BlockCache(max_bytes=100)  # a block larger than the whole cache is returned, not kept
    assert small.get(("k",), lambda: np.zeros(200, np.uint8)).size == 200 and small.nbytes == 0
    tiny = LazyImage(src, "SYX").with_cache(small)  # blocks of at most 100 / 8 bytes: 4 uint16 values
    assert int(np.prod(tiny.block)) * 2 <= 12
    np.testing.assert_array_equal(tiny[0, 0], img[0].astype(np.float32))
    assert small.nbytes <= 100


def test_block_shape_caps_big_chunks_and_defaults_without_chunks():
    from napari_structn2v.training.data import block_shape

    assert block_shape(Guarded(np.zeros((3, 40, 600, 700), np.uint16)), "CZYX", 1 << 30) == (3, 16, 256, 256)
    huge = Counting(np.zeros((64, 512, 512), np.float32), chunks=(64, 512, 512))  # one 64 MB chunk
    shape = block_shape(huge, "ZYX", 8 << 20)
    assert int(np.prod(shape)) * 4 <= 1 << 20  # an eighth of the cache


@pytest.mark.parametrize("cache_bytes", [None, 3 * 4 * 16 * 16 * 4])  # default; 3 chunks: evictions within a patch
def test_lazy_training_with_a_small_cache_equals_in_memory(tmp_path, monkeypatch, cache_bytes):
    zarr = pytest.importorskip("zarr")
    from napari_structn2v.config import TrainConfig
    from napari_structn2v.training import data
    from napari_structn2v.training.loop import train

    if cache_bytes is not None:
        monkeypatch.setattr(data, "PATCH_CACHE_BYTES", cache_bytes)
    img = (np.random.default_rng(11).random((12, 40, 48)) * 1000).astype(np.float32)
    z = zarr.create_array(tmp_path / "v.zarr", shape=img.shape, chunks=(4, 16, 16), dtype="float32")
    z[:] = img
    lookups = []  # per cache lookup: was the cache within its bound?
    get = data.BlockCache.get

    def counted(self, key, load):
        block = get(self, key, load)
        lookups.append(self.nbytes <= self.max_bytes)
        return block

    monkeypatch.setattr(data.BlockCache, "get", counted)
    cfg = TrainConfig(steps=2, seed=3, **FAST)
    assert _same_weights(train(z, "ZYX", "1x3x1", cfg), train(img, "ZYX", "1x3x1", cfg))
    assert lookups and all(lookups)  # the patches came through the cache, always within its bound


def test_lazy_image_view_matches_to_internal():
    from napari_structn2v.axes import to_internal
    from napari_structn2v.training.data import LazyImage

    img = np.random.default_rng(7).random((2, 3, 5, 6, 7)).astype(np.float32)
    for z_as_sample in (False, True):
        expected, _ = to_internal(img, "TCZYX", z_as_sample=z_as_sample)
        view = LazyImage(Guarded(img), "TCZYX", z_as_sample=z_as_sample)
        assert view.shape == expected.shape
        np.testing.assert_array_equal(view[:], expected)
        np.testing.assert_array_equal(view[1, :, 1:4], expected[1, :, 1:4])
        cropped = view.crop_axis(view.ndim - 2, 2, 5)
        np.testing.assert_array_equal(cropped[:, 1], expected[:, 1, ..., 2:5, :])


# -- 4. dask: predict_dask, a LocalCluster, --cluster ---------------------------------------------
def test_predict_dask_equals_tiled_prediction():
    pytest.importorskip("dask.array")
    from napari_structn2v import predict_dask

    model = _model()
    img = (np.random.default_rng(8).random((2, 150, 170)) * 2).astype(np.float32)
    expected = model.predict(img, "SYX", tile=64, tta=True)
    result = predict_dask(model, img, "SYX", tile=64, tta=True)
    assert result.numblocks[1] > 1 and result.numblocks[2] > 1  # really several blocks with halos
    got = result.compute(scheduler="threads")
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.fixture
def local_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_predict_dask_on_a_local_cluster_and_the_cli(local_cluster, tmp_path, capsys):
    pytest.importorskip("zarr")
    from napari_structn2v import predict_dask
    from napari_structn2v.cli import main
    from napari_structn2v.io import images as io

    model = _model()
    img = (np.random.default_rng(9).random((2, 100, 120)) * 2).astype(np.float32)
    expected = model.predict(img, "SYX", tile=64, tta=False)
    got = local_cluster.compute(predict_dask(model, img, "SYX", tile=64, tta=False)).result()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    io.write_image(tmp_path / "in.ome.zarr", img, axes="SYX")
    path = _model_file(tmp_path)
    address = local_cluster.scheduler.address
    argv = ["predict", str(path), str(tmp_path / "in.ome.zarr"), "--out", str(tmp_path / "out.zarr"), "--tile", "64", "--no-tta"]
    assert main([*argv, "--cluster", address]) == 0
    np.testing.assert_allclose(io.read_image(tmp_path / "out.zarr")[:], expected, atol=1e-5)
    assert "block" in capsys.readouterr().out
    assert main([*argv[:3], "--out", str(tmp_path / "x.zarr"), "--cluster", "local:zero"]) == 2
    assert "--cluster local:N needs a positive number" in capsys.readouterr().err
    assert not (tmp_path / "x.zarr").exists()
