"""The JobsPanel in real front ends, driven by headless Chromium: what unit tests cannot see.

A widget that passes its Python tests can still fail to render, to sync or to fit in the browser
(a front end that does not load its module, a message the page never sends, a label cut by its
box). The panel is one anywidget, so the same page-only drive runs in three front ends:
JupyterLab 4 (``jupyter lab``) and Notebook 7 (``jupyter notebook``), each a server on loopback
with no token serving a copy of ``notebooks/panel.ipynb``, run up to the panel; and marimo
(``marimo run --no-token`` of ``tests/notebooks/marimo_panel.py``, ``mo.ui.anywidget(panel)``,
against a sandbox of the test's own). Each test sizes the window so the output area is 650 px or
1,400 px wide (in JupyterLab with the file browser open, respectively collapsed), then, from the
page alone:

- types a wrong token and clicks **Refresh**: the status is a sentence about the token, the
  detail (401) behind a closed disclosure that opens, the token nowhere in the page;
- types the sandbox's token and clicks **Refresh**: the status says finished, the field is empty,
  the chart is an SVG whose bars show their count and share on hover, the summary is grouped,
  the ✖/⚠ marks stay on their id's line;
- makes the sandbox slow, clicks **Refresh**, then **Stop**: within a second of the click, by
  the page's own clock, the status says stopped and Refresh is enabled again; the rows stay;
- has the sandbox answer one request with the rate limiter's 429: the status says "waiting N s
  for the rate-limit window", then finishes;
- clicks **Export CSV** (its message beside the button), uploads a file of ids from the page
  (with one Intercom does not know) and refreshes;
- filters by status and by error code (with counts), then back to all;
- clicks the ``job_id`` header (ascending), again (descending); finds the id of the last row:
  the box scrolls to it and marks it; a filter that hides it takes the note away; the id column
  stays pinned when the box scrolls sideways;
- copies the visible rows and a cell;
- checks that no element of the panel is clipped (one JavaScript pass over every element) and
  takes a screenshot (``UPDATE_SCREENSHOT=1`` copies it to ``docs/screenshots/``);
- swaps in a 100,000-row frame, scrolls the box to its end: the last row is drawn in view under
  the sticky header with at most 200 rows in the page;
- (Jupyter) runs the rest of the notebook (the no-mouse cells, auto-refresh) with no error output.

The panel updates its widget from a background thread, and ipykernel 7 changed how output from
other threads is routed, so the Jupyter test also runs with an ipykernel 6.29 kernel: the
virtualenv named by ``IJ_KERNEL_VENV`` (``.ci/run`` makes it). Without that variable the test is
skipped here and fails under CI (``CI`` set): a skipped proof is not a pass.

It uses Debian's ``chromium`` through Playwright's ``executable_path`` (no browser download).
It skips where Chromium or Playwright is missing, except under CI, where that fails.
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
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

import intercom_jobs_nb as ij
from intercom_jobs_nb.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "panel.ipynb"
SCREENSHOTS = ROOT / "docs" / "screenshots"
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
# Each page opens its notebook in a workspace of its own (no tab left from an earlier test).
FRONT_ENDS = {
    "lab": "/lab/workspaces/{stem}/tree/{name}?reset",
    "notebook": "/notebooks/{name}",
}
CELLS = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell"  # the cells of the notebook in view
KERNEL6 = "ij-ipykernel6"  # the kernelspec of the IJ_KERNEL_VENV interpreter
START_TIMEOUT = 90  # seconds for a server to answer
UI_TIMEOUT = 45_000  # milliseconds for any one thing to appear in the page
SLOW_LATENCY = 1.0  # seconds per answer while Stop is tried: a fetch of several seconds
STOP_WITHIN_MS = 1000  # Stop: the status says stopped and Refresh is enabled within a second
WRONG_TOKEN = "wrong-t0ken-for-the-browser-test"  # what a person mistypes
UNKNOWN_ID = "99999999"  # an id in the uploaded file that Intercom does not know
WINDOW_HEIGHT = 1800  # tall enough for the whole panel in one screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false")


def _unavailable(problem: str) -> None:
    """Skip, or fail under CI, where a browser test cannot run."""
    if _in_ci():
        pytest.fail(f"CI is set but the browser test cannot run: {problem}")
    pytest.skip(problem)


def _chromium_or_skip() -> str:
    """The Chromium executable; a skip (a failure under CI) where it cannot run."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install playwright)")
    chromium = shutil.which("chromium")
    if chromium is None:
        _unavailable("no `chromium` on PATH (Debian/Ubuntu: apt-get install chromium)")
    assert chromium is not None
    return chromium


def _kernel6_python() -> str:
    """The ipykernel 6.29 interpreter of ``IJ_KERNEL_VENV``; a skip (a failure under CI)."""
    venv = os.environ.get("IJ_KERNEL_VENV")
    if not venv:
        _unavailable("IJ_KERNEL_VENV is not set (a virtualenv with ipykernel 6.29; see .ci/run)")
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        _unavailable(f"IJ_KERNEL_VENV={venv} has no bin/python")
    return str(python)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kernelspec(path: Path, python: str, name: str) -> None:
    path.mkdir(parents=True)
    (path / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": name,
                "language": "python",
                "metadata": {"debugger": False},
            }
        )
    )


def _settings(base: Path, plugin: str, name: str, values: dict) -> None:
    folder = base / plugin
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.jupyterlab-settings").write_text(json.dumps(values))


def _hermetic_jupyter_env(base: Path) -> tuple[dict[str, str], Path]:
    """Jupyter's config, data, runtime and IPython dirs under ``base``; a ``python3``
    kernelspec that runs this interpreter, and with ``IJ_KERNEL_VENV`` one for ipykernel 6.29.
    Returns the environment and the runtime dir (where the kernels' connection files are)."""
    dirs = {
        name: base / name
        for name in ("config", "data", "runtime", "ipython", "settings", "workspaces")
    }
    for path in dirs.values():
        path.mkdir(parents=True)
    _kernelspec(dirs["data"] / "kernels" / "python3", sys.executable, "Python 3 (ipykernel)")
    venv = os.environ.get("IJ_KERNEL_VENV")
    if venv and (Path(venv) / "bin" / "python").exists():
        _kernelspec(dirs["data"] / "kernels" / KERNEL6, str(Path(venv) / "bin" / "python"), KERNEL6)
    settings = dirs["settings"]
    # No network from the page: no news, no update check pop-ups.
    _settings(
        settings,
        "@jupyterlab/apputils-extension",
        "notification",
        {"fetchNews": "false", "checkForUpdates": False},
    )
    # Every cell in the DOM (JupyterLab 4 otherwise renders only the cells in view).
    _settings(settings, "@jupyterlab/notebook-extension", "tracker", {"windowingMode": "none"})
    # Notebook 7 centres a narrow column by default; the output width is set by the window.
    _settings(
        settings,
        "@jupyter-notebook/notebook-extension",
        "full-width-notebook",
        {"fullWidthNotebook": True},
    )
    env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
    env.update(
        {
            "JUPYTER_CONFIG_DIR": str(dirs["config"]),
            "JUPYTER_DATA_DIR": str(dirs["data"]),
            "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
            "IPYTHONDIR": str(dirs["ipython"]),
            "JUPYTERLAB_SETTINGS_DIR": str(settings),
            "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
            "JUPYTER_PLATFORM_DIRS": "0",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
    )
    return env, dirs["runtime"]


@dataclass
class Server:
    front_end: str  # "lab" or "notebook"
    url: str
    root: Path  # the folder it serves (the notebooks' copies)
    runtime: Path  # the kernels' connection files


def _stop_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="module", params=list(FRONT_ENDS))
def jupyter(request, tmp_path_factory):
    """One server per front end (JupyterLab 4, Notebook 7) on 127.0.0.1, no token."""
    _chromium_or_skip()
    front_end = request.param
    base = tmp_path_factory.mktemp(f"jupyter-{front_end}")
    root = base / "notebooks"
    shutil.copytree(NOTEBOOK.parent, root, ignore=shutil.ignore_patterns("*.csv", ".*"))
    env, runtime = _hermetic_jupyter_env(base / "jupyter")
    port = _free_port()
    log_path = base / f"{front_end}.log"
    log = log_path.open("wb")
    command = [
        sys.executable,
        "-m",
        "jupyter",
        front_end,
        "--no-browser",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
    ]
    if front_end == "lab":
        command += [
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
            "--LabApp.check_for_updates_class="
            "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        command.append("--allow-root")
    # Own session: teardown can stop the server and the kernels it started, and only those.
    server = subprocess.Popen(
        command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, f"{url}/api/status", f"jupyter {front_end}", log_path)
        yield Server(front_end, url, root, runtime)
    finally:
        _stop_group(server)
        log.close()


def _wait_until_up(server: subprocess.Popen, url: str, name: str, log_path: Path) -> None:
    """Return once ``url`` answers 200; fail if the server exits or is silent too long."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.poll() is not None:
            pytest.fail(f"{name} exited ({server.returncode}); see {log_path}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} did not answer in {START_TIMEOUT} s: {log_path}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def chromium():
    """One headless Chromium (Debian's) for the module; each test has its own page."""
    executable = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def expected():
    """What the panel must show after its first Refresh: the notebook's sandbox, fetched."""
    with Sandbox(**SANDBOX_SETTINGS) as sb:
        df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False)
        token = sb.token
    counts = df["status"].value_counts()
    return {
        "token": token,
        "total": len(df),
        "ids": [int(i) for i in df["job_id"]],
        **{s: int(counts[s]) for s in ("success", "failed", "pending")},
    }


# -- the kernel behind a page ---------------------------------------------------------------------


def _session(server: Server, name: str) -> dict:
    """The notebook's session (its kernel's id and execution state), once it exists."""
    for session in requests.get(f"{server.url}/api/sessions", timeout=5).json():
        if session["path"].endswith(name):
            return session
    return {}


def _wait_kernel_idle(server: Server, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernel = _session(server, name).get("kernel") or {}
        if kernel.get("execution_state") == "idle":
            return kernel["id"]
        time.sleep(0.3)
    pytest.fail(f"the kernel of {name} was not idle within {timeout} s")


@contextlib.contextmanager
def _kernel_client(server: Server, kernel_id: str):
    """A second client of the page's kernel: the test's hand on the notebook's sandbox."""
    from jupyter_client import BlockingKernelClient

    client = BlockingKernelClient(connection_file=str(server.runtime / f"kernel-{kernel_id}.json"))
    client.load_connection_file()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=30)
        yield client
    finally:
        client.stop_channels()


def _run_in_kernel(client, code: str) -> str:
    """Run ``code`` in the kernel; its printed output."""
    out: list[str] = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = client.execute_interactive(code, timeout=30, output_hook=hook)
    assert reply["content"]["status"] == "ok", "".join(out)
    return "".join(out)


# -- the page -------------------------------------------------------------------------------------


def _select_cell(page, index: int) -> None:
    """Make cell ``index`` the active one, in command mode. A click at the cell's top left
    corner (its collapser): the input prompt is hidden in narrow Notebook 7 windows."""
    page.keyboard.press("Escape")
    cell = page.locator(CELLS).nth(index)
    cell.scroll_into_view_if_needed()
    cell.click(position={"x": 3, "y": 3})
    page.keyboard.press("Escape")
    page.wait_for_function(
        "([sel, i]) => document.querySelectorAll(sel)[i].classList.contains('jp-mod-active')",
        arg=[CELLS, index],
    )


def _run_cells(page, count: int) -> None:
    """Shift+Enter ``count`` times from the active cell, in command mode (cells run in order)."""
    for _ in range(count):
        page.keyboard.press("Shift+Enter")


def _set_file_browser(page, front_end: str, open_: bool) -> None:
    """In JupyterLab, open or collapse the left sidebar (the file browser)."""
    if front_end != "lab":
        return
    stack = page.locator("#jp-left-stack")
    if stack.is_visible() != open_:
        page.locator(".jp-SideBar.jp-mod-left li[data-id='filebrowser']").click()
    page.wait_for_function(
        "open => { const el = document.querySelector('#jp-left-stack');"
        " return !!el && (el.offsetWidth > 0) === open; }",
        arg=open_,
    )


OUTPUT_WIDTH_JS = """(panel) => {
  const host = panel.closest('.jp-OutputArea-output') || panel.parentElement;
  return host ? host.getBoundingClientRect().width : 0;
}"""


def _size_output(page, width: int) -> float:
    """Resize the window until the panel's output area is about ``width`` px wide."""
    measured = 0.0
    panel = page.locator(".ij-panel").first
    for _ in range(6):
        measured = panel.evaluate(OUTPUT_WIDTH_JS)
        if abs(measured - width) <= 4:
            break
        viewport = page.viewport_size
        page.set_viewport_size(
            {"width": int(viewport["width"] + width - measured), "height": WINDOW_HEIGHT}
        )
        page.wait_for_timeout(400)  # the front end lays itself out again
    return measured


# Every element of the panel fits its box, except in the jobs table's box (``.ij-table``), which
# scrolls both ways (its cells cut long text with an ellipsis, whole on hover), and in text
# fields. Anything else that overflows is content a person cannot see.
CLIPPED_JS = """(panel) => {
  const name = (el) => el.tagName.toLowerCase() +
      (typeof el.className === 'string' && el.className.trim()
        ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const clipped = [];
  for (const el of [panel, ...panel.querySelectorAll('*')]) {
    if (el.scrollWidth <= el.clientWidth + 1) continue;
    if (['INPUT', 'TEXTAREA', 'SELECT', 'OPTION'].includes(el.tagName)) continue;
    const table = el.closest('.ij-table');
    if (table && panel.contains(table) &&
        ['auto', 'scroll'].includes(getComputedStyle(table).overflowX)) continue;
    clipped.push(`${name(el)} "${(el.innerText || '').slice(0, 40)}" ` +
                 `scrollWidth ${el.scrollWidth} > clientWidth ${el.clientWidth}`);
  }
  // Nothing sticks out of the panel's right edge either.
  const right = panel.getBoundingClientRect().right;
  for (const el of panel.querySelectorAll('button, select, input, textarea, .ij-table, svg')) {
    if (el.offsetParent && el.getBoundingClientRect().right > right + 1)
      clipped.push(`${name(el)} ends past the panel's edge`);
  }
  return clipped;
}"""

PROBE_JS = (
    """(panel) => {
  const probe = document.createElement('div');
  probe.className = 'ij-probe';
  probe.style.cssText = 'width:60px;overflow:hidden;white-space:nowrap;text-overflow:ellipsis';
  probe.textContent = 'Auto-refresh every 10 seconds';
  panel.appendChild(probe);
  try { return ("""
    + CLIPPED_JS
    + """)(panel); } finally { probe.remove(); }
}"""
)

# Where a row is, seen from the table's box: in view (under the sticky header), and whether the
# pinned id cell stays at the box's left edge when the box is scrolled sideways.
ROW_IN_VIEW_JS = """([box, row]) => {
  const tr = box.querySelector(`tr.ij-row[data-row='${row}']`);
  if (!tr) return null;
  const b = box.getBoundingClientRect(), r = tr.getBoundingClientRect();
  const head = box.querySelector('thead th').getBoundingClientRect();
  return {
    id: tr.querySelector('td.ij-id').innerText.replace(/[^0-9]/g, ''),
    found: tr.classList.contains('ij-found'),
    inView: r.top >= head.bottom - 1 && r.bottom <= b.top + box.clientHeight + 1,
    headerOnTop: Math.abs(head.top - b.top) <= 2,
    rows: box.querySelectorAll('tr.ij-row').length,
    rowTop: r.top - b.top, rowBottom: r.bottom - b.top, headBottom: head.bottom - b.top,
    clientHeight: box.clientHeight, scrollTop: box.scrollTop, scrollHeight: box.scrollHeight,
  };
}"""


def _row_settled(panel, box, row: int, condition: str) -> dict | None:
    """`ROW_IN_VIEW_JS` for ``row`` once ``condition`` (on ``w``, its result) holds, or after
    10 s: the page may still be drawing the window the kernel sent (its rows are replaced as a
    whole), and one look in between finds no row. The caller asserts on what it returns."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    settled = f"(args) => {{ const w = ({ROW_IN_VIEW_JS})(args); return !!(w && {condition}); }}"
    handle = box.element_handle()
    with contextlib.suppress(PlaywrightTimeout):
        panel.page.wait_for_function(settled, arg=[handle, row], timeout=10_000)
    return panel.page.evaluate(ROW_IN_VIEW_JS, [handle, row])


PIN_JS = """(box) => {
  box.scrollLeft = box.scrollWidth;
  const id = box.querySelector('tr.ij-row td.ij-id').getBoundingClientRect();
  const other = box.querySelector('tr.ij-row td:nth-child(3)').getBoundingClientRect();
  const b = box.getBoundingClientRect();
  const out = {scrolled: box.scrollLeft, idLeft: id.left - b.left, otherLeft: other.left - b.left};
  box.scrollLeft = 0;
  return out;
}"""

# Clicks Stop and watches the panel: when the status says stopped and when Refresh is enabled
# again, in milliseconds from the click by the page's clock.
STOP_JS = """(panel) => new Promise((resolve) => {
  const refresh = panel.querySelector('button.ij-refresh');
  let stopped = null, enabled = null, timer = null;
  const t0 = performance.now();
  const look = () => {
    const now = Math.round(performance.now() - t0);
    if (stopped === null && panel.querySelector(".ij-status [data-state='stopped']")) stopped = now;
    if (enabled === null && !refresh.disabled) enabled = now;
    if (stopped !== null && enabled !== null) {
      observer.disconnect(); clearTimeout(timer); resolve({stopped, enabled});
    }
  };
  const observer = new MutationObserver(look);
  observer.observe(panel, {subtree: true, childList: true, attributes: true, characterData: true});
  timer = setTimeout(() => { observer.disconnect(); resolve({stopped, enabled}); }, 10000);
  panel.querySelector('button.ij-stop').click();
})"""

# The heights of the id cells with a ✖/⚠ mark and of those without one.
MARK_HEIGHTS_JS = """(box) => {
  const cells = [...box.querySelectorAll('td.ij-id')];
  const height = (td) => td.getBoundingClientRect().height;
  const marked = (td) => /[\u2716\u26a0]/.test(td.innerText);
  return {marked: cells.filter(marked).map(height),
          plain: cells.filter(td => !marked(td)).map(height)};
}"""

# The rows drawn as {column header: cell text}.
TABLE_JS = """(box) => {
  const head = [...box.querySelectorAll('thead th')].map(th => th.dataset.column);
  return [...box.querySelectorAll('tr.ij-row')].map(tr => Object.fromEntries(
    [...tr.querySelectorAll('td')].map((td, k) => [head[k], td.innerText.trim()])));
}"""

IDS_JS = "(box) => Array.from(box.querySelectorAll('td.ij-id')).map(td => td.innerText)"


def _ids_drawn(panel) -> list[int]:
    texts = panel.locator(".ij-table").evaluate(IDS_JS)
    return [int(re.sub(r"\D", "", text)) for text in texts]  # without the ✖/⚠ mark


def _options(select) -> list[str]:
    """The labels of a ``select`` element's options."""
    return select.evaluate("(s) => [...s.options].map(o => o.label)")


def _state(panel, state: str):
    return panel.locator(f".ij-status [data-state='{state}']")


def _open_notebook(server: Server, chromium, name: str, width: int, kernel: str):
    """A copy of the panel notebook (with ``kernel``) open in a new page."""
    notebook = json.loads(NOTEBOOK.read_text())
    notebook["metadata"]["kernelspec"] = {
        "name": kernel,
        "display_name": kernel,
        "language": "python",
    }
    (server.root / name).write_text(json.dumps(notebook))
    lab_sidebar = server.front_end == "lab" and width < 1000
    # A first guess; `_size_output` corrects it once the output area exists.
    guess = width + (450 if lab_sidebar else 180)
    context = chromium.new_context(viewport={"width": guess, "height": WINDOW_HEIGHT})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    # The page's own errors, in the test's output (a failure's first clue).
    page.on("pageerror", lambda e: print("page error:", e))
    page.set_default_timeout(UI_TIMEOUT)
    page.goto(server.url + FRONT_ENDS[server.front_end].format(name=name, stem=Path(name).stem))
    return page, notebook


def _panel_session(server, chromium, expected, tmp_path, width: int, kernel: str) -> None:
    """The whole test for one front end, output width and kernel (see the module's doc)."""
    name = f"panel-{server.front_end}-{width}-{kernel}.ipynb"
    page, notebook = _open_notebook(server, chromium, name, width, kernel)
    try:
        _drive_notebook(page, server, notebook, name, expected, tmp_path, width, kernel)
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "page-at-end.png"))
        page.context.close()
        session = _session(server, name)
        if session:  # the kernel's work is done: free the CPU for the next test
            requests.delete(f"{server.url}/api/sessions/{session['id']}", timeout=10)


class JupyterHand:
    """The test's hand on the notebook's kernel (its sandbox and its panel)."""

    def __init__(self, kc) -> None:
        self.kc = kc

    def latency(self, seconds: float) -> None:
        _run_in_kernel(self.kc, f"sb.latency = {seconds}")

    def rate_limit_once(self) -> None:
        # One pending job is answered with the limiter's own 429, in a window with 4 s left.
        _run_in_kernel(
            self.kc,
            "import time\n"
            "sb.inject(panel.df.loc[panel.df['status'] == 'pending', 'job_id'].iloc[0],"
            " 'rate_limit')\n"
            "left = sb.window - time.time() % sb.window\n"
            "time.sleep(left if left < 4 else 0)",
        )

    def big_table(self, rows: int) -> None:
        _run_in_kernel(self.kc, f"small = panel.df\npanel.df = {BIG_FRAME.format(rows=rows)}")

    def restore(self) -> None:
        _run_in_kernel(self.kc, "panel.df = small")


# A jobs frame of ``rows`` rows: the panel's own, repeated, with ids of their own.
BIG_FRAME = (
    "(lambda df: df.assign(job_id=[str(10**7 + k) for k in range(len(df))]))("
    "__import__('pandas').concat([panel.df] * -(-{rows} // len(panel.df)), ignore_index=True)"
    ".iloc[:{rows}])"
)
BIG_ROWS = 100_000


def _drive_notebook(page, server, notebook, name, expected, tmp_path, width, kernel) -> None:
    sources = ["".join(cell["source"]) for cell in notebook["cells"]]
    n_cells = len(sources)
    panel_cell = next(i for i, source in enumerate(sources) if "ij.JobsPanel(" in source)
    cells = page.locator(CELLS)
    cells.nth(n_cells - 1).wait_for()
    kernel_id = _wait_kernel_idle(server, name)
    _set_file_browser(page, server.front_end, open_=width < 1000)
    # Run the notebook up to (and with) the panel; the rest runs after the panel was used.
    _select_cell(page, 0)
    _run_cells(page, panel_cell + 1)
    panel = page.locator(".ij-panel")
    panel.wait_for()
    measured = _size_output(page, width)
    assert abs(measured - width) <= 20, f"output area {measured:.0f} px, not about {width}"
    with _kernel_client(server, kernel_id) as kc:
        # The proof is worth something only if the kernel is the one named.
        version = _run_in_kernel(kc, "import ipykernel; print(ipykernel.__version__)").strip()
        if kernel == KERNEL6:
            assert version.startswith("6.29."), version
        else:
            assert int(version.split(".")[0]) >= 7, version
        label = f"{server.front_end} {width} px ({kernel})"
        _drive_panel(page, panel, JupyterHand(kc), expected, tmp_path, label, server.root)
    if os.environ.get("UPDATE_SCREENSHOT") == "1" and kernel == "python3":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shot = tmp_path / "panel.png"
        shutil.copyfile(shot, SCREENSHOTS / f"panel-{server.front_end}-{width}.png")
    # -- The rest of the notebook, in the same kernel: the no-mouse cells, auto-refresh -------
    _select_cell(page, panel_cell + 1)
    _run_cells(page, n_cells - panel_cell - 1)
    last_prompt = cells.nth(n_cells - 1).locator(".jp-InputPrompt")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)",
        arg=last_prompt.element_handle(),
        timeout=UI_TIMEOUT,
    )
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors.count() == 0, errors.all_inner_texts()
    assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
    _state(panel, "finished").wait_for()


def _drive_panel(page, panel, hand, expected, tmp_path, label, root) -> None:
    """Everything a person does with the panel, from the page alone (``hand`` changes the
    sandbox and the panel's frame behind it)."""
    # base_url overrides the region: the Region control says so, and shows no address.
    region = _options(panel.locator(".ij-region select"))
    assert region == ["set by base_url"], region
    _rejected_token(panel)
    _refresh(panel, expected)
    _stop(panel, hand, label)
    hand.rate_limit_once()
    _rate_limit(panel)
    _export(panel, root, expected)
    _upload(panel, expected, tmp_path)
    _filters(panel, expected)
    _sort_and_find(panel, expected)
    _copy(page, panel)
    assert any(".ij-probe" in c for c in panel.evaluate(PROBE_JS)), "the check sees no clipping"
    clipped = panel.evaluate(CLIPPED_JS)
    assert clipped == [], f"clipped at {label}: {clipped}"
    shot = tmp_path / "panel.png"
    panel.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a real picture, not a blank
    _big_table(panel, hand, label)
    hand.restore()
    panel.locator(".ij-count", has_text=f"{expected['total'] + 1} rows").wait_for()


def _rejected_token(panel) -> None:
    token_field = panel.locator(".ij-token input")
    token_field.fill(WRONG_TOKEN)
    panel.locator("button.ij-refresh").click()
    _state(panel, "error").wait_for()
    status = panel.locator(".ij-status")
    assert "access token" in status.inner_text(), status.inner_text()
    disclosure = status.locator("details")
    assert disclosure.count() == 1 and not disclosure.evaluate("d => d.open")
    disclosure.locator("summary").click()
    assert disclosure.evaluate("d => d.open") and "401" in disclosure.inner_text()
    assert WRONG_TOKEN not in panel.inner_html()
    assert token_field.input_value() == ""
    assert panel.locator("button.ij-refresh").is_enabled()


def _refresh(panel, expected) -> None:
    token_field = panel.locator(".ij-token input")
    token_field.fill(expected["token"])
    panel.locator("button.ij-refresh").click()
    _state(panel, "finished").wait_for()
    assert token_field.input_value() == ""  # the token left the page on use
    status_text = panel.locator(".ij-status").inner_text()
    assert str(expected["total"]) in status_text, status_text
    assert panel.locator("tr.ij-row").count() > 0
    panel.locator(".ij-count", has_text=f"{expected['total']} rows").wait_for()
    # The chart: an SVG of four bars; hovering a bar shows its count and share.
    bars = panel.locator(".ij-chart svg .ij-bar")
    assert bars.count() == 4
    bars.nth(1).hover()
    tip = panel.locator(".ij-tip")
    tip.wait_for()
    assert re.fullmatch(rf"failed: {expected['failed']} jobs \(\d+\.\d%\)", tip.inner_text())
    # The summary, grouped: a heading per thing counted.
    groups = panel.locator(".ij-summary th.ij-group").all_inner_texts()
    assert groups == ["status", "resource type", "error code"], groups
    # The ✖/⚠ marks stay on their id's line: a marked id's cell is no taller than a plain one.
    heights = panel.locator(".ij-table").evaluate(MARK_HEIGHTS_JS)
    assert heights["marked"] and heights["plain"], heights
    assert max(heights["marked"]) <= min(heights["plain"]) + 1, heights


def _stop(panel, hand, label) -> None:
    rows = panel.locator(".ij-count").inner_text()
    hand.latency(SLOW_LATENCY)
    panel.locator("button.ij-refresh").click()  # asks the pending jobs again, a second each
    _state(panel, "running").wait_for()
    panel.page.wait_for_timeout(300)
    took = panel.evaluate(STOP_JS)  # milliseconds, by the page's own clock
    print(
        f"{label}: Stop: stopped shown {took['stopped']} ms, Refresh enabled {took['enabled']} ms"
    )
    assert took["stopped"] is not None and took["enabled"] is not None, took
    assert max(took["stopped"], took["enabled"]) < STOP_WITHIN_MS, took
    assert panel.locator(".ij-count").inner_text() == rows  # the rows so far stay
    assert panel.locator("tr.ij-row").count() > 0
    hand.latency(0.0)
    panel.locator("button.ij-refresh").click()
    _state(panel, "finished").wait_for()


def _rate_limit(panel) -> None:
    panel.locator("button.ij-refresh").click()
    held = panel.locator(".ij-status [data-state='running']", has_text="for the rate-limit window")
    held.wait_for(timeout=15_000)
    assert re.search(r"waiting \d+ s for the rate-limit window", held.inner_text())
    _state(panel, "finished").wait_for(timeout=30_000)


def _export(panel, root, expected) -> None:
    export = panel.locator("button.ij-export")
    export.click()
    message = panel.locator(".ij-export-msg", has_text=".csv")
    message.wait_for()
    button_box, message_box = export.bounding_box(), message.bounding_box()
    assert button_box and message_box
    assert abs(message_box["y"] - button_box["y"]) < 80, (button_box, message_box)
    if root is not None:
        written = (root / "jobs.csv").read_text().splitlines()
        assert len(written) == expected["total"] + 1


def _upload(panel, expected, tmp_path) -> None:
    uploaded = [str(i) for i in expected["ids"]] + [UNKNOWN_ID]
    ids_file = tmp_path / "more-jobs.csv"
    ids_file.write_text("job_id\n" + "\n".join(uploaded) + "\n")
    panel.locator("input[type=file]").set_input_files(str(ids_file))
    note = panel.locator(".ij-upload-msg", has_text="Read")
    note.wait_for()
    assert f"Read {len(uploaded)} job ids from more-jobs.csv" in note.inner_text()
    panel.locator("button.ij-refresh").click()
    panel.locator(".ij-count", has_text=f"{len(uploaded)} rows").wait_for()
    _state(panel, "finished").wait_for()


def _filters(panel, expected) -> None:
    total = expected["total"] + 1
    box = panel.locator(".ij-table")
    status_select = panel.locator(".ij-filter-status select")
    choices = _options(status_select)
    failed_label = next(o for o in choices if o.startswith("failed ("))
    failed = int(re.sub(r"\D", "", failed_label))
    status_select.select_option(label=failed_label)
    panel.locator(".ij-count", has_text=f"{failed} rows (filtered from {total})").wait_for()
    shown = box.evaluate(TABLE_JS)
    assert len(shown) == failed and {r["status"] for r in shown} == {"failed"}, shown[:3]
    status_select.select_option(index=0)  # all
    code_select = panel.locator(".ij-filter-code select")
    choices = _options(code_select)
    assert "job_not_found (1)" in choices, choices
    code_select.select_option(label="job_not_found (1)")
    panel.locator(".ij-count", has_text=f"1 row (filtered from {total})").wait_for()
    shown = box.evaluate(TABLE_JS)
    assert [r["job_id"].lstrip("✖⚠ ") for r in shown] == [UNKNOWN_ID], shown
    code_select.select_option(index=0)  # all
    panel.locator(".ij-count", has_text=re.compile(rf"^{total} rows$")).wait_for()


def _sort_and_find(panel, expected) -> None:
    box = panel.locator(".ij-table")
    ascending = sorted([*expected["ids"], int(UNKNOWN_ID)])
    header = panel.locator("th[data-column='job_id']")
    header.click()
    panel.locator("th[data-column='job_id'][aria-sort='ascending']").wait_for()
    ids = _ids_drawn(panel)
    assert ids[0] == ascending[0] and ids == sorted(ids), ids[:5]
    header.click()  # again: the other order
    panel.locator("th[data-column='job_id'][aria-sort='descending']").wait_for()
    ids = _ids_drawn(panel)
    assert ids[0] == ascending[-1] and ids == sorted(ids, reverse=True), ids[:5]
    # Find an id far down the table: the box scrolls to its row, which is marked.
    wanted = str(ascending[0])  # the last row in this order
    find = panel.locator(".ij-find input")
    find.fill(wanted)
    find.press("Enter")
    msg = panel.locator(".ij-find-msg", has_text=wanted)
    msg.wait_for()
    row = len(ascending) - 1
    assert f"row {row + 1} of {len(ascending)}" in msg.inner_text()
    panel.locator("tr.ij-found").wait_for()
    where = _row_settled(panel, box, row, "w.found && w.inView && w.headerOnTop")
    assert where and where["found"] and where["inView"] and where["headerOnTop"], json.dumps(where)
    assert where["id"] == wanted
    # The message goes when it no longer applies: a filter that hides the row.
    code_select = panel.locator(".ij-filter-code select")
    note = panel.locator(".ij-find-msg").element_handle()
    code_select.select_option(label="job_not_found (1)")  # shows the unknown id alone
    panel.locator(".ij-count", has_text="1 row (").wait_for()
    panel.page.wait_for_function("(m) => m.innerText.trim() === ''", arg=note)
    assert panel.locator("tr.ij-found").count() == 0
    code_select.select_option(index=0)
    find.fill("")
    find.press("Enter")
    # The id column stays pinned when the box scrolls sideways.
    pin = box.evaluate(PIN_JS)
    if pin["scrolled"] > 0:
        assert abs(pin["idLeft"]) <= 2 and pin["otherLeft"] < 0, pin


def _copy(page, panel) -> None:
    panel.locator(".ij-table").evaluate("(box) => { box.scrollTop = 0; }")
    panel.locator("tr.ij-row[data-row='0']").wait_for()
    panel.locator("button.ij-copy-rows").click()
    msg = panel.locator(".ij-copy-msg", has_text="Copied")
    msg.wait_for()
    copied = msg.evaluate("(m) => m.dataset.copied")
    lines = copied.split("\n")
    assert lines[0].startswith("job_id\t") and len(lines) > 5, lines[:3]
    first_cell = panel.locator("tr.ij-row td").nth(2)
    first_cell.click()
    panel.locator("button.ij-copy-cell").click()
    panel.locator(".ij-copy-msg", has_text="Copied the cell").wait_for()


def _big_table(panel, hand, label) -> None:
    """A 100,000-row table: scrolled to its last row, the page holds a window of rows only."""
    hand.big_table(BIG_ROWS)
    panel.locator(".ij-count", has_text=f"{BIG_ROWS:,} rows").wait_for(timeout=60_000)
    box = panel.locator(".ij-table")
    # The box is as tall as every row once the page has drawn the new view.
    panel.page.wait_for_function(
        f"(box) => box.scrollHeight >= {BIG_ROWS * 24}", arg=box.element_handle()
    )
    started = time.monotonic()
    box.evaluate("(box) => { box.scrollTop = box.scrollHeight; }")
    last = BIG_ROWS - 1
    panel.locator(f"tr.ij-row[data-row='{last}']").wait_for(timeout=30_000)
    took = time.monotonic() - started
    where = _row_settled(panel, box, last, "w.inView && w.headerOnTop")
    assert where, "the last row left the page"
    print(
        f"{label}: the last of {BIG_ROWS:,} rows drawn {took:.2f} s after the scroll;"
        f" {where['rows']} rows in the page"
    )
    assert where["inView"] and where["headerOnTop"], where
    assert where["rows"] <= 200, where  # a window, not the table


@pytest.mark.parametrize("width", [650, 1400])
def test_the_panel_works_and_fits_in_the_front_end(jupyter, chromium, expected, tmp_path, width):
    _panel_session(jupyter, chromium, expected, tmp_path, width, "python3")


def test_the_panel_works_under_ipykernel_6_29(jupyter, chromium, expected, tmp_path):
    """ipykernel 7 changed how output from other threads is routed; the panel updates its
    widget from a background thread: the same test with an ipykernel 6.29 kernel."""
    _kernel6_python()
    _panel_session(jupyter, chromium, expected, tmp_path, 650, KERNEL6)


# -- marimo ---------------------------------------------------------------------------------------

MARIMO_NOTEBOOK = ROOT / "tests" / "notebooks" / "marimo_panel.py"
MARIMO_TOKEN = "marimo-sandbox-t0ken"


class SandboxHand:
    """The test's hand on a sandbox of its own (the marimo notebook's panel asks it) and on the
    notebook's buttons that swap the 100,000-row frame in and out."""

    def __init__(self, sb, page, pending: str) -> None:
        self.sb, self.page, self.pending = sb, page, pending

    def latency(self, seconds: float) -> None:
        self.sb.latency = seconds

    def rate_limit_once(self) -> None:
        self.sb.inject(self.pending, "rate_limit")
        left = self.sb.window - time.time() % self.sb.window
        time.sleep(left if left < 4 else 0)

    def big_table(self, rows: int) -> None:
        assert rows == BIG_ROWS
        self.page.get_by_role("button", name="Show 100,000 rows").click()

    def restore(self) -> None:
        self.page.get_by_role("button", name="Back to the sandbox's rows").click()


@pytest.fixture
def marimo_app(tmp_path):
    """``marimo run`` of the panel notebook on 127.0.0.1, no token, against a sandbox of the
    test's own; yields its URL, the sandbox, what the panel must show, and its folder."""
    _chromium_or_skip()
    with Sandbox(**SANDBOX_SETTINGS, token=MARIMO_TOKEN) as sb:
        df = ij.fetch_jobs(sb.job_ids, token=sb.token, base_url=sb.base_url, progress=False)
        sb.reset_stats()
        counts = df["status"].value_counts()
        expected = {
            "token": sb.token,
            "total": len(df),
            "ids": [int(i) for i in df["job_id"]],
            **{s: int(counts[s]) for s in ("success", "failed", "pending")},
        }
        pending = str(df.loc[df["status"] == "pending", "job_id"].iloc[0])
        root = tmp_path / "marimo"
        root.mkdir()
        env = {k: v for k, v in os.environ.items() if k != "INTERCOM_TOKEN"}
        env.update(
            {
                "IJ_BASE_URL": sb.base_url,
                "IJ_IDS": ",".join(sb.job_ids),
                "HOME": str(root),  # marimo's config and state, not the user's
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
                ),
            }
        )
        port = _free_port()
        log_path = root / "marimo.log"
        command = [
            sys.executable, "-m", "marimo", "run", str(MARIMO_NOTEBOOK), "--headless",
            "--no-token", "--host", "127.0.0.1", "--port", str(port), "--no-sandbox",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_until_up(server, url, "marimo", log_path)
                yield url, sb, expected, root, pending
            finally:
                _stop_group(server)


@pytest.mark.parametrize("width", [650, 1400])
def test_the_panel_works_and_fits_in_marimo(marimo_app, chromium, tmp_path, width):
    url, sb, expected, root, pending = marimo_app
    context = chromium.new_context(viewport={"width": width + 120, "height": WINDOW_HEIGHT})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.on("pageerror", lambda e: print("page error:", e))
    page.set_default_timeout(UI_TIMEOUT)
    try:
        page.goto(url)
        panel = page.locator(".ij-panel")
        panel.wait_for()
        measured = _size_output(page, width)
        assert abs(measured - width) <= 20, f"output area {measured:.0f} px, not about {width}"
        label = f"marimo {width} px"
        _drive_panel(page, panel, SandboxHand(sb, page, pending), expected, tmp_path, label, root)
        if os.environ.get("UPDATE_SCREENSHOT") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp_path / "panel.png", SCREENSHOTS / f"panel-marimo-{width}.png")
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "page-at-end.png"))
        context.close()
