"""`tuneforge jobs ...`: create fine-tuning jobs from local files or file ids; follow, inspect, steer them."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Column, Table

from tuneforge.cli.client import ApiKeyOpt, BaseUrlOpt, Client, JsonOpt, make_client, print_json
from tuneforge.cli.errors import fail
from tuneforge.cli.files import upload_dataset, when
from tuneforge.cli.jobs_follow import NOT_FOUND, follow, report_outcome
from tuneforge.models.methods import METHODS

app = typer.Typer(help="Fine-tuning jobs: create, follow, list, inspect, cancel, pause, resume, results.",
                  no_args_is_help=True)
console = Console()
JobId = Annotated[str, typer.Argument(help="A job id (ftjob-...), from `tuneforge jobs list`.")]


def _file_id(client: Client, value: str, flag: str, method: str) -> str:
    """A file id as is, or a local path validated for `method` and uploaded (reusing an identical earlier
    upload)."""
    path = Path(value).expanduser()
    if path.is_file():
        return upload_dataset(client, path, method=method)["id"]
    if value.startswith("file-") and "/" not in value:
        return value
    fail(f"{flag} {value}: no such file and not a file id; pass a local .jsonl path or a file-... id "
         "from `tuneforge files list`")
    raise AssertionError  # fail() exits


def _hyperparameters(n_epochs: int | None, batch_size: int | None, lr: float | None) -> dict:
    given = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": lr}
    return {k: v for k, v in given.items() if v is not None}


@app.command("create")
def create(
    training_file: Annotated[str, typer.Option("--training-file", "-t", help="Local JSONL path or file id.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Base model, alias, or an ft:... model to "
                                       "continue training.")] = "smollm2-135m-instruct",
    validation_file: Annotated[str | None, typer.Option("--validation-file", "-v", help="Local JSONL path "
                                                        "or file id.")] = None,
    suffix: Annotated[str | None, typer.Option("--suffix", "-s", help="Up to 64 chars in the model name.")]
    = None,
    n_epochs: Annotated[int | None, typer.Option("--n-epochs", help="Epochs (default: auto).")] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Batch size (default: auto).")]
    = None,
    learning_rate_multiplier: Annotated[float | None, typer.Option(
        "--learning-rate-multiplier", help="Scales the default learning rate (default: auto).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="For reproducible runs.")] = None,
    method: Annotated[str, typer.Option("--method", help="lora (small adapter, default), qlora "
                                        "(an adapter on a 4-bit base) or full (all weights).")] = "lora",
    dpo: Annotated[bool, typer.Option("--dpo", help="Preference tuning (OpenAI's method dpo) on a file of "
                                      "preference pairs, instead of supervised.")] = False,
    beta: Annotated[float | None, typer.Option("--beta", help="DPO's beta, 0 < beta <= 2 (default: auto, "
                                               "0.1); needs --dpo.", show_default=False)] = None,
    no_follow: Annotated[bool, typer.Option("--no-follow", help="Return once the job is created.")] = False,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """Create a fine-tuning job (uploading local files first), then follow it until it ends."""
    if method not in METHODS:
        fail(f"--method {method}: choose lora, qlora or full")
    if beta is not None and not dpo:
        fail("--beta is DPO's setting: add --dpo (and a file of preference pairs)")
    client = make_client(base_url, api_key)
    kind = "dpo" if dpo else "supervised"
    body: dict = {"model": model, "training_file": _file_id(client, training_file, "-t", kind)}
    if validation_file:
        body["validation_file"] = _file_id(client, validation_file, "-v", kind)
    for key, value in (("suffix", suffix), ("seed", seed)):
        if value is not None:
            body[key] = value
    hyperparameters = _hyperparameters(n_epochs, batch_size, learning_rate_multiplier)
    if beta is not None:
        hyperparameters["beta"] = beta
    body["method"] = {"type": kind, kind: {"hyperparameters": hyperparameters}}
    body["training_type"] = method  # tuneforge's extension: OpenAI picks this for you
    job = client.post("fine_tuning/jobs", json=body)
    if as_json and no_follow:
        print_json(job)
        return
    # With --json, stdout carries only the final job; the progress goes to stderr.
    out = Console(stderr=True) if as_json else console
    what = f"{method}, DPO" if dpo else method
    out.print(f"Created fine-tuning job: [bold]{job['id']}[/] ({job.get('model')}, {what})",
              highlight=False)
    if no_follow:
        out.print(f"Follow it with `tuneforge jobs follow {job['id']}`.")
        return
    final = follow(client, job["id"], out)
    code = report_outcome(final, out)
    if as_json:
        print_json(final)
    if code:
        sys.exit(code)


@app.command("follow")
def follow_command(job_id: JobId, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None) -> None:
    """Live progress (step/total, ETA, tokens/s, train/valid loss) until the job ends; Ctrl-C detaches."""
    final = follow(make_client(base_url, api_key), job_id, console)
    sys.exit(report_outcome(final, console))


def _jobs_table(jobs: list[dict]) -> Table:
    table = Table("status", "model", "fine-tuned model", "created", "trained tokens")
    width = max((len(j["id"]) for j in jobs), default=2)
    table.columns.insert(0, Column("id", no_wrap=True, min_width=width))
    for j in jobs:
        table.add_row(j["id"], j.get("status", ""), j.get("model", ""), j.get("fine_tuned_model") or "",
                      when(j.get("created_at")), str(j.get("trained_tokens") or ""))
    return table


@app.command("list")
def list_jobs(
    limit: Annotated[int, typer.Option("--limit", "-l", help="How many, newest first.")] = 20,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """List fine-tuning jobs, newest first."""
    page = make_client(base_url, api_key).get("fine_tuning/jobs", params={"limit": limit})
    if as_json:
        print_json(page)
    elif not page.get("data"):
        console.print("No jobs yet. Start one with `tuneforge jobs create -t train.jsonl`.")
    else:
        console.print(_jobs_table(page["data"]))


@app.command("get")
def get(job_id: JobId, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
        api_key: ApiKeyOpt = None) -> None:
    """Show one job: status, hyperparameters, files, model, error."""
    job = make_client(base_url, api_key).get(f"fine_tuning/jobs/{job_id}", not_found_hint=NOT_FOUND)
    if as_json:
        print_json(job)
        return
    table = Table("field", "value", title=job["id"], show_header=False)
    for key in ("status", "model", "fine_tuned_model", "training_file", "validation_file", "hyperparameters",
                "trained_tokens", "seed", "result_files", "error"):
        value = job.get(key)
        if key == "error" and value and not value.get("message"):
            value = None
        table.add_row(key, "" if value in (None, [], {}) else str(value))
    table.add_row("created", when(job.get("created_at")))
    table.add_row("finished", when(job.get("finished_at")))
    console.print(table)


@app.command("events")
def events(
    job_id: JobId, limit: Annotated[int, typer.Option("--limit", "-l")] = 50,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """The job's events, oldest first (the API lists them newest first)."""
    page = make_client(base_url, api_key).get(f"fine_tuning/jobs/{job_id}/events", params={"limit": limit},
                                              not_found_hint=NOT_FOUND)
    if as_json:
        print_json(page)
        return
    for event in reversed(page.get("data") or []):
        console.print(f"[dim][{when(event.get('created_at'))}][/] {event.get('message', '')}",
                      highlight=False, soft_wrap=True)


def _action(job_id: str, verb: str, base_url: str | None, api_key: str | None, as_json: bool) -> None:
    job = make_client(base_url, api_key).post(f"fine_tuning/jobs/{job_id}/{verb}", not_found_hint=NOT_FOUND)
    if as_json:
        print_json(job)
    else:
        console.print(f"{job['id']}: {job.get('status')}")


def _action_command(verb: str, doc: str):
    """`jobs cancel|pause|resume ID`: one POST to the job's action endpoint, then its new status."""

    def command(job_id: JobId, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
                api_key: ApiKeyOpt = None) -> None:
        _action(job_id, verb, base_url, api_key, as_json)

    command.__doc__ = doc
    command.__name__ = verb
    return command


for _verb, _doc in (
    ("cancel", "Cancel a queued or running job."),
    ("pause", "Pause a running job at its next checkpoint-safe step (resume continues from there)."),
    ("resume", "Resume a paused job."),
):
    app.command(_verb)(_action_command(_verb, _doc))


@app.command("checkpoints")
def checkpoints(job_id: JobId, as_json: JsonOpt = False, base_url: BaseUrlOpt = None,
                api_key: ApiKeyOpt = None) -> None:
    """The job's checkpoints; each is a model you can chat with or evaluate."""
    page = make_client(base_url, api_key).get(f"fine_tuning/jobs/{job_id}/checkpoints",
                                              not_found_hint=NOT_FOUND)
    if as_json:
        print_json(page)
        return
    table = Table("step", Column("model", no_wrap=True), "train loss", "valid loss")
    for c in page.get("data") or []:
        m = c.get("metrics") or {}
        table.add_row(str(c.get("step_number")), c.get("fine_tuned_model_checkpoint", ""),
                      _num(m.get("train_loss")), _num(m.get("valid_loss") or m.get("full_valid_loss")))
    console.print(table)


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def sparkline(values: list[float], width: int = 60) -> str:
    """The series squeezed into `width` bucket means, drawn with block characters (low ▁ to high █)."""
    if not values:
        return ""
    n = min(width, len(values))  # n <= len(values), so no bucket is empty
    buckets = [values[i * len(values) // n:(i + 1) * len(values) // n] for i in range(n)]
    means = [sum(b) / len(b) for b in buckets]
    lo, hi = min(means), max(means)
    blocks = "▁▂▃▄▅▆▇█"
    return "".join(blocks[int((m - lo) / (hi - lo) * (len(blocks) - 1)) if hi > lo else 0] for m in means)


@app.command("results")
def results(
    job_id: JobId,
    as_json: JsonOpt = False, base_url: BaseUrlOpt = None, api_key: ApiKeyOpt = None,
) -> None:
    """Print the job's results CSV (per-step metrics) and a small loss plot."""
    client = make_client(base_url, api_key)
    job = client.get(f"fine_tuning/jobs/{job_id}", not_found_hint=NOT_FOUND)
    if not job.get("result_files"):
        fail(f"job {job_id} has no results yet (status {job.get('status')}); they appear when it finishes. "
             f"Follow it with `tuneforge jobs follow {job_id}`")
    text = client.content(f"files/{job['result_files'][0]}/content").decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    if as_json:
        print_json(rows)
        return
    print(text, end="" if text.endswith("\n") else "\n")
    # Current (train_loss) or legacy (training_loss) column names; the first one present wins.
    for label, columns in (("train loss", ("train_loss", "training_loss")),
                           ("valid loss", ("valid_loss", "validation_loss"))):
        for column in columns:
            series = [float(r[column]) for r in rows if r.get(column) not in (None, "")]
            if series:
                console.print(f"{label:>10} {series[0]:.3f} {sparkline(series)} {series[-1]:.3f}",
                              highlight=False)
                break
