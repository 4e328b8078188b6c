"""Warnings that point at the user's line, not at a frame inside this package.

As pandas does (``pandas.util._exceptions.find_stack_level``): the stack level is counted at
the time of the warning, so it stays right however the call path inside the package changes.
"""

from __future__ import annotations

import inspect
import os
import warnings

__all__ = ["find_stack_level", "warn"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def find_stack_level() -> int:
    """The ``stacklevel`` of the first frame outside this package (1 is the caller)."""
    frame = inspect.currentframe()
    level = 0
    try:
        while frame is not None:
            if not os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
                break
            frame = frame.f_back
            level += 1
    finally:
        del frame
    return level


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn` at the user's line."""
    warnings.warn(message, category, stacklevel=find_stack_level())
