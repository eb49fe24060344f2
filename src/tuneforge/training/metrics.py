"""Metrics with OpenAI's names, and the results CSV.

The CSV header starts exactly as OpenAI's (`step,train_loss,train_accuracy,valid_loss,
valid_mean_token_accuracy`) and continues with the full-validation columns and the legacy API's columns,
so both the current and the 0.x tutorials find what they read. Validation cells are empty when not computed.
"""

from __future__ import annotations

import csv
from pathlib import Path

from tuneforge.training.step import StepStats

CSV_COLUMNS = [
    "step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy",
    "full_valid_loss", "full_valid_mean_token_accuracy",
    "elapsed_tokens", "elapsed_examples", "training_loss", "training_sequence_accuracy",
    "training_token_accuracy", "validation_loss", "validation_sequence_accuracy", "validation_token_accuracy",
]

# DPO jobs (method.type "dpo"): the loss, then the reward statistics of the pairs (docs/training.md).
DPO_CSV_COLUMNS = [
    "step", "train_loss", "train_reward_accuracy", "train_reward_margin", "train_chosen_reward",
    "train_rejected_reward", "valid_loss", "valid_reward_accuracy", "valid_reward_margin",
    "valid_chosen_reward", "valid_rejected_reward", "full_valid_loss", "full_valid_reward_accuracy",
    "full_valid_reward_margin", "elapsed_tokens", "elapsed_examples",
]


def step_metrics(step: int, train: StepStats, valid: StepStats | None) -> dict:
    out = {"step": step, "train_loss": train.loss, "train_mean_token_accuracy": train.token_accuracy,
           "training_loss": train.loss, "training_token_accuracy": train.token_accuracy,
           "training_sequence_accuracy": train.sequence_accuracy}
    if valid is not None and valid.n_tokens:
        out.update(valid_loss=valid.loss, valid_mean_token_accuracy=valid.token_accuracy,
                   validation_loss=valid.loss, validation_token_accuracy=valid.token_accuracy,
                   validation_sequence_accuracy=valid.sequence_accuracy)
    return out


def full_valid_metrics(valid: StepStats) -> dict:
    return {"full_valid_loss": valid.loss, "full_valid_mean_token_accuracy": valid.token_accuracy}


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class ResultsCSV:
    """Append-only per-step results; on resume, rows after the resume step are dropped first."""

    def __init__(self, path: Path, resume_step: int | None, columns: list[str] | None = None) -> None:
        self.path = path
        self.columns = columns or CSV_COLUMNS
        rows = []
        if resume_step is not None and path.is_file():
            with path.open(newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if r.get("step") and int(r["step"]) <= resume_step]
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, self.columns)
            writer.writeheader()
            writer.writerows({k: r.get(k, "") for k in self.columns} for r in rows)

    def write(self, metrics: dict) -> None:
        row = dict(metrics)
        row["train_accuracy"] = metrics.get("train_mean_token_accuracy")
        with self.path.open("a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, self.columns).writerow({k: _cell(row.get(k)) for k in self.columns})
