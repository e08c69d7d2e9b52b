"""Files: images in and out, safely.

- :mod:`.images`: reading and writing TIFF, ``.npy`` and zarr, atomic writes and streamed outputs;
- :mod:`.formats`: the image formats by extension;
- :mod:`.ome_zarr`: OME-Zarr reading and writing;
- :mod:`.outputs`: checks that an output path can take a new file, before any long work.

Model files are :mod:`napari_structn2v.model`'s, bioimage.io packages :mod:`napari_structn2v.bmz`'s.
"""
