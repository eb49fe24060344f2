"""One streaming pass over a JSONL file's lines: a finding for every bad line, stats for the rest.

validate.py's `validate_file` runs it and turns what it gathered into a ValidationReport.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.data.findings import FindingCollector
from tuneforge.data.io import MAX_LINE_BYTES, read_head, sniff_binary
from tuneforge.data.rows import CHAT, DPO, LEGACY, UNKNOWN, check_row
from tuneforge.data.stats import StatsAccumulator

# Duplicate detection keeps an 8-byte digest per example; past this many examples it stops tracking new
# ones (about 100 MB), so a multi-GB file still validates in bounded memory.
MAX_TRACKED_EXAMPLES = 1_000_000
# Blank lines remembered so an error can name the example index as well as the line.
MAX_TRACKED_BLANKS = 100_000
_FORMAT_NAMES = {
    CHAT: "chat (`messages`)",
    LEGACY: "legacy (`prompt`/`completion`)",
    DPO: "DPO (`input`/`preferred_output`)",
}


@dataclass
class Scan:
    """What one pass over the lines gathers (validate_file's state)."""

    out: FindingCollector
    stats: StatsAccumulator
    tokenizer: object
    max_tokens: int | None
    method: str
    formats: Counter = field(default_factory=Counter)
    first_line_of: dict[str, int] = field(default_factory=dict)
    n_examples: int = 0
    seen: dict[bytes, int] = field(default_factory=dict)
    crlf: int | None = None
    n_blank: int = 0
    blank_lines: list[int] = field(default_factory=list)


def check_head(path: Path, out: FindingCollector) -> str | None:
    """A binary file (why, or None) and a byte-order mark, from the first bytes."""
    head = read_head(path)
    binary = sniff_binary(head)
    if binary:
        out.add("binary_file", f"{path.name} is not a JSONL text file: {binary}.", None)
    elif head.startswith(b"\xef\xbb\xbf"):
        out.add(
            "utf8_bom",
            "the file starts with a UTF-8 byte-order mark (BOM); it is ignored. "
            "`tuneforge prepare` writes the file without it.",
            1,
        )
    return binary


def scan_line(scan: Scan, path: Path, raw) -> bool:
    """Check one line; False when the scan should stop (the file is not JSONL at all)."""
    out, lineno = scan.out, raw.number
    if raw.crlf and scan.crlf is None:
        scan.crlf = lineno
    if raw.too_long:
        out.add(
            "line_too_long",
            f"the line is {raw.n_bytes:,} bytes, over the {MAX_LINE_BYTES:,}-byte "
            "limit for one example; split or shorten it.",
            lineno,
        )
        scan.n_examples += 1
        return True
    if raw.text is None:
        out.add(
            "invalid_utf8",
            f"byte {raw.bad_utf8_at} of the line is not valid UTF-8; re-save the "
            "file as UTF-8 (e.g. `iconv -f GBK -t UTF-8`).",
            lineno,
        )
        scan.n_examples += 1
        return True
    text = raw.text
    if not text.strip():
        scan.n_blank += 1
        if len(scan.blank_lines) < MAX_TRACKED_BLANKS:
            scan.blank_lines.append(lineno)
        if scan.n_blank == 1:
            out.add("blank_line", "blank line skipped (every blank line is skipped).", lineno)
        return True
    scan.n_examples += 1
    if lineno == 1 and _looks_like_whole_json(path, text, out):
        scan.n_examples = 0
        return False
    row = _parse(text, out, lineno)
    if row is not None:
        _check_object(scan, row, lineno)
    return True


def _parse(text: str, out: FindingCollector, lineno: int) -> dict | None:
    """The line's JSON object, or None after a finding that says why not."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        out.add("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}.", lineno)
        return None
    except (ValueError, RecursionError) as exc:  # a huge integer, or nesting too deep to parse
        out.add("invalid_json", f"not valid JSON for fine-tuning: {_parse_limit(exc)}", lineno)
        return None
    if not isinstance(row, dict):
        out.add("not_an_object", f"expected a JSON object {{...}}, got {type(row).__name__}.", lineno)
        return None
    return row


def _check_object(scan: Scan, row: dict, lineno: int) -> None:
    out = scan.out
    errors_before = out.n_errors

    def add(code: str, message: str, fld: str | None) -> None:
        out.add(code, message, lineno, fld)

    fmt = check_row(row, add, scan.method)
    if fmt != UNKNOWN:
        scan.formats[fmt] += 1
        scan.first_line_of.setdefault(fmt, lineno)
    key = _digest(row)
    if key in scan.seen:
        out.add(
            "duplicate_example",
            f"same example as line {scan.seen[key]}; duplicates over-weight one "
            "answer. `tuneforge prepare` can remove them.",
            lineno,
        )
    elif len(scan.seen) < MAX_TRACKED_EXAMPLES:
        scan.seen[key] = lineno
    scan.stats.add_row(row, fmt)
    if scan.tokenizer is not None and out.n_errors == errors_before and fmt != UNKNOWN:
        _count_tokens(row, fmt, scan.tokenizer, scan.max_tokens, scan.stats, out, lineno)


def format_findings(scan: Scan) -> str:
    """File-wide findings from the pass (CRLF, mixed formats); returns the file's format."""
    out = scan.out
    if scan.crlf:
        out.add(
            "crlf_line_endings",
            "the file has Windows (CRLF) line endings; they are accepted, and `tuneforge prepare` writes LF.",
            scan.crlf,
        )
    fmt = scan.formats.most_common(1)[0][0] if scan.formats else UNKNOWN
    for other, n in scan.formats.items():
        if other != fmt:  # point at the minority: the lines the user most likely has to fix
            out.add(
                "mixed_formats",
                f"{n} line(s) are {_FORMAT_NAMES[other]} (first here) but the file is mostly "
                f"{_FORMAT_NAMES[fmt]} (first at line {scan.first_line_of[fmt]}); "
                "a file must use one format.",
                scan.first_line_of[other],
            )
    return fmt


def _parse_limit(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the value is nested too deeply; flatten it."
    return "a number has too many digits; write it as a string or remove it."


def _digest(row: dict) -> bytes:
    # Canonical form, so key order and spacing do not hide a duplicate.
    canon = json.dumps(row, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(canon.encode("utf-8"), digest_size=8).digest()


def _looks_like_whole_json(path: Path, first: str, out: FindingCollector) -> bool:
    """A JSON array or a pretty-printed object instead of JSONL: one precise finding instead of thousands."""
    stripped = first.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except (ValueError, RecursionError):  # not JSON, a huge integer, or nested too deep
            value = None
        if value is None or isinstance(value, list):
            n = f" of {len(value)} items" if isinstance(value, list) else ""
            out.add(
                "json_array",
                f"{path.name} is a JSON array{n}, not JSONL (one JSON object per line). "
                f"Rewrite it: `tuneforge prepare -f {path.name}`.",
                1,
            )
            return True
    if stripped == "{":
        out.add(
            "json_array",
            f"{path.name} holds pretty-printed JSON spread over several lines; JSONL needs "
            f"each example on one line. Rewrite it: `tuneforge prepare -f {path.name}`.",
            1,
        )
        return True
    return False


def example_for_tokens(row: dict, fmt: str) -> dict:
    """The conversation the trainer would encode; for DPO rows, the prompt plus the preferred answer."""
    if fmt != DPO:
        return row
    preferred = row.get("preferred_output") or row.get("preferred_completion") or []
    return {
        "messages": list(row["input"].get("messages", [])) + list(preferred),
        "tools": row["input"].get("tools"),
    }


def _count_tokens(
    row: dict,
    fmt: str,
    tokenizer,
    max_tokens: int,
    stats: StatsAccumulator,
    out: FindingCollector,
    lineno: int,
) -> None:
    from tuneforge.data.encode import IGNORE, encode_example

    try:
        enc = encode_example(example_for_tokens(row, fmt), tokenizer, 10**9)
    except Exception as exc:  # a template that cannot render this row is a finding, not a crash
        out.add("wrong_type", f"the model's chat template cannot render this example: {exc}", lineno)
        return
    n = len(enc.input_ids)
    kept_trained = sum(1 for label in enc.labels[1:max_tokens] if label != IGNORE)
    stats.add_tokens(n, kept_trained, max_tokens)
    if n > max_tokens:
        lost = "" if kept_trained else " None of its answer survives: shorten it or remove it."
        out.add(
            "too_long",
            f"{n:,} tokens, over the {max_tokens:,}-token training context; the last "
            f"{n - max_tokens:,} tokens will be cut off.{lost}",
            lineno,
        )
