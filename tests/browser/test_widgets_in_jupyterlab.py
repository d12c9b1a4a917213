"""The teaching notebooks' widgets, rendered and driven in a real JupyterLab 4 in headless Chromium.

For each notebook: a private JupyterLab server on a temporary copy (FAST mode), Run All Cells, then
- every cell ran and none shows an error (checked in the page and in the notebook JupyterLab saved),
- every widget output rendered as a live widget (a disabled or mismatched widget extension falls
  back to text or "model not found" and fails here),
- the first slider of the notebook's `interact` moves one step (arrow key on its handle; the
  "Run Interact" button is pressed where the notebook uses `interact_manual`), and the figure or text
  it drives changes; screenshots before and after go to test-artefacts/browser/.

Without Chromium or playwright the tests skip with the install command; `.ci/run` sets
MODEKIT_REQUIRE_BROWSER=1, which turns that skip into a failure so CI cannot silently stop running them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from jupyterlab_driver import (
    INSTALL_HINT,
    chromium_page,
    find_chromium,
    interact_output,
    lab_server,
    open_notebook,
    page_errors,
    rendered_widget_count,
    run_all_cells,
    save_notebook,
    wait_for_idle_kernel,
    wait_for_output_change,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted(path.name for path in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb") if "widgets." in path.read_text())
ARTEFACTS = Path(os.environ.get("MODEKIT_ARTEFACTS", ROOT / "test-artefacts")) / "browser"
RUN_ALL_TIMEOUT_S = 900  # FAST notebooks take 20-80 s on a 2-core CPU; generous for a loaded CI machine
CHANGE_TIMEOUT_S = float(os.environ.get("MODEKIT_BROWSER_CHANGE_TIMEOUT", 300))  # seconds a moved control may take to show its effect


def browser_or_skip() -> str:
    problems = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the Python package playwright is not installed")
    chromium = find_chromium()
    if chromium is None:
        problems.append("no Chromium executable (looked for $MODEKIT_CHROMIUM, chromium, chromium-browser)")
    if problems:
        message = f"browser tests need Chromium and playwright: {'; '.join(problems)}. Install: {INSTALL_HINT}"
        if os.environ.get("MODEKIT_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (MODEKIT_REQUIRE_BROWSER=1: a missing browser is a failure)")
        pytest.skip(message)
    return chromium


def test_every_teaching_notebook_has_a_widget():
    assert len(NOTEBOOKS) >= 5, f"expected the teaching notebooks with widgets, found {NOTEBOOKS}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widgets_render_and_respond(name, tmp_path):
    chromium = browser_or_skip()
    shutil.copy(ROOT / "notebooks" / name, tmp_path / name)
    shots = ARTEFACTS / Path(name).stem
    shots.mkdir(parents=True, exist_ok=True)
    kernel_env = {"MODEKIT_FAST": "1", "PYTHONHASHSEED": "0", "MODEKIT_OUT_DIR": None}  # FAST, and write no reports
    with lab_server(tmp_path, shots / "jupyterlab.log", env=kernel_env) as (base, token), chromium_page(chromium) as page:
        open_notebook(page, base, token, name)
        prompts = run_all_cells(page, RUN_ALL_TIMEOUT_S)
        page.screenshot(path=shots / "after-run-all.png", full_page=True)
        saved = save_notebook(page, tmp_path / name)

        # Every cell ran, and none shows an error.
        code_cells = [cell for cell in saved["cells"] if cell["cell_type"] == "code"]
        errors = [
            f"cell {i}: {output.get('ename')}: {output.get('evalue')}"
            for i, cell in enumerate(code_cells)
            for output in cell["outputs"]
            if output["output_type"] == "error"
        ]
        assert not errors, f"{name}: cells failed: {errors}"
        assert all(prompt.strip("[]:").isdigit() for prompt in prompts), f"{name}: cells not run: {prompts}"
        assert not page_errors(page), f"{name}: errors shown in the page: {page_errors(page)}"

        # Every widget output rendered as a live widget.
        widget_outputs = sum(
            "application/vnd.jupyter.widget-view+json" in output.get("data", {}) for cell in code_cells for output in cell["outputs"]
        )
        assert widget_outputs >= 1, f"{name}: no widget was displayed"
        assert rendered_widget_count(page) == widget_outputs, (
            f"{name}: {widget_outputs} widget outputs, {rendered_widget_count(page)} rendered as widgets "
            "(is the @jupyter-widgets/jupyterlab-manager extension enabled and matching ipywidgets?)"
        )

        # Move the first slider of the interact one step; what it drives must change.
        interact = page.locator(".widget-interact").first
        cell = page.locator(".jp-CodeCell").filter(has=interact)
        cell.scroll_into_view_if_needed()
        run_button = interact.locator("button.widget-button", has_text="Run Interact")
        manual = run_button.count() > 0
        if manual:  # interact_manual shows nothing until asked
            run_button.click()
            before = wait_for_output_change(page, "", CHANGE_TIMEOUT_S)
        else:
            before = interact_output(page)
        assert before, f"{name}: the interact shows no output"
        cell.screenshot(path=shots / "widget-before.png")
        handle = interact.locator(".noUi-handle").first
        value_before = handle.get_attribute("aria-valuetext")
        handle.focus()
        handle.press("ArrowRight")
        page.wait_for_function(
            "([h, v]) => h.getAttribute('aria-valuetext') !== v", arg=[handle.element_handle(), value_before], timeout=10_000
        )
        if manual:
            run_button.click()
        after = wait_for_output_change(page, before, CHANGE_TIMEOUT_S)
        wait_for_idle_kernel(page, CHANGE_TIMEOUT_S)
        cell.screenshot(path=shots / "widget-after.png")
        assert after != before
        assert not page_errors(page), f"{name}: errors after moving the slider: {page_errors(page)}"
        (shots / "widget-change.json").write_text(
            json.dumps(
                {
                    "notebook": name,
                    "slider": [value_before, handle.get_attribute("aria-valuetext")],
                    "manual": manual,
                    "before": before[:2000],
                    "after": after[:2000],
                },
                indent=1,
            )
        )


def test_missing_browser_skips_with_the_install_command_or_fails_when_required(monkeypatch):
    module = sys.modules[__name__]
    monkeypatch.setattr(module, "find_chromium", lambda: None)
    monkeypatch.delenv("MODEKIT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ci/browser.sh"):
        browser_or_skip()
    monkeypatch.setenv("MODEKIT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="a missing browser is a failure"):
        browser_or_skip()
