"""What a migration will do, decided before anything is written: which source jobs, which files (with
their sizes), which target base each source base maps to, and what is already on the target."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from tuneforge.data.throughput import estimate_seconds, format_duration
from tuneforge.migrate.errors import MigrateError, describe
from tuneforge.migrate.source import SourceJob

# The base a source base maps to when --map does not name it and the target does not know its name:
# the base the target's OpenAI aliases resolve to (its configured default).
DEFAULT_PROBES = ("gpt-4o-mini", "gpt-3.5-turbo", "davinci-002")
SOURCE_DONE = "succeeded"
# For a training-time estimate without downloading: JSONL bytes per trained token (JSON syntax included)
# and the epochs "auto" usually resolves to for small files (the cookbook's default of 3).
BYTES_PER_TOKEN = 4
AUTO_EPOCHS = 3


@dataclass
class Filters:
    jobs: list[str] = field(default_factory=list)
    since: int | None = None
    suffix: str | None = None

    def keep(self, job: SourceJob) -> bool:
        return ((not self.jobs or job.id in self.jobs)
                and (self.since is None or job.created_at >= self.since)
                and (self.suffix is None or job.suffix == self.suffix))


@dataclass
class Mapping:
    source: str
    target: str
    how: str  # why this target: --map, known here, default base


@dataclass
class PlanItem:
    job: SourceJob
    base: str = ""
    skip: str | None = None  # why this job is not migrated (nothing is wrong)
    problem: str | None = None  # why it cannot be migrated (a failure)
    existing: dict | None = None  # the target job already migrated from it


@dataclass
class Plan:
    items: list[PlanItem]
    mappings: list[Mapping]

    @property
    def todo(self) -> list[PlanItem]:
        return [i for i in self.items if not i.skip and not i.problem]


def parse_since(value: str | None) -> int | None:
    """`--since 2024-05-01` (or a full ISO time) as Unix seconds, UTC unless the value says otherwise."""
    if not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise MigrateError(f"--since {value}: not a date; use YYYY-MM-DD or an ISO time "
                           "(2024-05-01T12:00)") from None
    return int((when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp())


def parse_maps(values: list[str]) -> dict[str, str]:
    out = {}
    for value in values:
        src, eq, base = value.partition("=")
        if not eq or not src.strip() or not base.strip():
            raise MigrateError(f"--map {value}: write SOURCE_BASE=TARGET_BASE, e.g. "
                               "--map gpt-4o-mini-2024-07-18=smollm2-135m-instruct")
        out[src.strip()] = base.strip()
    return out


def target_models(target: openai.OpenAI) -> dict[str, dict]:
    return {m.id: m.model_dump() for m in target.models.list()}


def _root(models: dict[str, dict], name: str) -> str:
    """What a target name trains from: a base itself, an alias's base (`root`), a fine-tuned id as is."""
    model = models[name]
    return name if name.startswith("ft:") or model.get("parent") is None else model.get("root") or name


def map_bases(sources: list[str], maps: dict[str, str], models: dict[str, dict]) -> list[Mapping]:
    default = next((_root(models, p) for p in DEFAULT_PROBES if p in models), None)
    out = []
    for src in sorted(set(sources)):
        if src in maps:
            if maps[src] not in models:
                raise MigrateError(f"--map {src}={maps[src]}: the target has no model {maps[src]!r}; "
                                   "`tuneforge models list` shows its bases (register one with "
                                   "`tuneforge models add NAME PATH`)")
            out.append(Mapping(src, _root(models, maps[src]), "--map"))
        elif src in models:
            out.append(Mapping(src, _root(models, src), "known on the target"))
        elif default is not None:
            out.append(Mapping(src, default, "target's default base"))
        else:
            raise MigrateError(f"cannot map the source base {src!r}: the target knows no such model and "
                               f"has no default base; pass --map {src}=BASE")
    return out


def _fill_sizes(source: openai.OpenAI, job: SourceJob) -> str | None:
    """Source file sizes and names, or why the job cannot be migrated. A validation or result file that
    no longer exists is left out with a note: the job still trains on its training file."""
    for f in list(job.files):
        if f.bytes is not None and f.filename:
            continue
        try:
            obj = source.files.retrieve(f.id)
        except openai.NotFoundError:
            if f.role != "training":
                job.files.remove(f)
                job.notes.append(f"its {f.role} file {f.id} no longer exists on the source; migrated "
                                 "without it")
                continue
            return f"its {f.role} file {f.id} no longer exists on the source"
        except openai.APIStatusError:
            continue  # a source without file metadata: the download tells the size
        except openai.APIError as exc:
            return f"cannot read its {f.role} file {f.id}: {describe(exc)}"
        f.bytes, f.filename = obj.bytes, obj.filename
    return None


def build_plan(source: openai.OpenAI, jobs: list[SourceJob], maps: dict[str, str],
               models: dict[str, dict], existing: dict[str, dict]) -> Plan:
    items = [PlanItem(j) for j in jobs]
    for item in items:
        if item.job.id in existing:
            item.existing = existing[item.job.id]
        elif item.job.status != SOURCE_DONE:
            item.skip = f"{item.job.status or 'unknown'} on the source; only succeeded jobs are migrated"
    mappings = map_bases([i.job.model for i in items if not i.skip], maps, models)
    by_source = {m.source: m.target for m in mappings}
    for item in items:
        item.base = by_source.get(item.job.model, "")
        if not item.skip:
            problem = _fill_sizes(source, item.job)
            item.problem = None if item.existing else problem  # an earlier run already copied them
    return Plan(items, mappings)


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n} B" if n < 1024 else f"{n / 1024:.1f} KiB" if n < 1024 ** 2 else f"{n / 1024 ** 2:.1f} MiB"


def estimate(job: SourceJob) -> int | None:
    """Rough seconds to train `job` on this machine at the built-in base's measured speed."""
    train = job.file("training")
    if train is None or train.bytes is None:
        return None
    epochs = job.hyperparameters.get("n_epochs")
    epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else AUTO_EPOCHS
    return estimate_seconds(train.bytes // BYTES_PER_TOKEN * epochs)


def print_plan(plan: Plan, console: Console, capture: Callable[[SourceJob], str] | None = None) -> None:
    table = Table("source base", "target base", "why", title="Base models")
    for m in plan.mappings:
        table.add_row(escape(m.source), escape(m.target), m.how)
    console.print(table)
    jobs = Table(*(Column(c, overflow="fold") for c in ("source job", "source model", "method",
                                                        "hyperparameters", "files", "plan")), title="Jobs")
    for item in plan.items:
        j = item.job
        files = "\n".join(f"{f.role}: {f.id} ({_size(f.bytes)})" for f in j.files)
        hp = ", ".join(f"{k}={v}" for k, v in j.hyperparameters.items())
        what = (f"skip: {item.skip}" if item.skip else f"cannot migrate: {item.problem}" if item.problem
                else f"already migrated as {item.existing['id']}" if item.existing
                else f"re-create on {item.base}")
        jobs.add_row(escape(j.id), escape(j.fine_tuned_model or "-"), j.method, escape(hp), escape(files),
                     escape(what))
    console.print(jobs)
    for item in plan.items:  # notes on their own lines: a table cell would fold them out of reading
        for note in item.job.notes:
            console.print(escape(f"Note: {item.job.id}: {note}"), soft_wrap=True, highlight=False)
    if capture is not None:
        asked = [i.job for i in plan.items if not i.skip and not i.problem and i.job.fine_tuned_model]
        console.print("Parity capture:" if asked else "Parity capture: no succeeded job to ask.")
        for job in asked:
            console.print(escape(f"  {job.fine_tuned_model}: {capture(job)}"), soft_wrap=True,
                          highlight=False)
    todo = [estimate(i.job) for i in plan.todo if not i.existing]
    if todo:
        known = [t for t in todo if t is not None]
        console.print(f"Estimated training time on this machine: about {format_duration(sum(known))} for "
                      f"{len(known)} job(s) (rough: from file sizes, at the built-in base's measured speed; "
                      "TUNEFORGE_TRAIN_TOKENS_PER_SECOND calibrates it).", soft_wrap=True)
