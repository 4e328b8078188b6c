"""The sandbox's counters, for benchmarks and tests (``Sandbox.stats``, ``GET /__sandbox/stats``).

Not thread-safe: the sandbox updates and reads them under its lock.
"""

from __future__ import annotations

from typing import Any


class Stats:
    """Counters since start or the last reset."""

    __slots__ = (
        "requests",
        "by_status",
        "per_job",
        "windows",
        "in_flight",
        "max_in_flight",
        "versions",
        "faults",
        "_window_index",
        "window_row",
        "by_workspace",
        "unnoticed",
    )

    def __init__(self) -> None:
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Clear every counter; requests in flight stay in flight."""
        self.requests = 0
        self.by_status: dict[int, int] = {}
        self.per_job: dict[str, int] = {}
        self.windows: dict[int, list[int]] = {}  # window index -> [served, rejected]
        self._window_index = -1  # window that window_row belongs to
        self.window_row: list[int] = [0, 0]
        # id_code -> window index -> [served, rejected]: each workspace's own rate limit.
        self.by_workspace: dict[str, dict[int, list[int]]] = {}
        self.max_in_flight = self.in_flight
        self.versions: dict[str, int] = {}
        self.faults: dict[str, int] = {}
        self.unnoticed: dict[str, float] = {}  # job id -> seconds final before answered so

    def enter(self) -> None:
        """Count a request received (and now in flight)."""
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        self.requests += 1

    def window(self, index: int) -> list[int]:
        """The ``[served, rejected]`` row of rate-limit window ``index``."""
        if index != self._window_index:
            self._window_index = index
            self.window_row = self.windows.setdefault(index, [0, 0])
        return self.window_row

    def workspace_window(self, id_code: str, index: int) -> list[int]:
        """The ``[served, rejected]`` row of workspace ``id_code`` in window ``index``."""
        rows = self.by_workspace.get(id_code)
        if rows is None:
            rows = self.by_workspace[id_code] = {}
        row = rows.get(index)
        if row is None:
            row = rows[index] = [0, 0]
        return row

    def snapshot(self, window_seconds: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "per_job": dict(self.per_job),
            "windows": [
                {"start": index * window_seconds, "served": row[0], "rejected": row[1]}
                for index, row in self.windows.items()
            ],
            "workspaces": {
                id_code: [
                    {"start": index * window_seconds, "served": row[0], "rejected": row[1]}
                    for index, row in sorted(rows.items())
                ]
                for id_code, rows in self.by_workspace.items()
            },
            "max_in_flight": self.max_in_flight,
            "versions": dict(self.versions),
            "faults": dict(self.faults),
        }
