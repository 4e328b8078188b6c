"""Tickets: the checks of a ``POST /tickets/enqueue`` body, and the tickets it creates.

The handler checks a body (:func:`parse_enqueue`) before it takes the sandbox lock: the
checks only read the ticket types, fixed at construction. The answer to a bad body is a 400
``parameter_invalid`` with one message in the style of Intercom's (``"contacts is
required"``, ``"created_at isn't an integer"``). A ticket's ``GET /tickets/{id}`` body (the
OpenAPI ``ticket`` schema) is rendered once, when its enqueue request is carried out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._store import Job, dumps

#: The ticket types of a sandbox unless told otherwise: the spec's enqueue example uses 88.
DEFAULT_TICKET_TYPES: dict[str, str] = {"88": "Bug report"}

_NOT_JSON = ("parameter_invalid", "Request body is not valid JSON")
_TYPES_CREATED_AT = 1734537973  # the spec's example; fixed so bodies do not depend on the day
_CATEGORY = "Back-office"  # as in the spec's example ticket
_STATE = {
    "type": "ticket_state",
    "id": "1",
    "category": "submitted",
    "internal_label": "Submitted",
    "external_label": "Submitted",
}
_TITLE, _DESCRIPTION = "_default_title_", "_default_description_"
_CONTACT_KEYS = ("id", "external_id", "email")
_OPTIONAL_STRINGS = ("company_id", "conversation_to_link_id")


class EnqueueRequest(NamedTuple):
    """A ``POST /tickets/enqueue`` body that passed the checks, normalized."""

    body: dict[str, Any]  # the body as sent
    ticket_type_id: str  # as a string even if sent as a number, as the spec's example does
    contact: dict[str, str]  # the one contact, as sent
    attributes: dict[str, Any]  # ticket_attributes, _default_title_/_description_ first
    created_at: int  # as sent, else the server time of the request
    #: The ticket's body after its ``ticket_id``, rendered before the sandbox lock is taken.
    rest: bytes


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _invalid(message: str) -> tuple[str, str]:
    return ("parameter_invalid", message)


def parse_enqueue(
    raw: bytes, ticket_types: Mapping[str, dict[str, Any]], now: int
) -> EnqueueRequest | tuple[str, str]:
    """Check an enqueue body against the spec's ``create_ticket_request`` (plus
    ``skip_notifications``), and render most of the ticket it would create.

    Args:
        raw: The request body.
        ticket_types: The known ticket types: id -> the ``ticket_type`` object.
        now: The server time (UNIX seconds): the ticket's ``updated_at``, and its
            ``created_at`` unless the body gives one.

    Returns:
        The normalized request, or the ``(code, message)`` of the 400 that refuses it. The
        first problem found is reported. Optional fields sent as ``null`` count as absent (the
        official SDK sends ``null`` for an argument given as None); unknown fields are ignored.
    """
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except ValueError:
        return _NOT_JSON
    if not isinstance(body, dict):
        return _invalid("Request body isn't an object")

    type_id = body.get("ticket_type_id")
    if type_id is None:
        return _invalid("ticket_type_id is required")
    if _is_int(type_id):
        type_id = str(type_id)
    if not isinstance(type_id, str):
        return _invalid("ticket_type_id isn't a string")

    contacts = body.get("contacts")
    if contacts is None:
        return _invalid("contacts is required")
    if not isinstance(contacts, list):
        return _invalid("contacts isn't an array")
    if not contacts:
        return _invalid("contacts can't be empty")
    if len(contacts) > 1:
        return _invalid("Only one contact is allowed")
    contact = contacts[0]
    if not isinstance(contact, dict):
        return _invalid("contacts[0] isn't an object")
    named = [key for key in _CONTACT_KEYS if contact.get(key) is not None]
    if not named:
        return _invalid("contacts[0] needs an id, external_id or email")
    for key in named:
        if not isinstance(contact[key], str) or not contact[key]:
            return _invalid(f"contacts[0].{key} isn't a non-empty string")

    attributes = body.get("ticket_attributes")
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, dict):
        return _invalid("ticket_attributes isn't an object")
    for key, value in attributes.items():
        if key in (_TITLE, _DESCRIPTION):
            if value is not None and not isinstance(value, str):
                return _invalid(f"ticket_attributes.{key} isn't a string")
        elif value is not None and not isinstance(value, (str, int, float, bool, list)):
            return _invalid(f"ticket_attributes.{key} isn't a string, number, boolean or array")

    for key in _OPTIONAL_STRINGS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return _invalid(f"{key} isn't a string")
    created_at = body.get("created_at")
    if created_at is not None and not _is_int(created_at):
        return _invalid("created_at isn't an integer")
    skip = body.get("skip_notifications")
    if skip is not None and not isinstance(skip, bool):
        return _invalid("skip_notifications isn't a boolean")
    assignment = body.get("assignment")
    if assignment is None:
        assignment = {}
    if not isinstance(assignment, dict):
        return _invalid("assignment isn't an object")
    for key in ("admin_assignee_id", "team_assignee_id"):
        if assignment.get(key) is not None and not isinstance(assignment[key], str):
            return _invalid(f"assignment.{key} isn't a string")

    # Last: only a well-formed body gets as far as looking the type up, as an API would.
    if type_id not in ticket_types:
        return _invalid("Ticket type not found")

    attributes = {_TITLE: None, _DESCRIPTION: None, **attributes}
    created_at = now if created_at is None else created_at
    rest = dumps(
        {
            "category": _CATEGORY,
            "ticket_attributes": attributes,
            "ticket_state": _STATE,
            "ticket_type": ticket_types[type_id],
            "contacts": {"type": "contact.list", "contacts": [contact_reference(contact)]},
            "admin_assignee_id": assignment.get("admin_assignee_id") or "0",
            "team_assignee_id": assignment.get("team_assignee_id") or "0",
            "created_at": created_at,
            "updated_at": max(now, created_at),
            "ticket_parts": {"type": "ticket_part.list", "ticket_parts": [], "total_count": 0},
            "open": True,
            "linked_objects": {"type": "list", "data": [], "total_count": 0, "has_more": False},
            "is_shared": False,
        }
    )
    return EnqueueRequest(body, type_id, contact, attributes, created_at, b"," + rest[1:])


def check_ticket_types(ticket_types: Mapping[str, str] | None) -> dict[str, str]:
    """The ticket types as given (a copy), or the default one.

    Raises:
        ValueError: For an id that is not a string of digits (Intercom's ids are numbers,
            and ``ticket_type_attribute.ticket_type_id`` is an integer) or an empty name.
    """
    if ticket_types is None:
        return dict(DEFAULT_TICKET_TYPES)
    types = dict(ticket_types)
    for type_id, name in types.items():
        if not isinstance(type_id, str) or not type_id.isdigit():
            raise ValueError(f"ticket type ids must be strings of digits, not {type_id!r}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"ticket type {type_id!r} needs a non-empty name")
    return types


def _type_attribute(
    attribute_id: int, type_id: str, workspace_id: str, name: str, description: str
) -> dict[str, Any]:
    return {
        "type": "ticket_type_attribute",
        "id": str(attribute_id),
        "workspace_id": workspace_id,
        "name": name,
        "description": description,
        "data_type": "string",
        "input_options": None,
        "order": 0 if name == _TITLE else 1,
        "required_to_create": False,
        "required_to_create_for_contacts": False,
        "visible_on_create": True,
        "visible_to_contacts": True,
        "default": True,
        "ticket_type_id": int(type_id),
        "archived": False,
        "created_at": _TYPES_CREATED_AT,
        "updated_at": _TYPES_CREATED_AT,
    }


def ticket_type_bodies(types: Mapping[str, str], workspace_id: str) -> dict[str, dict[str, Any]]:
    """The ``ticket_type`` object of each type, as a ticket embeds it (like the spec's example:
    the default title and description attributes, neither required to create a ticket)."""
    bodies = {}
    for number, (type_id, name) in enumerate(types.items()):
        bodies[type_id] = {
            "type": "ticket_type",
            "id": type_id,
            "name": name,
            "description": f"{name} (a sandbox ticket type)",
            "icon": "\U0001f39f",
            "workspace_id": workspace_id,
            "archived": False,
            "created_at": _TYPES_CREATED_AT,
            "updated_at": _TYPES_CREATED_AT,
            "is_internal": False,
            "ticket_type_attributes": {
                "type": "list",
                "data": [
                    _type_attribute(2 * number + 1, type_id, workspace_id, _TITLE, "Title"),
                    _type_attribute(
                        2 * number + 2, type_id, workspace_id, _DESCRIPTION, "Description"
                    ),
                ],
            },
            "category": _CATEGORY,
        }
    return bodies


def contact_reference(contact: Mapping[str, str]) -> dict[str, Any]:
    """The ticket's ``contact_reference``: the contact's id, or a stable one made up from its
    external_id or email (as if Intercom had found or created that contact)."""
    contact_id = contact.get("id")
    if not contact_id:
        key = "external_id" if contact.get("external_id") else "email"
        contact_id = hashlib.sha1(f"{key}:{contact[key]}".encode()).hexdigest()[:24]
    return {"type": "contact", "id": contact_id, "external_id": contact.get("external_id")}


class Ticket:
    """One ticket an enqueue request creates: it exists once its job has succeeded."""

    __slots__ = ("id", "number", "job", "request", "body")

    def __init__(self, ticket_id: str, number: int, job: Job, request: EnqueueRequest) -> None:
        self.id = ticket_id
        self.number = number  # the human ticket_id: 1, 2, ... in enqueue order
        self.job = job
        self.request = request
        # Under the sandbox lock: only the ids are added to the body rendered beforehand.
        self.body = b'{"type":"ticket","id":"%s","ticket_id":"%d"%s' % (
            ticket_id.encode(),
            number,
            request.rest,
        )

    def exists(self) -> bool:
        """Whether the ticket has been created: its job has succeeded."""
        return self.job.is_final()

    def snapshot(self) -> dict[str, Any]:
        """What :attr:`Sandbox.tickets` lists about the ticket (copies, safe to change)."""
        request = self.request
        return {
            "id": self.id,
            "ticket_id": str(self.number),
            "job_id": self.job.id,
            "ticket_type_id": request.ticket_type_id,
            "title": request.attributes[_TITLE],
            "description": request.attributes[_DESCRIPTION],
            "attributes": copy.deepcopy(request.attributes),
            "contact": dict(request.contact),
            "created_at": request.created_at,
            "body": copy.deepcopy(request.body),
        }


def count_key(snapshot: Mapping[str, Any], by: str) -> Any:
    """The value a ticket is counted under by :meth:`Sandbox.count_tickets`."""
    if by in ("title", "description", "ticket_type_id", "job_id"):
        value = snapshot[by]
    else:
        value = snapshot["attributes"].get(by)
    if isinstance(value, list):  # not hashable: counted under its JSON text
        value = json.dumps(value, sort_keys=True)
    return value
