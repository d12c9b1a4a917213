#!/usr/bin/env bash
# Mutation testing of the maths modules with mutmut 3 ([tool.mutmut] in pyproject.toml: which files are
# mutated, which fast tests run against each mutant). NOT run in CI: it is slow (~20 min on 2 cores).
# Installs the pinned mutmut (ci/requirements-mutation.txt) into the git-ignored .mutmut-lib/ if missing,
# then prints the surviving mutants and the score. Idempotent: mutants/ keeps the verdicts while tests/
# and the config are unchanged (mutmut re-tests the mutants of changed functions only); after a change
# there it starts afresh. Arguments are mutant names or globs to re-run, e.g. 'modekit.analysis.stats.x_judge*'.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${MODEKIT_PYTHON:-$root/.venv/bin/python}"  # any interpreter with the kit's requirements
[ -x "$python" ] || { . "$root/ci/setup.sh"; python="$root/.venv/bin/python"; }
lib="$root/.mutmut-lib" pin="$(sha256sum < ci/requirements-mutation.txt)"
if [ "$(cat "$lib/.installed" 2>/dev/null)" != "$pin" ]; then
  rm -rf "$lib"
  "$python" -m pip install --quiet --disable-pip-version-check --target "$lib" -r ci/requirements-mutation.txt
  echo "$pin" > "$lib/.installed"
fi
inputs="$(cat ci/requirements-mutation.txt pyproject.toml tests/*.py | sha256sum)"
if [ $# -eq 0 ] && [ "$(cat mutants/.inputs 2>/dev/null)" != "$inputs" ]; then rm -rf mutants; fi
mkdir -p mutants/data  # for also_copy's data/manifest.csv
[ $# -gt 0 ] || echo "$inputs" > mutants/.inputs
# mutmut puts mutants/ first on sys.path, so the tests import the mutated copy of modekit
export PYTHONPATH="$lib${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1 MODEKIT_FAST=1 PYTHONHASHSEED=0
"$python" -m mutmut run --max-children "${MUTMUT_CHILDREN:-2}" "$@"
"$python" -m mutmut results
"$python" -m mutmut export-cicd-stats >/dev/null
"$python" - <<'PY'
import json
s = json.load(open("mutants/mutmut-cicd-stats.json"))
killed = s["killed"] + s["timeout"] + s["segfault"]  # a mutant that hangs or crashes the tests is caught too
print(f"killed {killed} of {s['total']} ({100 * killed / max(s['total'], 1):.1f}%)")
PY
