"""Read JSONL files line by line with bounded memory, whatever the bytes on disk look like.

`iter_lines` never holds more than one line (capped at MAX_LINE_BYTES) in memory, so a 1 GB file or a
10 MB line costs the same memory as a small file. It reports what it sees about the raw bytes (BOM, CRLF,
binary content, bad UTF-8, over-long lines) as `RawLine` flags; turning those into findings is the
validator's job.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# A chat example at the training context (a few thousand tokens) is tens of KB; 4 MiB leaves room for
# big tool schemas while keeping memory bounded.
MAX_LINE_BYTES = 4 * 1024 * 1024
_CHUNK = 1024 * 1024
BOM = b"\xef\xbb\xbf"

# Leading bytes of formats people upload by mistake.
_MAGIC = {
    b"PK\x03\x04": "a zip archive (an .xlsx workbook is one); convert it with `tuneforge convert`",
    b"\x1f\x8b": "gzip-compressed; decompress it first (`gunzip`)",
    b"%PDF": "a PDF document",
    b"\xff\xfe": "UTF-16 text; save it as UTF-8",
    b"\xfe\xff": "UTF-16 text; save it as UTF-8",
    b"SQLite format 3": "an SQLite database",
}


class DataFileError(ValueError):
    """A data file cannot be read at all; the message says which file, where and what to do."""


@dataclass
class RawLine:
    number: int  # 1-based
    text: str | None  # decoded line without its line ending; None when it could not be decoded/kept
    n_bytes: int
    crlf: bool = False
    too_long: bool = False
    bad_utf8_at: int | None = None  # byte offset of the first undecodable byte


def sniff_binary(head: bytes) -> str | None:
    """Why `head` (the first bytes of a file) is not JSONL text, or None if it looks like text."""
    for magic, why in _MAGIC.items():
        if head.startswith(magic):
            return why
    if b"\x00" in head:
        return "it contains NUL bytes, so it is not text"
    return None


def read_head(path: Path, n: int = 8192) -> bytes:
    with path.open("rb") as fh:
        return fh.read(n)


def iter_lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[RawLine]:
    """Every line of `path` (BOM stripped, CR/LF removed), one at a time."""
    with path.open("rb") as fh:
        number = 0
        first = True
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if first and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            first = False
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                # Skip the rest of the over-long line in chunks, counting its size.
                size = len(raw)
                while True:
                    more = fh.readline(_CHUNK)
                    size += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                yield RawLine(number, None, size, too_long=True)
                continue
            n_bytes = len(raw)
            crlf = raw.endswith(b"\r\n")
            raw = raw.rstrip(b"\r\n")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawLine(number, None, n_bytes, crlf=crlf, bad_utf8_at=exc.start)
                continue
            yield RawLine(number, text, n_bytes, crlf=crlf)


def read_examples(path: str | Path) -> list[dict]:
    """The parsed rows of a valid JSONL file (what the trainer trains on); blank lines are skipped.

    Call `validate_file` first: this raises DataFileError naming the first line it cannot parse."""
    path = Path(path)
    rows: list[dict] = []
    for line in iter_lines(path):
        if line.text is None:
            raise DataFileError(
                f"{path}, line {line.number}: cannot be read (over-long or not UTF-8). "
                f"Run `tuneforge prepare -f {path}` for details."
            )
        if not line.text.strip():
            continue
        try:
            row = json.loads(line.text)
        except json.JSONDecodeError as exc:
            raise DataFileError(
                f"{path}, line {line.number}: invalid JSON ({exc.msg}, column {exc.colno}). "
                f"Run `tuneforge prepare -f {path}` for details."
            ) from None
        except (ValueError, RecursionError):  # a huge integer, or nesting too deep to parse
            raise DataFileError(
                f"{path}, line {line.number}: a number too long or nesting too deep to read. "
                f"Run `tuneforge prepare -f {path}` for details."
            ) from None
        if not isinstance(row, dict):
            raise DataFileError(f"{path}, line {line.number}: expected a JSON object.")
        rows.append(row)
    return rows


def write_jsonl(path: str | Path, rows) -> None:
    """Write rows as UTF-8 JSONL with LF endings; non-Latin text stays as it is (no \\u escapes)."""
    with Path(path).open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
