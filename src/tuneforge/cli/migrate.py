"""`tuneforge migrate`: bring fine-tuning files, jobs and model ids over from OpenAI (or any
OpenAI-compatible fine-tuning API) into tuneforge. The work lives in `tuneforge.migrate`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from tuneforge.cli.client import resolve_api_key, resolve_base_url
from tuneforge.cli.errors import err_console, user_error
from tuneforge.migrate import CAPTURE_MAX_TOKENS
from tuneforge.migrate.errors import MigrateError

user_error(MigrateError)


def migrate_command(
    from_key: Annotated[str, typer.Option("--from-key", help="API key of the source (your OpenAI key).",
                                          show_default=False)],
    from_url: Annotated[str, typer.Option("--from", help="Source API URL: OpenAI, or any "
                                          "OpenAI-compatible fine-tuning API.")] = "https://api.openai.com/v1",
    to_url: Annotated[str | None, typer.Option(
        "--to", help="Target tuneforge API URL (default: env OPENAI_BASE_URL, else the local server).",
        show_default=False)] = None,
    to_key: Annotated[str | None, typer.Option("--to-key", help="Target API key (env OPENAI_API_KEY).",
                                               show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (jobs, files with sizes, the "
                                          "base mapping) and change nothing.")] = False,
    maps: Annotated[list[str] | None, typer.Option("--map", help="SOURCE_BASE=TARGET_BASE, repeatable, e.g. "
                                                   "gpt-4o-mini-2024-07-18=smollm2-135m-instruct.")] = None,
    jobs: Annotated[list[str] | None, typer.Option("--job", help="Only this source job (repeatable).")]
    = None,
    since: Annotated[str | None, typer.Option("--since", help="Only jobs created on or after this date "
                                              "(YYYY-MM-DD).")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix", help="Only jobs with this model suffix.")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Return once the jobs are created; do not "
                                          "follow their training.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before migrating (never asked when "
                                      "stdin is not a terminal).")] = False,
    capture: Annotated[str | None, typer.Option(
        "--capture", metavar="PROMPTS.jsonl|validation",
        help="Ask each source model, while it still answers, for its answers to these prompts (`validation`: "
        "each job's validation file) and keep them on the target as reference answers for `tuneforge eval`. "
        "For evaluation only: mind the source's terms before training on its outputs.",
        show_default=False)] = None,
    capture_max_tokens: Annotated[int, typer.Option(
        "--capture-max-tokens", min=1, max=4096, help="Cap on each captured answer.")] = CAPTURE_MAX_TOKENS,
) -> None:
    """Copy the source's fine-tuning jobs here: training, validation and result files, each job re-created
    with its method, hyperparameters, suffix and metadata (plus metadata.migrated_from), and the old
    model ids (ft:...) kept answering as aliases of the new models. Safe to run again: what is already
    here is skipped."""
    from tuneforge.migrate.plan import Filters, parse_maps, parse_since
    from tuneforge.migrate.run import Options, execute, prepare, print_rows, show_plan

    opts = Options(source_url=resolve_base_url(from_url), source_key=from_key,
                   target_url=resolve_base_url(to_url), target_key=resolve_api_key(to_key),
                   maps=parse_maps(maps or []), wait=not no_wait, capture=capture,
                   capture_max_tokens=capture_max_tokens,
                   filters=Filters(jobs=list(jobs or []), since=parse_since(since), suffix=suffix))
    console = Console(highlight=False)
    console.print(f"Migrating from {opts.source_url} to {opts.target_url}", soft_wrap=True)
    session = prepare(opts)
    show_plan(session, console)
    if dry_run:
        console.print("Dry run: nothing was changed.")
        return
    if not session.plan.todo:
        console.print("Nothing to migrate.")
    elif sys.stdin.isatty() and not yes and not typer.confirm(f"Migrate {len(session.plan.todo)} job(s)?"):
        raise typer.Exit(1)
    try:
        rows = execute(session, opts, console)
    except KeyboardInterrupt:
        err_console.print("interrupted: nothing is half-written; run the same command again to continue")
        raise typer.Exit(130) from None
    print_rows(rows, console, opts)
    failed = [r for r in rows if not r.ok]
    if failed:
        err_console.print(f"[bold red]error:[/] {len(failed)} of {len(rows)} job(s) did not migrate; "
                          "see the table above", soft_wrap=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate_command)
