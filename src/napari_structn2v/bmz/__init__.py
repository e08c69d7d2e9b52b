"""BioImage Model Zoo (bioimage.io) packages.

- :mod:`.export`: :func:`~napari_structn2v.bmz.export.export_bmz`, the package test and
  :func:`~napari_structn2v.bmz.export.load_bmz`;
- :mod:`.package`: reading a package (torch and PyYAML only), its config key and error;
- :mod:`.spec`: the rdf.yaml description (the one module that imports bioimageio.spec);
- :mod:`.tensors`: the package's test tensors, normalisation, halo and cover;
- :mod:`.readme`: its README and the citations.
"""
