#!/usr/bin/env bash
# Check our memristive pulse-update model against IBM aihwkit's own tile (issue 16).
#
# Builds a side environment (NOT the project venv: it holds a ~4 GB CUDA torch) with aihwkit
# 1.1.0 and the torch its Linux wheels were compiled against, installs neurorl into it, and runs
# the aihwkit comparison tests of tests/hardware/test_pulses.py and test_tiki_taka.py (its
# TransferCompound tile; they skip where aihwkit is absent, as in CI).
#
#   bash benchmarks/aihwkit_check.sh            # venv in ${AIHWKIT_VENV:-~/.cache/neurorl-aihwkit}
#   AIHWKIT_VENV=/work/aihwkit_venv bash benchmarks/aihwkit_check.sh
#
# Why these versions:
# * aihwkit 1.2.0 has Linux wheels for CPython 3.12-3.14 only (3.11: a C++ source build, hours
#   on 2 cores); aihwkit 1.1.0 has cp310-cp312 wheels and the same device update code
#   (rpu_pulsed_device.cpp populate, rpu_linearstep/constantstep_device.cpp update_once are
#   unchanged from v1.1.0 to 1.2.0).
# * rpu_base.so links torch's C++ API, which has no stable ABI across torch minor versions:
#   with torch 2.9 it does not import (undefined c10::TensorImpl::decref_pyobject), with torch
#   2.13 it imports but misreads tensors ("Invalid weights dimensions: expected [1,1] tensor").
#   It works with torch 2.10.0 (the newest torch when 1.1.0 was built, 2026-02-10). PyPI's Linux
#   torch 2.10.0 wheel is the CUDA build; it imports and runs on CPU-only machines once its
#   nvidia-* dependency wheels are installed (pip does that): ~4 GB download, ~8 GB on disk,
#   no compiler; 13.5 min from scratch on a loaded 2-core machine, then the tests in ~1 min.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${AIHWKIT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/neurorl-aihwkit}"
PY="${PYTHON:-python3}"
"$PY" -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), \
  "aihwkit 1.1.0 has wheels for CPython 3.10-3.12; set PYTHON=python3.1x"'
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install -q)
"${PIP[@]}" "torch==2.10.0"
# aihwkit's metadata also asks for build tools (cmake, scikit-build, pybind11, mypy) and
# torchvision, none of which the simulator imports: install it without them.
"${PIP[@]}" --no-deps "aihwkit==1.1.0"
"${PIP[@]}" scipy scikit-learn "requests>=2.32,<3" protobuf tqdm
"${PIP[@]}" -e . "pytest>=8,<9"
"$VENV/bin/python" - <<'EOF'
import torch, aihwkit
from aihwkit.simulator.configs import SingleRPUConfig, ConstantStepDevice
from aihwkit.simulator.tiles.analog import AnalogTile
tile = AnalogTile(1, 1, SingleRPUConfig(device=ConstantStepDevice()))
tile.set_weights(torch.full((1, 1), 0.25))  # fails here if torch's C++ ABI does not match
assert abs(float(tile.get_weights()[0][0, 0]) - 0.25) < 1e-6
print(f"aihwkit {aihwkit.__version__} on torch {torch.__version__}: tile round-trip ok")
EOF
# -o addopts: the project's pytest options name pytest-xdist's flags, which this venv lacks
"$VENV/bin/python" -m pytest -q -o addopts="" tests/hardware/test_pulses.py \
  tests/hardware/test_tiki_taka.py -k aihwkit -rA -s "$@"
