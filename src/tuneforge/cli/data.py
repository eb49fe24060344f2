"""`tuneforge prepare` (validate and fix a dataset, like `openai tools fine_tunes.prepare_data`) and
`tuneforge convert` (any dataset people have, into chat JSONL)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from tuneforge.cli.errors import fail, user_error
from tuneforge.data.convert import SOURCES, ConvertOptions, convert_file
from tuneforge.data.io import DataFileError, read_examples, write_jsonl
from tuneforge.data.prepare import PrepareAborted, PrepareOptions, prepare_file, summary_lines
from tuneforge.data.validate import DEFAULT_MAX_TOKENS, validate_file

user_error(DataFileError)
console = Console(highlight=False, soft_wrap=True)
_OPEN, _CLOSE = "\x01", "\x02"


def _tokenizer(model: str | None, wanted: bool):
    if not wanted:
        return None
    from tuneforge.models import load_tokenizer
    from tuneforge.settings import get_settings

    return load_tokenizer(model or get_settings().default_base_model)


def _print(text: str) -> None:
    console.print(text, markup=False)


def prepare(
    file: Path = typer.Option(
        ..., "-f", "--file", help="The dataset: .jsonl, .json, .csv, .tsv, .xlsx or .txt."
    ),
    quiet: bool = typer.Option(False, "-q", "--quiet", help="Accept every recommendation without asking."),
    split: float | None = typer.Option(
        None, "--split", min=0.0, max=0.5, help="Hold out this fraction as a validation file (e.g. 0.1)."
    ),
    fmt: str | None = typer.Option(
        None,
        "--format",
        help="Treat the input as `chat` or `legacy` (prompt/completion) instead of detecting it.",
    ),
    to_chat: bool = typer.Option(
        False, "--to-chat", help="Write chat messages, converting prompt/completion."
    ),
    system: str | None = typer.Option(None, "--system", help="System prompt for rows converted to chat."),
    show: int = typer.Option(
        0,
        "--show",
        min=0,
        help="Render the first N examples exactly as the trainer tokenizes them, trained tokens marked.",
    ),
    check: bool = typer.Option(False, "--check", help="Only validate: list every finding, change nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --check: print the report as JSON."),
    model: str | None = typer.Option(
        None,
        "-m",
        "--model",
        help="Base model whose tokenizer and chat template count the tokens (default: the default base).",
    ),
    max_tokens: int = typer.Option(DEFAULT_MAX_TOKENS, "--max-tokens", help="Training context in tokens."),
    no_tokens: bool = typer.Option(
        False, "--no-tokens", help="Skip token counting (faster; no time estimate)."
    ),
) -> None:
    """Validate and fix a fine-tuning dataset, the way `openai tools fine_tunes.prepare_data` did."""
    if fmt not in (None, "chat", "legacy"):
        fail(f"--format must be `chat` or `legacy`, not `{fmt}`.")
    if not file.is_file():
        fail(f"{file}: no such file.")
    tokenizer = _tokenizer(model, not no_tokens)
    if check:
        _check(file, tokenizer, max_tokens, model, as_json)
        return
    opts = PrepareOptions(
        quiet=quiet,
        split=split,
        input_format=fmt,
        to_chat=to_chat,
        system=system,
        max_tokens=max_tokens,
        base_model=model,
    )
    try:
        result = prepare_file(file, opts, out=_print, tokenizer=tokenizer)
    except PrepareAborted:
        raise typer.Exit(1) from None
    if show:
        target = result.outputs[0] if result.outputs else file
        show_examples(target, tokenizer or _tokenizer(model, True), show, max_tokens)


def _check(file: Path, tokenizer, max_tokens: int, model: str | None, as_json: bool) -> None:
    report = validate_file(
        file, tokenizer=tokenizer, max_tokens=max_tokens if tokenizer else None, base_model=model
    )
    if as_json:
        print(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for f in report.findings:
            style = "bold red" if f.severity == "error" else "yellow"
            console.print(
                Text.assemble(
                    (f"{f.severity:7} ", style), (f"{f.code:20} ", "bold"), f"{file}:{f.where()}: {f.message}"
                )
            )
        for code, n in report.suppressed.items():
            console.print(f"... and {n} more `{code}` finding(s)")
        _print(summary_lines(report))
        if not report.ok:
            code, message = report.openai_error()
            _print(f"\nOpenAI would fail the job with `{code}`: {message}")
    if not report.ok:
        raise typer.Exit(1)


def show_examples(path: Path, tokenizer, n: int, max_tokens: int) -> None:
    """What the trainer sees for the first N rows; trained (loss-carrying) tokens highlighted."""
    from tuneforge.data.encode import render_example

    rows = read_examples(path)[:n]
    styled = console.is_terminal
    opening, closing = (_OPEN, _CLOSE) if styled else ("[[", "]]")
    legend = "green = trained tokens" if styled else "[[...]] = trained tokens"
    _print(f"\nThe first {len(rows)} example(s) of {path} as the trainer tokenizes them ({legend}):")
    for i, row in enumerate(rows, 1):
        rendered = render_example(row, tokenizer, max_tokens, opening, closing)
        console.rule(f"example {i}")
        if not styled:
            _print(rendered)
            continue
        text, trained = Text(), False
        for piece in rendered.replace(_CLOSE, _OPEN).split(_OPEN):
            text.append(piece, style="bold green" if trained else "dim")
            trained = not trained
        console.print(text)


def convert(
    file: Path = typer.Argument(..., help="CSV, TSV, XLSX, JSON, JSONL (alpaca, sharegpt, legacy) or TXT."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Where to write (default: NAME_chat.jsonl)."
    ),
    source: str = typer.Option("auto", "--from", help=f"Input kind: {', '.join(SOURCES)}."),
    user_column: str | None = typer.Option(None, "--user-column", help="Column with the user's message."),
    assistant_column: str | None = typer.Option(None, "--assistant-column", help="Column with the answer."),
    system_column: str | None = typer.Option(None, "--system-column", help="Column with a system prompt."),
    system: str | None = typer.Option(None, "--system", help="System prompt to add to every conversation."),
    sheet: str | None = typer.Option(None, "--sheet", help="XLSX: the sheet to read (default: the first)."),
    agent: str | None = typer.Option(
        None,
        "--agent",
        help="Support threads: keep only threads answered by this author_id (e.g. AppleSupport).",
    ),
    keep_mentions: bool = typer.Option(
        False, "--keep-mentions", help="Support threads: keep leading @handles."
    ),
) -> None:
    """Convert a dataset into OpenAI chat JSONL (one {"messages": [...]} per line)."""
    if source not in SOURCES:
        fail(f"--from must be one of {', '.join(SOURCES)}, not `{source}`.")
    opts = ConvertOptions(
        source, user_column, assistant_column, system_column, system, sheet, agent, keep_mentions
    )
    rows, how, bad = convert_file(file, opts)
    for line, why in bad[:10]:
        console.print(f"[yellow]skipped[/] {file}, line {line}: {why}")
    if len(bad) > 10:
        console.print(f"[yellow]skipped[/] {len(bad) - 10} more unreadable lines")
    if not rows:
        fail(f"{file}: nothing to convert ({how}); no conversation has both a user and an assistant turn.")
    target = output or file.with_name(f"{file.stem}_chat.jsonl")
    if target.resolve() == file.resolve():
        fail(f"{target}: the output would overwrite the input; choose another name with -o.")
    write_jsonl(target, rows)
    report = validate_file(target, min_examples=0)
    _print(f"Read {file} as {how}; wrote {len(rows)} conversation(s) to {target}.")
    if not report.ok:
        _print(f"{len(report.errors)} problem(s) remain; see `tuneforge prepare -f {target} --check`.")
    _print(f"Next: tuneforge prepare -f {target}")
