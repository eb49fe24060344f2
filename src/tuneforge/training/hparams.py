"""Resolve OpenAI's `"auto"` hyperparameters to concrete values, the way OpenAI does.

- n_epochs: the cookbook's heuristic (target 3 epochs; fewer than 100 example-passes raise it to
  `min(25, 100 // n)`, more than 25,000 lower it to `max(1, 25000 // n)`).
- batch_size: about 0.2% of the examples, at least 1 and at most 256 (OpenAI's documented legacy rule;
  the current API reports 1 for small files, which this reproduces).
- learning_rate_multiplier: 2.0 (OpenAI reports 1.8 or 2 for small files). The multiplier scales a base
  learning rate per method; the LoRA one was chosen by measurement (docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tuneforge.training.config import TrainConfig

BASE_LR = {"lora": 1e-3, "qlora": 1e-3, "full": 1e-5}
# DPO pushes the policy away from its own starting point rather than towards fixed text, and the usual DPO
# rates are far below supervised ones: a tenth of the supervised base rate. With it, auto DPO on the
# built-in base separates held-out pairs clearly (docs/training.md "Preference tuning (DPO)").
DPO_BASE_LR = {"lora": 1e-4, "full": 1e-6}
AUTO_LR_MULTIPLIER = 2.0
AUTO_BETA = 0.1  # DPO's beta for "auto": the value of the DPO paper and of most DPO recipes


@dataclass(frozen=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    learning_rate: float

    def public(self) -> dict:
        """The three values OpenAI reports on the job object."""
        return {"n_epochs": self.n_epochs, "batch_size": self.batch_size,
                "learning_rate_multiplier": self.learning_rate_multiplier}


def auto_epochs(n_examples: int) -> int:
    target, min_passes, max_passes = 3, 100, 25_000
    if n_examples * target < min_passes:
        return min(25, min_passes // max(1, n_examples))
    if n_examples * target > max_passes:
        return max(1, max_passes // n_examples)
    return target


def auto_batch_size(n_examples: int) -> int:
    return max(1, min(256, round(n_examples * 0.002)))


def resolve(config: TrainConfig, n_examples: int) -> Hyperparameters:
    epochs = auto_epochs(n_examples) if config.n_epochs == "auto" else int(config.n_epochs)
    batch = auto_batch_size(n_examples) if config.batch_size == "auto" else int(config.batch_size)
    batch = min(batch, max(1, n_examples))
    mult = AUTO_LR_MULTIPLIER if config.learning_rate_multiplier == "auto" \
        else float(config.learning_rate_multiplier)
    base_lr = DPO_BASE_LR if config.training_method == "dpo" else BASE_LR
    return Hyperparameters(epochs, batch, mult, base_lr[config.method] * mult)


def resolve_beta(config: TrainConfig) -> float:
    return AUTO_BETA if config.beta == "auto" else float(config.beta)
