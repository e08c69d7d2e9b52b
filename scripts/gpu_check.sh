#!/usr/bin/env bash
# The GPU check in one command (issue 18, item 4): the CUDA-marked tests, then benchmarks/gpu.py,
# within 8 minutes, one printed table (also in benchmarks/results/gpu_<device>.md).
# Installs nothing: the project runs from src/ (its dependencies, torch included, must be there).
#
#   scripts/gpu_check.sh                    # on a CUDA machine
#   scripts/gpu_check.sh --device cpu --quick   # proves the script on a CPU (the CUDA tests skip)
# Options after the script name go to benchmarks/gpu.py.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python}"
if ! "$PY" -c "import torch, numpy, scipy, napari_structn2v" 2>/dev/null; then
    echo "gpu_check: the project's dependencies are missing (torch, numpy, scipy); install the project first" >&2
    exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, '| CUDA available:', torch.cuda.is_available(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
status=0
# the files with CUDA-marked tests (collecting only them keeps napari/Qt out of a bare GPU box)
files=$(grep -rl "mark.cuda" tests --include='test_*.py' | sort)
if [ -n "$files" ]; then
    echo "== CUDA-marked tests: $files"
    # shellcheck disable=SC2086
    timeout 150 "$PY" -m pytest -m cuda -q -p no:xvfb -p no:cacheprovider $files || status=$?
fi
echo "== benchmarks/gpu.py $*"
timeout 330 "$PY" benchmarks/gpu.py "$@" || status=$?
exit $status
