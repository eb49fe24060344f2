"""`tuneforge eval`: score served models on held-out data, side by side, with an HTML report."""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tuneforge.cli.client import ApiKeyOpt, BaseUrlOpt, resolve_api_key, resolve_base_url
from tuneforge.cli.errors import user_error
from tuneforge.evaluation.errors import EvalInputError, EvalServerError
from tuneforge.settings import get_settings

user_error(EvalServerError)
user_error(EvalInputError)

app = typer.Typer(invoke_without_command=True, add_completion=False)


def _split(values: list[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def parse_target(spec: str, base_url: str, api_key: str, other_key: str | None = None):
    """`MODEL` on the default server, or `MODEL@URL` on another (with `other_key`, else the same key)."""
    from tuneforge.evaluation.run import Target

    model, at, url = spec.rpartition("@")
    if at and url.startswith(("http://", "https://")):
        return Target(model, resolve_base_url(url), other_key or api_key)
    return Target(spec, base_url, api_key)


def heldout_file(file: Path, url: str, key: str, folder: Path) -> tuple[Path, str]:
    """A local held-out path, or a `file-...` id on the server (downloaded into `folder`)."""
    from tuneforge.evaluation.http import Server
    from tuneforge.evaluation.run import read_rows

    if not file.exists() and str(file).startswith("file-"):
        server = Server(url, key)
        try:
            path = server.download(str(file), folder / f"{file}.jsonl")
        finally:
            server.close()
        read_rows(path, 1)
        return path, f"{file} on {url}"
    read_rows(file, 1)  # fail on a bad path before calling any server
    return file, str(file)


@app.callback()
def eval_command(
    model: Annotated[str, typer.Option("--model", "-m", help="Model to evaluate: ft:... id, base or alias.")],
    file: Annotated[Path, typer.Option("--file", "-f", help="Held-out JSONL (chat or prompt/completion) "
                                       "with reference answers: a path, or a file id on the server "
                                       "(e.g. the parity file `tuneforge migrate --capture` stored).")],
    compare: Annotated[list[str] | None, typer.Option(
        "--compare", "-c", help="Also evaluate these models (repeat, or comma-separate), e.g. the base; "
        "MODEL@URL evaluates a model served elsewhere, e.g. base@http://gpu-box:8000/v1.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="Only the first N rows.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Cap on each generated answer.")]
    = 128,
    report: Annotated[Path | None, typer.Option(
        "--report", "-o", help="Where to write the HTML report (default: $TUNEFORGE_HOME/evals/...)")] = None,
    examples: Annotated[int, typer.Option("--examples", help="Answers to show in the terminal table.")] = 8,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON (for scripts).")] = False,
    grader: Annotated[list[Path] | None, typer.Option(
        "--grader", "-g", help="Also score the answers with an OpenAI grader: a JSON file holding one grader "
        "object or a list (repeatable). Each grader's mean reward is a metric named by its `name`; "
        "templates see {{sample.output_text}} (the answer) and {{item.*}} (the row, plus item.reference and "
        "item.prompt). See docs/graders.md.", metavar="FILE", show_default=False)] = None,
    compare_key: Annotated[str | None, typer.Option(
        "--compare-key", help="API key for the models given as MODEL@URL (default: --api-key), e.g. your "
        "OpenAI key to compare with the source model of a migration.", show_default=False)] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
) -> None:
    """Scores what a server serves: greedy answers from /v1/chat/completions scored by exact match and
    ROUGE-L (character-level for Chinese), and loss, perplexity and token accuracy of the reference
    answers from /v1/completions (echo + logprobs) where the server gives them, each model side by side,
    plus the mean reward of each --grader (score_model graders ask their model on --base-url's server).
    Needs a running server (`tuneforge serve`) or any OpenAI-compatible one (--base-url)."""
    from tuneforge.evaluation.grading import load_graders
    from tuneforge.evaluation.report import print_result, write_html
    from tuneforge.evaluation.run import Target, evaluate

    graders = load_graders(grader or [])  # a bad grader fails before any server is asked
    url, key = resolve_base_url(base_url), resolve_api_key(api_key)
    targets = [parse_target(spec, url, key, compare_key) for spec in [model, *_split(compare or [])]]
    err = Console(stderr=True)
    with tempfile.TemporaryDirectory(prefix="tuneforge-eval-") as tmp:
        path, label = heldout_file(file, url, key, Path(tmp))
        result = evaluate(targets, path, limit=limit, max_new_tokens=max_new_tokens, label=label,
                          graders=graders, judge_at=Target("judge", url, key),
                          progress=lambda msg: err.print(f"[dim]{msg}[/]", soft_wrap=True, markup=False))
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = write_html(result, report or get_settings().home / "evals" / f"eval-{stamp}.html")
    if as_json:
        print(json.dumps({**result.to_json(), "report": str(path)}, indent=2, ensure_ascii=False))
        return
    console = Console()
    print_result(result, console, examples)
    console.print(f"HTML report: {path}", soft_wrap=True)
    sys.stdout.flush()
