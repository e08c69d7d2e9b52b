"""Measuring the noise: how it correlates in space, the blind mask that follows, where to measure it.

- :mod:`.analysis`: :func:`~napari_structn2v.noise.analysis.analyze_noise`, the whole analysis of
  noise regions (autocorrelation, power spectrum, suggested mask, reliability);
- :mod:`.autocorr`: the autocorrelation and power spectrum of noise regions, and their estimation noise;
- :mod:`.mask_rule`: the rule that turns an autocorrelation into a box mask;
- :mod:`.background`: the darkest, flattest tiles of an image, to analyse when no region is drawn.
- :mod:`.fixed_pattern`: a camera's fixed-pattern noise, estimated from a dark stack.
"""
