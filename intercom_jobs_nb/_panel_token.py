"""The JobsPanel's token: given in code, typed into the page, or from ``INTERCOM_TOKEN``;
or one per workspace given in code (``tokens=``). Kept as a `Secret` only; no widgets."""

from __future__ import annotations

import os
from collections.abc import Mapping

from . import _errors as E
from ._format import number
from ._options import TOKEN_ENV, Secret, get_token

__all__ = ["TokenInput"]


class TokenInput:
    """Where a run's token comes from.

    Args:
        token: the token given in code, or None.
        tokens: the tokens of a panel of many workspaces, or None.
    """

    def __init__(self, token: Secret | None, tokens: Mapping[str, Secret] | None) -> None:
        self.token = token
        self.tokens = tokens
        self.given = token is not None
        self.typed = False  # something is in the Token field, not yet used
        self.last: Secret | None = None  # the token of the last run

    def secrets(self) -> list[Secret]:
        """Every token a message must never show."""
        own = [t for t in (self.last, self.token) if t is not None]
        return [*own, *(self.tokens or {}).values()]

    def available(self) -> bool:
        """Whether a refresh has a token (given, typed, or from `get_token` without a prompt)."""
        if self.token is not None or self.typed or self.tokens is not None:
            return True
        try:
            get_token(prompt=False)
        except E.ConfigurationError:
            return False
        return True

    def source(self) -> str:
        if self.tokens is not None:
            return f"given for {number(len(self.tokens))} workspaces"
        if self.token is not None:
            return "given" if self.given else "typed, kept in memory"
        return f"from {TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else "none yet"

    def note(self) -> str:
        """Where the token comes from (plain text)."""
        if self.tokens is not None:
            names = sorted(self.tokens)
            shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
            return f"Using the tokens given for {number(len(names))} workspaces: {shown}."
        if self.token is not None:
            return (
                "Using the token given to JobsPanel."
                if self.given
                else "A token is kept in memory (not in the notebook); type another to replace it."
            )
        if os.environ.get(TOKEN_ENV):
            return f"Using the token in {TOKEN_ENV}: nothing to type (type one to use another)."
        return "A token typed here is kept in memory only, never saved with the notebook."

    def use(self, typed: str) -> str | None:
        """Take a typed token (into a `Secret`). Returns why not, or None."""
        self.typed = False
        if not typed.strip():
            return None
        if self.tokens is not None:
            return "This panel runs many workspaces with the tokens given."
        try:
            self.token = Secret.wrap(typed, source="the typed token")
        except E.ConfigurationError as exc:
            return f"The token typed is not valid: {exc}."
        self.given = False
        return None

    def for_run(self) -> Secret | None:
        """The token of a run (None for many workspaces). Raises MissingTokenError."""
        self.last = None if self.tokens is not None else self.token or get_token(prompt=False)
        return self.last

    def whose(self, exc: E.AuthenticationError) -> str:
        """Which token Intercom rejected, for the sentence that says so."""
        if exc.workspace is not None:
            return f" of the workspace {exc.workspace}"
        if self.token is not None or self.tokens is not None:
            return ""
        return f" (the token in {TOKEN_ENV})"

    def forget(self) -> None:
        self.token, self.given = None, False
