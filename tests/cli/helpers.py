"""Plain helpers of the CLI tests."""

#: the options of a fast ``structn2v train`` (CPU, a tiny network, 6 steps, validated at the end)
TRAIN = ["--axes", "YX", "--mask", "3x1", "--steps", "6", "--patch", "32", "--batch", "2", "--filters", "4", "--depth", "1",
         "--device", "cpu", "--val-fraction", "0.25"]
