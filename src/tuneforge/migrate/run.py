"""Drive a migration: read the source, plan, copy files, re-create jobs, keep the source ids answering,
follow the new jobs, and print one table of what happened. Every step can be repeated: a second run
finds the files (by content hash) and the jobs (by `metadata.migrated_from`) and skips them."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import openai
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from tuneforge.migrate import CAPTURE_MAX_TOKENS
from tuneforge.migrate import jobs as target_jobs
from tuneforge.migrate.capture import Capturer
from tuneforge.migrate.errors import MigrateError, describe
from tuneforge.migrate.files import FileCopier
from tuneforge.migrate.plan import Filters, Plan, PlanItem, build_plan, print_plan, target_models
from tuneforge.migrate.progress import Bars
from tuneforge.migrate.source import list_jobs

OPENAI_URL = "https://api.openai.com/v1"


@dataclass
class Options:
    source_url: str
    source_key: str
    target_url: str
    target_key: str
    maps: dict[str, str] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    wait: bool = True
    capture: str | None = None  # a prompts file, or CAPTURE_VALIDATION; None: no parity capture
    capture_max_tokens: int = CAPTURE_MAX_TOKENS
    max_retries: int = 4  # the SDK's retries (backoff 0.5 s to 8 s) on network errors, 408, 429, 5xx


@dataclass
class Row:
    source_job: str
    source_model: str
    new_job: str = ""
    new_model: str = ""
    status: str = ""
    ok: bool = True
    note: str = ""  # e.g. "already migrated": shown after the status
    parity: str = ""  # the captured reference answers: a target file id, or why there are none
    parity_file: str = ""


@dataclass
class Session:
    source: openai.OpenAI
    target: openai.OpenAI
    plan: Plan
    capturer: Capturer | None = None


def _client(url: str, key: str, retries: int) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key=key, max_retries=retries, timeout=600)


def prepare(opts: Options) -> Session:
    """Read both sides and decide; writes nothing anywhere."""
    if opts.source_url.rstrip("/") == opts.target_url.rstrip("/"):
        raise MigrateError(f"--from and --to are the same server ({opts.source_url}); point --to at the "
                           "tuneforge server to migrate into")
    source = _client(opts.source_url, opts.source_key, opts.max_retries)
    target = _client(opts.target_url, opts.target_key, opts.max_retries)
    try:
        found = list_jobs(source)
    except openai.APIError as exc:
        raise MigrateError(f"cannot list the fine-tuning jobs of {opts.source_url}: {describe(exc)}; "
                           "check --from and --from-key") from None
    missing = [j for j in opts.filters.jobs if j not in {s.id for s in found}]
    if missing:
        raise MigrateError(f"--job {', '.join(missing)}: no such job on the source "
                           f"({len(found)} jobs there)")
    try:
        models, existing = target_models(target), target_jobs.migrated_jobs(target)
    except openai.APIError as exc:
        raise MigrateError(f"cannot read the target {opts.target_url}: {describe(exc)}; is `tuneforge serve` "
                           "running there (--to, --to-key)?") from None
    chosen = [j for j in found if opts.filters.keep(j)]
    capturer = None
    if opts.capture:
        capturer = Capturer(source, target, opts.capture, opts.capture_max_tokens)
    return Session(source, target, build_plan(source, chosen, opts.maps, models, existing), capturer)


def show_plan(session: Session, console: Console) -> None:
    print_plan(session.plan, console, session.capturer.plan if session.capturer else None)


def _migrate_one(session: Session, item: PlanItem, copier: FileCopier, say) -> Row:
    job = item.job
    row = Row(job.id, job.fine_tuned_model or "")
    if item.skip:
        row.status = f"skipped: {item.skip}"
        return row
    if item.problem:
        row.status, row.ok = f"failed: {item.problem}", False
        return row
    say(f"{job.id}:")
    try:
        if item.existing:
            new = item.existing
            say(f"  already migrated as {new['id']}, skipped")
            row.note = "already migrated"
        else:
            copies = {f.role: copier.copy(f) for f in job.files if f.role != "result"}
            for f in job.files:
                if f.role == "result":
                    copier.copy(f)
            validation = copies.get("validation")
            body = target_jobs.create_body(job, item.base, copies["training"].target_id,
                                           validation.target_id if validation else None)
            new = target_jobs.create_job(session.target, job, body)
            say(f"  created {new['id']} on {item.base}")
        row.new_job, row.new_model, row.status = new["id"], new.get("fine_tuned_model") or "", new["status"]
        if job.fine_tuned_model:
            target_jobs.keep_source_id(session.target, job.fine_tuned_model, new["id"])
    except MigrateError as exc:
        row.status, row.ok = f"failed: {exc}", False
        return row
    except openai.APIError as exc:  # the target, after the SDK's retries
        row.status, row.ok = f"failed: talking to the target: {describe(exc)}", False
        return row
    if session.capturer is not None and job.fine_tuned_model:
        _capture(session.capturer, item, new, row, say)
    return row


def _capture(capturer: Capturer, item: PlanItem, new: dict, row: Row, say) -> None:
    """The source model's answers, kept on the target; a failure fails the row (the user asked)."""
    try:
        captured = capturer.capture(item.job, new, say)
    except MigrateError as exc:
        row.parity, row.ok = f"failed: {exc}", False
        return
    except openai.APIError as exc:
        row.parity, row.ok = f"failed: talking to the target: {describe(exc)}", False
        return
    if captured is None:
        row.parity = "none: no validation file"
        return
    row.parity_file = captured.file_id
    again = ", already there" if captured.reused else ""
    row.parity = f"{captured.file_id} ({captured.answers} answers{again})"


def execute(session: Session, opts: Options, console: Console) -> list[Row]:
    def say(message: str) -> None:
        console.print(escape(message), soft_wrap=True, highlight=False)

    with tempfile.TemporaryDirectory(prefix="tuneforge-migrate-") as tmp, Bars(console) as bars:
        copier = FileCopier(session.source, session.target, Path(tmp), say, bars)
        rows = [_migrate_one(session, item, copier, say) for item in session.plan.items]
    followed = [r for r in rows if r.new_job and r.status not in target_jobs.TERMINAL]
    if opts.wait and followed:
        say(f"Training {len(followed)} job(s) on the target (Ctrl-C stops watching; the jobs go on, and "
            "running the same command again picks them up):")
        with Bars(console) as bars:
            final = target_jobs.follow(session.target, [r.new_job for r in followed], say,
                                       seen=lambda job: bars.training(session.target, job))
        for r in followed:
            _finish(r, final[r.new_job])
    for r in rows:
        if r.new_job and r.status == "failed" and r.ok:
            r.ok = False
    return rows


def _finish(row: Row, job: dict) -> None:
    row.new_model = job.get("fine_tuned_model") or ""
    row.status = job["status"]
    if job["status"] == "failed":
        row.status = f"failed on the target: {(job.get('error') or {}).get('message') or 'no reason given'}"
        row.ok = False
    elif job["status"] == "cancelled":
        row.ok = False


def print_rows(rows: list[Row], console: Console, opts: Options | None = None) -> None:
    columns = ["source job", "source model", "new job", "new model", "status"]
    parity = opts is not None and opts.capture is not None
    table = Table(*(Column(c, overflow="fold") for c in [*columns, *(["parity"] if parity else [])]),
                  title="Migration")
    for r in rows:
        style = "" if r.ok else "red"
        status = f"{r.status} ({r.note})" if r.note else r.status
        cells = [r.source_job, r.source_model, r.new_job, r.new_model, status]
        cells += [r.parity] if parity else []
        table.add_row(*(escape(v or "-") for v in cells), style=style)
    console.print(table)
    if parity:
        _print_parity_commands(rows, console, opts)


def _print_parity_commands(rows: list[Row], console: Console, opts: Options) -> None:
    """How to compare each migrated model with the source's answers (and the source model itself)."""
    done = [r for r in rows if r.parity_file and r.source_model]
    if not done:
        return
    console.print("Compare each migrated model with the source's captured answers (once its training is "
                  "done; the second model is the source itself, while it still answers; SOURCE_KEY holds "
                  "your --from-key):", soft_wrap=True)
    for r in done:
        console.print(escape(f"  tuneforge eval --base-url {opts.target_url} -m {r.source_model} -f "
                             f"{r.parity_file} --compare {r.source_model}@{opts.source_url} "
                             '--compare-key "$SOURCE_KEY"'), soft_wrap=True, highlight=False)
