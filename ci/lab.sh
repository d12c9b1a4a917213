#!/usr/bin/env bash
# Explore in JupyterLab: set up .venv if needed, then start JupyterLab 4 (with the ipywidgets 8
# extension the set-up installs) on the notebooks. Arguments go to `jupyter lab`
# (e.g. `bash ci/lab.sh --port 8899 --no-browser`).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
. "$root/ci/setup.sh"
cd "$root/notebooks"
jupyter labextension list 2>&1 | grep -q "@jupyter-widgets/jupyterlab-manager.*enabled" \
  || echo "ci/lab.sh: warning: the widget extension @jupyter-widgets/jupyterlab-manager is not enabled; widgets will show as text" >&2
exec jupyter lab "$@"
