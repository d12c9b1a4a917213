"""Tests of modekit.analysis.plots."""

import json
import subprocess
import sys


def test_importing_plots_leaves_the_users_matplotlib_style_alone():
    code = (
        "import json, matplotlib; before = dict(matplotlib.rcParams); import modekit.analysis.plots; "
        "after = dict(matplotlib.rcParams); print(json.dumps(sorted(k for k in before if before[k] != after[k])))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
