"""Fine-tuning shapes: OpenAI's current job API (reference §6) and the 0.x `/v1/fine-tunes` API (§11.1)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt

from tuneforge.api.schemas.common import IdListPage, ListPage
from tuneforge.store.tables_jobs import Checkpoint, Job, JobEvent


def _no_bool(value: Any) -> Any:
    """JSON true is not the number 1 (pydantic would take it as one)."""
    if isinstance(value, bool):
        raise ValueError("expected a number or \"auto\", got a boolean")
    return value


Auto = Literal["auto"]
# Strict numbers, as OpenAI's: "5", true or NaN are refused, not read as 5, 1 or NaN.
NEpochs = Auto | Annotated[StrictInt, Field(ge=1, le=50)]
BatchSize = Auto | Annotated[StrictInt, Field(ge=1, le=256)]
LrMultiplier = Auto | Annotated[float, Field(gt=0, le=100, allow_inf_nan=False), BeforeValidator(_no_bool)]
# DPO's beta, as OpenAI bounds it: "auto" (0.1 here, docs/training.md) or 0 < beta <= 2.
Beta = Auto | Annotated[float, Field(gt=0, le=2, allow_inf_nan=False), BeforeValidator(_no_bool)]


class WandbSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(..., min_length=1, max_length=128)
    name: str | None = Field(None, max_length=128)
    entity: str | None = Field(None, max_length=128)
    tags: list[Annotated[str, Field(max_length=64)]] | None = Field(None, max_length=50)


class Integration(BaseModel):
    """OpenAI's one integration type. Stored and returned; tuneforge sends nothing to Weights & Biases."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["wandb"]
    wandb: WandbSettings


class Hyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n_epochs: NEpochs = "auto"
    batch_size: BatchSize = "auto"
    learning_rate_multiplier: LrMultiplier = "auto"


class SupervisedMethod(BaseModel):
    hyperparameters: Hyperparameters | None = None


class DpoHyperparameters(Hyperparameters):
    beta: Beta = "auto"


class DpoMethod(BaseModel):
    hyperparameters: DpoHyperparameters | None = None


class Method(BaseModel):
    type: Literal["supervised", "dpo", "reinforcement"] = "supervised"
    supervised: SupervisedMethod | None = None
    dpo: DpoMethod | None = None
    model_config = ConfigDict(extra="allow")  # reinforcement settings: refused later with a message


class JobCreate(BaseModel):
    """`POST /v1/fine_tuning/jobs` (unknown fields are ignored, as newer SDKs may send more)."""

    model: str = Field(..., min_length=1, max_length=512)
    training_file: str = Field(..., min_length=1, max_length=200)
    validation_file: str | None = Field(None, max_length=200)
    hyperparameters: Hyperparameters | None = None
    method: Method | None = None
    suffix: str | None = Field(None, min_length=1, max_length=64)
    seed: int | None = Field(None, ge=0, le=2147483647)
    # OpenAI's caps: a client could otherwise store thousands of entries on one job.
    integrations: list[Integration] | None = Field(None, max_length=16)
    # tuneforge's extension (OpenAI picks this itself): "full" trains every weight instead of a LoRA adapter;
    # "qlora" trains the adapter on a 4-bit (NF4) copy of the base (needs bitsandbytes on the server).
    training_type: Literal["lora", "qlora", "full"] = "lora"
    # tuneforge's extension: at most this many training processes (data-parallel ranks, docs/scale.md); the
    # worker's TUNEFORGE_TRAIN_PROCESSES decides how many it has.
    max_processes: int | None = Field(None, ge=1, le=1024)
    metadata: dict[Annotated[str, Field(max_length=64)],
                   Annotated[str, Field(max_length=512)]] | None = Field(None, max_length=16)

    def chosen_hyperparameters(self) -> dict[str, Any]:
        """`method.<type>.hyperparameters`, else the deprecated top-level ones, else all "auto" (DPO adds
        `beta`)."""
        if self.method and self.method.type == "dpo":
            method_hp = self.method.dpo.hyperparameters if self.method.dpo else None
            top = self.hyperparameters.model_dump() if self.hyperparameters else {}
            return (method_hp or DpoHyperparameters(**top)).model_dump()
        method_hp = self.method.supervised.hyperparameters if self.method and self.method.supervised else None
        chosen = method_hp or self.hyperparameters or Hyperparameters()
        return chosen.model_dump()


class JobError(BaseModel):
    code: str | None = None
    message: str | None = None
    param: str | None = None


class FineTuningJob(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError
    fine_tuned_model: str | None
    finished_at: int | None
    hyperparameters: dict[str, Any] | None  # null for DPO jobs, as OpenAI's: see method.dpo
    model: str
    organization_id: str
    result_files: list[str]
    seed: int
    status: str
    trained_tokens: int | None
    training_file: str
    validation_file: str | None
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    method: dict[str, Any] | None = None
    user_provided_suffix: str | None = None


class JobEventObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: str
    message: str
    type: str
    data: dict[str, Any] | None = None


class CheckpointObject(BaseModel):
    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    step_number: int
    metrics: dict[str, float | int | None]


JobList = ListPage[FineTuningJob]
EventList = ListPage[JobEventObject]
CheckpointList = IdListPage[CheckpointObject]


def public_hyperparameters(job: Job) -> dict[str, Any]:
    """The requested values until the trainer resolves "auto", then the resolved ones."""
    keys = ("batch_size", "learning_rate_multiplier", "n_epochs")
    if job.method == "dpo":
        keys = ("batch_size", "beta", "learning_rate_multiplier", "n_epochs")
    resolved = job.resolved_hyperparameters or {}
    return {k: resolved.get(k, (job.hyperparameters or {}).get(k, "auto")) for k in keys}


def job_object(job: Job) -> dict[str, Any]:
    hp = public_hyperparameters(job)
    return {
        "id": job.id, "object": "fine_tuning.job", "created_at": job.created_at,
        "error": job.error or {"code": None, "message": None, "param": None},
        "fine_tuned_model": job.fine_tuned_model, "finished_at": job.finished_at,
        # OpenAI: "only returned for supervised jobs"; DPO's (with beta) are under method.dpo.
        "hyperparameters": None if job.method == "dpo" else hp,
        "model": job.model, "organization_id": job.organization, "result_files": list(job.result_files or []),
        "seed": job.seed, "status": job.status, "trained_tokens": job.trained_tokens,
        "training_file": job.training_file, "validation_file": job.validation_file,
        "estimated_finish": job.estimated_finish if job.status == "running" else None,
        "integrations": job.integrations, "metadata": job.job_metadata,
        "method": {"type": job.method, job.method: {"hyperparameters": hp}},
        "user_provided_suffix": job.user_provided_suffix,
        "training_type": job.training_type,  # tuneforge's extension: lora | qlora | full
        "max_processes": job.max_processes,  # tuneforge's extension: the cap on training processes
    }


def event_object(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "object": "fine_tuning.job.event", "created_at": event.created_at,
            "level": event.level, "message": event.message, "type": event.type, "data": event.data or {}}


def checkpoint_object(ckpt: Checkpoint) -> dict[str, Any]:
    return {"id": ckpt.id, "object": "fine_tuning.job.checkpoint", "created_at": ckpt.created_at,
            "fine_tuned_model_checkpoint": ckpt.fine_tuned_model_checkpoint,
            "fine_tuning_job_id": ckpt.job_id,
            "step_number": ckpt.step_number, "metrics": dict(ckpt.metrics or {})}


# --- the 0.x API -------------------------------------------------------------------------------------

class LegacyFineTuneCreate(BaseModel):
    """`POST /v1/fine-tunes` as `openai api fine_tunes.create` sends it."""

    training_file: str = Field(..., min_length=1, max_length=200)
    validation_file: str | None = Field(None, max_length=200)
    model: str = Field("curie", min_length=1, max_length=512)
    n_epochs: StrictInt | None = Field(4, ge=1, le=50)
    batch_size: StrictInt | None = Field(None, ge=1, le=256)
    learning_rate_multiplier: Annotated[float, BeforeValidator(_no_bool)] | None = Field(
        None, gt=0, le=100, allow_inf_nan=False)
    prompt_loss_weight: Annotated[float, BeforeValidator(_no_bool)] | None = Field(
        0.01, ge=0, le=1, allow_inf_nan=False)
    compute_classification_metrics: bool | None = False
    classification_n_classes: int | None = Field(None, ge=1)
    classification_positive_class: str | None = None
    classification_betas: list[float] | None = None
    suffix: str | None = Field(None, max_length=40)


LEGACY_STATUS = {"validating_files": "pending", "queued": "pending"}


class LegacyEvent(BaseModel):
    object: Literal["fine-tune-event"] = "fine-tune-event"
    created_at: int
    level: str
    message: str


class LegacyFineTune(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    object: Literal["fine-tune"] = "fine-tune"
    model: str
    created_at: int
    updated_at: int
    status: str
    fine_tuned_model: str | None
    hyperparams: dict[str, Any]
    organization_id: str
    training_files: list[dict[str, Any]]
    validation_files: list[dict[str, Any]]
    result_files: list[dict[str, Any]]
    events: list[LegacyEvent] | None = None


LegacyFineTuneList = ListPage[LegacyFineTune]
LegacyEventList = ListPage[LegacyEvent]


def legacy_event(event: JobEvent) -> dict[str, Any]:
    return {"object": "fine-tune-event", "created_at": event.created_at, "level": event.level,
            "message": event.message}


def legacy_job_object(job: Job, files: dict[str, dict[str, Any]], events: list[JobEvent] | None) -> dict:
    """`files` maps file ids to File objects (the 0.x shape embeds them)."""
    hp = public_hyperparameters(job)
    hyperparams = {k: (None if v == "auto" else v) for k, v in hp.items()}
    hyperparams["prompt_loss_weight"] = (job.hyperparameters or {}).get("prompt_loss_weight", 0.01)
    out = {
        "id": job.id, "object": "fine-tune", "model": job.model, "created_at": job.created_at,
        "updated_at": job.updated_at, "status": LEGACY_STATUS.get(job.status, job.status),
        "fine_tuned_model": job.fine_tuned_model, "hyperparams": hyperparams,
        "organization_id": job.organization,
        "training_files": [files[job.training_file]],
        "validation_files": [files[job.validation_file]] if job.validation_file else [],
        "result_files": [files[f] for f in job.result_files or []],
    }
    if events is not None:
        out["events"] = [legacy_event(e) for e in events]
    return out
