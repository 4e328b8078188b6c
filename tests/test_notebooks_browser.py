"""The JobsPanel in real front ends, driven by headless Chromium: what unit tests cannot see.

Widgets that pass their Python tests can still fail to render, to sync or to fit in the browser
(a missing front-end extension, a trait the JavaScript side rejects, a label cut by its box).
For each front end (JupyterLab 4, ``jupyter lab``; Notebook 7, ``jupyter notebook``), one
server on loopback with no token serves a copy of ``notebooks/panel.ipynb``; each test opens
its own copy (its own kernel), sizes the window so the output area is 650 px or 1400 px wide
(in JupyterLab with the file browser open, respectively collapsed), runs the notebook up to the
panel, and then, from the page alone:

- types the sandbox's token and clicks **Refresh**: the status says finished, every job is a
  row (``tr.ij-row``);
- types a wrong token and clicks **Refresh**: the status is a sentence about the token, the
  detail (401) behind a closed disclosure that opens, the token nowhere in the page;
- checks that the ✖/⚠ marks stay on their id's line (marked cells are no taller than others);
- makes the sandbox slow, clicks **Refresh**, then **Stop**: within a second of the click, by
  the page's own clock, the status says stopped and Refresh is enabled again; the rows stay;
- has the sandbox answer one request with the rate limiter's 429 and clicks **Refresh**: the
  status says "waiting N s for the rate-limit window" and the budget left, then finishes;
- uploads a file of more jobs than a page (and one id Intercom does not know) from the page:
  the note beside Upload counts them, Refresh fetches them;
- pages through every page with **Next**, then **First**, **Last**, **Prev**: every row is
  reached, the pager's label says which;
- filters by status (every row shown is failed, as many as the option's count) and by error
  code (the unknown id, alone), then back to all;
- switches **Auto-refresh** on from the page and ends it with **Stop** while it waits for its
  next poll;
- finds an id: its page is shown and its row marked, the browser's own find sees it; an
  unknown id is "not found";
- sorts by ``job_id``, both orders, and checks the order of the ids on the page;
- pages to the last page and scrolls the table's own box to its last row, which is in view
  under a sticky header;
- clicks **Export CSV**: the message appears next to the button, the file is written;
- checks that no element of the panel is clipped: each fits its box or sits in a box that
  scrolls (one JavaScript pass over every element);
- takes a screenshot of the panel (``UPDATE_SCREENSHOT=1`` copies it to
  ``docs/screenshots/panel-<front end>-<width>.png``, the README's pictures);
- runs the rest of the notebook (the no-mouse cells, auto-refresh) with no error output.

The panel updates its widgets from a background thread, and ipykernel 7 changed how output from
other threads is routed, so the same test also runs with an ipykernel 6.29 kernel: the
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
from intercom_jobs_nb._widgets import TABLE_ROWS
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
MORE_JOBS = 250  # jobs added to the sandbox and uploaded from the page: more than a page
WRONG_TOKEN = "wrong-t0ken-for-the-browser-test"  # what a person mistypes
UNKNOWN_ID = "99999999"  # an id in the uploaded file that Intercom does not know
PAGE_ROWS = TABLE_ROWS  # rows of the jobs table on one page
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
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter {front_end} exited ({server.returncode}); see {log_path}")
            try:
                if requests.get(f"{url}/api/status", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter {front_end} did not answer in {START_TIMEOUT} s: {log_path}")
            time.sleep(0.3)
        yield Server(front_end, url, root, runtime)
    finally:
        _stop_group(server)
        log.close()


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


OUTPUT_WIDTH_JS = """() => {
  const panel = document.querySelector('.ij-panel');
  const output = panel && panel.closest('.jp-OutputArea-output');
  return output ? output.getBoundingClientRect().width : 0;
}"""


def _size_output(page, width: int) -> float:
    """Resize the window until the panel's output area is about ``width`` px wide."""
    measured = 0.0
    for _ in range(5):
        measured = page.evaluate(OUTPUT_WIDTH_JS)
        if abs(measured - width) <= 4:
            break
        viewport = page.viewport_size
        page.set_viewport_size(
            {"width": int(viewport["width"] + width - measured), "height": WINDOW_HEIGHT}
        )
        page.wait_for_timeout(400)  # the front end lays itself out again
    return measured


# Every element of the panel fits its box, except in the jobs table's box (``.ij-table``), which
# scrolls both ways, and in text fields (their text scrolls). Anything else that overflows is
# content a person cannot see or that spills over its neighbours: a label cut with an ellipsis,
# a column beyond the edge, a row of buttons that needs a scrollbar.
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

LAST_ROW_JS = """(box) => {
  box.scrollTop = box.scrollHeight;  // what the mouse wheel does, all the way down
  const rows = box.querySelectorAll('tr.ij-row');
  const last = rows[rows.length - 1];
  const b = box.getBoundingClientRect(), r = last.getBoundingClientRect();
  const head = box.querySelector('thead th').getBoundingClientRect();
  return {
    id: last.querySelector('td.ij-id').innerText,
    rows: rows.length,
    overflowY: getComputedStyle(box).overflowY,
    boxHeight: b.height,
    inView: r.top >= b.top - 1 && r.bottom <= b.top + box.clientHeight + 1,
    headerOnTop: Math.abs(head.top - b.top) <= 2,
  };
}"""

# Clicks Stop and watches the panel: when the status says stopped and when Refresh is enabled
# again, in milliseconds from the click by the page's clock (what a person sees; the test's
# own polling of the page would add its round trips).
STOP_JS = """(panel) => new Promise((resolve) => {
  const button = (label) =>
    [...panel.querySelectorAll('button')].find(b => b.innerText.trim() === label);
  const refresh = button('Refresh');
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
  button('Stop').click();
})"""

# The heights of the id cells with a ✖/⚠ mark and of those without one.
MARK_HEIGHTS_JS = """(box) => {
  const cells = [...box.querySelectorAll('td.ij-id')];
  const height = (td) => td.getBoundingClientRect().height;
  const marked = (td) => /[\u2716\u26a0]/.test(td.innerText);
  return {marked: cells.filter(marked).map(height),
          plain: cells.filter(td => !marked(td)).map(height)};
}"""

# The rows of the table's page as {column header: cell text}.
TABLE_JS = """(box) => {
  const head = [...box.querySelectorAll('thead th')].map(th => th.innerText.trim());
  return [...box.querySelectorAll('tr.ij-row')].map(tr => Object.fromEntries(
    [...tr.querySelectorAll('td')].map((td, k) => [head[k], td.innerText.trim()])));
}"""

IDS_JS = "(box) => Array.from(box.querySelectorAll('td.ij-id')).map(td => td.innerText)"


def _ids_on_page(page) -> list[int]:
    texts = page.locator(".ij-panel .ij-table").evaluate(IDS_JS)
    return [int(re.sub(r"\D", "", text)) for text in texts]  # without the ✖/⚠ mark


def _options(select) -> list[str]:
    """The labels of a ``select`` element's options (ipywidgets writes their spaces as
    no-break spaces: plain spaces here)."""
    labels = select.evaluate("(s) => [...s.options].map(o => o.label)")
    return [label.replace("\xa0", " ") for label in labels]


def _state(page, state: str):
    return page.locator(f".ij-panel .ij-status [data-state='{state}']")


def _button(page, label: str):
    """The panel's button with this label (its icon is no text: not a role name match, which
    would include Font Awesome's glyph)."""
    exact = re.compile(rf"^\s*{re.escape(label)}\s*$")
    return page.locator(".ij-panel button").filter(has_text=exact)


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
    page = chromium.new_page(viewport={"width": guess, "height": WINDOW_HEIGHT})
    page.set_default_timeout(UI_TIMEOUT)
    page.goto(server.url + FRONT_ENDS[server.front_end].format(name=name, stem=Path(name).stem))
    return page, notebook


def _panel_session(server, chromium, expected, tmp_path, width: int, kernel: str) -> None:
    """The whole test for one front end, output width and kernel (see the module's doc)."""
    name = f"panel-{server.front_end}-{width}-{kernel}.ipynb"
    page, notebook = _open_notebook(server, chromium, name, width, kernel)
    try:
        _drive_panel(page, server, notebook, name, expected, tmp_path, width, kernel)
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(tmp_path / "page-at-end.png"))
        page.close()
        session = _session(server, name)
        if session:  # the kernel's work is done: free the CPU for the next test
            requests.delete(f"{server.url}/api/sessions/{session['id']}", timeout=10)


def _drive_panel(page, server, notebook, name, expected, tmp_path, width, kernel) -> None:
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
    assert page.locator(".jp-OutputArea-output", has_text="Loading widget").count() == 0
    measured = _size_output(page, width)
    assert abs(measured - width) <= 20, f"output area {measured:.0f} px, not about {width}"
    # base_url overrides the region: the Region control says where requests go.
    region = _options(page.locator(".ij-panel .ij-region select"))
    assert len(region) == 1 and region[0].startswith("http://127.0.0.1:"), region

    with _kernel_client(server, kernel_id) as kc:
        # The proof is worth something only if the kernel is the one named: 6.29, or what pip
        # resolves (7 or later) for the default kernel.
        version = _run_in_kernel(kc, "import ipykernel; print(ipykernel.__version__)").strip()
        if kernel == KERNEL6:
            assert version.startswith("6.29."), version
        else:
            assert int(version.split(".")[0]) >= 7, version

        # -- A rejected token: a sentence, the detail behind a disclosure, no token shown ----
        token_field = page.locator(".ij-panel .ij-token input")
        token_field.fill(WRONG_TOKEN)
        _button(page, "Refresh").click()
        _state(page, "error").wait_for()
        status = page.locator(".ij-panel .ij-status")
        assert "access token" in status.inner_text(), status.inner_text()
        disclosure = status.locator("details")
        assert disclosure.count() == 1 and not disclosure.evaluate("d => d.open")
        disclosure.locator("summary").click()
        assert disclosure.evaluate("d => d.open") and "401" in disclosure.inner_text()
        assert WRONG_TOKEN not in page.locator(".ij-panel").inner_html()
        assert _button(page, "Refresh").is_enabled()

        # -- Refresh -----------------------------------------------------------------------
        token_field.fill(expected["token"])
        _button(page, "Refresh").click()
        _state(page, "finished").wait_for()
        assert token_field.input_value() == ""  # the token left the widget on use
        status_text = page.locator(".ij-panel .ij-status").inner_text()
        assert str(expected["total"]) in status_text, status_text
        rows = page.locator(".ij-panel tr.ij-row")
        page_size = rows.count()
        assert 0 < page_size <= expected["total"]
        page.locator(".ij-panel .ij-chart").first.wait_for()
        # The ✖/⚠ marks stay on their id's line: a marked id's cell is no taller than a plain one.
        heights = page.locator(".ij-panel .ij-table").evaluate(MARK_HEIGHTS_JS)
        assert heights["marked"] and heights["plain"], heights
        assert max(heights["marked"]) <= min(heights["plain"]) + 1, heights

        # -- Stop ends a slow fetch within about a second --------------------------------
        _run_in_kernel(kc, f"sb.latency = {SLOW_LATENCY}")
        _button(page, "Refresh").click()  # asks the pending jobs again, a second each
        _state(page, "running").wait_for()
        page.wait_for_timeout(300)
        took = panel.evaluate(STOP_JS)  # milliseconds, by the page's own clock
        print(
            f"{server.front_end} {width} px ({kernel}): output area {measured:.0f} px, Stop:"
            f" stopped shown {took['stopped']} ms, Refresh enabled {took['enabled']} ms"
            " after the click"
        )
        assert took["stopped"] is not None and took["enabled"] is not None, took
        assert max(took["stopped"], took["enabled"]) < STOP_WITHIN_MS, took
        assert rows.count() == page_size  # the rows so far stay on screen
        _run_in_kernel(kc, "sb.latency = 0.0")
        _button(page, "Refresh").click()
        _state(page, "finished").wait_for()
        # -- The rate limit holds a request back: the status says so, and for how long -----
        # One pending job is answered with the limiter's own 429 (nothing left until the
        # window ends), in a window with at least 4 s left.
        _run_in_kernel(
            kc,
            "import time\n"
            "sb.inject(panel.df.loc[panel.df['status'] == 'pending', 'job_id'].iloc[0],"
            " 'rate_limit')\n"
            "left = sb.window - time.time() % sb.window\n"
            "time.sleep(left if left < 4 else 0)",
        )
        _button(page, "Refresh").click()
        held = page.locator(
            ".ij-panel .ij-status [data-state='running']", has_text="for the rate-limit window"
        )
        held.wait_for(timeout=15_000)
        assert re.search(r"waiting \d+ s for the rate-limit window", held.inner_text())
        assert "left in the window" in held.inner_text(), held.inner_text()
        _state(page, "finished").wait_for(timeout=30_000)

        # More jobs than a page, for the upload below (a fifth of them failed).
        added = _run_in_kernel(
            kc,
            "import json; print(json.dumps("
            f"[sb.add_job('failed' if k % 5 == 0 else 'success') for k in range({MORE_JOBS})]))",
        )
        new_ids = [str(i) for i in json.loads(added)]

    # -- Export: its message next to the button -----------------------------------------------
    export = _button(page, "Export CSV")
    export.click()
    message = page.locator(".ij-panel .ij-export-msg")
    page.wait_for_function(
        "() => (document.querySelector('.ij-panel .ij-export-msg')?.innerText || '').length > 0"
    )
    assert ".csv" in message.inner_text(), message.inner_text()
    button_box, message_box = export.bounding_box(), message.bounding_box()
    assert button_box and message_box
    assert abs(message_box["y"] - button_box["y"]) < 80, (button_box, message_box)
    assert (server.root / "jobs.csv").exists()
    assert len((server.root / "jobs.csv").read_text().splitlines()) == expected["total"] + 1

    # -- Nothing clipped, at this width, with the results shown --------------------------------
    # First, that the check sees a label cut by its box (a probe put in the panel, then removed).
    assert any(".ij-probe" in c for c in panel.evaluate(PROBE_JS)), "the check sees no clipping"
    clipped = panel.evaluate(CLIPPED_JS)
    assert clipped == [], f"clipped at {width} px in {server.front_end}: {clipped}"

    shot = tmp_path / f"panel-{server.front_end}-{width}.png"
    panel.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000  # a real picture, not a blank
    if os.environ.get("UPDATE_SCREENSHOT") == "1" and kernel == "python3":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, SCREENSHOTS / shot.name)

    # -- Upload from the page: more jobs than a page, and an id Intercom does not know -------
    uploaded = [str(i) for i in expected["ids"]] + new_ids + [UNKNOWN_ID]
    ids_file = tmp_path / "more-jobs.csv"
    ids_file.write_text("job_id\n" + "\n".join(uploaded) + "\n")
    with page.expect_file_chooser() as chooser:  # what a click on Upload opens
        page.locator(".ij-panel .ij-upload").first.click()
    chooser.value.set_files(str(ids_file))
    upload_msg = page.locator(".ij-panel .ij-upload-msg")
    page.wait_for_function(
        "() => /Read/.test(document.querySelector('.ij-panel .ij-upload-msg')?.innerText || '')"
    )
    assert f"Read {len(uploaded)} job ids from more-jobs.csv" in upload_msg.inner_text()
    upload_box, upload_msg_box = (
        page.locator(".ij-panel button.ij-upload, .ij-panel .ij-upload").first.bounding_box(),
        upload_msg.bounding_box(),
    )
    assert upload_box and upload_msg_box
    assert abs(upload_msg_box["y"] - upload_box["y"]) < 80, (upload_box, upload_msg_box)
    assert "(1)" in page.locator(".ij-panel .ij-upload").first.inner_text()  # one file kept
    _button(page, "Refresh").click()
    total = len(uploaded)
    pager_label = page.locator(".ij-panel .ij-page")
    page.locator(".ij-panel .ij-page", has_text=f"rows 1–{PAGE_ROWS} of {total}").wait_for()
    _state(page, "finished").wait_for()

    # -- The pager reaches every row ----------------------------------------------------------
    seen: list[int] = []
    n_pages = -(-total // PAGE_ROWS)
    for k in range(n_pages):
        start, end = k * PAGE_ROWS + 1, min((k + 1) * PAGE_ROWS, total)
        pager_label.filter(has_text=f"rows {start}–{end} of {total}").wait_for()
        assert rows.count() == end - start + 1
        seen += _ids_on_page(page)
        if k < n_pages - 1:
            assert page.locator(".ij-panel .ij-next").first.is_enabled()
            page.locator(".ij-panel .ij-next").first.click()
    assert page.locator(".ij-panel .ij-next").first.is_disabled()
    assert sorted(seen) == sorted(int(i) for i in uploaded), "some rows are not reachable"
    page.locator(".ij-panel .ij-first").first.click()
    pager_label.filter(has_text=f"rows 1–{PAGE_ROWS} of {total}").wait_for()
    assert page.locator(".ij-panel .ij-prev").first.is_disabled()
    page.locator(".ij-panel .ij-last").first.click()
    pager_label.filter(has_text=f"rows {(n_pages - 1) * PAGE_ROWS + 1}–{total}").wait_for()
    page.locator(".ij-panel .ij-prev").first.click()
    pager_label.filter(has_text=f"rows {(n_pages - 2) * PAGE_ROWS + 1}–").wait_for()

    # -- Filter by status, then by error code -------------------------------------------------
    table = page.locator(".ij-panel .ij-table")
    status_select = page.locator(".ij-panel .ij-filter-status select")
    choices = _options(status_select)
    failed_label = next((o for o in choices if o.startswith("failed (")), None)
    assert failed_label, choices
    failed = int(re.sub(r"\D", "", failed_label))
    status_select.select_option(index=choices.index(failed_label))
    pager_label.filter(has_text=f"(filtered from {total})").wait_for()
    shown = table.evaluate(TABLE_JS)
    assert len(shown) == min(failed, PAGE_ROWS) and failed > 0
    assert {r["status"] for r in shown} == {"failed"}, shown[:3]
    status_select.select_option(index=0)  # all
    code_select = page.locator(".ij-panel .ij-filter-code select")
    choices = _options(code_select)
    assert "job_not_found (1)" in choices, choices
    code_select.select_option(index=choices.index("job_not_found (1)"))
    pager_label.filter(has_text=f"rows 1–1 of 1 (filtered from {total})").wait_for()
    shown = table.evaluate(TABLE_JS)
    assert [r["job_id"].lstrip("✖⚠ ") for r in shown] == [UNKNOWN_ID], shown
    assert shown[0]["error_code"] == "job_not_found", shown
    code_select.select_option(index=0)  # all
    pager_label.filter(has_text=re.compile(rf"of {total}$")).wait_for()

    # -- Auto-refresh from the page, and Stop ends it while it waits for its next poll -------
    auto = page.locator(".ij-panel button.ij-auto")
    auto.click()
    page.locator(".ij-panel .ij-status", has_text="Next refresh in").wait_for()
    stop = _button(page, "Stop")
    assert stop.is_enabled(), "Stop cannot end auto-refresh while it waits"
    stop.click()
    page.locator(".ij-panel .ij-status [data-state='stopped']", has_text="Auto-refresh").wait_for()
    page.wait_for_function(
        "() => !document.querySelector('.ij-panel button.ij-auto').classList.contains('mod-active')"
    )
    assert stop.is_disabled() and _button(page, "Refresh").is_enabled()

    # -- Find an id: its page is shown and its row marked --------------------------------------
    wanted = new_ids[-1]  # a success, on the last page in the default order
    find = page.locator(".ij-panel .ij-find input")
    find.fill(wanted)
    find.press("Enter")
    page.locator(".ij-panel .ij-find-msg", has_text=wanted).wait_for()
    found = page.locator(".ij-panel tr.ij-found td.ij-id")
    assert found.count() == 1 and found.inner_text().endswith(wanted)
    assert f"of {total}" in page.locator(".ij-panel .ij-find-msg").inner_text()
    # Rows are real text: the browser's own find sees the id, and it can be selected.
    assert page.evaluate("(text) => window.find(text)", wanted)
    assert found.evaluate("(td) => getComputedStyle(td).userSelect") != "none"
    find.fill(UNKNOWN_ID + "0")
    find.press("Enter")
    page.locator(".ij-panel .ij-find-msg", has_text="not found").wait_for()
    find.fill("")
    find.press("Enter")

    # -- Sort ---------------------------------------------------------------------------------
    page.locator(".ij-panel .ij-sort select").select_option(label="job_id")
    ascending = sorted(int(i) for i in uploaded)
    page.wait_for_function(
        f"() => document.querySelector('.ij-panel td.ij-id')?.innerText.endsWith('{ascending[0]}')"
    )
    ids = _ids_on_page(page)
    assert ids == sorted(ids), "the page is not sorted by job_id"
    page.locator(".ij-panel .ij-order").first.click()  # the other order
    page.wait_for_function(
        f"() => document.querySelector('.ij-panel td.ij-id')?.innerText.endsWith('{ascending[-1]}')"
    )
    ids = _ids_on_page(page)
    assert ids == sorted(ids, reverse=True), "the page is not sorted by job_id, descending"

    # -- The last row: the last page, then the table's own box scrolled down ------------------
    last_button = page.locator(".ij-panel .ij-last").first
    if last_button.is_enabled():
        last_button.click()
        page.wait_for_function(
            "() => document.querySelector('.ij-panel td.ij-id') &&"
            f" !document.querySelector('.ij-panel td.ij-id').innerText.endsWith('{ascending[-1]}')"
        )
    label = page.locator(".ij-panel .ij-page").inner_text()
    pages = re.findall(r"\d[\d,]*", label)
    assert pages, f"the pager says {label!r}"
    box = page.locator(".ij-panel .ij-table")
    last = box.evaluate(LAST_ROW_JS)
    assert last["overflowY"] in ("auto", "scroll") and last["boxHeight"] <= 700, last
    assert last["inView"] and last["headerOnTop"], last
    assert int(re.sub(r"\D", "", last["id"])) == ascending[0]  # descending: the smallest last

    clipped = panel.evaluate(CLIPPED_JS)  # and with the table sorted and scrolled
    assert clipped == [], f"clipped at {width} px in {server.front_end}: {clipped}"

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
    _state(page, "finished").wait_for()


@pytest.mark.parametrize("width", [650, 1400])
def test_the_panel_works_and_fits_in_the_front_end(jupyter, chromium, expected, tmp_path, width):
    _panel_session(jupyter, chromium, expected, tmp_path, width, "python3")


def test_the_panel_works_under_ipykernel_6_29(jupyter, chromium, expected, tmp_path):
    """ipykernel 7 changed how output from other threads is routed; the panel updates its
    widgets from a background thread: the same test with an ipykernel 6.29 kernel."""
    _kernel6_python()
    _panel_session(jupyter, chromium, expected, tmp_path, 650, KERNEL6)
