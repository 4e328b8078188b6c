"""The JobsPanel's controller: what the panel knows and says; no widgets.

Its parts, each a module: the ids input (`IdsInput`, ``_panel_ids``), the jobs table's view
state (`TableView`, ``_panel_table``: sort, filters, the rows in sight, find) and the runs
(`Runner`, ``_panel_run``: the thread, Stop, auto-refresh). The controller holds the token, the
options and one status (`state`, `message`, `detail`, `snapshot`, `busy`) that each change
replaces, and export.

The run's thread writes the status and the results while the view reads them: both are written
under `lock`, and `status` reads the four fields of the status at once. The view registers with
`on_change` and redraws the part named in the call: ``"status"``, ``"progress"``, ``"busy"``,
``"results"``, ``"table"`` (its rows, sort, filters or found row), ``"ids"``, ``"token"``,
``"upload"``, ``"export"`` or ``"auto"``. Listeners may be called from the run's thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from . import _errors as E
from ._format import number
from ._frames import export_csv
from ._options import (
    DEFAULT_API_VERSION,
    DEFAULT_REGION,
    REGIONS,
    TOKEN_ENV,
    Options,
    Secret,
    check_option_names,
    get_token,
    hide_token,
    read_tokens,
)
from ._panel_ids import IdsInput, parse_ids
from ._panel_run import NO_IDS, NO_TOKEN, Runner, explain
from ._panel_table import ALL, NO_VALUE, RANK_SORT, Note, TableView
from ._panel_token import TokenInput
from ._progress import Snapshot

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._ids import JobIds
    from ._options import ClientOptions

__all__ = ["PanelController", "Status", "Note", "parse_ids", "explain"]
__all__ += ["ALL", "NO_VALUE", "RANK_SORT"]

Listener = Callable[[str], Any]


class Status(NamedTuple):
    """The status area's contents, read at once."""

    state: str
    message: str
    detail: str | None
    snapshot: Snapshot | None


class PanelController:
    """What the JobsPanel knows and does, without widgets.

    Args:
        job_ids: the ids to start with (anything `fetch_jobs` takes), kept exactly.
        export_path: where Export writes its CSV.
        **options: the options of `fetch_jobs` but ``progress`` (the panel shows its own).

    Example:
        >>> c = PanelController(sb.job_ids, base_url=sb.base_url, token=sb.token)  # doctest: +SKIP
        >>> c.refresh(block=True); c.state, len(c.df)                       # doctest: +SKIP
        ('finished', 200)
    """

    def __init__(
        self,
        job_ids: Any = None,
        *,
        export_path: str | os.PathLike[str] = "jobs.csv",
        **options: Unpack[ClientOptions],
    ) -> None:
        hide_token(options)
        check_option_names(options)
        if "progress" in options:
            raise TypeError("the panel shows its own progress: leave progress= out")
        rest: dict[str, Any] = dict(options)
        token = Secret.wrap(rest.pop("token", None))
        tokens = rest.pop("tokens", None)
        if tokens is not None and token is not None:
            raise E.ConfigurationError(
                "pass token= (one workspace) or tokens= (one per workspace), not both"
            )
        region = rest.pop("region", DEFAULT_REGION)
        self.region = region if region in REGIONS else DEFAULT_REGION
        self.base_url: str | None = rest.pop("base_url", None)
        self.options: dict[str, Any] = rest  # the other options, for each run
        self.api_version = str(rest.get("api_version", DEFAULT_API_VERSION))
        self._tokens = None if tokens is None else read_tokens(tokens)
        self.token = TokenInput(token, self._tokens)
        self.lock = threading.RLock()  # the status and the results, written by the run
        self.state, self.message = "ready", ""
        self.detail: str | None = None
        self.snapshot: Snapshot | None = None
        self.busy = False
        self.refreshes = 0  # completed runs
        self.listener_error: BaseException | None = None
        self._listeners: list[Listener] = []
        self.ids_input = IdsInput(self._tokens)
        self.table = TableView()
        self.runner = Runner(self)
        self.export_path = str(export_path)
        self.export_note = Note()
        self.last_export: Path | None = None
        problem = None
        if job_ids is not None:
            try:
                self.ids_input.set(job_ids)
            except E.ConfigurationError as exc:
                problem = str(exc)
        if problem:
            self.set_status("error", f"Could not read the job ids given: {problem}")
        else:
            self._set_idle()

    # -- listeners and the status -------------------------------------------------------------

    def on_change(self, callback: Listener) -> None:
        """Call ``callback(what)`` after each change (``what`` names the part that changed)."""
        self._listeners.append(callback)

    def notify(self, *what: str) -> None:
        for name in what:
            for callback in list(self._listeners):
                try:
                    callback(name)
                except Exception as exc:  # a view's bug must not end a run
                    self.listener_error = exc

    def set_status(self, state: str, message: str, detail: str | None = None) -> None:
        """Replace the status (each message replaces the last); no token is ever in it."""
        for secret in self.token.secrets():
            message = secret.scrub(message)
            detail = secret.scrub(detail) if detail else detail
        with self.lock:
            self.state, self.message, self.detail = state, message, detail
            if state != "running":
                self.snapshot = None
        self.notify("status")

    def status(self) -> Status:
        with self.lock:
            return Status(self.state, self.message, self.detail, self.snapshot)

    def set_busy(self, busy: bool) -> None:
        with self.lock:
            changed, self.busy = busy != self.busy, busy
        if changed:
            self.notify("busy")

    def set_auto_shown(self, on: bool) -> None:
        self.notify("auto")

    def on_progress(self, snapshot: Snapshot) -> None:
        with self.lock:
            if self.state != "running":
                return
            self.snapshot = snapshot
        self.notify("progress", "status")

    def _set_idle(self) -> None:
        """The status when nothing runs: what is missing, or ready."""
        ids = self.ids_input.ids
        if not self.has_token():
            self.set_status("no_token", NO_TOKEN)
        elif not ids:
            self.set_status("ready", NO_IDS)
        else:
            workspaces = self.ids_input.workspaces
            spaces = len(set(workspaces)) if workspaces else 0
            where = f" in {number(spaces)} workspaces" if spaces else ""
            self.set_status("ready", f"Ready: {number(len(ids))} job ids{where}; click Refresh.")

    def report(self, exc: BaseException) -> None:
        """Show an unexpected error from the view (a handler) as the status."""
        self.set_status("error", *explain(exc, where=self.where))

    # -- ids ----------------------------------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        return self.ids_input.ids

    @property
    def many(self) -> bool:
        return self._tokens is not None

    def has_ids(self) -> bool:
        return bool(self.ids_input.ids)

    def job_ids(self) -> JobIds:
        return self.ids_input.job_ids()

    def set_ids_text(self, text: str) -> None:
        """The person edited the ids box."""
        if self.ids_input.set_text(text) and not self.busy and self.state != "running":
            self._set_idle()

    def set_ids(self, ids: Any) -> None:
        """Use these ids, exactly (see `IdsInput.set`)."""
        self.ids_input.set(ids)
        self.notify("ids")
        if not self.busy:
            self._set_idle()

    def upload(self, files: Iterable[Mapping[str, Any]]) -> None:
        """Read uploaded files; the note beside Upload says what happened."""
        if self.ids_input.upload(files):
            self.notify("ids")
            if not self.busy:
                self._set_idle()
        self.notify("upload")

    # -- the token ----------------------------------------------------------------------------

    def has_token(self) -> bool:
        return self.token.available()

    def token_source(self) -> str:
        return self.token.source()

    def token_note(self) -> str:
        return self.token.note()

    def token_typing(self, typed: bool) -> None:
        """Something is (or no longer is) in the Token field: the status follows."""
        self.token.typed = typed
        gained = self.state == "no_token" and typed
        lost = self.state == "ready" and not typed and not self.has_token()
        if gained or lost:
            self._set_idle()

    def use_token(self, typed: str) -> bool:
        """Take a typed token; a malformed one is an error status and False."""
        problem = self.token.use(typed)
        if problem:
            self.set_status("error", problem)
            return False
        if typed.strip():
            self.notify("token")
        return True

    def run_token(self) -> Secret | None:
        return self.token.for_run()

    def rejected(self, exc: E.AuthenticationError) -> str:
        """The sentence for a rejected token, which is forgotten (unless given in code)."""
        whose = self.token.whose(exc)
        text = explain(exc, where=self.where)[0].replace("access token.", f"access token{whose}.")
        if not self.many:  # tokens given in code stay: there is nothing to type
            self.token.forget()
            self.notify("token")
        return text

    @property
    def where(self) -> str:
        """The address requests go to."""
        return self.base_url or REGIONS.get(self.region, "")

    def run_options(self) -> Options:
        return Options.build(
            token=self.token.last,
            tokens=self._tokens,
            region=self.region,
            base_url=self.base_url,
            progress=self.on_progress,
            **self.options,
        )

    # -- runs ---------------------------------------------------------------------------------

    def refresh(self, *, block: bool = False) -> bool:
        """Fetch the jobs (the first time) or ask again those not final (later), then, with
        auto-refresh on, poll until none is left. Returns whether a run started."""
        if self.runner.running:
            return self.runner.start(block=block)  # wakes a sleeping poll loop
        if not self.has_ids():
            self.set_status("error", NO_IDS)
            return False
        if self.token.token is None and self._tokens is None:
            try:  # INTERCOM_TOKEN, a .env file, Colab's secrets; never a prompt from here
                get_token(prompt=False)
            except E.MissingTokenError:
                self.set_status("no_token", NO_TOKEN)
                return False
            except E.ConfigurationError as exc:
                self.set_status("error", f"The token in {TOKEN_ENV} is not valid: {exc}.")
                return False
        return self.runner.start(block=block)

    def set_auto(self, on: bool) -> None:
        if self.runner.set_auto(on):
            self.refresh()

    @property
    def running(self) -> bool:
        return self.runner.running

    @property
    def auto(self) -> bool:
        return self.runner.auto

    def stop(self) -> None:
        self.runner.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.runner.wait(timeout)

    def close(self) -> None:
        self.runner.close()

    # -- results ------------------------------------------------------------------------------

    @property
    def df(self) -> pd.DataFrame | None:
        return self.table.df

    def show(self, df: pd.DataFrame | None) -> None:
        """Show ``df`` (a jobs frame) as the results."""
        with self.lock:
            self.table.show(df)
        self.notify("results", "table")

    def export(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the rows the table shows (in its order) to a CSV; the note beside Export says
        where, or why not."""
        if path is not None:
            self.export_path = str(path)
        written = None
        if self.df is None:
            self.export_note = Note("Nothing to export yet: click Refresh first.", "warning")
        else:
            view = self.table.view()
            try:
                written = export_csv(view, self.export_path.strip())
            except (E.IntercomJobsError, OSError) as exc:
                self.export_note = Note(f"Could not write the CSV: {exc}", "error")
            else:
                filtered = " (filtered)" if len(view) != len(self.df) else ""
                text = f"Saved {number(len(view))} rows{filtered} to {written}"
                self.export_note = Note(text, "info")
                self.last_export = written
        self.notify("export")
        return written
