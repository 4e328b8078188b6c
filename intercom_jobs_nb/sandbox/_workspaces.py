"""Workspaces: which bearer tokens the sandbox accepts, and who ``GET /me`` says they are.

Every accepted token belongs to a workspace (an Intercom "app", named by its ``id_code``);
each workspace has one admin, with its own id, and its own rate limit (``Sandbox``
keeps one limiter per ``id_code``). Workspaces see the same jobs unless
``Sandbox(separate_jobs=True)`` gives each its own outcomes. ``/me`` bodies (the OpenAPI
``admin_with_app`` schema) are rendered once, at construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ._store import dumps

#: The bearer token a sandbox accepts unless told otherwise; readable on purpose.
DEFAULT_TOKEN = "sandbox-token"
#: The ``id_code`` of the main token's workspace unless told otherwise.
DEFAULT_WORKSPACE = "sandbox"

_FIRST_ADMIN_ID = 991267459  # the spec's example admin; later workspaces count up from it
_APP_CREATED_AT = 1734537243  # the spec's example; fixed so bodies do not depend on the day
_AVATAR_URL = "https://static.intercomassets.com/assets/default-avatars/admins/128.png"


class Workspace(NamedTuple):
    """One workspace as the sandbox knows it."""

    id_code: str
    admin_id: str
    me_body: bytes  # the pre-rendered answer to GET /me


def admin_with_app(id_code: str, number: int) -> dict[str, Any]:
    """The ``/me`` answer of workspace number ``number`` (0 for the main token's)."""
    return {
        "type": "admin",
        "id": str(_FIRST_ADMIN_ID + number),
        "name": f"Sandbox Admin {number + 1}",
        "email": f"admin{number + 1}@sandbox.example.com",
        "job_title": "Sandbox admin",
        "away_mode_enabled": False,
        "away_mode_reassign": False,
        "has_inbox_seat": True,
        "team_ids": [],
        "avatar": {"type": "avatar", "image_url": _AVATAR_URL},
        "email_verified": True,
        "app": {
            "type": "app",
            "id_code": id_code,
            "name": f"Sandbox {id_code}",
            "region": "US",
            "timezone": "UTC",
            "created_at": _APP_CREATED_AT,
            "identity_verification": False,
        },
    }


def _check(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return value


def workspaces_by_auth(
    token: str, workspace: str, tokens: Mapping[str, str] | None
) -> dict[str, Workspace]:
    """Map each accepted ``Authorization`` header value to its token's workspace.

    Args:
        token: The main token.
        workspace: The main token's workspace ``id_code``.
        tokens: Extra tokens -> workspace ``id_code``.

    Raises:
        ValueError: For an empty token or id_code, or an extra token that is the main token
            with another workspace.
    """
    owners = {_check(token, "token"): _check(workspace, "workspace")}
    for extra, id_code in (tokens or {}).items():
        _check(extra, "each token in tokens")
        _check(id_code, f"the workspace of token #{len(owners)} in tokens")
        if owners.setdefault(extra, id_code) != id_code:
            raise ValueError("tokens maps the main token to another workspace than `workspace`")
    by_code: dict[str, Workspace] = {}
    for id_code in owners.values():
        if id_code not in by_code:
            number = len(by_code)
            body = admin_with_app(id_code, number)
            by_code[id_code] = Workspace(id_code, body["id"], dumps(body))
    return {f"Bearer {tok}": by_code[id_code] for tok, id_code in owners.items()}
