"""Validation findings: one stable code per kind of problem, and a bounded collector.

The codes are part of the public surface (the API returns them, users grep for them); never rename one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

ERROR = "error"
WARNING = "warning"

# code -> (severity, one-line description for docs and `--json` consumers)
CODES: dict[str, tuple[str, str]] = {
    # the file as a whole
    "empty_file": (ERROR, "the file has no examples"),
    "binary_file": (ERROR, "the file is binary (NUL bytes, a zip/xlsx/gzip archive), not JSONL text"),
    "json_array": (
        ERROR,
        "the file is one JSON array (or one pretty-printed object), not one object per line",
    ),
    "utf8_bom": (WARNING, "the file starts with a UTF-8 byte-order mark; it is ignored"),
    "crlf_line_endings": (WARNING, "Windows (CRLF) line endings; they are accepted"),
    "blank_line": (WARNING, "blank lines are skipped"),
    "invalid_utf8": (ERROR, "a line has bytes that are not UTF-8"),
    "line_too_long": (ERROR, "a line is longer than the per-line limit"),
    "too_few_examples": (ERROR, "fewer examples than the fine-tuning API requires"),
    "few_examples": (WARNING, "fewer examples than recommended for a clear improvement"),
    "mixed_formats": (ERROR, "lines of different formats (chat, legacy prompt/completion, DPO) in one file"),
    "method_mismatch": (ERROR, "the file's format does not fit the training method"),
    # one line
    "invalid_json": (ERROR, "the line is not valid JSON"),
    "not_an_object": (ERROR, "the line is JSON but not an object"),
    "unknown_format": (ERROR, "the object is neither chat, prompt/completion nor DPO"),
    "unknown_key": (WARNING, "a top-level key tuneforge does not use; it is ignored"),
    "wrong_type": (ERROR, "a field has the wrong JSON type"),
    "wrong_case_key": (ERROR, "a key differs only in case from the expected one (e.g. `Prompt`)"),
    "missing_field": (ERROR, "a required field is missing"),
    # chat rows
    "missing_messages": (ERROR, "`messages` is missing or empty"),
    "missing_role": (ERROR, "a message has no `role`"),
    "unknown_role": (ERROR, "a message has a role other than system/developer/user/assistant/tool/function"),
    "unknown_message_key": (ERROR, "a message has a key that is not part of the chat format"),
    "missing_content": (ERROR, "a message has no `content` (and no tool call)"),
    "empty_content": (ERROR, "a message's content is empty or only whitespace"),
    "unsupported_content": (ERROR, "image, audio or file content parts; the base models here read text only"),
    "invalid_weight": (ERROR, "`weight` is not 0 or 1, or is on a non-assistant message"),
    "missing_assistant": (ERROR, "the example has no assistant message to learn from"),
    "no_trained_messages": (ERROR, "every assistant message has `weight: 0`, so nothing is trained"),
    "trailing_messages": (WARNING, "messages after the last assistant turn are never trained"),
    "invalid_tool_call": (ERROR, "a malformed tool call, tool reply or `tools` list"),
    # legacy rows
    "empty_completion": (ERROR, "the completion is empty"),
    # DPO rows
    "invalid_preference": (ERROR, "a DPO output is not a list of exactly one assistant message"),
    "legacy_dpo_names": (WARNING, "`preferred_completion` names from the 2025 spec; accepted"),
    # needs the whole file or the tokenizer
    "duplicate_example": (WARNING, "the same example appears earlier in the file"),
    "too_long": (WARNING, "the example has more tokens than the training context and will be truncated"),
}

# Stored findings per code; the rest are only counted, so a 1 GB file of bad lines keeps bounded memory.
MAX_FINDINGS_PER_CODE = 200


@dataclass
class Finding:
    line: int | None  # 1-based line number in the file; None for file-level findings
    field: str | None  # path inside the row, e.g. "messages[2].content"
    code: str
    severity: str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def where(self) -> str:
        parts = [f"line {self.line}" if self.line else "file"]
        if self.field:
            parts.append(self.field)
        return ", ".join(parts)


class FindingCollector:
    """Collects findings, keeping at most MAX_FINDINGS_PER_CODE of each code but counting them all."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.counts: Counter[str] = Counter()
        self.first_error: Finding | None = None
        self.n_errors = 0  # kept incrementally: the validator reads it once per line

    def add(
        self,
        code: str,
        message: str,
        line: int | None = None,
        field: str | None = None,
        severity: str | None = None,
    ) -> None:
        severity = severity or CODES[code][0]
        self.counts[code] += 1
        self.n_errors += severity == ERROR
        finding = Finding(line, field, code, severity, message)
        if severity == ERROR and (self.first_error is None or _earlier(finding, self.first_error)):
            self.first_error = finding
        if self.counts[code] <= MAX_FINDINGS_PER_CODE:
            self.findings.append(finding)

    @property
    def n_warnings(self) -> int:
        return sum(n for code, n in self.counts.items() if CODES[code][0] == WARNING)

    def suppressed(self) -> dict[str, int]:
        return {c: n - MAX_FINDINGS_PER_CODE for c, n in self.counts.items() if n > MAX_FINDINGS_PER_CODE}

    def sorted(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (f.line or 0, f.severity != ERROR))


def _earlier(a: Finding, b: Finding) -> bool:
    return (a.line or 0) < (b.line or 0)
