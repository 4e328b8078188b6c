"""The JobsPanel in a real JupyterLab, driven by headless Chromium: what unit tests cannot see.

Widgets that pass their Python tests can still fail to render or to sync in the browser (a
missing front-end extension, a trait the JavaScript side rejects). This test starts JupyterLab on
loopback with no token, opens ``notebooks/panel.ipynb``, runs its cells up to the panel, types
the sandbox's token into the panel's Password field, clicks Refresh, checks the status line, the
summary and the jobs table against a sandbox with the same settings, saves a screenshot of the
panel (into the tmp dir; ``UPDATE_SCREENSHOT=1`` also copies it to ``docs/panel.png``, the
README's picture), then runs the rest of the notebook.

It uses Debian's ``chromium`` through Playwright's ``executable_path`` (no browser download). It
skips where Chromium or Playwright is missing, except under ``CI=true``, where that fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import intercom_jobs_nb as ij
from intercom_jobs_nb.sandbox import Sandbox
from intercom_jobs_nb.widgets import TABLE_ROWS

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "panel.ipynb"
SCREENSHOT = ROOT / "docs" / "panel.png"
# The notebook's sandbox, repeated here to know the counts the panel must show.
SANDBOX_SETTINGS = {"jobs": 200, "seed": 0, "pending_share": 0.2, "pending_seconds": (1e9, 1e9)}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 60  # seconds for JupyterLab to answer
UI_TIMEOUT = 45_000  # milliseconds for any one thing to appear in the page

pytestmark = pytest.mark.timeout(170)


def _chromium_or_skip() -> str:
    """The Chromium executable; a skip (a failure under CI=true) where it cannot run."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright Python package is not installed (pip install playwright)"
    chromium = shutil.which("chromium")
    if problem is None and chromium is None:
        problem = "no `chromium` on PATH (Debian/Ubuntu: apt-get install chromium)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the browser test cannot run: {problem}")
        pytest.skip(problem)
    assert chromium is not None
    return chromium


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _hermetic_jupyter_env(base: Path) -> dict[str, str]:
    """Jupyter's config, data, runtime and IPython dirs under ``base``, and a ``python3``
    kernelspec that runs this interpreter (the one with the package and its deps)."""
    dirs = {
        name: base / name
        for name in ("config", "data", "runtime", "ipython", "settings", "workspaces")
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    kernel = dirs["data"] / "kernels" / "python3"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )
    # No network from the page: no news, no update check pop-ups.
    notify = dirs["settings"] / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    # Every cell in the DOM (JupyterLab 4 otherwise renders only the cells in view).
    tracker = dirs["settings"] / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "JUPYTER_PLATFORM_DIRS": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    return env


@pytest.fixture
def browser_jupyterlab(tmp_path):
    """JupyterLab serving a copy of the notebooks on 127.0.0.1 (no token); yields its URL."""
    _chromium_or_skip()
    root = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK.parent, root, ignore=shutil.ignore_patterns("*.csv", ".*"))
    env = _hermetic_jupyter_env(tmp_path / "jupyter")
    port = _free_port()
    log = (tmp_path / "jupyterlab.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.news_url=None",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        command.append("--allow-root")
    # Own session: teardown can stop the server and the kernels it started, and only those.
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited ({server.returncode}); see {log.name}")
            try:
                if requests.get(f"{url}/api/status", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {START_TIMEOUT} s; see {log.name}")
            time.sleep(0.3)
        yield url
    finally:
        _stop_group(server)
        log.close()


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture
def browser_page(tmp_path):
    """A headless Chromium page (Debian's chromium); closed at the end of the test, after a
    screenshot of the whole page for the post-mortem (``page-at-end.png`` in the tmp dir)."""
    chromium = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(UI_TIMEOUT)
            yield page
            with contextlib.suppress(Exception):
                page.screenshot(path=str(tmp_path / "page-at-end.png"))
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser_expected_counts():
    """What the panel must show after its first Refresh: the notebook's sandbox, fetched."""
    with Sandbox(**SANDBOX_SETTINGS) as sb:
        df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False)
        token = sb.token
    counts = df["status"].value_counts()
    return {
        "token": token,
        "total": len(df),
        **{s: int(counts[s]) for s in ("success", "failed", "pending")},
    }


def _run_cells(page, count: int) -> None:
    """Shift+Enter ``count`` times from the active cell, in command mode (cells run in order)."""
    for _ in range(count):
        page.keyboard.press("Shift+Enter")


def _select_cell(page, index: int) -> None:
    page.keyboard.press("Escape")
    page.locator(".jp-NotebookPanel .jp-Cell").nth(index).locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")


@pytest.mark.browser
def test_panel_in_jupyterlab_fetches_and_shows_results(
    browser_jupyterlab, browser_page, browser_expected_counts, tmp_path
):
    page = browser_page
    expected = browser_expected_counts
    page.goto(f"{browser_jupyterlab}/lab/tree/panel.ipynb")
    cells = page.locator(".jp-NotebookPanel .jp-Cell")
    sources = ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]
    n_cells = len(sources)
    panel_cell = next(i for i, source in enumerate(sources) if "ij.JobsPanel(" in source)
    cells.nth(n_cells - 1).wait_for()
    # The kernel is up once the status bar says so (the toolbar's indicator is idle before).
    page.locator("#jp-main-statusbar").get_by_text(re.compile(r"\| Idle")).wait_for()

    # Run the notebook up to (and with) the panel; the rest runs after the panel was used.
    _select_cell(page, 0)
    _run_cells(page, panel_cell + 1)
    panel = page.locator(".ij-panel")
    panel.wait_for()
    assert page.locator(".jp-OutputArea-output", has_text="Loading widget").count() == 0

    token_field = page.locator(".ij-token input")
    token_field.fill(expected["token"])
    page.locator(".ij-refresh button, button.ij-refresh").first.click()

    status = page.locator(".ij-status")
    status.filter(has_text="refresh #1").wait_for()
    assert (
        f"{expected['total']} jobs · success {expected['success']} · failed "
        f"{expected['failed']} · pending {expected['pending']} · errors 0"
    ) in status.inner_text()
    assert token_field.input_value() == ""  # the token left the widget on use

    summary = {}
    for row in page.locator(".ij-summary tbody tr").all():
        by, value, count, _share = (c.strip() for c in row.locator("td").all_inner_texts())
        summary[(by, value)] = int(count)
    for status_name in ("success", "failed", "pending"):
        assert summary[("status", status_name)] == expected[status_name]

    table_rows = page.locator(".ij-table tbody tr")
    assert table_rows.count() == min(expected["total"], TABLE_ROWS)
    assert table_rows.first.inner_text().startswith("✖")  # failed jobs first, marked
    page.locator(".ij-chart, img.ij-chart").first.wait_for()

    # The filter, in the browser: only the failed jobs.
    page.locator(".ij-filter select").select_option("failed")
    page.locator(".ij-table caption", has_text=f"{expected['failed']} failed jobs").wait_for()
    assert table_rows.count() == expected["failed"]

    SCREENSHOT.parent.mkdir(exist_ok=True)
    panel.screenshot(path=str(tmp_path / "panel.png"))
    assert (tmp_path / "panel.png").stat().st_size > 10_000  # a real picture, not a blank
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # refresh the README's picture on demand
        shutil.copyfile(tmp_path / "panel.png", SCREENSHOT)

    # The rest of the notebook, in the same kernel: the no-mouse cells, auto-refresh, stop.
    _select_cell(page, panel_cell + 1)
    _run_cells(page, n_cells - panel_cell - 1)
    last = cells.nth(n_cells - 1).locator(".jp-InputPrompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)", arg=last.element_handle(), timeout=UI_TIMEOUT
    )
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
    status.filter(has_text="pending 0").wait_for()
    assert re.search(r"refresh #\d+", status.inner_text())
