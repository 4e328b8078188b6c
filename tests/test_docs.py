"""The documentation cannot rot: every ```python block of the README and of the pages under
docs/ runs, as written, against the sandbox; the site builds with warnings as errors; and the
reference has every public name.

A page's blocks run in order in one namespace (like a notebook), in a fresh folder holding the
files the pages name (``job_ids.csv``, ``ids.txt``, ``tickets.csv``), with ``INTERCOM_TOKEN``
(and ``ACME_TOKEN``, ``GLOBEX_TOKEN``) set to the sandbox's tokens and every region of
``ij.REGIONS`` pointed at the sandbox: so ``region="eu"`` in an example reaches it. A block that
cannot run here is preceded by ``<!-- not run: REASON -->``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest needs tomli before 3.11
    import tomli as tomllib

import pytest
from packaging.requirements import Requirement

import intercom_jobs_nb as ij
from intercom_jobs_nb.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# The pages: the README and every Markdown file of docs/ (docs/examples is the notebooks folder).
PAGES = [ROOT / "README.md"] + sorted(
    path for path in DOCS.rglob("*.md") if not {"_build", "examples"} & set(path.parts)
)
_BLOCK = re.compile(r"(<!-- not run: ([^>]*?) -->\n)?```python\n(.*?)```", re.S)

TICKETS = (
    "key,contact_email,title,description\n"
    "T-1,ada@example.com,Printer on fire,Third floor\n"
    "T-2,alan@example.com,Cannot log in,Since Monday\n"
)


def python_blocks(page: Path) -> list[tuple[str | None, str]]:
    """(the reason it is not run, or None; the code) of each ```python block of a page."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(2), m.group(3)) for m in _BLOCK.finditer(text.replace("\r\n", "\n"))]


def page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


@pytest.fixture
def docs_world(tmp_path, monkeypatch):
    """The sandbox and the files the pages' examples use, in a fresh working folder."""
    with Sandbox(
        jobs=20,
        seed=3,
        pending_share=0.0,
        enqueue_pending_seconds=(0.0, 0.0),
        tokens={"tok-acme": "acme", "tok-globex": "globex"},
    ) as sb:
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("INTERCOM_TOKEN", sb.token)
        monkeypatch.setenv("ACME_TOKEN", "tok-acme")
        monkeypatch.setenv("GLOBEX_TOKEN", "tok-globex")
        monkeypatch.setenv("MPLBACKEND", "Agg")
        for region in list(ij.REGIONS):
            monkeypatch.setitem(ij.REGIONS, region, sb.base_url)
        (tmp_path / "job_ids.csv").write_text("job_id\n" + "\n".join(sb.job_ids) + "\n")
        (tmp_path / "ids.txt").write_text("\n".join(sb.job_ids) + "\n")
        (tmp_path / "tickets.csv").write_text(TICKETS)
        yield sb


def test_the_pages_have_examples_to_run():
    """The collection below is not empty by accident: the guides have runnable examples."""
    runnable = {page_id(p) for p in PAGES if any(r is None for r, _ in python_blocks(p))}
    assert {"README.md", "docs/getting-started.md", "docs/guides/tickets.md"} <= runnable
    assert len(runnable) >= 8, runnable


@pytest.mark.parametrize(
    "page", [p for p in PAGES if python_blocks(p)], ids=page_id
)  # fmt: skip
def test_the_python_examples_of_a_page_run(page, docs_world):
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for reason, code in python_blocks(page):
        if reason is not None:
            assert reason.strip(), f"{page_id(page)}: say why a block is not run"
            compile(code, page_id(page), "exec")  # still valid Python
            continue
        exec(compile(code, page_id(page), "exec"), namespace)  # noqa: S102 (the page's code)
        ran += 1
    assert ran, f"{page_id(page)}: no block ran"


def test_every_public_name_has_an_entry_in_the_reference():
    """The reference page is made from ``__all__`` (docs/_ext/public_api.py): each name gets an
    entry of its kind, and has something to say (a docstring, or a line for a value)."""
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import public_api
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    assert sorted(name for _, name in public_api.entries()) == sorted(ij.__all__)
    assert public_api.undocumented() == []
    assert ".. public-api::" in (DOCS / "reference.rst").read_text(encoding="utf-8")


def test_the_site_builds_with_warnings_as_errors_and_documents_every_public_name(tmp_path):
    """What .ci/run does, into a temporary folder: any warning (a broken reference, a docstring
    that is not valid reStructuredText, a page outside every toctree) fails it."""
    out = tmp_path / "html"
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-4000:]
    reference = (out / "reference.html").read_text(encoding="utf-8")
    missing = [name for name in ij.__all__ if f'id="intercom_jobs_nb.{name}"' not in reference]
    assert missing == []
    for notebook in ("quickstart", "panel", "enqueue-and-track"):
        page = (out / "examples" / f"{notebook}.html").read_text(encoding="utf-8")
        assert "cell_output" in page  # rendered from the stored outputs
    # Nothing the pages load comes from the network.
    for page in out.rglob("*.html"):
        remote = re.findall(r'<(?:script|img|link)[^>]*(?:src|href)="(https?://[^"]+)"',
                            page.read_text(encoding="utf-8"))  # fmt: skip
        assert remote == [], (page.name, remote)


def test_every_extra_the_docs_name_is_declared_and_brings_what_its_page_needs():
    text = "\n".join(page.read_text(encoding="utf-8") for page in PAGES)
    named = {
        extra
        for group in re.findall(r"(?:intercom-jobs-nb|\.|\.whl)\[([a-z,]+)\]", text)
        for extra in group.split(",")
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    assert {"notebook", "plot", "dask", "docs", "test"} <= named <= set(extras), named

    def wants(extra: str) -> dict[str, Requirement]:
        return {Requirement(line).name: Requirement(line) for line in extras[extra]}

    notebook = wants("notebook")  # JupyterLab 4 and Notebook 7, as the guides say
    assert not notebook["jupyterlab"].specifier.contains("3.6.8")
    assert not notebook["notebook"].specifier.contains("6.5.7")
    assert {"ipykernel", "matplotlib"} <= set(notebook)
    assert "matplotlib" in wants("plot")
    assert {"dataframe", "distributed"} <= wants("dask")["dask"].extras
    assert {"sphinx", "furo", "myst-parser", "myst-nb"} <= set(wants("docs"))
