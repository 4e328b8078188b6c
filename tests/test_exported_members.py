"""The package __init__ is the table of contents: __all__ lists exactly what it exports."""

from __future__ import annotations

import inspect

import intercom_jobs_nb as ij


def test_all_lists_every_public_name_and_each_exists():
    public = {
        name
        for name, value in vars(ij).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(ij.__all__) == public | {"__version__"}
    for name in ij.__all__:
        assert hasattr(ij, name), name


def test_every_exception_descends_from_one_base():
    for name in ij.__all__:
        value = getattr(ij, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            if value is ij.FetchInterrupted:
                assert issubclass(value, KeyboardInterrupt)  # Ctrl-C stays Ctrl-C
            else:
                assert issubclass(value, ij.IntercomJobsError), name


def test_public_functions_take_options_as_keywords_only():
    client = ij.Client(token="t")
    for function in (
        ij.fetch_jobs,
        ij.fetch_job,
        ij.wait_for_jobs,
        ij.refresh,
        ij.enqueue_tickets,
        ij.fetch_tickets,
        client.fetch_jobs,
        client.fetch_job,
        client.wait_for_jobs,
        client.refresh,
        client.enqueue_tickets,
        client.fetch_tickets,
    ):
        params = list(inspect.signature(function).parameters.values())
        assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params[1:]), function
    assert all(p.kind is p.VAR_KEYWORD for p in inspect.signature(ij.Client).parameters.values())
