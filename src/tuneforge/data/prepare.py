"""`tuneforge prepare`: OpenAI's `prepare_data` flow for legacy and chat files.

Analyse (print what is wrong, apply the necessary fixes), then offer each recommended fix ([Y/n], `-q`
accepts all), write `NAME_prepared.jsonl` (or `_train`/`_valid` on a split) and print the next command.
Output goes through `out`, questions through `ask`, so the CLI, the tests and the API can drive it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tuneforge.data import chat_prepare, legacy_prepare
from tuneforge.data.convert import ConvertOptions, convert_table, legacy_to_chat
from tuneforge.data.io import DataFileError, read_head, write_jsonl
from tuneforge.data.language import base_advice, describe_mix
from tuneforge.data.readers import EXTENSIONS, kind_of, read_table
from tuneforge.data.table import Remediation, Table, line_list
from tuneforge.data.validate import DEFAULT_MAX_TOKENS, ValidationReport, validate_file

Out = Callable[[str], None]
Ask = Callable[[str], bool]


class PrepareAborted(Exception):
    """A validator found an error no fix can repair (message already printed)."""


@dataclass
class PrepareOptions:
    quiet: bool = False  # -q: accept every recommendation
    split: float | None = None  # fraction held out for validation; None: legacy rule (classification only)
    input_format: str | None = None  # "chat" | "legacy": override auto-detection
    to_chat: bool = False
    system: str | None = None  # system prompt for --to-chat
    min_examples: int = 10
    max_tokens: int = DEFAULT_MAX_TOKENS
    base_model: str | None = None


@dataclass
class PrepareResult:
    format: str
    outputs: list[Path] = field(default_factory=list)
    n_examples: int = 0
    next_command: str | None = None
    report: ValidationReport | None = None  # of the file to train on (the output, or the input if unchanged)


def _detect(table: Table) -> str:
    keys = {str(k).lower() for k in table.columns()}
    if "messages" in keys:
        return "chat"
    if "input" in keys and ("preferred_output" in keys or "preferred_completion" in keys):
        return "dpo"
    return "legacy"


def _as_text(table: Table) -> Table:
    """prepare_data reads every cell as a string and fills missing ones with ""."""
    return table.map(
        lambda r: {k: "" if v is None else v if isinstance(v, str) else str(v) for k, v in r.items()}
    )


def out_names(path: Path, split: bool) -> list[Path]:
    """`NAME_prepared.jsonl` (`_train`/`_valid` on a split), with ` (1)`, ` (2)`... if taken."""
    suffixes = ["_train", "_valid"] if split else [""]
    i = 0
    while True:
        index = f" ({i})" if i else ""
        names = [path.with_name(f"{path.stem}_prepared{s}{index}.jsonl") for s in suffixes]
        if not any(n.exists() for n in names):
            return names
        i += 1


def _run(table: Table, validators: list, out: Out, ask: Ask, quiet: bool) -> tuple[Table, bool]:
    """OpenAI's apply_validators: immediate messages and necessary fixes, then the recommended ones."""
    remediations: list[Remediation] = []
    necessary = False
    for validator in validators:
        rem = validator(table)
        if rem is None:
            continue
        remediations.append(rem)
        if rem.immediate_msg:
            out(rem.immediate_msg)
        if rem.error_msg:
            out(f"\n\nERROR in {rem.name} validator: {rem.error_msg}\n\nAborting...")
            raise PrepareAborted(rem.error_msg)
        if rem.necessary_fn:
            table = rem.necessary_fn(table)
            necessary = True
    applied = False
    if any(r.optional_msg or r.necessary_msg for r in remediations):
        out("\n\nBased on the analysis we will perform the following actions:")
        for rem in remediations:
            if rem.optional_msg and accept(f"- [Recommended] {rem.optional_msg} [Y/n]: ", out, ask, quiet):
                table = rem.optional_fn(table)
                applied = True
            if rem.necessary_msg:
                out(f"- [Necessary] {rem.necessary_msg}")
    else:
        out("\n\nNo remediations found.")
    return table, necessary or applied


def accept(question: str, out: Out, ask: Ask, quiet: bool) -> bool:
    if quiet:
        out(question + "Y")
        return True
    return ask(question)


def _token_counts(table: Table, tokenizer) -> dict[int, int]:
    from tuneforge.data.encode import encode_example

    counts = {}
    for row, line in zip(table.rows, table.lines, strict=True):
        try:
            counts[line] = len(encode_example(row, tokenizer, 10**9).input_ids)
        except Exception:  # rows the template cannot render are reported by the validators
            continue
    return counts


def prepare_file(
    path: str | Path, opts: PrepareOptions, out: Out = print, ask: Ask | None = None, tokenizer=None
) -> PrepareResult:
    path = Path(path)
    ask = ask or _stdin_ask
    if not path.is_file():
        raise DataFileError(f"{path}: no such file.")
    ext = kind_of(path)
    out("Analyzing...")
    pre = _input_checks(path, ext, out)
    table, bad = read_table(path)
    if bad:
        pre.append(_unreadable_lines(bad))
    fmt = opts.input_format or _detect(table)
    if fmt == "dpo":
        out(
            "\n- This is a preference (DPO) file; prepare only validates it (findings above). Train it with "
            "method=dpo."
        )
        return PrepareResult("dpo", n_examples=len(table))
    table, validators, fmt = _validators_for(path, ext, table, fmt, pre, opts, out, tokenizer)
    out(f"\n- Based on your file extension, your file is formatted as a {EXTENSIONS[ext]} file")
    table, changed = _run(table, validators, out, ask, opts.quiet)
    return _write(path, table, fmt, changed, opts, out, ask, tokenizer)


def _input_checks(path: Path, ext: str, out: Out) -> list:
    """Validate a JSONL input (printing its findings) and return the file-level fixes it needs."""
    if ext != ".jsonl":
        return [
            lambda t: Remediation(
                "read_any_format",
                necessary_msg=f"Your format `{EXTENSIONS[ext]}` will be converted to `JSONL`",
                necessary_fn=lambda x: x,
            )
        ]
    pre: list = []
    report = validate_file(path, min_examples=0)
    if report.counts.get("binary_file") or report.counts.get("empty_file"):
        first = report.first_error
        raise DataFileError(f"{path}: {first.message if first else 'unreadable'}")
    _print_findings(report, out)
    head = read_head(path, 4)
    if head.startswith(b"\xef\xbb\xbf") or report.counts.get("crlf_line_endings"):
        pre.append(
            lambda t: Remediation(
                "line_endings",
                "\n- The file has a byte-order mark or CRLF line endings",
                "Write UTF-8 without a BOM, with LF line endings",
                lambda x: x,
            )
        )
    if report.counts.get("json_array"):
        pre.append(
            lambda t: Remediation(
                "json_array", necessary_msg="Rewrite the JSON array as JSONL (one object per line)",
                necessary_fn=lambda x: x,
            )
        )
    return pre


def _unreadable_lines(bad: list[tuple[int, str]]):
    bad_lines = {n for n, _ in bad}
    return lambda t: Remediation(
        "unreadable_lines",
        "\n- "
        + "".join(f"line {n}: {why}; " for n, why in bad[:5]).rstrip("; ")
        + (f" ... ({len(bad)} in all)" if len(bad) > 5 else ""),
        f"Remove {len(bad)} lines that are not JSON objects (lines {line_list(sorted(bad_lines))})",
        lambda x: x,
    )


def _validators_for(
    path: Path, ext: str, table: Table, fmt: str, pre: list, opts: PrepareOptions, out: Out, tokenizer
) -> tuple[Table, list, str]:
    """The table to fix (converted to chat where asked), its validators and its output format."""
    lower_columns = {str(c).lower() for c in table.columns()}
    is_pairs = {"prompt", "completion"} <= lower_columns
    if fmt == "legacy" and not opts.to_chat:
        if not is_pairs:
            out(f"\n- The columns are {sorted(lower_columns)}. To use question/answer columns, run "
                f"`tuneforge prepare -f {path} --to-chat` or `tuneforge convert {path} --user-column COL "
                "--assistant-column COL`")
        return _as_text(table), pre + legacy_prepare.validators(), fmt
    if fmt == "legacy" and not is_pairs:
        rows, _how = convert_table(_as_text(table), ConvertOptions(system=opts.system))
        table = Table(rows, list(table.lines))
    elif fmt == "legacy":
        table = _as_text(table)
        table = Table(legacy_to_chat(table, opts.system), list(table.lines))
        pre = pre + [
            lambda t: Remediation(
                "to_chat",
                necessary_msg="Convert prompt/completion pairs to chat "
                "messages (separator, leading space and stop sequence removed)",
                necessary_fn=lambda x: x,
            )
        ]
    elif ext != ".jsonl" and "messages" not in table.columns():
        rows, _how = convert_table(table, ConvertOptions(system=opts.system))
        table = Table(rows, list(range(1, len(rows) + 1)))
    counts = _token_counts(table, tokenizer) if tokenizer is not None else None
    eos = getattr(tokenizer, "eos_token", None) if tokenizer is not None else None
    return table, pre + chat_prepare.validators(opts.min_examples, counts, opts.max_tokens, eos), "chat"


def _write(
    path: Path, table: Table, fmt: str, changed: bool, opts: PrepareOptions, out: Out, ask: Ask, tokenizer
) -> PrepareResult:
    task = legacy_prepare.infer_task_type(table) if fmt == "legacy" else "chat"
    split = opts.split is not None and opts.split > 0
    if not split and opts.split is None and task == "classification":
        split = accept(
            "- [Recommended] Would you like to split into training and validation set? [Y/n]: ",
            out,
            ask,
            opts.quiet,
        )
    result = PrepareResult(fmt, n_examples=len(table))
    if not changed and not split:
        files = [path]
        out("\nYou can use your file for fine-tuning:")
    elif accept("\n\nYour data will be written to a new JSONL file. Proceed [Y/n]: ", out, ask, opts.quiet):
        files = out_names(path, split)
        if split:
            train, valid = split_rows(table.rows, opts.split)
            write_jsonl(files[0], train)
            write_jsonl(files[1], valid)
        else:
            write_jsonl(files[0], table.rows)
        result.outputs = files
        out(
            f"\nWrote modified file{'s' if split else ''} to `{'` and `'.join(str(f) for f in files)}`\n"
            "Feel free to take a look!\n\nNow use that file when fine-tuning:"
        )
    else:
        out("Aborting... did not write the file")
        return result
    result.next_command = next_command(files, fmt, table, split)
    out(f"> {result.next_command}")
    if fmt == "legacy":
        out(_legacy_reminder(table))
    report = validate_file(
        files[0],
        tokenizer=tokenizer,
        # The legacy /v1/fine-tunes API had no minimum (seed 003 trains on two rows).
        min_examples=opts.min_examples if fmt == "chat" else 1,
        max_tokens=opts.max_tokens if tokenizer is not None else None,
        base_model=opts.base_model,
    )
    result.report = report
    out(summary_lines(report))
    if fmt == "legacy" and len(table) < opts.min_examples:
        out(f"Note: /v1/fine_tuning/jobs needs at least {opts.min_examples} examples; the legacy "
            "`openai api fine_tunes.create` (/v1/fine-tunes) accepts fewer.")
    return result


def split_rows(rows: list[dict], fraction: float | None) -> tuple[list[dict], list[dict]]:
    """Seeded split. With no fraction, the legacy rule: at most 1000 or 20% held out."""
    n = len(rows)
    n_train = max(n - 1000, int(n * 0.8)) if fraction is None else n - max(1, round(n * fraction))
    order = list(range(n))
    random.Random(42).shuffle(order)
    keep = set(order[:n_train])
    return [r for i, r in enumerate(rows) if i in keep], [r for i, r in enumerate(rows) if i not in keep]


def next_command(files: list[Path], fmt: str, table: Table, split: bool) -> str:
    valid = f' -v "{files[1]}"' if split and len(files) > 1 else ""
    if fmt == "legacy":
        extra = (
            legacy_prepare.classification_params(table)
            if split and legacy_prepare.infer_task_type(table) == "classification"
            else ""
        )
        return f'openai api fine_tunes.create -t "{files[0]}"{valid}{extra}'
    return f'tuneforge jobs create -t "{files[0]}"{valid} -m smollm2-135m-instruct'


def _legacy_reminder(table: Table) -> str:
    from tuneforge.data.table import common_xfix

    sep = legacy_prepare.show(common_xfix(table.column("prompt"), suffix=True))
    stop = legacy_prepare.show(common_xfix(table.column("completion"), suffix=True))
    text = ""
    if sep:
        text += (
            f"\nAfter you've fine-tuned a model, remember that your prompt has to end with the indicator "
            f"string `{sep}` for the model to start generating completions, rather than continuing with "
            "the prompt."
        )
    if stop:
        text += (
            f' Make sure to include `stop=["{stop}"]` so that the generated texts ends at the expected place.'
        )
    return text.lstrip(" ")


def language_line(languages: dict[str, int]) -> str:
    """The language mix of the trained answers, and the base to pick when most of them are not English."""
    text = f"Language of the trained answers: {describe_mix(Counter(languages))}."
    advice = base_advice(languages)
    return f"{text} {advice}" if advice else text


def summary_lines(report: ValidationReport) -> str:
    from tuneforge.data.throughput import format_duration

    s = report.stats
    lines = [
        f"\n{report.n_examples} examples ({report.format}); "
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) remain."
    ]
    if s.get("tokens_per_example"):
        t = s["tokens_per_example"]
        lines.append(
            f"Tokens per example: min {t['min']}, median {t['median']}, p95 {t['p95']}, max {t['max']}; "
            f"trained tokens per epoch {s['trained_tokens_per_epoch']:,}; "
            f"{s['truncated_examples']} example(s) truncated at {s['max_tokens']} tokens."
        )
        lines.append(
            f"Training on this machine: about {format_duration(s['estimated_training_seconds'])} for "
            f"{s['n_epochs']} epochs ({s['trained_tokens']:,} trained tokens)."
        )
    if s.get("languages"):
        lines.append(language_line(s["languages"]))
    return "\n".join(lines)


def _print_findings(report: ValidationReport, out: Out, limit: int = 20) -> None:
    shown = [f for f in report.findings if f.code not in ("few_examples",)][:limit]
    for f in shown:
        out(f"- {f.severity} {f.code} ({f.where()}): {f.message}")
    hidden = sum(report.counts.values()) - len(shown)
    if hidden > 0:
        out(f"  ... {hidden} more finding(s); `tuneforge prepare --check` lists them all")


def _stdin_ask(question: str) -> bool:
    try:
        return input(question).strip().lower() != "n"
    except EOFError:  # no terminal: take the default, as `prepare_data` does with `-q`
        return True
