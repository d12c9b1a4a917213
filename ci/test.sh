#!/usr/bin/env bash
# The README's test command: set up .venv if needed, then run the whole test suite on the CPU.
# Real-data tests run when MODEKIT_DATA points at a data directory (CI: ../shared/data).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/ci/setup.sh"
cd "$root"
# One CPU thread per process (tests, nbval and browser kernels): the test models are tiny, and two
# spinning threads per process on shared cores made training up to 8x slower (see modekit/reproduction/runner.py).
export MODEKIT_FAST=1 PYTHONHASHSEED=0 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
python -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-cell-timeout=900 --durations=25 "$@"
