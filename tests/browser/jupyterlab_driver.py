"""Drive a real JupyterLab 4 in headless Chromium: a private server, a browser, and the few moves a
person makes (run all cells, move a slider, press a button). Used by the browser tests only.

Everything started here is stopped on exit, also when a test fails: the server runs in its own
process group (its kernels with it) and is killed as a group.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

#: What a person without Chromium runs to get the browser tests going (Debian / Ubuntu).
INSTALL_HINT = "bash ci/browser.sh  (runs: apt-get install -y chromium; playwright comes with requirements.txt)"

# The network is closed on our machines: without the background-networking flags Chromium keeps
# trying (and failing) to reach Google's hosts. A fresh profile comes from playwright itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# A fresh settings directory: no news / update pop-ups over the notebook, the notebook's kernel
# started without the "Select Kernel" dialog (which otherwise appears when the kernel list loads
# late, on a busy machine), and every cell kept in the DOM (JupyterLab 4 otherwise virtualises
# cells that are off screen, and checks would miss them).
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"checkForUpdates": False, "fetchNews": "false"},
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none", "autoStartDefaultKernel": True},
}


def find_chromium() -> str | None:
    """Path of a Chromium executable (Debian's package installs /usr/bin/chromium), or None."""
    for candidate in (os.environ.get("MODEKIT_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def lab_server(root: Path, log_path: Path, env: dict[str, str | None] | None = None, start_timeout: float = 90.0):
    """Start `jupyter lab` on 127.0.0.1 (free port, random token) serving `root`; yield its base URL
    and token; stop it and its kernels on exit."""
    settings_dir, workspaces_dir = root / ".lab-settings", root / ".lab-workspaces"
    for relative, values in LAB_SETTINGS.items():
        path = settings_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    workspaces_dir.mkdir(exist_ok=True)
    port, token = free_port(), secrets.token_hex(16)
    server_env = {
        **os.environ,
        **(env or {}),
        "JUPYTERLAB_SETTINGS_DIR": str(settings_dir),
        "JUPYTERLAB_WORKSPACES_DIR": str(workspaces_dir),
    }
    server_env = {key: value for key, value in server_env.items() if value is not None}  # None: unset
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=",
        "--ServerApp.open_browser=False",
    ]
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=server_env, cwd=root, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with code {server.returncode} at start; log: {log_path}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"jupyter lab did not answer on {base} within {start_timeout:.0f} s; log: {log_path}")
            time.sleep(0.5)
        yield base, token
    finally:
        # Ask the server to shut its kernels down and exit (kernels run in sessions of their own, so
        # they are not in the server's process group); then terminate, then kill what is left.
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(request, timeout=10).close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=15)


@contextlib.contextmanager
def chromium_page(chromium: str, viewport=(1400, 1000)):
    """A headless Chromium page driven by playwright; the browser is closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


# --- What a person does in the notebook ------------------------------------------------------

# Top-level outputs of the notebook's cells (not the outputs nested inside an Output widget).
_TOP_OUTPUTS = (
    "[...document.querySelectorAll('.jp-Cell-outputArea .jp-OutputArea-output')].filter(e => !e.parentElement.closest('.widget-output'))"
)


def open_notebook(page, base: str, token: str, name: str, timeout_s: float = 90.0) -> None:
    page.goto(f"{base}/lab/tree/{name}?token={token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell", timeout=timeout_s * 1000)
    # the kernel is connected when the toolbar names it (it says "No Kernel" or nothing before)
    page.wait_for_function(
        "() => /Python 3/.test(document.querySelector('.jp-NotebookPanel-toolbar .jp-Toolbar-kernelName')?.innerText || '')",
        timeout=timeout_s * 1000,
    )
    wait_for_idle_kernel(page, timeout_s)
    dialogs = page.locator(".jp-Dialog")
    if dialogs.count():
        raise RuntimeError(f"a dialog blocks the notebook: {dialogs.first.inner_text()[:300]!r}")


def kernel_status(page) -> str | None:
    return page.evaluate(
        "() => document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator')?.getAttribute('data-status')"
    )


def wait_for_idle_kernel(page, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while kernel_status(page) != "idle":
        if time.monotonic() > deadline:
            raise TimeoutError(f"kernel not idle after {timeout_s:.0f} s (status {kernel_status(page)!r})")
        time.sleep(0.5)


def input_prompts(page) -> list[str]:
    return [
        text.strip() for text in page.evaluate("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.innerText)")
    ]


def run_all_cells(page, timeout_s: float) -> list[str]:
    """Run > Run All Cells, then wait until the kernel is idle and no cell is queued or running.
    Returns the input prompts ("[3]:"; "[ ]:" for cells a failure kept from running)."""
    page.click(".lm-MenuBar-item:has-text('Run')")
    page.click(".lm-Menu-item[data-command='runmenu:run-all']")
    deadline = time.monotonic() + timeout_s
    time.sleep(1.0)
    while True:
        prompts = input_prompts(page)
        if kernel_status(page) == "idle" and "[*]:" not in prompts:
            # idle with nothing queued twice in a row: the run has ended (and is not between two cells)
            time.sleep(1.0)
            if kernel_status(page) == "idle" and "[*]:" not in input_prompts(page):
                return input_prompts(page)
        if time.monotonic() > deadline:
            raise TimeoutError(f"cells still running after {timeout_s:.0f} s: prompts {prompts}")
        time.sleep(1.0)


def save_notebook(page, path: Path, timeout_s: float = 30.0) -> dict:
    """Save through JupyterLab (the toolbar's save button) and return the notebook JSON from disk."""
    before = path.stat().st_mtime_ns
    page.click("jp-button[data-command='docmanager:save']")
    deadline = time.monotonic() + timeout_s
    while path.stat().st_mtime_ns == before:
        if time.monotonic() > deadline:
            raise TimeoutError(f"JupyterLab did not save {path} within {timeout_s:.0f} s")
        time.sleep(0.3)
    time.sleep(0.5)
    return json.loads(path.read_text())


def rendered_widget_count(page) -> int:
    """Top-level outputs that rendered as live widgets (a `.jupyter-widgets` view, not the text fallback)."""
    return page.evaluate(
        f"() => {_TOP_OUTPUTS}.filter(e => e.querySelector('.jupyter-widgets') && e.getBoundingClientRect().height > 0).length"
    )


def page_errors(page) -> list[str]:
    """Error text visible in the notebook: tracebacks in outputs and widget-manager failures."""
    return page.evaluate(
        "() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)"
        ".filter(t => /Traceback|Error displaying widget|model not found|Failed to load model class/.test(t))"
        ".map(t => t.slice(0, 400))"
    )


def interact_output(page, index: int = 0) -> str:
    """What an `interact` drives: the text and images of its output, as one comparable string."""
    return page.evaluate(
        "(i) => { const out = document.querySelectorAll('.widget-interact')[i]?.querySelector('.widget-output');"
        " if (!out) return ''; return out.innerText + [...out.querySelectorAll('img')].map(img => img.src).join('|'); }",
        index,
    )


def wait_for_output_change(page, before: str, timeout_s: float, index: int = 0) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        now = interact_output(page, index)
        if now and now != before and kernel_status(page) == "idle":
            time.sleep(1.0)  # let the last image land, then read once more
            return interact_output(page, index)
        if time.monotonic() > deadline:
            raise TimeoutError(f"the widget's output did not change within {timeout_s:.0f} s (still {now[:200]!r})")
        time.sleep(0.5)
