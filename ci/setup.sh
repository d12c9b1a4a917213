#!/usr/bin/env bash
# Create .venv (Python 3.11) if missing and install the pinned requirements (under ci/constraints.txt,
# the lock of every package they pull in; ci/lock.sh regenerates it) and the modekit package.
# Idempotent: when requirements.txt, ci/constraints.txt and pyproject.toml are unchanged since the last install, it
# returns in seconds. Source it (`. ci/setup.sh`) or run it; it leaves .venv/bin first on PATH.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python_bin="${PYTHON:-$(command -v python3.11 || command -v python3)}"
if ! "$python_bin" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))'; then
  echo "ci/setup.sh: $python_bin is $("$python_bin" --version 2>&1); modekit needs Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "ci/setup.sh: creating $venv with $("$python_bin" --version)"
  "$python_bin" -m venv "$venv"
fi
stamp="$venv/.modekit-installed"
want="$(cat "$root/requirements.txt" "$root/ci/constraints.txt" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "ci/setup.sh: installing requirements (first run: ~3 minutes, ~6 GB)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$root/requirements.txt" -c "$root/ci/constraints.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e "$root"
  "$venv/bin/python" -m pip check --disable-pip-version-check >/dev/null || { "$venv/bin/python" -m pip check; exit 1; }
  echo "$want" > "$stamp"
else
  echo "ci/setup.sh: environment up to date ($venv)"
fi
export PATH="$venv/bin:$PATH"
