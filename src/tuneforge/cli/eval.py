"""`tuneforge eval`: score models on held-out data, side by side, with an HTML report."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tuneforge.cli.errors import user_error
from tuneforge.evaluation.errors import EvalInputError, ModelLookupError
from tuneforge.settings import get_settings

user_error(ModelLookupError)
user_error(EvalInputError)

app = typer.Typer(invoke_without_command=True, add_completion=False)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@app.callback()
def eval_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model to evaluate: ft:... id, base or alias.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Held-out JSONL (chat or prompt/completion) "
                                       "with reference answers.")],
    compare: Annotated[list[str] | None, typer.Option(
        "--compare", "-c", help="Also evaluate these models (repeat, or comma-separate), e.g. the base.")]
    = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the first N rows.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Cap on each generated answer.")]
    = 128,
    report: Annotated[Path | None, typer.Option(
        "--report", "-o", help="Where to write the HTML report (default: $TUNEFORGE_HOME/evals/...)")] = None,
    examples: Annotated[int, typer.Option("--examples", help="Answers to show in the terminal table.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON (for scripts).")] = False,
) -> None:
    """Loss, perplexity and token accuracy on the reference answers, plus greedy answers scored by exact
    match and ROUGE-L (character-level for Chinese), for each model side by side. Runs locally: models
    load from this machine's store (TUNEFORGE_HOME), no server needed."""
    from tuneforge.evaluation.report import print_result, write_html
    from tuneforge.evaluation.run import evaluate, read_rows

    settings = get_settings()
    read_rows(file, 1)  # fail on a bad path before loading any model
    models = [model, *_split(compare or [])]
    err = Console(stderr=True)
    result = evaluate(models, file, settings=settings, limit=limit, max_new_tokens=max_new_tokens,
                      progress=lambda msg: err.print(f"[dim]{msg}[/]"))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = write_html(result, report or settings.home / "evals" / f"eval-{stamp}.html")
    if as_json:
        print(json.dumps({**result.to_json(), "report": str(path)}, indent=2, ensure_ascii=False))
        return
    console = Console()
    print_result(result, console, examples)
    console.print(f"HTML report: {path}", soft_wrap=True)
    sys.stdout.flush()
