"""The supervised fine-tuning recipe: config in, trained model + metrics + checkpoints out (`train` hands
DPO configs to dpo_run.py).

Every observable thing is an event dict (the same objects `python -m tuneforge.training` prints as JSON
lines): started, step, checkpoint, epoch_end, completed, cancelled. Failures raise `TrainingError`.
"""

from __future__ import annotations

import functools
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tuneforge.data.limits import min_examples
from tuneforge.models.methods import is_adapter
from tuneforge.training import checkpoint as ckpt
from tuneforge.training import distributed as dist
from tuneforge.training import precision
from tuneforge.training.config import ConfigError, TrainConfig
from tuneforge.training.dataset import DatasetError, batches_for_epoch, encode_rows, load_examples, pack
from tuneforge.training.hparams import Hyperparameters, resolve
from tuneforge.training.metrics import ResultsCSV, full_valid_metrics, step_metrics
from tuneforge.training.model import (
    freeze_linears_to_bf16,
    read_model_meta,
    save_model,
    trainable_parameters,
)
from tuneforge.training.parallel import Layout
from tuneforge.training.step import StepStats, eval_rows, total_weight, train_batch

Event = dict
Callback = Callable[[Event], None]
TOKEN_BUDGET = 8192  # tokens per packed forward pass; larger batches accumulate gradients


class TrainingError(RuntimeError):
    def __init__(self, message: str, code: str = "training_failed") -> None:
        super().__init__(message)
        self.code = code


@dataclass
class TrainResult:
    status: str  # "succeeded" | "cancelled"
    output_dir: str
    hyperparameters: dict
    step: int
    trained_tokens: int
    metrics: dict = field(default_factory=dict)
    final_dir: str | None = None
    n_truncated: int = 0


def configure_threads() -> int:
    """One intra-op thread per core this process may use (more only adds contention on a small CPU); the
    ranks torchrun started on this machine share its cores."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    n = max(1, n // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
    torch.set_num_threads(n)
    return n


def use_bf16(config: TrainConfig, device: str) -> bool:
    """The run's precision (training/precision.py: "auto" measures what this machine trains fastest)."""
    from tuneforge.settings import get_settings
    from tuneforge.training.model import architecture

    settings = get_settings()
    return precision.use_bf16(config.precision, device, settings.train_precision, settings.cache_dir,
                              architecture(config, settings), config.method)


def _lr_lambda(total: int, warmup: int) -> Callable[[int], float]:
    def fn(step: int) -> float:  # linear warmup, then linear decay to zero
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total - step) / max(1, total - warmup))
    return fn


def _base_name(config: TrainConfig) -> str:
    if config.init_from:
        return read_model_meta(config.init_from).get("base_model") or config.base_model
    return config.base_model


def train(config: TrainConfig, callbacks: Callback | list[Callback] | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Train per `config.training_method`: supervised (below) or DPO (dpo_run.py), in this process or as
    one rank of a torchrun launch (training/distributed.py)."""
    ranks = dist.init_ranks()
    try:
        if config.training_method == "dpo":
            if ranks.distributed:
                raise TrainingError("DPO jobs train in one process; start them without torchrun.",
                                    "invalid_config")
            from tuneforge.training.dpo_run import train_dpo

            return train_dpo(config, callbacks, should_stop)
        return _train_supervised(config, callbacks, should_stop, ranks)
    except Exception as exc:
        if not (ranks.distributed and dist.peer_lost(exc)):
            raise
        raise TrainingError(f"Data-parallel training stopped: {exc}. The checkpoints saved so far are "
                            "intact; a job retries from the last one.", "rank_lost") from exc
    finally:
        dist.close(ranks)


def _train_supervised(config: TrainConfig, callbacks: Callback | list[Callback] | None,
                      should_stop: Callable[[], bool] | None, ranks: dist.Ranks) -> TrainResult:
    from tuneforge.models import load_tokenizer
    from tuneforge.settings import get_settings

    emit = _emitter(callbacks) if ranks.main else _emitter(None)  # rank 0 speaks for the run
    should_stop = should_stop or (lambda: False)
    settings = get_settings()
    device = _device(ranks)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(_base_name(config), settings)
    train_set, valid_set = _load_data(config, tokenizer)
    n = len(train_set.examples)
    hp: Hyperparameters = resolve(config, n)
    total_steps = math.ceil(n / hp.batch_size) * hp.n_epochs
    bf16 = use_bf16(config, device)
    layout = Layout(ranks, config.method)
    model, optimizer, scheduler = _build(config, settings, device, bf16, hp.learning_rate, total_steps,
                                         layout)
    pos = {"epoch": 0, "batch": 0, "step": 0, "elapsed_tokens": 0, "elapsed_examples": 0, "valid_cursor": 0}
    existing, resumed = _resume(out, model, optimizer, scheduler, config, emit, layout) if config.resume \
        else ([], None)
    pos = resumed or pos
    if not ranks.main:  # the same weights, but each rank its own dropout masks
        torch.manual_seed(config.seed + 7919 * ranks.rank + pos["step"])
    resumed_from = pos["step"] if resumed else None
    results = ResultsCSV(out / "results.csv", resumed_from) if ranks.main else None
    emit({"type": "started", "total_steps": total_steps, "hyperparameters": hp.public(),
          "resumed_from_step": resumed_from, "learning_rate": hp.learning_rate, "n_examples": n,
          "n_truncated": train_set.n_truncated, "n_skipped": train_set.n_skipped, "bf16": bf16,
          "device": device, "method": config.method, "processes": ranks.size, "layout": layout.name})
    _report_restored(existing, emit)

    save = functools.partial(_checkpoint, layout, out, pos, model, optimizer, scheduler, config, tokenizer)
    eval_every = config.eval_every or max(1, total_steps // 10)
    started, tokens_this_run, steps_this_run = time.monotonic(), 0, 0
    last_metrics: dict = {}
    while pos["epoch"] < hp.n_epochs:
        batches = batches_for_epoch(n, hp.batch_size, config.seed, pos["epoch"])
        while pos["batch"] < len(batches):
            if dist.any_rank(ranks, should_stop()):  # every rank stops at the same step
                path = save(last_metrics) if steps_this_run else None
                emit({"type": "cancelled", "step": pos["step"], "checkpoint": str(path) if path else None})
                return TrainResult("cancelled", str(out), hp.public(), pos["step"], pos["elapsed_tokens"],
                                   last_metrics)
            batch = batches[pos["batch"]]
            mine = [train_set.examples[i] for i in dist.shard(batch, ranks)]
            stats = _train_step(model, mine, train_set.examples[batch[0]], device, bf16, layout)
            if not math.isfinite(stats.loss):
                _non_finite(stats.loss, pos["step"] + 1, out)
            _apply_step(model, optimizer, scheduler, pos, stats.n_input_tokens, len(batch))
            tokens_this_run += stats.n_input_tokens
            steps_this_run += 1
            evaluate = pos["step"] % eval_every == 0 or pos["step"] == total_steps
            last_metrics = _metrics(model, stats, valid_set, pos, evaluate, pos["batch"] == len(batches),
                                    hp.batch_size, device, bf16, layout)
            if results is not None:
                results.write({**last_metrics, "elapsed_tokens": pos["elapsed_tokens"],
                               "elapsed_examples": pos["elapsed_examples"]})
            emit(_step_event(last_metrics, pos, total_steps, time.monotonic() - started, tokens_this_run,
                             steps_this_run, scheduler.get_last_lr()[0]))
        epoch = pos["epoch"] + 1
        pos["epoch"], pos["batch"] = epoch, 0
        full = {k: v for k, v in last_metrics.items() if k.startswith("full_valid")}
        path = save(last_metrics)
        emit({"type": "checkpoint", "step": pos["step"], "epoch": epoch, "path": str(path),
              "metrics": dict(last_metrics)})
        emit({"type": "epoch_end", "epoch": epoch, **full})

    weights = layout.model_state(model)
    if not ranks.main:
        return TrainResult("succeeded", str(out), hp.public(), pos["step"], pos["elapsed_tokens"],
                           last_metrics)
    final = _save_final(layout.inner(model), out, config, tokenizer, hp, pos["step"], weights)
    emit({"type": "completed", "output_dir": str(out), "model_dir": str(final),
          "trained_tokens": pos["elapsed_tokens"],
          "results_csv": str(out / "results.csv"), "metrics": dict(last_metrics)})
    return TrainResult("succeeded", str(out), hp.public(), pos["step"], pos["elapsed_tokens"], last_metrics,
                       str(final), train_set.n_truncated)


def _checkpoint(layout: Layout, out: Path, pos: dict, model, optimizer, scheduler, config: TrainConfig,
                tokenizer, metrics: dict) -> Path | None:
    """Save a checkpoint at the current position: every rank takes part in gathering a sharded model, rank 0
    writes (the others get None)."""
    weights = layout.model_state(model)
    optimizer_state, optimizer_format = layout.optimizer_state(model, optimizer)
    if not layout.ranks.main:
        return None
    return ckpt.save_checkpoint(out, pos["step"], layout.inner(model), optimizer_state, scheduler, dict(pos),
                                config, tokenizer, config.checkpoints_to_keep, metrics, model_state=weights,
                                optimizer_format=optimizer_format)


def _step_event(metrics: dict, pos: dict, total_steps: int, spent: float, tokens_this_run: int,
                steps_this_run: int, learning_rate: float) -> Event:
    return {"type": "step", **metrics, "total_steps": total_steps, "epoch": pos["epoch"] + 1,
            "tokens_per_second": tokens_this_run / max(spent, 1e-9),
            "eta_seconds": spent / steps_this_run * (total_steps - pos["step"]),
            "elapsed_tokens": pos["elapsed_tokens"], "elapsed_examples": pos["elapsed_examples"],
            "learning_rate": learning_rate}


def _train_step(model, examples, filler, device: str, bf16: bool, layout: Layout) -> StepStats:
    """Forward and backward over this rank's share of a batch; returns the whole batch's stats, with the
    gradients summed over ranks. The loss is divided by the global batch's trained tokens. `filler`: an
    example of the batch, run with no weight where a sharded rank has fewer rows than another."""
    ranks = layout.ranks
    model.train()
    rows = pack(examples, TOKEN_BUDGET)
    norm = dist.sum_floats(ranks, [total_weight(rows)])[0] / layout.loss_scale if ranks.distributed else None
    padding = layout.padding(rows, pack([filler], TOKEN_BUDGET))
    stats = train_batch(model, rows, device, bf16, norm=norm, padding=padding)
    layout.after_backward(model)
    return dist.sum_stats(ranks, stats)


def _evaluate(model, examples, device: str, bf16: bool, layout: Layout) -> StepStats:
    """Loss and accuracy over `examples`, each rank taking its share."""
    model.eval()
    rows = pack(dist.shard(examples, layout.ranks), TOKEN_BUDGET)
    padding = layout.padding(rows, pack(examples[:1], TOKEN_BUDGET))
    return dist.sum_stats(layout.ranks, eval_rows(model, rows, device, bf16, padding=padding))


def _small_valid_batch(model, examples, pos: dict, batch_size: int, device: str, bf16: bool,
                       layout: Layout) -> StepStats:
    """OpenAI's per-step `valid_loss`: a small rotating batch of the validation set."""
    size = min(len(examples), max(batch_size, 4))
    start = pos["valid_cursor"] % len(examples)
    chosen = [examples[(start + i) % len(examples)] for i in range(size)]
    pos["valid_cursor"] = start + size
    return _evaluate(model, chosen, device, bf16, layout)


__all__ = ["ConfigError", "TrainConfig", "TrainResult", "TrainingError", "train"]


def _load_data(config: TrainConfig, tokenizer):
    """The encoded training and validation sets; a bad file raises TrainingError naming its line."""
    try:
        train_rows = load_examples(config.training_file, tokenizer, min_examples=config.min_examples)
        valid_rows = load_examples(config.validation_file, tokenizer,
                                   min_examples=min_examples("validation", False)) \
            if config.validation_file else []
    except DatasetError as exc:
        raise TrainingError(str(exc), exc.code) from exc
    train_set = encode_rows(train_rows, tokenizer, config.max_seq_length, config.prompt_loss_weight)
    valid_set = encode_rows(valid_rows, tokenizer, config.max_seq_length, config.prompt_loss_weight)
    if not train_set.examples:
        raise TrainingError(f"{Path(config.training_file).name}: no example has any token to train on "
                            "(every assistant turn has weight 0?).", "invalid_training_file")
    return train_set, valid_set


def _resume(out: Path, model, optimizer, scheduler, config: TrainConfig, emit: Callback,
            layout: Layout | None = None):
    """Restore the newest readable checkpoint, falling back past unreadable ones (a truncated or corrupt
    file, e.g. a crash while saving); returns (the checkpoints still usable, the position or None)."""
    existing = ckpt.list_checkpoints(out)
    while existing:
        folder = existing[-1]
        try:
            state = ckpt.load_training_state(folder)
            layout = layout or Layout(dist.Ranks(), config.method)
            layout.load(model, optimizer, folder, state, config.method)
            scheduler.load_state_dict(state["scheduler"])
            position = dict(state["position"])
        except Exception as exc:  # any unreadable part makes the checkpoint unusable: try the one before
            emit({"type": "checkpoint_skipped", "checkpoint": folder.name,
                  "message": f"Skipped checkpoint {folder.name}: it cannot be read "
                             f"({type(exc).__name__}: {str(exc)[:200]}); resuming from the one before."})
            existing = existing[:-1]
            continue
        ckpt.restore_rng(state["rng"])
        return existing, position
    return [], None


def _non_finite(loss: float, step: int, out: Path) -> None:
    kept = ckpt.list_checkpoints(out)
    where = f"the last good checkpoint ({kept[-1].name}) is kept" if kept else "no checkpoint was made yet"
    raise TrainingError(
        f"Training loss became {loss} at step {step}; {where}. Lower "
        "learning_rate_multiplier or check the data for extreme examples.", "non_finite_loss")


def _metrics(model, stats: StepStats, valid_set, pos: dict, evaluate: bool, epoch_end: bool,
             batch_size: int, device: str, bf16: bool, layout: Layout) -> dict:
    valid = None
    if valid_set.examples and evaluate:
        valid = _small_valid_batch(model, valid_set.examples, pos, batch_size, device, bf16, layout)
    metrics = step_metrics(pos["step"], stats, valid)
    if valid_set.examples and epoch_end:
        # OpenAI reports the full validation loss with the last step of each epoch.
        metrics.update(_full_valid(model, valid_set, device, bf16, layout))
    return metrics


def _full_valid(model, valid_set, device: str, bf16: bool, layout: Layout) -> dict:
    """The full validation metrics; when the answers are in several languages, also per language
    (`full_valid_by_language`, a tuneforge extension), from the same passes: each language's examples are
    evaluated apart and the sums added."""
    groups: dict[str, list] = {}
    for example, code in zip(valid_set.examples, valid_set.languages, strict=True):
        groups.setdefault(code, []).append(example)
    if len(groups) < 2:
        return full_valid_metrics(_evaluate(model, valid_set.examples, device, bf16, layout))
    parts = {code: _evaluate(model, examples, device, bf16, layout) for code, examples in groups.items()}
    metrics = full_valid_metrics(StepStats.total(parts.values()))
    metrics["full_valid_by_language"] = {
        code: {"examples": len(groups[code]), "loss": s.loss, "mean_token_accuracy": s.token_accuracy}
        for code, s in sorted(parts.items(), key=lambda kv: -len(groups[kv[0]]))}
    return metrics


def _build(config: TrainConfig, settings, device: str, bf16: bool, lr: float, total_steps: int,
           layout: Layout | None = None):
    """The model (LoRA adapter or every weight trainable, per `config.method`, laid out over the ranks;
    default: one process), AdamW and the schedule."""
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    layout = layout or Layout(dist.Ranks(), config.method)
    model = layout.build(config, settings, device, bf16)
    layout.after_build(model)
    if bf16 and device == "cpu" and config.method == "lora":
        freeze_linears_to_bf16(model)
    optimizer = torch.optim.AdamW(trainable_parameters(model), lr=lr, weight_decay=0.0)
    warmup = int(total_steps * config.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(total_steps, warmup))
    return model, optimizer, scheduler


def _save_final(model, out: Path, config: TrainConfig, tokenizer, hp: Hyperparameters, step: int,
                weights: dict | None = None) -> Path:
    return save_model(model, out / "final", config, tokenizer, state_dict=weights,
                      extra={"hyperparameters": hp.public(), "learning_rate": hp.learning_rate,
                             "lora": config.to_json()["lora"] if is_adapter(config.method) else None,
                             "seed": config.seed, "step": step})


def _emitter(callbacks: Callback | list[Callback] | None) -> Callback:
    emit_to = callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []

    def emit(event: Event) -> None:
        for cb in emit_to:
            cb(event)
    return emit


def _device(ranks: dist.Ranks) -> str:
    device = dist.device_for(ranks)
    if device == "cpu":
        configure_threads()
    return device


def _apply_step(model, optimizer, scheduler, pos: dict, n_tokens: int, n_examples: int) -> None:
    """Clip, step the optimizer and the schedule, and advance the position a resume restores."""
    torch.nn.utils.clip_grad_norm_(trainable_parameters(model), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    pos["step"] += 1
    pos["batch"] += 1
    pos["elapsed_tokens"] += n_tokens
    pos["elapsed_examples"] += n_examples


def _report_restored(existing: list[Path], emit: Callback) -> None:
    for folder in existing:  # a run killed before it reported these must not lose them from the job
        step, metrics = ckpt.saved_step_and_metrics(folder)
        emit({"type": "checkpoint", "step": step, "path": str(folder), "metrics": metrics, "restored": True})
