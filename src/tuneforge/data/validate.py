"""Validate a training file in one streaming pass and report every problem, not just the first.

`validate_file` is the contract other subsystems use (docs/internals.md): the trainer refuses a file whose
report is not `.ok`, the API turns `.openai_error()` into the job's `error`, and `tuneforge prepare`
prints the findings. Memory is bounded: one line at a time, a few bytes per example for statistics and
duplicate detection, and at most MAX_FINDINGS_PER_CODE stored findings per code.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.data.findings import ERROR, Finding, FindingCollector
from tuneforge.data.io import DataFileError, iter_lines
from tuneforge.data.limits import min_examples as _min_examples
from tuneforge.data.rows import CHAT, DPO, LEGACY
from tuneforge.data.scan import (
    MAX_TRACKED_BLANKS,
    MAX_TRACKED_EXAMPLES,
    Scan,
    check_head,
    example_for_tokens,  # noqa: F401  (re-exported: part of this module's API)
    format_findings,
    scan_line,
)
from tuneforge.data.stats import StatsAccumulator

_TRAINING_MIN = _min_examples("training", legacy=False)

# The trainer's default `max_seq_length`: longer examples are truncated from the end, as OpenAI does.
DEFAULT_MAX_TOKENS = 2048
RECOMMENDED_EXAMPLES = 50
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
    if tokenizer is not None and max_tokens is None:
        context = getattr(tokenizer, "model_max_length", None) or DEFAULT_MAX_TOKENS
        max_tokens = min(DEFAULT_MAX_TOKENS, int(context)) if context < 10**8 else DEFAULT_MAX_TOKENS
    scan = Scan(FindingCollector(), StatsAccumulator(), tokenizer, max_tokens, method)
    out = scan.out
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
    binary = check_head(path, out)
    if not binary:
        for raw in iter_lines(path):
            if not scan_line(scan, path, raw):
                break
    fmt = format_findings(scan)
    _file_level(out, path, fmt, scan.n_examples, min_examples, method, binary)
    report_stats = scan.stats.finish(scan.n_examples, max_tokens, base_model, n_epochs)
    report_stats.update(
        {
            "min_examples": min_examples,
            "blank_lines": scan.n_blank,
            "duplicates_tracked_up_to": MAX_TRACKED_EXAMPLES,
        }
    )
    return ValidationReport(
        str(path),
        fmt,
        scan.n_examples,
        out.sorted(),
        report_stats,
        dict(out.counts),
        out.suppressed(),
        method,
        out.first_error,
        scan.blank_lines,
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


