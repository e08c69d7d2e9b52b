"""The network: the U-Net and running it for prediction.

- :mod:`.unet`: the 2D/3D U-Net (N2V2 variant, Z-context wrapper); imports only torch, as bioimage.io
  packages ship this file as their architecture;
- :mod:`.inference`: an inference copy of a network, its number format, batch size and test-time
  augmentation.
"""
