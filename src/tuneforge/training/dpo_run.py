"""The DPO recipe (`training_method: "dpo"`): preference pairs in, a model that prefers the preferred
answers out, with the same events, checkpoints, resume and results CSV as supervised training (run.py).

The reference model is the model training starts from (the base, or the `ft:` model a job continues):
before the first step, the log-probabilities of every pair's two answers under it are computed once and
saved to `dpo_reference.pt` in the output folder. Training then needs no second model and no second
forward pass per step, and a resumed run reads the same reference back instead of recomputing it from
weights that have moved. For a fresh LoRA adapter this is exactly "the same weights with the adapter
disabled" (a new adapter starts as the identity); for `training_type: full` it is a frozen copy of the
starting weights, without holding that copy in memory.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from tuneforge.data.limits import min_examples
from tuneforge.data.preference import EncodedPair, encode_pair
from tuneforge.training import checkpoint as ckpt
from tuneforge.training.config import TrainConfig
from tuneforge.training.dataset import DatasetError, batches_for_epoch, load_examples
from tuneforge.training.distributed import Ranks
from tuneforge.training.dpo import DPOStats, eval_pairs, pair_logps, train_pairs
from tuneforge.training.hparams import resolve, resolve_beta
from tuneforge.training.metrics import DPO_CSV_COLUMNS, ResultsCSV
from tuneforge.training.model import save_model
from tuneforge.training.run import (
    TOKEN_BUDGET,
    Callback,
    TrainingError,
    TrainResult,
    _apply_step,
    _base_name,
    _build,
    _device,
    _emitter,
    _non_finite,
    _report_restored,
    _resume,
    use_bf16,
)

REFERENCE_FILE = "dpo_reference.pt"


@dataclass
class PairSet:
    pairs: list[EncodedPair]
    n_truncated: int
    n_skipped: int  # pairs whose answer was cut away entirely by max_seq_length


def encode_pairs(rows: list[dict], tokenizer, max_length: int) -> PairSet:
    kept, truncated, skipped = [], 0, 0
    for row in rows:
        pair = encode_pair(row, tokenizer, max_length)
        truncated += pair.truncated
        if not pair.trainable:
            skipped += 1
            continue
        kept.append(pair)
    return PairSet(kept, truncated, skipped)


def _load_pairs(config: TrainConfig, tokenizer) -> tuple[PairSet, PairSet]:
    try:
        train_rows = load_examples(config.training_file, tokenizer, min_examples=config.min_examples,
                                   method="dpo")
        valid_rows = load_examples(config.validation_file, tokenizer, method="dpo",
                                   min_examples=min_examples("validation", False)) \
            if config.validation_file else []
    except DatasetError as exc:
        raise TrainingError(str(exc), exc.code) from exc
    train_set = encode_pairs(train_rows, tokenizer, config.max_seq_length)
    valid_set = encode_pairs(valid_rows, tokenizer, config.max_seq_length)
    if not train_set.pairs:
        raise TrainingError(f"{Path(config.training_file).name}: no pair has an answer left to compare "
                            f"within max_seq_length={config.max_seq_length} tokens; shorten the prompts.",
                            "invalid_training_file")
    return train_set, valid_set


def reference_logps(out: Path, model, sets: tuple[PairSet, PairSet], device: str, bf16: bool):
    """(train, valid) reference log-probs [n, 2]: read back when saved for these data, else computed now
    with the model as built (the starting weights) and saved atomically."""
    path = out / REFERENCE_FILE
    sizes = [len(s.pairs) for s in sets]
    if path.is_file():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if [saved["train"].shape[0], saved["valid"].shape[0]] == sizes:
            return saved["train"], saved["valid"]
    train_ref, valid_ref = (pair_logps(model, s.pairs, device, bf16, TOKEN_BUDGET) for s in sets)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save({"train": train_ref, "valid": valid_ref}, tmp)
    os.replace(tmp, path)
    return train_ref, valid_ref


class DPORun:
    """One DPO training run; `run()` returns the TrainResult, events go to `emit`."""

    def __init__(self, config: TrainConfig, emit: Callback, should_stop: Callable[[], bool]):
        from tuneforge.models import load_tokenizer
        from tuneforge.settings import get_settings

        self.config, self.emit, self.should_stop = config, emit, should_stop
        settings = get_settings()
        self.device = _device(Ranks())  # DPO trains in one process (training/run.py:train)
        self.out = Path(config.output_dir)
        self.out.mkdir(parents=True, exist_ok=True)
        self.tokenizer = load_tokenizer(_base_name(config), settings)
        self.train_set, self.valid_set = _load_pairs(config, self.tokenizer)
        n = len(self.train_set.pairs)
        self.hp, self.beta = resolve(config, n), resolve_beta(config)
        self.public = {**self.hp.public(), "beta": self.beta}
        self.total_steps = math.ceil(n / self.hp.batch_size) * self.hp.n_epochs
        self.bf16 = use_bf16(config, self.device)
        self.model, self.optimizer, self.scheduler = _build(config, settings, self.device, self.bf16,
                                                            self.hp.learning_rate, self.total_steps)
        sets = (self.train_set, self.valid_set)
        self.ref_train, self.ref_valid = reference_logps(self.out, self.model, sets, self.device, self.bf16)
        self.pos = {"epoch": 0, "batch": 0, "step": 0, "elapsed_tokens": 0, "elapsed_examples": 0,
                    "valid_cursor": 0}
        self.existing, resumed = _resume(self.out, self.model, self.optimizer, self.scheduler, config, emit) \
            if config.resume else ([], None)
        self.resumed_from = resumed["step"] if resumed else None
        self.pos = resumed or self.pos
        self.results = ResultsCSV(self.out / "results.csv", self.resumed_from, DPO_CSV_COLUMNS)
        self.last_metrics: dict = {}

    def _started(self) -> None:
        self.emit({"type": "started", "total_steps": self.total_steps, "hyperparameters": self.public,
                   "resumed_from_step": self.resumed_from, "learning_rate": self.hp.learning_rate,
                   "n_examples": len(self.train_set.pairs), "n_truncated": self.train_set.n_truncated,
                   "n_skipped": self.train_set.n_skipped, "bf16": self.bf16, "device": self.device,
                   "method": self.config.method, "training_method": "dpo", "beta": self.beta})
        _report_restored(self.existing, self.emit)

    def _save(self) -> Path:
        return ckpt.save_checkpoint(self.out, self.pos["step"], self.model, self.optimizer.state_dict(),
                                    self.scheduler,
                                    dict(self.pos), self.config, self.tokenizer,
                                    self.config.checkpoints_to_keep, self.last_metrics)

    def _valid(self, indices: list[int]) -> DPOStats:
        self.model.eval()
        return eval_pairs(self.model, self.valid_set.pairs, self.ref_valid, indices, self.device, self.bf16,
                          self.beta, TOKEN_BUDGET)

    def _metrics(self, stats: DPOStats, evaluate: bool, epoch_end: bool) -> dict:
        metrics = {"step": self.pos["step"], **stats.metrics("train")}
        n_valid = len(self.valid_set.pairs)
        if n_valid and evaluate:  # a small rotating batch, as supervised `valid_loss`
            size = min(n_valid, max(self.hp.batch_size, 4))
            start = self.pos["valid_cursor"] % n_valid
            self.pos["valid_cursor"] = start + size
            metrics.update(self._valid([(start + i) % n_valid for i in range(size)]).metrics("valid"))
        if n_valid and epoch_end:
            full = self._valid(list(range(n_valid))).metrics("full_valid")
            metrics.update({k: full[k] for k in ("full_valid_loss", "full_valid_reward_accuracy",
                                                 "full_valid_reward_margin")})
        return metrics

    def _step(self, indices: list[int], started: float, counters: dict) -> None:
        self.model.train()
        stats = train_pairs(self.model, self.train_set.pairs, self.ref_train, indices, self.device,
                            self.bf16, self.beta, TOKEN_BUDGET)
        if not math.isfinite(stats.loss):
            _non_finite(stats.loss, self.pos["step"] + 1, self.out)
        _apply_step(self.model, self.optimizer, self.scheduler, self.pos, stats.n_input_tokens, len(indices))
        counters["tokens"] += stats.n_input_tokens
        counters["steps"] += 1
        eval_every = self.config.eval_every or max(1, self.total_steps // 10)
        step = self.pos["step"]
        self.last_metrics = self._metrics(stats, step % eval_every == 0 or step == self.total_steps,
                                          counters["epoch_end"])
        self.results.write({**self.last_metrics, "elapsed_tokens": self.pos["elapsed_tokens"],
                            "elapsed_examples": self.pos["elapsed_examples"]})
        spent = time.monotonic() - started
        self.emit({"type": "step", **self.last_metrics, "total_steps": self.total_steps,
                   "epoch": self.pos["epoch"] + 1, "tokens_per_second": counters["tokens"] / max(spent, 1e-9),
                   "eta_seconds": spent / counters["steps"] * (self.total_steps - step),
                   "elapsed_tokens": self.pos["elapsed_tokens"],
                   "elapsed_examples": self.pos["elapsed_examples"],
                   "learning_rate": self.scheduler.get_last_lr()[0]})

    def run(self) -> TrainResult:
        self._started()
        started, counters = time.monotonic(), {"tokens": 0, "steps": 0, "epoch_end": False}
        n = len(self.train_set.pairs)
        while self.pos["epoch"] < self.hp.n_epochs:
            batches = batches_for_epoch(n, self.hp.batch_size, self.config.seed, self.pos["epoch"])
            while self.pos["batch"] < len(batches):
                if self.should_stop():
                    path = self._save() if counters["steps"] else None
                    self.emit({"type": "cancelled", "step": self.pos["step"],
                               "checkpoint": str(path) if path else None})
                    return self._result("cancelled")
                counters["epoch_end"] = self.pos["batch"] + 1 == len(batches)
                self._step(batches[self.pos["batch"]], started, counters)
            self.pos["epoch"], self.pos["batch"] = self.pos["epoch"] + 1, 0
            path = self._save()
            self.emit({"type": "checkpoint", "step": self.pos["step"], "epoch": self.pos["epoch"],
                       "path": str(path), "metrics": dict(self.last_metrics)})
            full = {k: v for k, v in self.last_metrics.items() if k.startswith("full_valid")}
            self.emit({"type": "epoch_end", "epoch": self.pos["epoch"], **full})
        final = save_model(self.model, self.out / "final", self.config, self.tokenizer, extra={
            "hyperparameters": self.public, "learning_rate": self.hp.learning_rate, "training_method": "dpo",
            "lora": self.config.to_json()["lora"] if self.config.method == "lora" else None,
            "seed": self.config.seed, "step": self.pos["step"]})
        self.emit({"type": "completed", "output_dir": str(self.out), "model_dir": str(final),
                   "trained_tokens": self.pos["elapsed_tokens"], "results_csv": str(self.out / "results.csv"),
                   "metrics": dict(self.last_metrics)})
        return self._result("succeeded", str(final))

    def _result(self, status: str, final: str | None = None) -> TrainResult:
        return TrainResult(status, str(self.out), self.public, self.pos["step"], self.pos["elapsed_tokens"],
                           self.last_metrics, final, self.train_set.n_truncated)


def train_dpo(config: TrainConfig, callbacks: Callback | list[Callback] | None = None,
              should_stop: Callable[[], bool] | None = None) -> TrainResult:
    return DPORun(config, _emitter(callbacks), should_stop or (lambda: False)).run()
