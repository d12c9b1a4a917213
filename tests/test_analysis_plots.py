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


def test_a_saved_figures_y_label_stays_beside_its_axes_and_intervals_past_1_are_drawn(tmp_path):
    import numpy as np
    import pandas as pd

    from modekit.analysis import plots

    rng = np.random.default_rng(0)
    rows = [{"sub-task": task, "model": model, "own": own, "seed": seed,
             "accuracy": (0.97 if own else 0.5) + (rng.normal(0, 0.05) if task == "B" else rng.normal(0, 0.01))}
            for task in "AB" for model in ("MoE", "MoDE") for own in (True, False) for seed in range(5)]  # fmt: skip
    probing = pd.DataFrame(rows)
    fig = plots.save(plots.probing_bars(probing, "a title", x="sub-task"), tmp_path, "bars")
    assert (tmp_path / "bars.png").is_file()
    ax = fig.axes[0]
    fig.canvas.draw()
    label, box = ax.yaxis.label.get_window_extent(), ax.get_window_extent()
    assert label.y1 <= box.y1 + 2 and label.y0 >= box.y0 - 2, "the y label runs past its axes (into the title)"
    highest = max(plots.INTERVAL(part)[1] for _, part in probing.groupby(["sub-task", "model", "own"]).accuracy)
    assert highest > 1 and ax.get_ylim()[1] >= highest, "an interval reaching past 1 is drawn whole"


def test_every_figure_of_a_notebook_shows_not_only_the_first(tmp_path):
    """Restoring the rcParams after a figure must not switch off the interactive mode the inline
    backend turned on, or every figure after the first is saved but never shown."""
    import nbformat
    import papermill

    draw = (
        "import pandas as pd\nfrom modekit.analysis import plots\n"
        "table = pd.DataFrame({'seed': [0, 0, 1, 1], 'student': ['a', 'b'] * 2, 'stage': 'after KD', 'teacher': 'MoE',"
        " 'test_accuracy': [0.7, 0.8, 0.72, 0.79]})\n"
    )
    figure = "plots.save(plots.gathering(table, 'students'), None, 'g');"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(draw), *[nbformat.v4.new_code_cell(figure) for _ in range(3)]])
    nbformat.write(notebook, tmp_path / "figures.ipynb")
    papermill.execute_notebook(tmp_path / "figures.ipynb", tmp_path / "ran.ipynb", kernel_name="python3", progress_bar=False)
    notebook = nbformat.read(tmp_path / "ran.ipynb", 4)
    shown = [any("image/png" in output.get("data", {}) for output in cell.outputs) for cell in notebook.cells[1:]]
    assert shown == [True, True, True], shown
