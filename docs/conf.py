"""Sphinx configuration: Furo, MyST Markdown pages, the notebooks from their stored outputs.

Build (one command, the `docs` extra installed): ``sphinx-build -W docs docs/_build/html``.
Nothing here reaches the network: no intersphinx, no remote images or fonts, notebooks not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import intercom_jobs_nb  # noqa: E402

project = "intercom-jobs-nb"
author = "the intercom-jobs-nb authors"
copyright = "2026, the intercom-jobs-nb authors"  # noqa: A001 (Sphinx's name)
release = intercom_jobs_nb.__version__
version = release

extensions = [
    "myst_nb",  # MyST Markdown pages and .ipynb notebooks (it loads myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' Google-style Args:/Returns:/Raises: sections
    "public_api",  # docs/_ext/public_api.py: the reference, from intercom_jobs_nb.__all__
]

# The example notebooks are pages, rendered from the outputs stored in them: never executed.
# docs/examples is a symbolic link to ../notebooks (Sphinx reads only files under docs/), so the
# notebooks stay where nbval and JupyterLab find them.
nb_execution_mode = "off"
# Widgets (progress bars, the JobsPanel) would need a widget manager from a CDN to show: show
# their text form instead, so the pages load nothing from the network either.
nb_ipywidgets_js: dict[str, dict[str, str]] = {}  # no require.js or widget manager from a CDN
nb_mime_priority_overrides = [
    ("html", "application/vnd.jupyter.widget-view+json", None),
    ("html", "application/vnd.jupyter.widget-state+json", None),
]

myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

exclude_patterns = ["_build", "examples/*.cfg", "Thumbs.db", ".DS_Store"]

# Every reference to this package's own names must resolve (a typo is an error under -W);
# names from other libraries are plain text, as there is no intersphinx (no network at build).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!intercom_jobs_nb\b).*"),
    # ClientOptions is made of three private parts (one per group of options); Python 3.15
    # shows a TypedDict's bases, which autodoc's show-inheritance then names.
    (r"py:class", r"intercom_jobs_nb\._options\.(Connection|Request|Token)Options"),
]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # Attributes: as fields, not entries that collide with autodoc's members

html_theme = "furo"
html_title = f"intercom-jobs-nb {release}"
html_static_path: list[str] = []
# Furo links no remote font; the pages' only images are the screenshots in this folder.
