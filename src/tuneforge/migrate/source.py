"""The source's fine-tuning jobs, current (`/v1/fine_tuning/jobs`) and legacy (`/v1/fine-tunes`), read into
one shape. A 404 on the legacy list only means the source has no such API any more (OpenAI removed it)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import openai

HP_KEYS = ("n_epochs", "batch_size", "learning_rate_multiplier")
_LEGACY_STAMP = re.compile(r"-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}$")


@dataclass
class SourceFile:
    id: str
    role: str  # training | validation | result
    bytes: int | None = None
    filename: str | None = None


@dataclass
class SourceJob:
    id: str
    legacy: bool
    model: str
    status: str
    created_at: int
    fine_tuned_model: str | None
    files: list[SourceFile]
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # "auto" kept as "auto"
    suffix: str | None = None
    seed: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    training_type: str | None = None  # a tuneforge source's lora | full
    notes: list[str] = field(default_factory=list)

    def file(self, role: str) -> SourceFile | None:
        return next((f for f in self.files if f.role == role), None)


def suffix_from_model(model_id: str | None, legacy: bool) -> str | None:
    """The suffix inside a fine-tuned id: `ft:base:org:SUFFIX:id` or legacy `base:ft-org:SUFFIX-<stamp>`."""
    if not model_id:
        return None
    if not legacy:
        parts = model_id.split(":")
        return (parts[3] or None) if len(parts) >= 5 and parts[0] == "ft" else None
    tail = model_id.split(":")[-1]
    if ":ft-" not in model_id or not _LEGACY_STAMP.search(tail) or tail.startswith("ft-"):
        return None  # `base:ft-org-<stamp>` has no suffix
    return _LEGACY_STAMP.sub("", tail) or None


def _auto(value: Any) -> Any:
    return "auto" if value is None else value


def _current(job: dict) -> SourceJob:
    method = job.get("method") or {}
    kind = method.get("type") or "supervised"
    hp = ((method.get(kind) or {}).get("hyperparameters") if isinstance(method.get(kind), dict) else None) \
        or job.get("hyperparameters") or {}
    hp = {k: _auto(v) for k, v in hp.items()} if kind != "supervised" else \
        {k: _auto(hp.get(k)) for k in HP_KEYS}
    files = [SourceFile(job["training_file"], "training")]
    if job.get("validation_file"):
        files.append(SourceFile(job["validation_file"], "validation"))
    files += [SourceFile(f, "result") for f in job.get("result_files") or []]
    suffix = job.get("user_provided_suffix") or suffix_from_model(job.get("fine_tuned_model"), False)
    return SourceJob(id=job["id"], legacy=False, model=job.get("model") or "", status=job.get("status") or "",
                     created_at=int(job.get("created_at") or 0), fine_tuned_model=job.get("fine_tuned_model"),
                     files=files, method=kind, hyperparameters=hp, suffix=suffix, seed=job.get("seed"),
                     metadata=dict(job.get("metadata") or {}), training_type=job.get("training_type"))


def _legacy(job: dict) -> SourceJob:
    files = []
    for role, key in (("training", "training_files"), ("validation", "validation_files"),
                      ("result", "result_files")):
        files += [SourceFile(f["id"], role, f.get("bytes"), f.get("filename")) for f in job.get(key) or []]
    given = job.get("hyperparams") or {}
    hp = {k: _auto(given.get(k)) for k in HP_KEYS}
    notes = []
    if given.get("prompt_loss_weight") not in (None, 0.01):
        notes.append(f"prompt_loss_weight {given['prompt_loss_weight']} has no equivalent in the current "
                     "API; dropped")
    status = {"pending": "queued"}.get(job.get("status") or "", job.get("status") or "")
    return SourceJob(id=job["id"], legacy=True, model=job.get("model") or "", status=status,
                     created_at=int(job.get("created_at") or 0), fine_tuned_model=job.get("fine_tuned_model"),
                     files=files, hyperparameters=hp,
                     suffix=suffix_from_model(job.get("fine_tuned_model"), True), notes=notes)


def list_jobs(source: openai.OpenAI) -> list[SourceJob]:
    """Every job of the source, oldest first (a continued model's parent comes before it)."""
    jobs = [_current(j.model_dump()) for j in source.fine_tuning.jobs.list(limit=100)]
    jobs += [_legacy(j) for j in _legacy_list(source)]
    return sorted(jobs, key=lambda j: (j.created_at, j.id))


def _legacy_list(source: openai.OpenAI) -> list[dict]:
    try:
        page = source.get("/fine-tunes", cast_to=object)
    except openai.APIStatusError as exc:
        if exc.status_code in (403, 404, 405, 501):
            return []  # no legacy API there: no legacy jobs
        raise
    data = page.get("data") if isinstance(page, dict) else None
    return [j for j in data or [] if isinstance(j, dict) and j.get("id")]
