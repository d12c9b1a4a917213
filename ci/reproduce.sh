#!/usr/bin/env bash
# The README's main command: set up .venv if needed, then run the batch reproduction on the
# embedded default data (no downloads). Extra arguments go to `python -m modekit reproduce`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/ci/setup.sh"
cd "$root"

python -m modekit reproduce "$@"
