"""The StructN2V method itself: blind masks, blind spots, the masked loss and the augmentation.

- :mod:`.masks`: blind masks (``9x1``-style specs, files, checks), torch-free;
- :mod:`.blindspot`: stratified active pixels and the replacement of the masked neighbourhood;
- :mod:`.losses`: the squared error at the active pixels only;
- :mod:`.augment`: flips and 90-degree turns that keep the blind mask.
"""
