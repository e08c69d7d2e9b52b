"""Plain helpers of the CLI tests."""

#: the options of a fast ``structn2v train`` (CPU, a tiny network, 6 steps, validated at the end)
TRAIN = ["--axes", "YX", "--mask", "3x1", "--steps", "6", "--patch", "32", "--batch", "2", "--filters", "4", "--depth", "1",
         "--device", "cpu", "--val-fraction", "0.25"]


def interrupt_after_first_step(*args: str, prefix: str = "step ") -> tuple[int, str, str]:
    """Run ``structn2v ARGS`` in a subprocess, press Ctrl-C once it prints a line starting with
    ``prefix`` (its first step), and return its exit status, stdout and stderr."""
    import os
    import signal
    import subprocess
    import sys
    import time

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "napari_structn2v.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120
    line, lines = "", []
    while not line.startswith(prefix) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        lines.append(line)
        assert line or proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    return proc.returncode, "".join(lines) + stdout, stderr
