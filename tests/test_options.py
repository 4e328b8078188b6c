"""Options: the token, regions, base URLs and argument checks, before anything is sent."""

from __future__ import annotations

import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._options import Options


def test_no_token_says_how_to_give_one():
    with pytest.raises(ij.MissingTokenError, match="INTERCOM_TOKEN"):
        ij.fetch_jobs(["1"], progress=False)


def test_the_token_comes_from_intercom_token(final_sandbox, monkeypatch):
    monkeypatch.setenv("INTERCOM_TOKEN", final_sandbox.token)
    df = ij.fetch_jobs(final_sandbox.job_ids[:2], base_url=final_sandbox.base_url, progress=False)
    assert df["error_code"].isna().all()


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("us", "https://api.intercom.io"),
        ("eu", "https://api.eu.intercom.io"),
        ("AU", "https://api.au.intercom.io"),
    ],
)
def test_regions_map_to_intercom_hosts(region, host):
    assert Options.build(token="t", region=region).base_url == host


def test_base_url_overrides_region():
    assert (
        Options.build(token="t", region="eu", base_url="https://proxy.example/").base_url
        == "https://proxy.example"
    )


def test_an_unknown_region_is_refused():
    with pytest.raises(ij.ConfigurationError, match="us, eu, au"):
        Options.build(token="t", region="mars")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x",
        "api.intercom.io",
        "https://u:p@api.intercom.io",
        "http://10.0.0.5",
        "http://example.com",
    ],
)
def test_unsafe_or_malformed_base_urls_are_refused(url):
    with pytest.raises(ij.ConfigurationError):
        Options.build(token="t", base_url=url)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_is_allowed_to_loopback(url):
    assert Options.build(token="t", base_url=url).base_url == url


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("timeout", 0),
        ("retries", -1),
        ("retries", 99),
        ("max_workers", 0),
        ("max_rps", -5),
        ("budget_share", 0),
        ("budget_share", 1.5),
        ("budget_share", True),
        ("api_version", 2.15),
    ],
)
def test_bad_option_values_are_refused(name, value):
    with pytest.raises(ij.ConfigurationError, match=name):
        Options.build(token="t", **{name: value})


@pytest.mark.parametrize("token", ["", "   ", "my secret", "sec\x01ret"])
def test_a_malformed_token_is_refused_without_echoing_it(token):
    with pytest.raises(ij.ConfigurationError) as caught:
        Options.build(token=token)
    assert "secret" not in str(caught.value) and "ret" not in str(caught.value)


def test_a_pasted_token_with_a_trailing_newline_is_trimmed():
    assert Options.build(token="abc\n").token.reveal() == "abc"


def test_unknown_options_are_named_in_the_error():
    with pytest.raises(TypeError, match="max_worker"):
        ij.refresh(
            ij.fetch_jobs([], token="t", base_url="http://127.0.0.1:1", progress=False),
            max_worker=3,
        )
