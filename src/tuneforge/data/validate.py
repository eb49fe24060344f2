"""Validate a training file in one streaming pass and report every problem, not just the first.

`validate_file` is the contract other subsystems use (docs/internals.md): the trainer refuses a file whose
report is not `.ok`, the API turns `.openai_error()` into the job's `error`, and `tuneforge prepare`
prints the findings. Memory is bounded: one line at a time, a few bytes per example for statistics and
duplicate detection, and at most MAX_FINDINGS_PER_CODE stored findings per code.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.data.findings import ERROR, Finding, FindingCollector
from tuneforge.data.io import MAX_LINE_BYTES, DataFileError, iter_lines, read_head, sniff_binary
from tuneforge.data.limits import min_examples as _min_examples
from tuneforge.data.rows import CHAT, DPO, LEGACY, UNKNOWN, check_row
from tuneforge.data.stats import StatsAccumulator

_TRAINING_MIN = _min_examples("training", legacy=False)
MAX_TRACKED_BLANKS = 100_000

# The trainer's default `max_seq_length`: longer examples are truncated from the end, as OpenAI does.
DEFAULT_MAX_TOKENS = 2048
# Duplicate detection keeps an 8-byte digest per example; past this many examples it stops tracking new
# ones (about 100 MB), so a multi-GB file still validates in bounded memory.
MAX_TRACKED_EXAMPLES = 1_000_000
RECOMMENDED_EXAMPLES = 50
_FORMAT_NAMES = {
    CHAT: "chat (`messages`)",
    LEGACY: "legacy (`prompt`/`completion`)",
    DPO: "DPO (`input`/`preferred_output`)",
}
_UNEXPECTED = "Unexpected file format, expected either prompt/completion pairs or chat messages."


@dataclass
class ValidationReport:
    path: str
    format: str
    n_examples: int
    findings: list[Finding]
    stats: dict
    counts: dict[str, int] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)
    method: str = "supervised"
    first_error: Finding | None = None
    # Line numbers of blank lines (the first MAX_TRACKED_BLANKS), so an error can name both the line in
    # the file and the example index, which differ once blank lines precede it.
    blank_lines: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.first_error is None

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != ERROR]

    def to_json(self) -> dict:
        return {
            "file": self.path,
            "ok": self.ok,
            "format": self.format,
            "method": self.method,
            "n_examples": self.n_examples,
            "n_errors": sum(1 for f in self.findings if f.severity == ERROR)
            + sum(n for c, n in self.suppressed.items() if _is_error(c)),
            "findings": [f.to_dict() for f in self.findings],
            "counts": self.counts,
            "suppressed": self.suppressed,
            "stats": self.stats,
        }

    def openai_error(self, param: str = "training_file") -> tuple[str, str] | None:
        """OpenAI's job error `(code, message)` for this file, or None when it is valid.

        `param` is `training_file` or `validation_file`, which picks the code family as OpenAI does."""
        if self.ok:
            return None
        what = "validation" if param == "validation_file" else "training"
        bad = f"invalid_{what}_file"
        prefix = f"The job failed due to an invalid {what} file."
        first = self.first_error
        line_errors = [f for f in self.findings if f.severity == ERROR and f.code != "too_few_examples"]
        if line_errors:
            first = min(line_errors, key=lambda f: f.line or 0)
        assert first is not None
        if first.code == "too_few_examples":
            return "invalid_n_examples", (
                f"{what.capitalize()} file has {self.n_examples} example(s), but must "
                f"have at least {self.stats.get('min_examples', _TRAINING_MIN)} examples"
            )
        if first.code in ("empty_file", "binary_file", "json_array", "unknown_format", "mixed_formats"):
            return bad, f"{prefix} {_UNEXPECTED} {_where(first, self.blank_lines)}{first.message}"
        if first.code == "method_mismatch":
            return bad, f"{prefix} {first.message}"
        return bad, f"{prefix} Invalid file format. {_where(first, self.blank_lines)}{first.message}"


def _is_error(code: str) -> bool:
    from tuneforge.data.findings import CODES

    return CODES[code][0] == ERROR


def _where(f: Finding, blank_lines: list[int]) -> str:
    """ "Line 7 (example 6), message 2: ": the line in the file, then OpenAI's 1-based example index."""
    if f.line is None:
        return ""
    out = f"Line {f.line}"
    if len(blank_lines) < MAX_TRACKED_BLANKS:  # else the example index is unknown: the line alone
        out += f" (example {f.line - bisect.bisect_left(blank_lines, f.line)})"
    if f.field and f.field.startswith("messages["):
        out += f", message {int(f.field[9 : f.field.index(']')]) + 1}"
    return out + ": "


def _digest(row: dict) -> bytes:
    # Canonical form, so key order and spacing do not hide a duplicate.
    canon = json.dumps(row, sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(canon.encode("utf-8"), digest_size=8).digest()


def _parse_limit(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "the value is nested too deeply; flatten it."
    return "a number has too many digits; write it as a string or remove it."


def validate_file(
    path: str | Path,
    *,
    tokenizer=None,
    max_tokens: int | None = None,
    min_examples: int = _TRAINING_MIN,
    method: str = "supervised",
    base_model: str | None = None,
    n_epochs: int | None = None,
) -> ValidationReport:
    """Check every line of a JSONL training file. With a tokenizer, also count tokens with the model's chat
    template, flag examples over `max_tokens` (default: the trainer's 2048, capped at the model context) and
    estimate the training time."""
    path = Path(path)
    out = FindingCollector()
    stats = StatsAccumulator()
    if tokenizer is not None and max_tokens is None:
        context = getattr(tokenizer, "model_max_length", None) or DEFAULT_MAX_TOKENS
        max_tokens = min(DEFAULT_MAX_TOKENS, int(context)) if context < 10**8 else DEFAULT_MAX_TOKENS

    formats: Counter[str] = Counter()
    first_line_of: dict[str, int] = {}
    n_examples = 0
    seen: dict[bytes, int] = {}
    flags = {"crlf": None, "blank": 0}
    blank_lines: list[int] = []
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
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
    if not binary:
        for raw in iter_lines(path):
            lineno = raw.number
            if raw.crlf and flags["crlf"] is None:
                flags["crlf"] = lineno
            if raw.too_long:
                out.add(
                    "line_too_long",
                    f"the line is {raw.n_bytes:,} bytes, over the {MAX_LINE_BYTES:,}-byte "
                    "limit for one example; split or shorten it.",
                    lineno,
                )
                n_examples += 1
                continue
            if raw.text is None:
                out.add(
                    "invalid_utf8",
                    f"byte {raw.bad_utf8_at} of the line is not valid UTF-8; re-save the "
                    "file as UTF-8 (e.g. `iconv -f GBK -t UTF-8`).",
                    lineno,
                )
                n_examples += 1
                continue
            text = raw.text
            if not text.strip():
                flags["blank"] += 1
                if len(blank_lines) < MAX_TRACKED_BLANKS:
                    blank_lines.append(lineno)
                if flags["blank"] == 1:
                    out.add("blank_line", "blank line skipped (every blank line is skipped).", lineno)
                continue
            n_examples += 1
            if lineno == 1 and _looks_like_whole_json(path, text, out):
                n_examples = 0
                break
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                out.add("invalid_json", f"not valid JSON: {exc.msg} at column {exc.colno}.", lineno)
                continue
            except (ValueError, RecursionError) as exc:  # a huge integer, or nesting too deep to parse
                out.add("invalid_json", f"not valid JSON for fine-tuning: {_parse_limit(exc)}", lineno)
                continue
            if not isinstance(row, dict):
                out.add("not_an_object", f"expected a JSON object {{...}}, got {type(row).__name__}.", lineno)
                continue
            errors_before = out.n_errors

            def add(code: str, message: str, fld: str | None, _line: int = lineno) -> None:
                out.add(code, message, _line, fld)

            fmt = check_row(row, add, method)
            if fmt != UNKNOWN:
                formats[fmt] += 1
                first_line_of.setdefault(fmt, lineno)
            key = _digest(row)
            if key in seen:
                out.add(
                    "duplicate_example",
                    f"same example as line {seen[key]}; duplicates over-weight one "
                    "answer. `tuneforge prepare` can remove them.",
                    lineno,
                )
            elif len(seen) < MAX_TRACKED_EXAMPLES:
                seen[key] = lineno
            stats.add_row(row, fmt)
            if tokenizer is not None and out.n_errors == errors_before and fmt != UNKNOWN:
                _count_tokens(row, fmt, tokenizer, max_tokens, stats, out, lineno)
    if flags["crlf"]:
        out.add(
            "crlf_line_endings",
            "the file has Windows (CRLF) line endings; they are accepted, and `tuneforge prepare` writes LF.",
            flags["crlf"],
        )
    fmt = formats.most_common(1)[0][0] if formats else UNKNOWN
    for other, n in formats.items():
        if other != fmt:  # point at the minority: the lines the user most likely has to fix
            out.add(
                "mixed_formats",
                f"{n} line(s) are {_FORMAT_NAMES[other]} (first here) but the file is mostly "
                f"{_FORMAT_NAMES[fmt]} (first at line {first_line_of[fmt]}); a file must use one format.",
                first_line_of[other],
            )
    _file_level(out, path, fmt, n_examples, min_examples, method, binary)
    report_stats = stats.finish(n_examples, max_tokens, base_model, n_epochs)
    report_stats.update(
        {
            "min_examples": min_examples,
            "blank_lines": flags["blank"],
            "duplicates_tracked_up_to": MAX_TRACKED_EXAMPLES,
        }
    )
    return ValidationReport(
        str(path),
        fmt,
        n_examples,
        out.sorted(),
        report_stats,
        dict(out.counts),
        out.suppressed(),
        method,
        out.first_error,
        blank_lines,
    )


def _file_level(
    out: FindingCollector, path: Path, fmt: str, n: int, min_examples: int, method: str, binary: str | None
) -> None:
    if binary or out.counts.get("json_array"):
        return
    if n == 0:
        out.add("empty_file", f"{path.name} has no examples: write one JSON object per line.", None)
        return
    if n < min_examples:
        out.add(
            "too_few_examples",
            f"the file has {n} example(s); fine-tuning needs at least {min_examples}. Add more examples.",
            None,
        )
    elif n < RECOMMENDED_EXAMPLES:
        out.add(
            "few_examples",
            f"{n} examples; 50 to 100 well-chosen examples usually give a clear improvement.",
            None,
        )
    if method == "dpo" and fmt in (CHAT, LEGACY):
        kind = "fine-tune-chat" if fmt == CHAT else "fine-tune"
        out.add(
            "method_mismatch",
            f"Input file {path.name} is in the {kind} format, but the specified "
            f"fine-tuning job is not using 'supervised' as the training method "
            f"(provided method={method}).",
            None,
        )
    elif method == "supervised" and fmt == DPO:
        out.add(
            "method_mismatch",
            f"Input file {path.name} is in the preference (DPO) format, but the "
            "specified fine-tuning job is using 'supervised' as the training method. "
            "Use method=dpo.",
            None,
        )


def _looks_like_whole_json(path: Path, first: str, out: FindingCollector) -> bool:
    """A JSON array or a pretty-printed object instead of JSONL: one precise finding instead of thousands."""
    stripped = first.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
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
