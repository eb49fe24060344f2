"""`tuneforge jobs follow`: a live progress bar over a job's events until it ends (Ctrl-C detaches)."""

from __future__ import annotations

import datetime as dt
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tuneforge.cli.client import Client

TERMINAL = ("succeeded", "failed", "cancelled")
NOT_FOUND = "See `tuneforge jobs list` for the ids."


def _stamp(ts: int | None) -> str:
    return dt.datetime.fromtimestamp(ts or time.time()).strftime("%Y-%m-%d %H:%M:%S")


def _eta(job: dict) -> str:
    finish = job.get("estimated_finish")
    if not finish or job.get("status") != "running":
        return "ETA -"
    left = max(0, int(finish - time.time()))
    return f"ETA {left // 60}:{left % 60:02d}"


def _stats(data: dict, job: dict) -> str:
    parts = [_eta(job)]
    if data.get("tokens_per_second") is not None:
        parts.append(f"{data['tokens_per_second']:.0f} tok/s")
    if data.get("train_loss") is not None:
        parts.append(f"train loss {data['train_loss']:.3f}")
    if data.get("valid_loss") is not None:
        parts.append(f"valid loss {data['valid_loss']:.3f}")
    if data.get("full_valid_loss") is not None:
        parts.append(f"full valid {data['full_valid_loss']:.3f}")
    return " · ".join(parts)


def _new_events(client: Client, job_id: str, seen: set[str]) -> list[dict]:
    """Events not shown yet, oldest first. The API lists newest first; page until an already-seen one."""
    fresh: list[dict] = []
    params: dict = {"limit": 100}
    while True:
        page = client.get(f"fine_tuning/jobs/{job_id}/events", params=params, not_found_hint=NOT_FOUND)
        data = page.get("data") or []
        unseen = [e for e in data if e["id"] not in seen]
        fresh.extend(unseen)
        if len(unseen) < len(data) or not page.get("has_more") or not data:
            break
        params["after"] = data[-1]["id"]
    seen.update(e["id"] for e in fresh)
    return list(reversed(fresh))


def follow(client: Client, job_id: str, console: Console | None = None, poll: float = 1.0) -> dict:
    """Show the job's events and progress until it ends; returns the final job object.
    Ctrl-C leaves the job running and exits with 130 after saying how to resume or cancel."""
    console = console or Console()
    job = client.get(f"fine_tuning/jobs/{job_id}", not_found_hint=NOT_FOUND)
    seen: set[str] = set()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("{task.fields[stats]}"), console=console,
                        transient=False)
    task = progress.add_task("queued", total=None, stats="")
    last_metrics: dict = {}
    try:
        with progress:
            while True:
                for event in _new_events(client, job_id, seen):
                    if event.get("type") == "metrics":
                        last_metrics = event.get("data") or {}
                        progress.update(task, completed=last_metrics.get("step", 0),
                                        total=last_metrics.get("total_steps"))
                    else:
                        style = "red" if event.get("level") == "error" else "dim"
                        progress.console.print(f"[{style}][{_stamp(event.get('created_at'))}][/] "
                                               f"{event.get('message', '')}", soft_wrap=True, highlight=False)
                status = job.get("status", "")
                progress.update(task, description=status, stats=_stats(last_metrics, job))
                if status in TERMINAL or status == "paused":
                    break
                time.sleep(poll)
                job = client.get(f"fine_tuning/jobs/{job_id}", not_found_hint=NOT_FOUND)
    except KeyboardInterrupt:
        console.print(f"\nStopped following; job {job_id} is still {job.get('status', 'running')} on the "
                      f"server.\n  resume following: tuneforge jobs follow {job_id}\n"
                      f"  cancel it:        tuneforge jobs cancel {job_id}", soft_wrap=True, highlight=False)
        sys.exit(130)
    return job


def report_outcome(job: dict, console: Console) -> int:
    """One closing line per final status, with what to do next; the exit code."""
    status, job_id = job.get("status"), job.get("id")
    if status == "succeeded":
        model = job.get("fine_tuned_model")
        console.print(f"[bold green]Job complete![/] Fine-tuned model: [bold]{model}[/]\n"
                      f"  try it:   tuneforge chat -m {model}\n"
                      f"  evaluate: tuneforge eval -m {model} -f heldout.jsonl --compare {job.get('model')}",
                      soft_wrap=True, highlight=False)
        return 0
    if status == "paused":
        console.print(f"Job {job_id} is paused; continue it with `tuneforge jobs resume {job_id}`.")
        return 0
    if status == "failed":
        err = job.get("error") or {}
        console.print(f"[bold red]Job {job_id} failed:[/] {err.get('message') or 'no message'}"
                      f" (code {err.get('code')}). Events: `tuneforge jobs events {job_id}`.", soft_wrap=True)
        return 1
    console.print(f"Job {job_id} was cancelled.")
    return 1
