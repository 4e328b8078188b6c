"""Text files as people save them: the one rule for the encoding (and separator) of a file we read.

Ids files, tickets files and the panel's uploads all come from spreadsheets and editors, which
save text in several encodings. Read one with the wrong encoding and the ids or titles change
silently (``é`` in cp1252 read as UTF-8 is not text at all; read as Latin-1 it is another
letter). So there is one rule, here, and every reader follows it:

- a byte-order mark says the encoding: UTF-8, UTF-16 (Excel's "Unicode Text": UTF-16 LE with a
  mark, tab-separated) or UTF-32, little- or big-endian; the mark is not part of the text;
- without a mark the file must be UTF-8 (ASCII is);
- anything else (cp1252, Latin-1, UTF-16 without a mark, which is full of NUL bytes) is refused
  with one line that names the file and says to save it as UTF-8: never guessed, because a
  wrong guess is a wrong id or a ticket with a garbled title.

A table's separator is the other thing spreadsheets vary: a first line with more tabs than
commas is tab-separated (`separator`).
"""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path

import pandas as pd

from ._errors import ConfigurationError

__all__ = [
    "sniff",
    "decode",
    "read_text",
    "read_head",
    "read_table",
    "separator",
    "not_text",
    "locate_bad_utf8",
    "HEAD_BYTES",
]

# Longest first: UTF-32 LE's mark begins with UTF-16 LE's.
_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: Bytes read to decide a file's encoding, separator and header before reading it whole.
HEAD_BYTES = 1 << 16
SAVE_AS_UTF8 = "save it as UTF-8 (in Excel: Save As, 'CSV UTF-8') and try again"


def sniff(head: bytes) -> str:
    """The codec of a file that starts with ``head``: the one its byte-order mark names (a
    codec that drops the mark: ``utf-8-sig``, ``utf-16``, ``utf-32``), else ``utf-8``."""
    for mark, codec in _MARKS:
        if head.startswith(mark):
            return codec
    return "utf-8"


def not_text(name: str, why: str) -> ConfigurationError:
    """The one-line refusal of a file we will not guess the encoding of."""
    return ConfigurationError(f"cannot read {name}: {why}; {SAVE_AS_UTF8}")


def _refuse(name: str, data: bytes, exc: UnicodeDecodeError, codec: str, offset: int = 0) -> None:
    line = data.count(b"\n", 0, exc.start) + 1
    byte = data[exc.start : exc.start + 1].hex()
    if codec == "utf-8":
        why = (
            f"it is not UTF-8 text (line {line + offset} has the byte 0x{byte}, as cp1252, "
            "Latin-1 and Excel's plain 'CSV' write)"
        )
    else:
        why = f"it is not valid {codec.removesuffix('-sig').upper()}, as its byte-order mark says"
    raise not_text(name, why) from None


def decode(data: bytes, name: str, *, final: bool = True) -> str:
    """``data`` as text, by the rule above. With ``final=False`` ``data`` is the head of a
    longer file: a character cut at its end is left out, not refused.

    Raises:
        ConfigurationError: not UTF-8 without a byte-order mark, not what its mark says, or
            text with NUL characters (UTF-16 without a mark); the message names ``name``.
    """
    codec = sniff(data)
    try:
        text = codecs.getincrementaldecoder(codec)("strict").decode(data, final=final)
    except UnicodeDecodeError as exc:
        _refuse(name, data, exc, codec)
    if "\x00" in text:
        raise not_text(name, "it has NUL characters (UTF-16 without a byte-order mark?)")
    return text


def read_head(path: str | os.PathLike[str]) -> bytes:
    """The first `HEAD_BYTES` of a file."""
    with open(path, "rb") as file:
        return file.read(HEAD_BYTES)


def read_text(path: str | os.PathLike[str], name: str | None = None) -> str:
    """A whole (small) file as text, by the rule above; ``name`` (default: the path) is what
    a refusal calls it."""
    return decode(Path(path).read_bytes(), str(path) if name is None else name)


def separator(first_line: str) -> str:
    """A table's separator: a tab when its first line has more tabs than commas (Excel's
    "Unicode Text" and "Text (Tab delimited)"), else a comma."""
    return "\t" if first_line.count("\t") > first_line.count(",") else ","


def read_table(path: str | os.PathLike[str], name: str | None = None) -> pd.DataFrame:
    """A small table (a tickets or workspaces file) as text cells, by the rules above: its
    encoding, and its separator from its first line. Empty cells stay ``""``.

    Raises:
        ConfigurationError: the file is not text by the rule above.
        OSError: the file cannot be opened.
        pandas.errors.EmptyDataError, pandas.errors.ParserError: it is not a table.
    """
    text = read_text(path, name)
    return pd.read_csv(
        io.StringIO(text),
        sep=separator(text.partition("\n")[0]),
        dtype=str,
        keep_default_na=False,
    )


def locate_bad_utf8(path: str | os.PathLike[str], name: str) -> None:
    """Raise the refusal of a file that a fast reader found is not UTF-8, with the line of
    its first bad byte (read in blocks: the file may be large)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    lines = 0
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                _refuse(name, block, exc, "utf-8", offset=lines)
            lines += block.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise not_text(name, "it is not UTF-8 text (its last character is cut)") from None
    raise not_text(name, "it is not UTF-8 text")
