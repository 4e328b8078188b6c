"""The reference is made from ``intercom_jobs_nb.__all__``: a name added there is documented
without editing a page, and a name without a docstring fails the build.

``.. public-api::`` (in ``reference.rst``) becomes one autodoc entry per public name, grouped:
functions, classes, exceptions, then the other values (``py:data``, described by ``VALUES``).
``entries()`` is what it writes; ``tests/test_docs.py`` checks that the built page has every
name.
"""

from __future__ import annotations

import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

PACKAGE = "intercom_jobs_nb"

# Values have no docstring of their own: what each one is.
VALUES = {
    "__version__": "The installed version, read from the package's metadata.",
    "REGIONS": "The API host of each ``region``: ``us``, ``eu`` and ``au``.",
}

GROUPS = (
    ("Functions", "autofunction"),
    ("Classes", "autoclass"),
    ("Exceptions", "autoexception"),
    ("Values", "data"),
)


def kind(obj: object) -> str:
    """The autodoc directive for a public object."""
    if inspect.isclass(obj) and issubclass(obj, BaseException):
        return "autoexception"
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    return "data"


def entries() -> list[tuple[str, str]]:
    """(directive, name) for every name of ``__all__``, in its order within each group."""
    import intercom_jobs_nb

    found = [(kind(getattr(intercom_jobs_nb, name)), name) for name in intercom_jobs_nb.__all__]
    order = [directive for _, directive in GROUPS]
    return sorted(found, key=lambda entry: order.index(entry[0]))


def undocumented() -> list[str]:
    """The public names with nothing to show: no docstring, and no line in ``VALUES``."""
    import intercom_jobs_nb

    missing = []
    for directive, name in entries():
        if directive == "data":
            if name not in VALUES:
                missing.append(name)
        elif not inspect.getdoc(getattr(intercom_jobs_nb, name)):
            missing.append(name)
    return missing


class PublicApi(SphinxDirective):
    """Every public name, as autodoc entries under a heading per group."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        missing = undocumented()
        if missing:
            raise self.error(f"public names without a docstring: {', '.join(missing)}")
        lines: list[str] = []
        for title, group in GROUPS:
            names = [name for directive, name in entries() if directive == group]
            if not names:
                continue
            lines += [title, "-" * len(title), ""]
            for name in names:
                lines.append(f".. {group}:: {PACKAGE}.{name}")
                if group in ("autoclass", "autoexception"):
                    lines.append("   :members:")
                    lines.append("   :show-inheritance:")
                if group == "data":  # autodata would show the value's type's docstring
                    lines += ["", f"   {VALUES[name]}"]
                lines.append("")
        content = StringList(lines, source="public_api")
        node = nodes.section()
        node.document = self.state.document
        self.state.nested_parse(content, self.content_offset, node, match_titles=True)
        return node.children


class OptionsTable(SphinxDirective):
    """``.. options-table::``: every option of ``ClientOptions`` with its default and meaning,
    from the package's one declaration (``OPTIONS``): an option added there is documented."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from intercom_jobs_nb._options import OPTIONS

        lines = [".. list-table::", "   :header-rows: 1", "", "   * - option", "     - default"]
        lines.append("     - meaning")
        for name, option in OPTIONS.items():
            default = "none" if option.default is None else f"``{option.default!r}``"
            flag = f" (command line: ``--{name.replace('_', '-')}``)" if option.metavar else ""
            lines += [f"   * - ``{name}``", f"     - {default}", f"     - {option.help}{flag}"]
        content = StringList(lines, source="options_table")
        node = nodes.section()
        node.document = self.state.document
        self.state.nested_parse(content, self.content_offset, node)
        return node.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("public-api", PublicApi)
    app.add_directive("options-table", OptionsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
