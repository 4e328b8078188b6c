"""The options every call that talks to Intercom shares: declared, defaulted and checked once.

Each option is declared once, here: its type in `ClientOptions` (the ``**options`` of `Client`,
`fetch_jobs`, `refresh`, `wait_for_jobs`, `enqueue_tickets`, `fetch_tickets`, the `JobsPanel`
and ``intercom_jobs_nb.dask``, so editors complete and type-check each keyword), its default and
meaning in `OPTIONS` (which the docstrings, the CLI's flags and the panel read), and its check in
`Options.build`. Adding an option: a line in `ClientOptions`, a row in `OPTIONS`, a field and a
check in `Options` (this file); the code that uses it; a test. The CLI gets a flag from the row's
``metavar``.

The token comes in by one door, `Secret.wrap`: surrounding whitespace (a token read from a file
ends in a newline) is stripped, anything else outside visible ASCII is refused without echoing
it, and from then on it is a `Secret` whose repr hides it. Public functions wrap it on their first
line, so verbose tracebacks (``%xmode Verbose``) show ``Secret('********')``.
"""

from __future__ import annotations

import difflib
import getpass
import ipaddress
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict
from urllib.parse import urlsplit

from ._errors import ConfigurationError, MissingTokenError

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from ._progress import Snapshot
    from ._transports import Transport

__all__ = [
    "REGIONS",
    "DEFAULT_REGION",
    "DEFAULT_API_VERSION",
    "DEFAULT_TIMEOUT",
    "DEFAULT_RETRIES",
    "DEFAULT_MAX_WORKERS",
    "DEFAULT_MAX_RPS",
    "DEFAULT_BUDGET_SHARE",
    "DEFAULT_PROGRESS",
    "DEFAULT_POLL_INTERVAL",
    "TOKEN_ENV",
    "USER_AGENT",
    "Secret",
    "ClientOptions",
    "RequestOptions",
    "TokenOptions",
    "ConnectionOptions",
    "Option",
    "OPTIONS",
    "Options",
    "check_option_names",
    "hide_token",
    "check_base_url",
    "is_loopback",
    "get_token",
    "read_tokens",
    "ENV_PREFIX",
    "ENV_NAME",
]

try:
    __version__ = version("intercom-jobs-nb")
except PackageNotFoundError:  # pragma: no cover - running from a source tree not installed
    __version__ = "0+unknown"

REGIONS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
DEFAULT_REGION = "us"
DEFAULT_API_VERSION = "2.15"
DEFAULT_TIMEOUT = 30.0  # seconds for one whole answer
DEFAULT_RETRIES = 4
DEFAULT_MAX_WORKERS = 32
DEFAULT_MAX_RPS: float | None = None
DEFAULT_BUDGET_SHARE = 1.0  # the share of each rate-limit window a run may use
DEFAULT_PROGRESS = True
DEFAULT_POLL_INTERVAL = 10.0  # seconds between two passes of wait_for_jobs
TOKEN_ENV = "INTERCOM_TOKEN"
USER_AGENT = f"intercom-jobs-nb/{__version__}"

_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class Secret:
    """A string that never shows itself in a repr, str, log line, traceback or pickle."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    @classmethod
    def wrap(cls, token: str | Secret | None, *, source: str = "token") -> Secret | None:
        """The one door for tokens: None stays None, a Secret stays itself, a string is checked.

        Raises:
            ConfigurationError: the token is empty or has characters outside visible ASCII
                (after stripping surrounding whitespace); the message never contains it.
        """
        if token is None or isinstance(token, Secret):
            return token
        if not isinstance(token, str):
            raise ConfigurationError(f"{source} must be a string, got {type(token).__name__}")
        if token.startswith(ENV_PREFIX):  # a reference, read here (on the machine that runs)
            name = token[len(ENV_PREFIX) :]
            value = os.environ.get(name) if name else None
            if not value:
                raise MissingTokenError(
                    f"{source} is {token!r}, but the environment variable {name or '(no name)'} "
                    "is not set where this runs"
                )
            token, source = value, f"{source} (the environment variable {name})"
        token = token.strip()
        if not token:
            raise ConfigurationError(f"{source} is empty")
        if not _VISIBLE_ASCII.fullmatch(token):
            raise ConfigurationError(
                f"{source} has characters that cannot be part of an Intercom access token "
                "(spaces, line breaks, control or non-ASCII characters); copy it again"
            )
        return cls(token)

    def reveal(self) -> str:
        return self._value

    def scrub(self, text: str) -> str:
        """``text`` with every occurrence of the secret masked, escaped copies included (an
        exception's text often holds the request line inside a repr)."""
        value = self._value
        for form in (
            value,
            repr(value)[1:-1],
            value.replace("\\", "\\\\"),
            value.replace('"', '\\"'),
            value.replace("'", "\\'"),
        ):
            if form in text:
                text = text.replace(form, "********")
        return text

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would write the token somewhere
        raise TypeError("a Secret cannot be pickled")


ENV_PREFIX = "env:"  # a token given as "env:NAME" is read from the environment variable NAME
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # what NAME may be


def read_tokens(tokens: Any) -> dict[str, Secret]:
    """``tokens={"acme": ..., ...}`` checked: a workspace name to a token, an `Secret`, or
    ``"env:NAME"`` each.

    Raises:
        ConfigurationError: not a non-empty mapping of names to tokens (no token is shown).
        MissingTokenError: an ``"env:NAME"`` whose variable is not set.
    """
    if not isinstance(tokens, Mapping) or not tokens:
        raise ConfigurationError(
            'tokens must be a non-empty dict of workspace name to token, e.g. tokens={"acme": '
            '"env:ACME_TOKEN"}'
        )
    read: dict[str, Secret] = {}
    for name, token in tokens.items():
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(
                f"tokens: workspace names must be non-empty strings, got {name!r}"
            )
        secret = Secret.wrap(token, source=f"tokens[{name!r}]")
        if secret is None:
            raise ConfigurationError(f"tokens[{name!r}] is None: give a token or 'env:NAME'")
        read[name] = secret
    return read


def resolve_token(token: Secret | None) -> Secret:
    """The token to use: the one given, else `get_token`'s."""
    return token if token is not None else get_token()


_SAID: set[str] = set()  # the sources already named in this process


def _interactive() -> bool:
    """Whether a person can answer a prompt: a terminal, or a notebook kernel."""
    try:
        if sys.stdin is not None and sys.stdin.isatty():
            return True
    except (AttributeError, ValueError):
        pass
    shell = sys.modules.get("IPython")
    get_ipython = getattr(shell, "get_ipython", None)
    return get_ipython is not None and type(get_ipython()).__name__ == "ZMQInteractiveShell"


def _from_dotenv() -> str | None:
    try:
        from dotenv import dotenv_values, find_dotenv
    except ImportError:  # pragma: no cover - a dependency
        return None
    path = find_dotenv(usecwd=True)
    return (dotenv_values(path).get(TOKEN_ENV) or None) if path else None


def _from_colab() -> str | None:
    if "google.colab" not in sys.modules:
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]

        return userdata.get(TOKEN_ENV) or None
    except Exception:  # not granted, not set: Colab raises its own errors
        return None


def get_token(*, prompt: bool = True) -> Secret:
    """The Intercom token from where notebook users keep it, first found:

    1. the ``INTERCOM_TOKEN`` environment variable;
    2. ``INTERCOM_TOKEN`` in a ``.env`` file (the nearest one from the working folder up,
       read with python-dotenv; the environment is not changed);
    3. Colab's secrets (``google.colab.userdata``), when running in Colab;
    4. a ``getpass`` prompt, when a person can answer one (a terminal or a notebook) and
       ``prompt`` is True.

    Says on standard error which it used (once per source), never the token. Every call that
    talks to Intercom uses it when no ``token=`` is given.

    Raises:
        MissingTokenError: none of these has a token.
        ConfigurationError: the token found is malformed (it is not shown).
    """
    sources: list[tuple[str, Callable[[], str | None]]] = [
        (f"the {TOKEN_ENV} environment variable", lambda: os.environ.get(TOKEN_ENV) or None),
        (f"{TOKEN_ENV} in a .env file", _from_dotenv),
        (f"Colab's secret {TOKEN_ENV}", _from_colab),
    ]
    if prompt and _interactive():
        sources.append(("the prompt", lambda: getpass.getpass("Intercom access token: ") or None))
    for where, read in sources:
        found = Secret.wrap(read(), source=f"the token from {where}")
        if found is not None:
            if where not in _SAID and not where.startswith("the INTERCOM"):
                _SAID.add(where)
                print(f"intercom-jobs-nb: using the token from {where}", file=sys.stderr)
            return found
    raise MissingTokenError(
        "no Intercom access token: pass token=..., set the INTERCOM_TOKEN environment variable, "
        "or put INTERCOM_TOKEN=... in a .env file (in a notebook: %env INTERCOM_TOKEN=... in a "
        "cell you do not save, or ij.get_token() to be asked for it)"
    )


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash, if the token may be sent there."""
    if not isinstance(base_url, str) or not _VISIBLE_ASCII.fullmatch(base_url):
        raise ConfigurationError(f"base_url must be an http(s) URL in ASCII, got {base_url!r}")
    parts = urlsplit(base_url)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigurationError(f"base_url has a bad port: {base_url!r}") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("base_url must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing to send the token over plain http to {parts.hostname!r}: "
            "use https (plain http is allowed only to loopback addresses such as the sandbox)"
        )
    return base_url.rstrip("/")


class ConnectionOptions(TypedDict, total=False):
    """Where requests go and how they are paced (see `OPTIONS` for each one's meaning)."""

    region: str
    base_url: str | None
    api_version: str | None
    retries: int
    max_workers: int
    max_rps: float | None
    budget_share: float
    transport: Transport | None


class RequestOptions(TypedDict, total=False):
    """How long one answer may take (`wait_for_jobs` calls it ``request_timeout``: its own
    ``timeout`` is the whole wait's)."""

    timeout: float


class TokenOptions(TypedDict, total=False):
    """Whose requests they are, and how a run shows its progress."""

    token: str | Secret | None
    tokens: Mapping[str, str | Secret] | None
    progress: bool | Callable[[Snapshot], Any]


class ClientOptions(TokenOptions, ConnectionOptions, RequestOptions, total=False):
    """The keyword options of `Client` and of every call that talks to Intercom: one
    declaration, split in three parts only where a call takes some of them (`wait_for_jobs`
    names ``timeout`` ``request_timeout``; ``intercom_jobs_nb.dask`` takes ``tokens`` its own
    way). What each one means, and its default: `OPTIONS` (listed below).
    """


class Option(NamedTuple):
    """One option: its default, what it means (one line, for docstrings, the CLI's help and
    the panel), and, for those the command line takes, the flag's placeholder and type."""

    default: Any
    help: str
    metavar: str | None = None  # the CLI's --flag takes a value shown so; None: not a value flag
    parse: Callable[[str], Any] | None = None  # the flag's argparse type


#: Every option in `ClientOptions`: default and meaning. The CLI makes a ``--flag`` of each one
#: with a ``metavar`` (``progress``: ``--no-progress``); the token is never a flag.
OPTIONS: dict[str, Option] = {
    "token": Option(
        None,
        "an Intercom access token, an ij.Secret, or 'env:NAME' (default: get_token(): "
        f"{TOKEN_ENV}, a .env file, Colab's secrets)",
    ),
    "tokens": Option(
        None,
        "many workspaces: {workspace: token}, with ids that have a workspace column",
    ),
    "region": Option(DEFAULT_REGION, "your workspace's Intercom region", "|".join(REGIONS)),
    "base_url": Option(None, "another API host, such as a sandbox's; overrides region", "URL"),
    "api_version": Option(
        DEFAULT_API_VERSION, "sent as the Intercom-Version header (None: none)", "V"
    ),
    "timeout": Option(DEFAULT_TIMEOUT, "seconds to wait for one answer", "S", float),
    "retries": Option(
        DEFAULT_RETRIES,
        "further tries after a passing failure: timeout, dropped connection, 5xx, 429 "
        "(enqueues resend only what certainly did not reach Intercom)",
        "N",
        int,
    ),
    "max_workers": Option(DEFAULT_MAX_WORKERS, "requests in flight at most", "N", int),
    "max_rps": Option(
        DEFAULT_MAX_RPS,
        "cap on requests per second, to leave room for other integrations",
        "N",
        float,
    ),
    "budget_share": Option(
        DEFAULT_BUDGET_SHARE,
        "the share (0 < share <= 1) of each rate-limit window (X-RateLimit-Limit) this "
        "token's runs may use together, leaving the rest to the workspace's other integrations",
        "SHARE",
        float,
    ),
    "progress": Option(
        DEFAULT_PROGRESS, "True for a progress bar, False for none, or a callable taking a Snapshot"
    ),
    "transport": Option(
        None,
        "where requests go: None for the network, or an ij.MockTransport(handler) that answers "
        "from a function (tests, offline notebooks)",
    ),
}


ClientOptions.__doc__ = (
    f"""{ClientOptions.__doc__}
    The options (name, default: meaning), from `OPTIONS`:

"""
    + "\n".join(
        f"    - ``{name}``, default ``{option.default!r}``: {option.help}."
        for name, option in OPTIONS.items()
    )
    + """

    Example:
        >>> def fetch_quietly(ids, **options: Unpack[ClientOptions]):  # doctest: +SKIP
        ...     return ij.fetch_jobs(ids, progress=False, **options)
"""
)


def hide_token(options: Any) -> None:
    """Wrap the ``token`` of a call's keyword options in place, as the public calls do on their
    first line: a verbose traceback (``%xmode Verbose``) then shows ``Secret('********')`` in
    every frame, the public call's own ``options`` included."""
    if options.get("token") is not None:
        options["token"] = Secret.wrap(options["token"])


def check_option_names(options: Mapping[str, Any], allowed: Any = ClientOptions) -> None:
    """Refuse a keyword that is not an option (of the TypedDict ``allowed``), naming the
    nearest one.

    Raises:
        TypeError: as Python does for an unexpected keyword, with a suggestion.
    """
    known = allowed.__optional_keys__ | allowed.__required_keys__
    for name in options:
        if name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise TypeError(
                f"unexpected keyword argument {name!r}{hint} (the options are "
                f"{', '.join(sorted(known))})"
            )


@dataclass(frozen=True)
class Options:
    """Checked settings for one run. Build with `Options.build(...)`."""

    token: Secret = field(repr=False)
    base_url: str
    api_version: str | None = DEFAULT_API_VERSION
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    max_workers: int = DEFAULT_MAX_WORKERS
    max_rps: float | None = DEFAULT_MAX_RPS
    budget_share: float = DEFAULT_BUDGET_SHARE
    progress: bool | Callable[..., Any] = DEFAULT_PROGRESS
    #: Many workspaces: a token per workspace name (``token`` is then the first of them).
    tokens: Mapping[str, Secret] | None = field(default=None, repr=False)

    #: Where requests go: None for the network, else a `Transport` (``ij.MockTransport``).
    transport: Transport | None = None

    @classmethod
    def build(cls, **options: Unpack[ClientOptions]) -> Options:
        """Checked options from `ClientOptions` keywords (`OPTIONS` gives the defaults).

        Raises:
            TypeError: a keyword that is not an option (the nearest one is named).
            ConfigurationError: a value that is not valid (the token is never shown).
            MissingTokenError: no token given, and `get_token` finds none.
        """
        check_option_names(options)
        given: dict[str, Any] = {name: option.default for name, option in OPTIONS.items()}
        given.update(options)
        token, tokens, region, base_url = (
            given["token"],
            given["tokens"],
            given["region"],
            given["base_url"],
        )
        api_version, timeout, retries = given["api_version"], given["timeout"], given["retries"]
        max_workers, max_rps, progress = given["max_workers"], given["max_rps"], given["progress"]
        transport, budget_share = given["transport"], given["budget_share"]
        lanes = None
        if tokens is not None:
            if token is not None:
                raise ConfigurationError(
                    "pass token= (one workspace) or tokens= (one per workspace), not both"
                )
            lanes = read_tokens(tokens)
            token = next(iter(lanes.values()))
        secret = resolve_token(Secret.wrap(token))
        if base_url is None:
            key = str(region).lower()
            if key not in REGIONS:
                raise ConfigurationError(
                    f"region must be one of {', '.join(REGIONS)}, got {region!r}"
                )
            base_url = REGIONS[key]
        base_url = check_base_url(base_url)
        if isinstance(timeout, bool) or not (
            isinstance(timeout, (int, float)) and 0 < timeout < 1e6
        ):
            raise ConfigurationError(
                f"timeout must be a positive number of seconds, got {timeout!r}"
            )
        if isinstance(retries, bool) or not (isinstance(retries, int) and 0 <= retries <= 20):
            raise ConfigurationError(f"retries must be an int from 0 to 20, got {retries!r}")
        if isinstance(max_workers, bool) or not (
            isinstance(max_workers, int) and 1 <= max_workers <= 256
        ):
            raise ConfigurationError(
                f"max_workers must be an int from 1 to 256, got {max_workers!r}"
            )
        if max_rps is not None and (
            isinstance(max_rps, bool)
            or not (isinstance(max_rps, (int, float)) and 0 < max_rps < 1e6)
        ):
            raise ConfigurationError(f"max_rps must be a positive number or None, got {max_rps!r}")
        if isinstance(budget_share, bool) or not (
            isinstance(budget_share, (int, float)) and 0 < budget_share <= 1
        ):
            raise ConfigurationError(
                f"budget_share must be a number with 0 < share <= 1, got {budget_share!r}"
            )
        if api_version is not None and not (
            isinstance(api_version, str) and _VISIBLE_ASCII.fullmatch(api_version)
        ):
            raise ConfigurationError(
                f"api_version must be a version name such as '2.15' (visible ASCII), or None; "
                f"got {api_version!r}"
            )
        if not (isinstance(progress, bool) or callable(progress)):
            raise ConfigurationError("progress must be True, False or a callable")
        if transport is not None and not callable(getattr(transport, "handle", None)):
            raise ConfigurationError(
                "transport must be None (the network) or a Transport, such as "
                f"ij.MockTransport(handler); got {type(transport).__name__}"
            )
        return cls(
            token=secret,
            base_url=base_url,
            api_version=api_version,
            timeout=float(timeout),
            retries=retries,
            max_workers=max_workers,
            max_rps=max_rps,
            budget_share=float(budget_share),
            progress=progress,
            tokens=lanes,
            transport=transport,
        )

    def for_token(self, token: Secret) -> Options:
        """The same options with another token (one workspace of many)."""
        return replace(self, token=token, tokens=None)

    def headers(self) -> dict[str, str]:
        """The request headers (the token included: keep the result out of locals you log)."""
        headers = {
            "Authorization": f"Bearer {self.token.reveal()}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
        }
        if self.api_version:
            headers["Intercom-Version"] = self.api_version
        return headers
