"""What the package declares is one fact: environment.yml (conda) asks for what pyproject.toml's
dependencies and the [notebook] extra ask for, with the same floors."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
_REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$")


def requirements(lines):
    """{name: version spec} of requirement strings (names normalized as PEP 503 says)."""
    found = {}
    for line in lines:
        name, spec = _REQUIREMENT.match(line.split(";")[0].strip()).groups()
        found[re.sub(r"[-_.]+", "-", name).lower()] = spec.replace(" ", "")
    return found


def test_environment_yml_asks_for_the_dependencies_and_notebook_extra_with_their_floors():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = requirements(project["dependencies"])
    wanted.update(requirements(project["optional-dependencies"]["notebook"]))
    conda = yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]
    declared = requirements(item for item in conda if isinstance(item, str))
    declared.pop("python", None)
    declared.pop("pip", None)
    assert declared == wanted
