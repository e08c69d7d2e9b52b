"""Prediction of any image size: tiles, streaming into an output, and dask.

- :mod:`.predict`: tiled prediction and its input checks;
- :mod:`.tiling`: the tile geometry (what each tile reads, keeps and writes);
- :mod:`.distributed`: prediction with dask, from threads to a cluster.
"""
