"""Rows for enqueue tests: each carries its key in the ``attr:row_key`` ticket attribute, so the
sandbox can count tickets per key (``count_tickets(by="row_key")``)."""

from __future__ import annotations


def keyed_rows(n, prefix="k"):
    """``n`` valid rows, each with its key in a ``key`` column and in ``attr:row_key``."""
    return [
        {
            "key": f"{prefix}{i}",
            "contact_id": f"contact-{i}",
            "title": f"Ticket {i}",
            "attr:row_key": f"{prefix}{i}",
        }
        for i in range(n)
    ]
