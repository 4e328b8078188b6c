"""Tokens where notebook users keep them: ij.get_token()'s sources, in order, never shown."""

from __future__ import annotations

import sys
import types

import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb import _options as options


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No token anywhere: no environment variable, no .env up from here, no Colab, no prompt."""
    monkeypatch.delenv("INTERCOM_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(options, "_interactive", lambda: False)
    monkeypatch.setattr(options, "_SAID", set())
    return tmp_path


def test_the_environment_variable_comes_first(nowhere, monkeypatch):
    (nowhere / ".env").write_text("INTERCOM_TOKEN=from-dotenv\n")
    monkeypatch.setenv("INTERCOM_TOKEN", "from-env")
    assert ij.get_token().reveal() == "from-env"


def test_a_dotenv_file_is_read_and_the_source_named_not_the_token(nowhere, capsys):
    (nowhere / ".env").write_text("OTHER=1\nINTERCOM_TOKEN=tok-from-dotenv\n")
    assert ij.get_token().reveal() == "tok-from-dotenv"
    err = capsys.readouterr().err
    assert ".env" in err and "tok-from-dotenv" not in err
    assert "INTERCOM_TOKEN" not in __import__("os").environ  # the environment is not changed


def test_a_dotenv_file_in_a_parent_folder_is_found(nowhere, monkeypatch):
    (nowhere / ".env").write_text("INTERCOM_TOKEN=tok-parent\n")
    child = nowhere / "a" / "b"
    child.mkdir(parents=True)
    monkeypatch.chdir(child)
    assert ij.get_token().reveal() == "tok-parent"


def test_colab_secrets_are_asked_in_colab(nowhere, monkeypatch):
    userdata = types.SimpleNamespace(
        get=lambda name: "tok-colab" if name == "INTERCOM_TOKEN" else None
    )
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata  # type: ignore[attr-defined]
    google = types.ModuleType("google")
    google.colab = colab  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert ij.get_token().reveal() == "tok-colab"


def test_a_prompt_is_the_last_resort_when_a_person_can_answer(nowhere, monkeypatch):
    monkeypatch.setattr(options, "_interactive", lambda: True)
    monkeypatch.setattr(options.getpass, "getpass", lambda prompt: "  tok-typed\n")
    assert ij.get_token().reveal() == "tok-typed"
    with pytest.raises(ij.MissingTokenError):
        ij.get_token(prompt=False)


def test_no_token_anywhere_says_where_to_put_one(nowhere):
    with pytest.raises(ij.MissingTokenError, match=r"\.env"):
        ij.get_token()


def test_a_malformed_token_in_a_dotenv_file_is_refused_without_showing_it(nowhere):
    (nowhere / ".env").write_text('INTERCOM_TOKEN="tok with space"\n')
    with pytest.raises(ij.ConfigurationError) as caught:
        ij.get_token()
    assert "tok with space" not in str(caught.value) and ".env" in str(caught.value)


def test_fetch_jobs_uses_the_dotenv_token(nowhere, final_sandbox):
    (nowhere / ".env").write_text(f"INTERCOM_TOKEN={final_sandbox.token}\n")
    df = ij.fetch_jobs(final_sandbox.job_ids[:3], base_url=final_sandbox.base_url, progress=False)
    assert df["status"].notna().all()
