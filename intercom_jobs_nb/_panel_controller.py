"""The JobsPanel's controller: its state, its runs, Stop, and its messages; no widgets.

`PanelController` holds what the panel knows (the ids, the token, the options, ``df``), runs the
engine's one run (`engine.run`, given a stop event) in a background thread or in the calling
thread (``refresh(block=True)``, what the tests use), and says what is happening in one status
(`state`, `message`, `detail`, `snapshot`) that each change replaces. It also holds the jobs
table's view (sort, filters, page, find) so paging and finding are tested without a browser.

The view (``_widgets.py``) registers with `on_change` and redraws the part named in the call:
``"status"``, ``"progress"``, ``"busy"``, ``"results"``, ``"table"``, ``"ids"``, ``"token"``,
``"upload"``, ``"export"``, ``"find"`` or ``"auto"``. Listeners may be called from the run's
thread.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pandas as pd

from . import _codes as C
from . import _errors as E
from ._engine import check_workspaces, from_frame, run
from ._format import number
from ._frames import export_csv, is_final
from ._ids import ID_FILE_SUFFIXES, JobIds, read_ids_file, read_job_ids
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
from ._panel_render import counts_text, table_columns
from ._plotting import outcomes
from ._progress import Snapshot
from ._rows import frame_rows, to_frame, unasked_row

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._options import ClientOptions

__all__ = [
    "PanelController",
    "Note",
    "parse_ids",
    "explain",
    "PAGE_SIZE",
    "ALL",
    "NO_VALUE",
    "RANK_SORT",
]

PAGE_SIZE = 200  # rows of the jobs table on one page
STOP_JOIN = 5.0  # seconds a Refresh waits for a stopped run to finish drawing its rows
ALL = ""  # a filter's value that keeps every row
NO_VALUE = "(none)"  # a filter's value that keeps the rows where the column is empty
RANK_SORT = ""  # the sort that puts failed and unreadable jobs first
_RANK = {"error": 0, "failed": 1, "pending": 2, "success": 3}
_ID_SEPARATORS = re.compile(r"[\s,;]+")
NO_TOKEN = f"No token: paste one, or set {TOKEN_ENV}."
NO_IDS = "No job ids: type or paste some, or upload a .csv/.txt file."
Listener = Callable[[str], Any]


class Note(NamedTuple):
    """A short message beside the control that caused it."""

    text: str = ""
    kind: str = "info"  # info, warning or error


def parse_ids(text: str) -> list[str]:
    """Job ids from pasted text: separated by spaces, commas, semicolons or lines; distinct.

    Quotes around ids are dropped (ids pasted from a Python list or a CSV row work).

    Example:
        >>> parse_ids('1001, "1002"\\n1001 1003')
        ['1001', '1002', '1003']
    """
    seen: dict[str, None] = {}
    for part in _ID_SEPARATORS.split(text or ""):
        token = part.strip().strip("\"'[]()")
        if token:
            seen.setdefault(token, None)
    return list(seen)


class _Unreachable(Exception):
    """Every job asked failed on the network: Intercom is out of reach."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)


def explain(exc: BaseException, *, where: str, api_version: str | None = None) -> tuple[str, str]:
    """A sentence a support-ops person understands for what ended a run, and the technical
    detail (for the "Details" disclosure).

    Args:
        exc: what ended the run.
        where: the Intercom address the run talked to.
        api_version: the ``Intercom-Version`` the run sent.
    """
    detail = f"{type(exc).__name__}: {exc}"
    code = getattr(exc, "code", None)
    status = getattr(exc, "http_status", None)
    if code or status:
        detail += f" (code: {code or '-'}, HTTP status: {status or '-'})"
    if isinstance(exc, E.AuthenticationError):
        text = (
            "Intercom did not accept the access token. Paste a valid token into the Token field "
            "and click Refresh."
        )
    elif isinstance(exc, E.ApiVersionError):
        text = (
            f"Intercom did not accept the API version {api_version!r} the panel asked for. "
            "Create the panel with api_version= a version your workspace supports."
        )
    elif isinstance(exc, (E.UnreachableError, _Unreachable)):
        detail = str(exc) if isinstance(exc, _Unreachable) else detail
        text = (
            f"Could not reach Intercom at {where}. Check the network connection (and any VPN or "
            "proxy) and the region, then click Refresh."
        )
    elif isinstance(exc, E.CheckpointError):
        text = (
            "Could not save the results to the checkpoint file: the disk may be full, or the "
            "file read-only or in use."
        )
    elif isinstance(exc, E.FetchInterrupted):
        text = "Stopped."
    elif isinstance(exc, E.ConfigurationError):
        text = f"A setting is not valid: {exc}."
    else:  # RunFailedError and anything else: a bug
        text = (
            "The fetch stopped on an unexpected error. This is a bug in intercom-jobs-nb: "
            "please report it with the details below."
        )
    return text, detail


def _frame_for(job_ids: JobIds, previous: pd.DataFrame) -> pd.DataFrame:
    """A jobs frame over ``job_ids`` that keeps ``previous``'s rows (by workspace and job id):
    new ids get an empty row, which the run asks for (an invalid one becomes an
    ``invalid_job_id`` row there, where every id is checked before a URL is made, and is never
    sent)."""
    ids, workspaces = job_ids.ids, job_ids.workspaces
    same = previous["job_id"].tolist() == ids and (
        workspaces is None or previous["workspace"].tolist() == workspaces
    )
    if same:
        return previous
    old = {(row.workspace, row.job_id): row for row in frame_rows(previous)}
    lanes: list[str | None] = list(workspaces) if workspaces is not None else [None] * len(ids)
    return to_frame(
        [
            old.get((ws, job_id)) or unasked_row(job_id)._replace(workspace=ws)
            for ws, job_id in zip(lanes, ids, strict=True)
        ]
    )


def _sort_key(series: pd.Series) -> pd.Series:
    """Numbers as numbers (ids, HTTP statuses), everything else as text."""
    numeric = pd.to_numeric(series.astype(object), errors="coerce")
    if int(numeric.isna().sum()) == int(series.isna().sum()):
        return numeric
    return (
        series.astype(object)
        .where(series.notna(), None)
        .map(lambda v: None if v is None else str(v).lower())
    )


class PanelController:
    """What the JobsPanel knows and does, without widgets.

    Args:
        job_ids: the ids to start with (anything `fetch_jobs` takes), kept exactly.
        export_path: where Export writes its CSV.
        page_size: rows of the jobs table on a page.
        **options: the options of `fetch_jobs` but ``progress`` (the panel shows its own):
            ``token`` (default: one typed later, else `get_token`, no prompt), ``tokens``
            (many workspaces, with ids that have a workspace each: a DataFrame or .csv with a
            ``workspace`` column; then no token is typed), ``region``, ``base_url`` (e.g. a
            `Sandbox`'s), ``api_version``, ``timeout``, ``retries``, ``max_workers``,
            ``max_rps``, ``transport``.

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
        page_size: int = PAGE_SIZE,
        **options: Unpack[ClientOptions],
    ) -> None:
        hide_token(options)
        check_option_names(options)
        if "progress" in options:
            raise TypeError("the panel shows its own progress: leave progress= out")
        rest: dict[str, Any] = dict(options)
        token = Secret.wrap(rest.pop("token", None))
        tokens = rest.pop("tokens", None)
        region = rest.pop("region", DEFAULT_REGION)
        base_url = rest.pop("base_url", None)
        if tokens is not None and token is not None:
            raise E.ConfigurationError(
                "pass token= (one workspace) or tokens= (one per workspace), not both"
            )
        # Many workspaces: a token for each, given in code (nothing to type).
        self._tokens: dict[str, Secret] | None = None if tokens is None else read_tokens(tokens)
        self.region = region if region in REGIONS else DEFAULT_REGION
        self.base_url = base_url
        self.options: dict[str, Any] = rest  # the other options, for each run
        self.export_path = str(export_path)
        self.page_size = page_size
        self.df: pd.DataFrame | None = None
        self.refreshes = 0  # completed runs
        self.last_export: Path | None = None
        self._token: Secret | None = token
        self._token_given = token is not None
        self._token_typed = False  # something is in the Token field, not yet used
        self._run_token: Secret | None = None
        # -- the status -------------------------------------------------------------------
        self.state = "ready"
        self.message = ""
        self.detail: str | None = None
        self.snapshot: Snapshot | None = None
        self.busy = False
        self.listener_error: BaseException | None = None
        # -- notes beside controls --------------------------------------------------------
        self.upload_note = Note()
        self.export_note = Note()
        self.find_note = Note()
        # -- ids: the text box, and ids kept exactly as given or read from a file ---------
        self._text = ""
        self._kept: list[str] | None = None
        self._workspaces: list[str] | None = None  # of the kept ids, in a panel of many
        self.upload_count = 0  # ids read from the last uploaded file
        # -- auto-refresh -----------------------------------------------------------------
        self.auto = False
        self.interval = 10.0
        # -- the table's view -------------------------------------------------------------
        self.sort_by = RANK_SORT
        self.ascending = True
        self.status_filter = ALL
        self.code_filter = ALL
        self.page = 0
        self.found: str | None = None
        self._view: tuple[tuple[Any, ...], pd.DataFrame] | None = None
        # -- runs -------------------------------------------------------------------------
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._closed = False

        problem = None
        if job_ids is not None:
            try:
                self._keep(self._checked(read_job_ids(job_ids)))
            except E.ConfigurationError as exc:
                problem = str(exc)
        if problem:
            self._set("error", f"Could not read the job ids given: {problem}")
        else:
            self._set_idle()

    # -- listeners ----------------------------------------------------------------------

    def on_change(self, callback: Listener) -> None:
        """Call ``callback(what)`` after each change (``what`` names the part that changed)."""
        self._listeners.append(callback)

    def _notify(self, what: str) -> None:
        for callback in list(self._listeners):
            try:
                callback(what)
            except Exception as exc:  # a view's bug must not end a run
                self.listener_error = exc

    def _set(self, state: str, message: str, detail: str | None = None) -> None:
        """Replace the status (each message replaces the last)."""
        token = self._run_token or self._token
        secrets = [token] if token is not None else []
        secrets += (self._tokens or {}).values()
        for secret in secrets:
            message = secret.scrub(message)
            detail = secret.scrub(detail) if detail else detail
        self.state = state
        self.message = message
        self.detail = detail
        if state != "running":
            self.snapshot = None
        self._notify("status")

    def _set_idle(self) -> None:
        """The status when nothing has run yet: what is missing, or ready."""
        if not self.has_token():
            self._set("no_token", NO_TOKEN)
        elif not self.ids:
            self._set("ready", NO_IDS)
        else:
            spaces = 0 if self._workspaces is None else len(set(self._workspaces))
            where = f" in {number(spaces)} workspaces" if spaces else ""
            self._set("ready", f"Ready: {number(len(self.ids))} job ids{where}; click Refresh.")

    # -- ids ----------------------------------------------------------------------------

    @property
    def ids(self) -> list[str]:
        """The job ids a refresh asks for: those given or uploaded, exactly, while the text
        box still shows them; else the ids in the text box."""
        if self._kept is not None:
            return list(self._kept)
        return parse_ids(self._text)

    @property
    def workspaces(self) -> list[str] | None:
        """In a panel of many workspaces, the workspace of each of `ids`; else None."""
        return None if self._workspaces is None else list(self._workspaces)

    @property
    def many(self) -> bool:
        """Whether this panel runs many workspaces (``tokens=``): ids come with theirs."""
        return self._tokens is not None

    def job_ids(self) -> JobIds:
        """What a refresh asks for, checked (with the workspaces, in a panel of many)."""
        if self._workspaces is None:
            return read_job_ids(self.ids)
        return read_job_ids(pd.DataFrame({"workspace": self._workspaces, "job_id": self.ids}))

    @property
    def ids_text(self) -> str:
        """The text box's contents."""
        return self._text

    def set_ids_text(self, text: str) -> None:
        """The user edited the text box: its ids are the ones asked for from now on.

        Raises:
            ConfigurationError: in a panel of many workspaces (its ids come with their
                workspaces, from code or an uploaded file; the view's box is read-only).
        """
        if text == self._text:
            return
        if self.many:
            raise E.ConfigurationError(
                "this panel runs many workspaces: give its ids with their workspaces "
                "(set_ids of a DataFrame, or upload a .csv with a workspace column)"
            )
        self._text = text
        self._kept = None
        if self.state in ("ready", "no_token") or (self.state == "error" and not self.busy):
            self._set_idle()

    def set_ids(self, ids: Any) -> None:
        """Use these ids, exactly (anything `fetch_jobs` takes; in a panel of many
        workspaces, a DataFrame with a workspace column).

        Raises:
            ConfigurationError: the ids cannot be read, or do not fit the panel's tokens.
        """
        self._keep(self._checked(read_job_ids(ids)))
        self._notify("ids")
        if not self.busy:
            self._set_idle()

    def _checked(self, job_ids: JobIds) -> JobIds:
        """``job_ids`` if they fit the panel's tokens (the engine's own check: a workspace
        column with a token for each, or one workspace at most without ``tokens=``)."""
        if job_ids.ids:
            check_workspaces(job_ids.workspaces, self._tokens)
        return job_ids

    def _keep(self, job_ids: JobIds) -> None:
        """Ask for exactly these ids from now on (the text box shows them)."""
        self._kept = list(job_ids.ids)
        if self._tokens is None:
            self._workspaces = None
            self._text = "\n".join(self._kept)
        else:
            self._workspaces = list(job_ids.workspaces or [])
            self._text = "\n".join(
                f"{w},{j}" for w, j in zip(self._workspaces, self._kept, strict=True)
            )

    def upload(self, files: Iterable[Mapping[str, Any]]) -> None:
        """Read uploaded files (``name`` and ``content`` each, as ipywidgets' FileUpload gives
        them); their ids are kept exactly. The note beside Upload says what happened."""
        parts: list[JobIds] = []
        names: list[str] = []
        repeated = 0
        try:
            for item in files:
                name = str(item["name"])
                suffix = Path(name).suffix.lower()
                if suffix not in ID_FILE_SUFFIXES:
                    raise E.ConfigurationError(f"{name}: upload a .csv or .txt file of job ids")
                with tempfile.TemporaryDirectory(prefix="ij-upload-") as folder:
                    path = Path(folder) / f"ids{suffix}"
                    path.write_bytes(bytes(item["content"]))
                    with warnings.catch_warnings():  # said in the note instead
                        warnings.simplefilter("ignore")
                        # The file reader's rules (encoding included), its messages naming
                        # the file the user chose, not this temporary copy.
                        job_ids = read_ids_file(path, name=name)
                try:
                    job_ids = self._checked(job_ids)
                except E.ConfigurationError as exc:
                    raise E.ConfigurationError(f"{name}: {exc}") from None
                parts.append(job_ids)
                repeated += job_ids.duplicates
                names.append(name)
            if not any(len(part) for part in parts):
                raise E.ConfigurationError(f"{', '.join(names)} holds no job ids")
            frames = [
                pd.DataFrame(
                    {"job_id": list(part.ids)}
                    if part.workspaces is None
                    else {"workspace": part.workspaces, "job_id": list(part.ids)},
                    dtype=object,
                )
                for part in parts
            ]
            joined = self._checked(read_job_ids(pd.concat(frames, ignore_index=True)))
        except E.ConfigurationError as exc:
            self.upload_note = Note(str(exc), "error")
            self._notify("upload")
            return
        self._keep(joined)
        ids = joined.ids
        self.upload_count = len(ids)
        skipped = f" ({number(repeated)} repeated rows skipped)" if repeated else ""
        self.upload_note = Note(
            f"Read {number(len(ids))} job ids from {', '.join(names)}{skipped}.", "info"
        )
        self._notify("ids")
        self._notify("upload")
        if not self.busy:
            self._set_idle()

    # -- token --------------------------------------------------------------------------

    def has_token(self) -> bool:
        """Whether a refresh has a token (given, typed, or from `get_token` without a prompt)."""
        if self._token is not None or self._token_typed or self._tokens is not None:
            return True
        try:
            get_token(prompt=False)
        except E.ConfigurationError:
            return False
        return True

    def token_source(self) -> str:
        if self._tokens is not None:
            return f"given for {number(len(self._tokens))} workspaces"
        if self._token is not None:
            return "given" if self._token_given else "typed, kept in memory"
        return f"from {TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else "none yet"

    def token_note(self) -> str:
        """Where the token comes from (plain text)."""
        if self._tokens is not None:
            names = sorted(self._tokens)
            shown = ", ".join(names[:5]) + (" …" if len(names) > 5 else "")
            return f"Using the tokens given for {number(len(names))} workspaces: {shown}."
        if self._token is not None:
            return (
                "Using the token given to JobsPanel."
                if self._token_given
                else "A token is kept in memory (not in the notebook); type another to replace it."
            )
        if os.environ.get(TOKEN_ENV):
            return f"Using the token in {TOKEN_ENV}: nothing to type (type one to use another)."
        return "A token typed here is kept in memory only, never saved with the notebook."

    def token_typing(self, typed: bool) -> None:
        """Something is (or no longer is) in the Token field: the status follows."""
        self._token_typed = typed
        gained = self.state == "no_token" and typed
        lost = self.state == "ready" and not typed and not self.has_token()
        if gained or lost:
            self._set_idle()

    def use_token(self, typed: str) -> bool:
        """Take a typed token (into a `Secret`); a malformed one is an error status and
        False (a refresh is then pointless). A panel of many workspaces takes none."""
        self._token_typed = False
        if not typed.strip():
            return True
        if self._tokens is not None:
            self._set("error", "This panel runs many workspaces with the tokens given in code.")
            return False
        try:
            self._token = Secret.wrap(typed, source="the typed token")
        except E.ConfigurationError as exc:
            self._set("error", f"The token typed is not valid: {exc}.")
            return False
        self._token_given = False
        self._notify("token")
        return True

    def forget_token(self) -> None:
        """Drop the token (after Intercom rejected it)."""
        self._token = None
        self._token_given = False
        self._notify("token")

    @property
    def where(self) -> str:
        """The address requests go to."""
        return self.base_url or REGIONS.get(self.region, "")

    # -- runs ---------------------------------------------------------------------------

    def report(self, exc: BaseException) -> None:
        """Show an unexpected error from the view (a handler) as the status."""
        text, detail = explain(exc, where=self.where)
        self._set("error", text, detail)

    @property
    def running(self) -> bool:
        """Whether a fetch (or the auto-refresh loop) is running."""
        thread = self._thread
        return self.busy or (thread is not None and thread.is_alive())

    def refresh(self, *, block: bool = False) -> bool:
        """Fetch the jobs (the first time) or ask again those not final (later), then, with
        `auto` on, poll until none is left. Returns whether a run started.

        Args:
            block: run in the calling thread and return when done (else a background thread).
        """
        with self._start_lock:
            thread = self._thread
            if thread is not None and self._halt.is_set() and not self.busy:
                thread.join(timeout=STOP_JOIN)  # a stopped run drawing its last rows
            if self.running:
                self._wake.set()  # the poll loop is sleeping: poll now
                return False
            if not self.ids:
                self._set("error", NO_IDS)
                return False
            if self._token is None and self._tokens is None:
                try:  # INTERCOM_TOKEN, a .env file, Colab's secrets; never a prompt from here
                    get_token(prompt=False)
                except E.MissingTokenError:
                    self._set("no_token", NO_TOKEN)
                    return False
                except E.ConfigurationError as exc:
                    self._set("error", f"The token in {TOKEN_ENV} is not valid: {exc}.")
                    return False
            self._wake.clear()
            self._halt = threading.Event()
            self._set_busy(True)  # at once, so a second click cannot start a second run
            self._set("running", "Starting…")
            if block:
                self._thread = None
            else:
                self._thread = threading.Thread(target=self._loop, name="jobs-panel", daemon=True)
                self._thread.start()
        if block:
            self._loop()
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the current run (and auto-refresh polling) ends; False on timeout."""
        thread = self._thread
        if thread is None:
            return not self.busy
        thread.join(timeout)
        return not thread.is_alive()

    def stop(self) -> None:
        """Stop the running fetch (within about a second) and auto-refresh; the rows fetched
        so far stay in ``df``."""
        self.set_auto(False)
        self._halt.set()
        self._wake.set()

    def close(self) -> None:
        """Stop everything and wait a moment for the run to end."""
        self._closed = True
        self.stop()
        self.wait(timeout=5)

    def set_auto(self, on: bool) -> None:
        """Auto-refresh on (polls the jobs not final every `interval` s) or off."""
        if on == self.auto:
            return
        self.auto = on
        self._notify("auto")
        if on:
            if self.df is not None and self.may_change() and not self.running:
                self.refresh()
        else:
            self._wake.set()  # a sleeping poll loop ends now, not after its interval

    def may_change(self) -> bool:
        """Whether some row is not final (auto-refresh has something to poll)."""
        return self.df is not None and not bool(is_final(self.df).all())

    def _set_busy(self, busy: bool) -> None:
        if busy != self.busy:
            self.busy = busy
            self._notify("busy")

    def _loop(self) -> None:
        try:
            while not self._closed:
                self._wake.clear()
                if not self.busy:
                    self._set_busy(True)
                    self._set("running", "Starting…")
                try:
                    carry_on = self._run_once()
                finally:
                    self._set_busy(False)
                if not (carry_on and self.auto and self.may_change()):
                    break
                interval = float(self.interval)
                self._set(self.state, f"{self.message} Next refresh in {interval:g} s.")
                self._wake.wait(interval)
                if self._halt.is_set():
                    self._set("stopped", "Auto-refresh stopped.")
                    break
                if not self.auto or not self.ids:
                    break
            if self.auto and self.df is not None and not self.may_change():
                self.set_auto(False)  # nothing left to poll
        except Exception as exc:  # never let a thread die with a traceback in the log
            text, detail = explain(exc, where=self.where)
            self._set("error", text, detail)
            self._set_busy(False)

    def _on_progress(self, snapshot: Snapshot) -> None:
        if self.state == "running":
            self.snapshot = snapshot
            self._notify("progress")
            self._notify("status")

    def _options(self, token: Secret | None) -> Options:
        return Options.build(
            token=token,
            tokens=self._tokens,
            region=self.region,
            base_url=self.base_url,
            progress=self._on_progress,
            **self.options,
        )

    def _run_once(self) -> bool:
        """One fetch or refresh. Returns whether it finished (auto-refresh goes on only then)."""
        ids = self.ids
        if not ids:
            self._set("error", NO_IDS)
            return False
        previous = self.df
        halt = self._halt
        kept = " The results below are from the last refresh." if previous is not None else ""
        self.snapshot = None
        try:
            token = None if self.many else self._token or get_token(prompt=False)
            self._run_token = token
            self._set("running", "Fetching…")
            options = self._options(token)
            asked: set[str] | None = None
            if previous is None:
                df = run(self.job_ids(), options, stop=halt)
            else:
                frame = _frame_for(self.job_ids(), previous)
                asked = set(frame.loc[~is_final(frame), "job_id"])
                job_ids, known = from_frame(frame)
                df = run(job_ids, options, known=known, stop=halt)
            self._check_network(df, asked)
        except E.FetchInterrupted as exc:
            # Said first, and Refresh enabled again, then the rows drawn (the chart takes a
            # while): a person who clicked Stop sees it at once.
            got = exc.df
            rows = 0 if got is None else len(got)
            self._set(
                "stopped",
                f"Stopped: {number(rows)} of {number(len(ids))} jobs are in panel.df; "
                "Refresh asks the rest.",
            )
            self._set_busy(False)
            if got is not None and len(got):
                self.show(got)
            return False
        except E.MissingTokenError:
            self._set("no_token", NO_TOKEN)
            return False
        except E.AuthenticationError as exc:
            whose = (
                f" of the workspace {exc.workspace}"
                if exc.workspace is not None
                else ""
                if self._token is not None or self.many
                else f" (the token in {TOKEN_ENV})"
            )
            text, detail = explain(exc, where=self.where)
            if whose:
                text = text.replace("access token.", f"access token{whose}.")
            if not self.many:  # tokens given in code stay: there is nothing to type
                self.forget_token()
            self._set("error", text + kept, detail)
            return False
        except (E.IntercomJobsError, _Unreachable) as exc:
            text, detail = explain(
                exc,
                where=self.where,
                api_version=self.options.get("api_version", DEFAULT_API_VERSION),
            )
            self._set("error", text + kept, detail)
            return False
        finally:
            self._run_token = None
        self.refreshes += 1
        self.show(df)
        stamp = time.strftime("%H:%M:%S")
        text = f"Finished refresh #{self.refreshes} at {stamp}: {counts_text(df)}."
        transient = df["error_code"].notna() & ~is_final(df)
        if transient.any():
            text += (
                f" {number(int(transient.sum()))} jobs could not be read for a passing reason "
                "(filter by error code to see them); Refresh asks them again."
            )
        self._set("finished", text)
        return True

    def _check_network(self, df: pd.DataFrame, asked: set[str] | None) -> None:
        """Raise `_Unreachable` when every job asked failed on the network: rows saying only
        that would hide the last known statuses."""
        rows = df if asked is None else df.loc[df["job_id"].isin(asked)]
        rows = rows.loc[rows["error_code"].astype(object) != C.INVALID_JOB_ID]
        if not len(rows):
            return
        codes = rows["error_code"].astype(object)
        if codes.isin(C.NO_ANSWER_CODES).all():
            message = rows["error_message"].iloc[0]
            detail = "" if pd.isna(message) else str(message)
            raise _Unreachable(
                f"all {number(len(rows))} requests failed on the network; the first: "
                f"{codes.iloc[0]}: {detail}"
            )

    def show(self, df: pd.DataFrame) -> None:
        """Show ``df`` (a jobs frame) as the results: the table keeps its sort, and its
        filters where they still apply."""
        self.df = df
        self._view = None
        if self.status_filter not in {v for _, v in self.filter_choices("status")}:
            self.status_filter = ALL
        if self.code_filter not in {v for _, v in self.filter_choices("error_code")}:
            self.code_filter = ALL
        self.page = min(self.page, self.page_count - 1)
        self._notify("results")
        self._notify("table")

    # -- the table's view ---------------------------------------------------------------

    @property
    def columns(self) -> list[str]:
        """The columns the jobs table shows."""
        return [] if self.df is None else table_columns(self.df)

    def view(self) -> pd.DataFrame:
        """Every row the filters keep, in the chosen order (all pages)."""
        df = self.df
        if df is None:
            return pd.DataFrame()
        key = (id(df), len(df), self.sort_by, self.ascending, self.status_filter, self.code_filter)
        if self._view is not None and self._view[0] == key:
            return self._view[1]
        keep = pd.Series(True, index=df.index)
        for column, value in (("status", self.status_filter), ("error_code", self.code_filter)):
            if value == NO_VALUE:
                keep &= df[column].isna()
            elif value != ALL:
                keep &= (df[column].astype(object) == value).fillna(False).astype(bool)
        view = df.loc[keep]
        if self.sort_by == RANK_SORT:
            rank = outcomes(view).map(_RANK).astype("int64")
            order = rank.sort_values(kind="stable", ascending=self.ascending).index
            view = view.loc[order]
        else:
            view = view.sort_values(
                self.sort_by,
                key=_sort_key,
                ascending=self.ascending,
                kind="stable",
                na_position="last",
            )
        self._view = (key, view)
        return view

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.view()) // self.page_size))

    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page."""
        start = self.page * self.page_size
        return self.view().iloc[start : start + self.page_size]

    def page_label(self) -> str:
        """``"rows 201–400 of 5,000"`` (and how many jobs in all when filtered)."""
        if self.df is None:
            return ""
        shown = len(self.view())
        if not shown:
            label = "no rows"
        else:
            start = self.page * self.page_size
            end = min(start + self.page_size, shown)
            label = f"rows {number(start + 1)}–{number(end)} of {number(shown)}"
        if shown != len(self.df):
            label += f" (filtered from {number(len(self.df))})"
        return label

    def go(self, where: str | int) -> None:
        """Show a page: ``"first"``, ``"prev"``, ``"next"``, ``"last"``, or its number from 0."""
        last = self.page_count - 1
        moves = {"first": 0, "prev": self.page - 1, "next": self.page + 1, "last": last}
        page = moves[where] if isinstance(where, str) else int(where)
        self.page = max(0, min(page, last))
        self._notify("table")

    def set_sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort by ``column`` (`RANK_SORT`: failed and unreadable first)."""
        if column != RANK_SORT and column not in self.columns:
            raise E.ConfigurationError(f"cannot sort by {column!r}")
        self.sort_by = column
        if ascending is not None:
            self.ascending = ascending
        self.page = 0
        self._after_view_change()

    def set_filters(self, *, status: str | None = None, code: str | None = None) -> None:
        """Keep only the rows with this status / error code (`ALL`, `NO_VALUE`, or a value)."""
        if status is not None:
            self.status_filter = status
        if code is not None:
            self.code_filter = code
        self.page = 0
        self._after_view_change()

    def _after_view_change(self) -> None:
        if self.found is not None:  # keep the found row in sight if it is still shown
            self._locate(self.found, note=False)
        self._notify("table")

    def filter_choices(self, column: str) -> list[tuple[str, str]]:
        """The choices of a filter, from the data, with counts: ``[("all (1,000)", ALL),
        ("success (700)", "success"), ...]``."""
        df = self.df
        if df is None:
            return [("all", ALL)]
        series = df[column]
        counts = series.astype(object).value_counts(dropna=True)
        if column == "status":
            order = [v for v in ("success", "failed", "pending") if v in counts.index]
            order += sorted(str(v) for v in counts.index if v not in order)
            empty = "unreadable"
        else:
            order = sorted(str(v) for v in counts.index)
            empty = "no error"
        choices = [(f"all ({number(len(df))})", ALL)]
        choices += [(f"{v} ({number(int(counts[v]))})", str(v)) for v in order]
        missing = int(series.isna().sum())
        if missing:
            choices.append((f"{empty} ({number(missing)})", NO_VALUE))
        return choices

    def find(self, text: str) -> bool:
        """Show the page with the job id ``text`` (else the first id containing it) and
        highlight it; the find note says where it is, or that it is not found."""
        text = (text or "").strip()
        if not text:
            self.found = None
            self.find_note = Note()
            self._notify("find")
            self._notify("table")
            return False
        ok = self._locate(text, note=True)
        self._notify("find")
        self._notify("table")
        return ok

    def _locate(self, text: str, *, note: bool) -> bool:
        if self.df is None:
            if note:
                self.find_note = Note("Nothing to search yet: click Refresh first.", "warning")
            return False
        view = self.view()
        ids = view["job_id"].astype(object).astype(str).tolist()
        position = next((k for k, v in enumerate(ids) if v == text), None)
        if position is None:
            everywhere = set(self.df["job_id"].astype(object).astype(str))
            if text in everywhere:
                self.found = None
                if note:
                    self.find_note = Note(
                        f"{text} is hidden by the filters: set them to all to see it.", "warning"
                    )
                return False
            position = next((k for k, v in enumerate(ids) if text in v), None)
        if position is None:
            self.found = None
            if note:
                self.find_note = Note(f"{text}: not found.", "error")
            return False
        self.found = ids[position]
        self.page = position // self.page_size
        if note:
            self.find_note = Note(
                f"{self.found}: row {number(position + 1)} of {number(len(ids))}.", "info"
            )
        return True

    # -- export -------------------------------------------------------------------------

    def export(self, path: str | os.PathLike[str] | None = None) -> Path | None:
        """Write the rows the table shows (every page, in its order) to a CSV; the note
        beside Export says where, or why not."""
        if path is not None:
            self.export_path = str(path)
        if self.df is None:
            self.export_note = Note("Nothing to export yet: click Refresh first.", "warning")
            self._notify("export")
            return None
        view = self.view()
        try:
            written = export_csv(view, self.export_path.strip())
        except (E.IntercomJobsError, OSError) as exc:
            self.export_note = Note(f"Could not write the CSV: {exc}", "error")
            self._notify("export")
            return None
        filtered = " (filtered)" if len(view) != len(self.df) else ""
        self.export_note = Note(f"Saved {number(len(view))} rows{filtered} to {written}", "info")
        self.last_export = written
        self._notify("export")
        return written
