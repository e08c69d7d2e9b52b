"""Training: the loop and what it is made of.

- :mod:`.loop`: :func:`~napari_structn2v.training.loop.train` and
  :func:`~napari_structn2v.training.loop.train_iter`;
- :mod:`.step`: one optimisation step, the validation loss, the weight average, mixed precision;
- :mod:`.budget`: step and wall-clock budgets and the learning-rate schedule;
- :mod:`.data`: normalisation, the validation split and patch sampling (also from lazy images);
- :mod:`.zcontext`: Z slices as samples, and neighbouring slices as context;
- :mod:`.checks`: the input checks training and the Train dock share, made before any data is copied;
- :mod:`.resources`: will a run fit in memory;
- :mod:`.history`: the loss history a model carries, and its CSV export.
"""
