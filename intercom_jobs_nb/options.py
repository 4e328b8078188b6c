"""The options every call that talks to Intercom shares, checked once, token kept out of sight."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, MissingTokenError

REGIONS: dict[str, str] = {
    "us": "https://api.intercom.io",
    "eu": "https://api.eu.intercom.io",
    "au": "https://api.au.intercom.io",
}
DEFAULT_API_VERSION = "2.15"
TOKEN_ENV = "INTERCOM_TOKEN"


class Secret:
    """A string that never shows itself in a repr, str, log line or traceback."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __reduce__(self) -> Any:  # pickling would write the token somewhere
        raise TypeError("a Secret cannot be pickled")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(base_url: str) -> str:
    """The base URL without a trailing slash, if the token may be sent there."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigurationError("base_url must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"refusing to send the token over plain http to {parts.hostname!r}: "
            "use https (plain http is allowed only to loopback addresses such as the sandbox)"
        )
    return base_url.rstrip("/")


@dataclass(frozen=True)
class Options:
    """Checked settings for one run. Build with `Options.build(...)`."""

    token: Secret = field(repr=False)
    base_url: str
    api_version: str | None = DEFAULT_API_VERSION
    timeout: float = 30.0
    retries: int = 4
    max_workers: int = 32
    max_rps: float | None = None
    progress: bool | Callable[..., Any] = True

    @classmethod
    def build(
        cls,
        *,
        token: str | Secret | None = None,
        region: str = "us",
        base_url: str | None = None,
        api_version: str | None = DEFAULT_API_VERSION,
        timeout: float = 30.0,
        retries: int = 4,
        max_workers: int = 32,
        max_rps: float | None = None,
        progress: bool | Callable[..., Any] = True,
    ) -> Options:
        if token is None:
            token = os.environ.get(TOKEN_ENV) or None
        if token is None:
            raise MissingTokenError(
                "no Intercom access token: pass token=... or set the INTERCOM_TOKEN environment "
                "variable (in a notebook: %env INTERCOM_TOKEN=... in a cell you do not save, or "
                "getpass.getpass())"
            )
        if not isinstance(token, Secret):
            if not isinstance(token, str) or not token.strip():
                raise ConfigurationError("token must be a non-empty string")
            if any(c.isspace() or ord(c) < 32 for c in token.strip()):
                raise ConfigurationError("token contains whitespace or control characters")
            token = Secret(token.strip())
        if base_url is None:
            key = str(region).lower()
            if key not in REGIONS:
                raise ConfigurationError(
                    f"region must be one of {', '.join(REGIONS)}, got {region!r}"
                )
            base_url = REGIONS[key]
        base_url = check_base_url(base_url)
        if not (isinstance(timeout, (int, float)) and timeout > 0):
            raise ConfigurationError(f"timeout must be a positive number, got {timeout!r}")
        if not (isinstance(retries, int) and 0 <= retries <= 20):
            raise ConfigurationError(f"retries must be an int from 0 to 20, got {retries!r}")
        if not (isinstance(max_workers, int) and 1 <= max_workers <= 256):
            raise ConfigurationError(
                f"max_workers must be an int from 1 to 256, got {max_workers!r}")
        if max_rps is not None and not (isinstance(max_rps, (int, float)) and max_rps > 0):
            raise ConfigurationError(
                f"max_rps must be a positive number or None, got {max_rps!r}")
        if api_version is not None and not isinstance(api_version, str):
            raise ConfigurationError("api_version must be a string such as '2.15', or None")
        return cls(token=token, base_url=base_url, api_version=api_version, timeout=float(timeout),
                   retries=retries, max_workers=max_workers, max_rps=max_rps, progress=progress)

    def job_url(self, job_id: str) -> str:
        return f"{self.base_url}/jobs/status/{job_id}"

    def headers(self) -> dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self.token.reveal()}",
            "Accept": "application/json",
            "User-Agent": "intercom-jobs-nb/0.1",
        }
        if self.api_version:
            headers["Intercom-Version"] = self.api_version
        return headers


OPTION_NAMES = ("token", "region", "base_url", "api_version", "timeout", "retries",
                "max_workers", "max_rps", "progress")


def options_from(kwargs: dict[str, Any]) -> Options:
    """`Options.build` for functions that take the options as ``**options``."""
    unknown = sorted(set(kwargs) - set(OPTION_NAMES))
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {', '.join(unknown)}; the options are {', '.join(OPTION_NAMES)}"
        )
    return Options.build(**kwargs)
