"""Public APIs only: what ruff's SLF001 (on in pyproject.toml) cannot see.

SLF001 flags ``thing._name`` on other objects, not a subclass reaching into its base: a private
method overridden (``def _new_conn``), or ``self._context`` / ``super()._read_status()`` where
the base class is the standard library's or another package's. These tests read every class of
the package that derives from a class of another package, and fail on either.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap

import intercom_jobs_nb

PACKAGE = intercom_jobs_nb.__name__

# (module, class, name): private names of another package that stay, each because no public way
# exists. Each has its own test that fails if the name goes away.
ALLOWED = {
    # dask.dataframe.to_parquet cannot change the pandas metadata it writes any other way
    # (see _ParquetEngine; tests/test_dask.py checks dask still has the hook).
    ("intercom_jobs_nb.dask", "_ParquetEngine", "_pandas_to_arrow_table"),
}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _ours(cls: type) -> bool:
    return cls.__module__ == PACKAGE or cls.__module__.startswith(PACKAGE + ".")


def _modules():
    for info in pkgutil.walk_packages(intercom_jobs_nb.__path__, PACKAGE + "."):
        if info.name.endswith(".__main__"):  # importing it runs the CLI
            continue
        try:
            yield importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed (dask, matplotlib)
            continue


def _derived_classes():
    """(module, class) for each class of the package with a base from another package."""
    seen = set()
    for module in _modules():
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and value.__module__ == module.__name__
                and value not in seen
                and any(not _ours(base) and base is not object for base in value.__mro__[1:])
            ):
                seen.add(value)
                yield module, value


def _uses(cls: type) -> set[str]:
    """Private names ``cls``'s own code reads or calls on ``self``, ``cls`` or ``super()``."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id in ("self", "cls")) or (
                isinstance(owner, ast.Call)
                and isinstance(owner.func, ast.Name)
                and owner.func.id == "super"
            ):
                used.add(node.attr)
    return used


def _defines(cls: type) -> set[str]:
    """Private names the package's own classes in ``cls``'s MRO define or assign."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if not _ours(klass):
            continue
        names.update(vars(klass))
        names.update(getattr(klass, "__slots__", ()))
        tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        for node in ast.walk(tree):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, (ast.AnnAssign, ast.AugAssign))
                else []
            )
            for target in targets:
                if isinstance(target, ast.Attribute):
                    names.add(target.attr)
    return names


def _written(cls: type) -> set[str]:
    """Names the class's own body defines (not what a metaclass or typing adds)."""
    body = ast.parse(textwrap.dedent(inspect.getsource(cls))).body[0]
    assert isinstance(body, ast.ClassDef)
    names = set()
    for node in body.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def test_the_check_finds_the_packages_subclasses_of_library_classes():
    found = {f"{m.__name__}.{c.__name__}" for m, c in _derived_classes()}
    # The connections of the transport (http.client's and urllib3's) are among them.
    assert "intercom_jobs_nb._transport._DirectTLS" in found
    assert "intercom_jobs_nb._transport.WatchedHTTPSConnection" in found


def test_no_class_overrides_a_private_method_of_another_package():
    overrides = []
    for module, cls in _derived_classes():
        bases = [b for b in cls.__mro__[1:] if not _ours(b)]
        for name in _written(cls):
            inherited = _private(name) and any(name in vars(base) for base in bases)
            if inherited and (module.__name__, cls.__name__, name) not in ALLOWED:
                overrides.append(f"{module.__name__}.{cls.__qualname__}.{name}")
    assert overrides == []


def test_no_class_uses_a_private_name_it_inherits_from_another_package():
    borrowed = []
    for module, cls in _derived_classes():
        for name in sorted(_uses(cls) - _defines(cls)):
            if (module.__name__, cls.__name__, name) not in ALLOWED:
                borrowed.append(f"{module.__name__}.{cls.__qualname__}: {name}")
    assert borrowed == []
