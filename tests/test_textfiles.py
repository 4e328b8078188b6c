"""Files as people save them: ids and tickets files in UTF-8 with a BOM, UTF-16 (Excel's "Unicode
Text"), UTF-32 are read right; cp1252 and UTF-16 without a mark are refused in one line that
says to save as UTF-8, before any request; ``--out`` only in a format the CLI writes."""

from __future__ import annotations

import codecs
import subprocess
import sys
import warnings

import pandas as pd
import pytest

from intercom_jobs_nb import _cli as cli
from intercom_jobs_nb import _textfiles as textfiles
from intercom_jobs_nb._errors import ConfigurationError
from intercom_jobs_nb._ids import ArrowIds, read_job_ids
from intercom_jobs_nb._panel_controller import PanelController
from intercom_jobs_nb.sandbox import Sandbox

# Excel's "Unicode Text": UTF-16 LE with its mark, tab-separated; and the rest of the family.
ENCODINGS = {
    "utf-8 with BOM": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16 LE with BOM": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16 BE with BOM": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-32 LE with BOM": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
}
SEPARATORS = {"comma": ",", "tab": "\t"}


def table(sep: str, ids: list[str]) -> str:
    """A table of ids with a header and a column of non-ASCII notes."""
    lines = [f"job_id{sep}note", *(f"{job_id}{sep}café n°{n}" for n, job_id in enumerate(ids))]
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("separator", "suffix"), [("comma", ".csv"), ("tab", ".csv"), ("tab", ".txt")]
)  # a .txt with commas is one id a line, not a table
def test_an_ids_table_in_any_marked_encoding_is_read_right(tmp_path, encoding, separator, suffix):
    path = tmp_path / f"ids{suffix}"
    path.write_bytes(ENCODINGS[encoding](table(SEPARATORS[separator], ["1001", "1002", "1001"])))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the repeated id is warned about
        job_ids = read_job_ids(path)
    assert list(job_ids.ids) == ["1001", "1002"]
    assert job_ids.extra is not None and job_ids.extra["note"].tolist() == ["café n°0", "café n°1"]
    assert not job_ids.invalid and job_ids.duplicates == 1


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_a_txt_of_ids_in_any_marked_encoding_is_read_right(tmp_path, encoding):
    path = tmp_path / "ids.txt"
    path.write_bytes(ENCODINGS[encoding]("# exported\r\n1001\r\n\r\n  1002  \r\nnot/an id\r\n"))
    job_ids = read_job_ids(path)
    assert list(job_ids.ids) == ["1001", "1002", "not/an id"]
    assert list(job_ids.invalid) == ["not/an id"]


CP1252 = "job_id,note\n1001,café\n".encode("cp1252")


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (CP1252, "line 2 has the byte 0xe9"),
        ("1001\n1002\n".encode("utf-16-le"), "NUL characters"),  # UTF-16 without its mark
        (codecs.BOM_UTF16_LE + b"1\x000\x00\x00\xdc", "not valid UTF-16"),  # a lone surrogate
    ],
)
@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_a_file_that_is_not_what_it_says_is_refused_in_one_line(tmp_path, content, says, suffix):
    path = tmp_path / f"ids{suffix}"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError) as caught:
        read_job_ids(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and says in message
    assert "save it as UTF-8" in message


def test_a_bad_byte_far_into_a_large_file_is_found_and_refused(tmp_path):
    """Past the head the reader checks first: pyarrow's reader finds it, the message says
    which line."""
    path = tmp_path / "ids.csv"
    lines = [f"{100000 + n}" for n in range(20_000)]
    path.write_bytes(("job_id\n" + "\n".join(lines) + "\n").encode() + "café\n".encode("cp1252"))
    assert path.stat().st_size > textfiles.HEAD_BYTES
    with pytest.raises(ConfigurationError, match=r"line 20002 has the byte 0xe9"):
        read_job_ids(path)


def test_decode_takes_the_mark_off_and_refuses_what_it_cannot_be_sure_of():
    assert textfiles.decode(codecs.BOM_UTF8 + "é".encode(), "x") == "é"
    assert textfiles.decode(codecs.BOM_UTF16_BE + "é".encode("utf-16-be"), "x") == "é"
    assert textfiles.decode("é".encode()[:1], "x", final=False) == ""  # cut at the head's end
    with pytest.raises(ConfigurationError, match="cannot read upload.csv: it is not UTF-8"):
        textfiles.decode("é".encode("latin-1"), "upload.csv")


@pytest.mark.parametrize(
    "values",
    [
        ["20", " 21 ", "20", "", "a/b", "x" * 129, "22", "21", "abc-DEF_9", "#1"],
        ["30", "31", "30", "32", "31", "33", "34", "35"],  # numbers only: the integer path
        ["7", "007", "7", "0", "8", "08", "9", "9"],  # leading zeros: other ids, not 7 and 8
    ],
)
def test_a_file_of_ids_read_by_arrow_follows_the_rules_of_a_list(tmp_path, values):
    """The file reader (Arrow kernels) and the list reader (`check_job_id`) agree: order,
    repeats, trimming, the invalid ids and their reasons, the first row of each id kept."""
    path = tmp_path / "ids.csv"
    path.write_text("job_id,n\n" + "".join(f'"{v}",{i}\n' for i, v in enumerate(values)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_file = read_job_ids(path)
        from_list = read_job_ids(values)
    assert isinstance(from_file.ids, ArrowIds)
    assert from_file.ids == from_list.ids and list(from_file.ids) == list(from_list.ids)
    assert from_file.invalid == from_list.invalid
    assert from_file.duplicates == from_list.duplicates == 2
    first_rows: dict[str, str] = {}
    for n, value in enumerate(values):
        first_rows.setdefault(value.strip(), str(n))
    assert from_file.extra is not None
    assert from_file.extra["n"].tolist() == list(first_rows.values())


# -- the command line: refused before any request, exit 2, one line -------------------------


@pytest.fixture
def counted(monkeypatch):
    with Sandbox(jobs=5, pending_share=0.0, enqueue_pending_seconds=(0.0, 0.0)) as sb:
        monkeypatch.setenv("INTERCOM_TOKEN", sb.token)
        yield sb


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_cli_fetch_reads_excels_unicode_text(counted, tmp_path, capsys):
    path = tmp_path / "ids.txt"
    path.write_bytes(ENCODINGS["utf-16 LE with BOM"](table("\t", counted.job_ids[:3])))
    out = tmp_path / "jobs.csv"
    argv = ["fetch", str(path), "--out", str(out), "--base-url", counted.base_url, "--no-progress"]
    assert cli.main(argv) == 0
    df = pd.read_csv(out, dtype=str)
    assert df["job_id"].tolist() == counted.job_ids[:3] and df["note"].iloc[0] == "café n°0"


@pytest.mark.parametrize("suffix", [".csv", ".txt"])
def test_cli_fetch_refuses_cp1252_before_any_request(counted, tmp_path, capsys, suffix):
    path = tmp_path / f"ids{suffix}"
    path.write_bytes(CP1252)
    assert cli.main(["fetch", str(path), "--base-url", counted.base_url]) == cli.EXIT_USAGE
    (line,) = error_lines(capsys)
    assert line.startswith("error: cannot read") and str(path) in line and "UTF-8" in line
    assert counted.stats["requests"] == 0


def tickets(sep: str) -> str:
    rows = [f"t{n}{sep}user{n}@example.com{sep}Café n°{n}" for n in range(2)]
    return "\r\n".join([f"key{sep}contact_email{sep}title", *rows]) + "\r\n"


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("separator", SEPARATORS)
def test_cli_enqueue_reads_tickets_in_any_marked_encoding(counted, tmp_path, encoding, separator):
    path = tmp_path / "tickets.csv"
    path.write_bytes(ENCODINGS[encoding](tickets(SEPARATORS[separator])))
    out = tmp_path / "outcomes.csv"
    argv = ["enqueue", str(path), "--ticket-type-id", "88", "--ledger", str(tmp_path / "l.db"),
            "--base-url", counted.base_url, "--out", str(out), "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    assert pd.read_csv(out, dtype=str)["enqueue_status"].tolist() == ["enqueued"] * 2
    assert sorted(counted.count_tickets(by="title")) == ["Café n°0", "Café n°1"]


def test_cli_enqueue_refuses_cp1252_tickets_before_any_request(counted, tmp_path, capsys):
    path = tmp_path / "tickets.csv"
    path.write_bytes(tickets(",").encode("cp1252"))
    argv = ["enqueue", str(path), "--ticket-type-id", "88", "--ledger", str(tmp_path / "l.db"),
            "--base-url", counted.base_url]  # fmt: skip
    assert cli.main(argv) == cli.EXIT_USAGE
    (line,) = error_lines(capsys)
    assert str(path) in line and "save it as UTF-8" in line
    assert counted.stats["requests"] == 0 and counted.enqueued == 0


@pytest.mark.parametrize("command", ["fetch", "enqueue"])
@pytest.mark.parametrize("name", ["jobs.xlsx", "jobs.json", "jobs"])
def test_out_in_a_format_the_cli_does_not_write_is_refused_before_any_request(
    counted, tmp_path, capsys, command, name
):
    ids = tmp_path / "ids.txt"
    ids.write_text("1001\n")
    rows = tmp_path / "tickets.csv"
    rows.write_text(tickets(","))
    out = tmp_path / name
    source = [str(ids)] if command == "fetch" else [str(rows), "--ledger", str(tmp_path / "l")]
    argv = [command, *source, "--out", str(out), "--base-url", counted.base_url]
    assert cli.main(argv) == cli.EXIT_USAGE
    (line,) = error_lines(capsys)
    assert str(out) in line and ".csv or .parquet" in line
    assert counted.stats["requests"] == 0 and not out.exists()


def test_the_out_formats_are_one_list_that_the_help_shows(capsys):
    assert set(cli.OUT_FORMATS) == {".csv", ".parquet"}
    with pytest.raises(SystemExit):
        cli.main(["fetch", "--help"])
    assert "FILE.csv|FILE.parquet" in capsys.readouterr().out


# -- the panel's Upload -----------------------------------------------------------------------


def test_the_panel_reads_an_uploaded_unicode_text_file():
    c = PanelController(["1001"], base_url="http://127.0.0.1:9", token="tok")
    content = ENCODINGS["utf-16 LE with BOM"](table("\t", ["2001", "2002"]))
    c.upload([{"name": "export.txt", "content": memoryview(content)}])
    assert c.ids_input.upload_note.kind == "info", c.ids_input.upload_note.text
    assert c.ids == ["2001", "2002"] and c.ids_input.upload_count == 2


def test_the_panel_refuses_an_uploaded_cp1252_file_and_keeps_nothing():
    c = PanelController(["1001"], base_url="http://127.0.0.1:9", token="tok")
    c.upload([{"name": "export.csv", "content": memoryview(CP1252)}])
    note = c.ids_input.upload_note
    assert note.kind == "error" and "\n" not in note.text
    assert note.text.startswith("cannot read export.csv:") and "save it as UTF-8" in note.text
    assert "ij-upload-" not in note.text  # the user's file, not the temporary copy
    assert c.ids == ["1001"] and c.ids_input.upload_count == 0 and c.state == "ready"


@pytest.mark.parametrize("content", [CP1252, "1001\n1002\n".encode("utf-16-le")])
def test_a_refused_file_leaves_no_traceback_on_the_command_line(counted, tmp_path, content):
    """The whole command, as a user runs it: one line, exit 2 (UTF-16 without its mark was a
    traceback and exit 1), and the sandbox saw no request."""
    path = tmp_path / "ids.txt"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "intercom_jobs_nb", "fetch", str(path), "--base-url",
         counted.base_url],
        capture_output=True, text=True, timeout=120,
        env={"INTERCOM_TOKEN": counted.token, "PATH": "/usr/bin:/bin", "TQDM_DISABLE": "1"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert counted.stats["requests"] == 0


@pytest.mark.parametrize(
    "text",
    ["\njob_id,note\n1001,a\n\n1002,b\n", "\r\n\r\njob_id\tnote\r\n1001\ta\r\n1002\tb\r\n"],
)
def test_empty_lines_before_the_header_do_not_make_it_an_id(tmp_path, text):
    path = tmp_path / "ids.csv"
    path.write_text(text, newline="")
    job_ids = read_job_ids(path)
    assert list(job_ids.ids) == ["1001", "1002"] and not job_ids.invalid
    assert job_ids.extra is not None and job_ids.extra["note"].tolist() == ["a", "b"]


def test_the_panel_view_shows_the_note_of_a_refused_upload_and_keeps_its_ids(
    panel_sandbox, panel_of
):
    """Through the widget, as the browser sets it: a UTF-16 file fills the box; a cp1252 file
    leaves the box as it was and says, beside Upload, to save it as UTF-8."""
    from test_widgets import upload

    panel = panel_of(panel_sandbox, job_ids=["1001"])
    upload(panel, "export.txt", ENCODINGS["utf-16 LE with BOM"](table("\t", ["1002", "1003"])))
    assert panel.ids_text.split() == ["1002", "1003"]
    upload(panel, "legacy.csv", CP1252)
    assert "legacy.csv" in panel.upload_note and "save it as UTF-8" in panel.upload_note
    assert panel.ids_text.split() == ["1002", "1003"]
