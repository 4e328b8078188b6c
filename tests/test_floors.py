"""What pyproject.toml claims is what CI tests: its dependencies' floors are the pins of
constraints-floor.txt (.ci/run's second run), and its Python classifiers run from
requires-python's floor without a gap."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest needs tomli before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
#: The extras whose floors are claims about the package at run time (the others are tools).
RUNTIME_EXTRAS = ("plot", "dask")


def floor_pins() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints-floor.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name.lower()] = Version(spec.version)
    return pins


def claimed_floors() -> dict[str, Version]:
    lines = list(PROJECT["dependencies"])
    for extra in RUNTIME_EXTRAS:
        lines += PROJECT["optional-dependencies"][extra]
    floors = {}
    for line in lines:
        req = Requirement(line)
        (floor,) = [s for s in req.specifier if s.operator == ">="]
        floors[req.name.lower()] = Version(floor.version)
    return floors


def test_every_floor_of_the_package_is_the_pin_ci_tests_it_with():
    pins = floor_pins()
    floors = claimed_floors()
    assert floors, "no floors read from pyproject.toml"
    for name, floor in floors.items():
        assert name in pins, f"{name}>={floor} is claimed but constraints-floor.txt has no pin"
        assert pins[name] == floor, f"{name}: pyproject says >={floor}, CI pins {pins[name]}"


def test_the_python_classifiers_are_the_versions_requires_python_admits():
    requires = SpecifierSet(PROJECT["requires-python"])
    claimed = [
        Version(m.group(1))
        for c in PROJECT["classifiers"]
        if (m := re.fullmatch(r"Programming Language :: Python :: (3\.\d+)", c))
    ]
    assert claimed, "no Python version among the classifiers"
    assert all(v in requires for v in claimed), (claimed, str(requires))
    # The lowest version claimed is the floor of requires-python (no untested gap below).
    floor = min(Version(s.version) for s in requires if s.operator == ">=")
    assert min(claimed) == floor
    # The versions claimed are consecutive: none between two of them is left out.
    minors = sorted(v.minor for v in claimed)
    assert minors == list(range(minors[0], minors[-1] + 1)), minors
