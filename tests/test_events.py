"""The event dataclasses (napari_structn2v.events): torch-free, and the same classes that training and
prediction yield."""


def test_events_are_torch_free_and_shared():
    import subprocess
    import sys

    code = "import sys, napari_structn2v.events as e; e.TrainStep, e.TileDone; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    from napari_structn2v import events
    from napari_structn2v.prediction import predict as prediction
    from napari_structn2v.training import loop as training

    assert training.TrainDone is events.TrainDone and prediction.TileDone is events.TileDone
