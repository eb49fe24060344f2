"""The training configuration (`train_config.json`), checked before any compute is spent."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tuneforge.models.methods import METHODS

# LoRA defaults chosen by measurement on SmolLM2-135M with the bundled support data (docs/training.md):
# attention and MLP projections, rank 16, alpha 32.
DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class ConfigError(ValueError):
    """The configuration is unusable; the message names the field and what to do."""

    code = "invalid_config"


@dataclass
class LoraOptions:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))


@dataclass
class TrainConfig:
    base_model: str
    training_file: str
    output_dir: str
    validation_file: str | None = None
    method: str = "lora"
    n_epochs: int | str = "auto"
    batch_size: int | str = "auto"
    learning_rate_multiplier: float | str = "auto"
    seed: int = 42
    prompt_loss_weight: float = 0.0
    lora: LoraOptions = field(default_factory=LoraOptions)
    max_seq_length: int = 2048
    warmup_ratio: float = 0.05
    init_from: str | None = None
    resume: bool = False
    # Validation loss on a small batch every `eval_every` steps (0: about 10 times per run).
    eval_every: int = 0
    # "auto": bf16 autocast where it is exact enough (CPU with bf16 support, CUDA); "fp32" turns it off.
    precision: str = "auto"
    checkpoints_to_keep: int = 3
    # Recompute each decoder layer's activations in the backward pass instead of keeping them: less memory
    # for long sequences or big models, about a third more compute. The worker sets it from
    # TUNEFORGE_GRADIENT_CHECKPOINTING.
    gradient_checkpointing: bool = False
    # Fewest training examples: data.limits.min_examples("training", legacy); the job runner writes it.
    min_examples: int = 10
    # The objective: "supervised" (next-token loss) or "dpo" (preference pairs, docs/training.md).
    training_method: str = "supervised"
    # DPO's beta: "auto" (0.1) or 0 < beta <= 2, as OpenAI accepts; unused by supervised training.
    beta: float | str = "auto"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "train_config.json") -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)}. "
                              f"Known keys: {', '.join(sorted(known))}.")
        for key in ("base_model", "training_file", "output_dir"):
            if not raw.get(key):
                raise ConfigError(f"{source}: '{key}' is required.")
        data = dict(raw)
        lora = data.pop("lora", None) or {}
        lora_known = {f.name for f in fields(LoraOptions)}
        if set(lora) - lora_known:
            raise ConfigError(f"{source}: unknown lora option(s) {sorted(set(lora) - lora_known)}; "
                              f"known: {sorted(lora_known)}.")
        data = {k: v for k, v in data.items() if v is not None or k in ("validation_file", "init_from")}
        config = cls(**data, lora=LoraOptions(**lora))
        config.check(source)
        return config

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        path = Path(path)
        try:
            raw = json.loads(path.read_text("utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: no such config file.") from exc
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}).") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object.")
        return cls.from_dict(raw, str(path))

    def check(self, source: str) -> None:
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"{source}: '{name}' {why}")

        if self.method not in METHODS:
            raise bad("method", f"is {self.method!r}; use 'lora', 'qlora' or 'full'.")
        if self.method == "qlora" and self.training_method == "dpo":
            raise bad("method", "'qlora' trains supervised jobs only; use 'lora' for DPO.")
        for name, kind, low in (("n_epochs", int, 1), ("batch_size", int, 1),
                                ("learning_rate_multiplier", (int, float), 0)):
            value = getattr(self, name)
            if value == "auto":
                continue
            if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) \
                    or value < low or (name == "learning_rate_multiplier" and value == 0):
                what = "integer" if kind is int else "number"
                raise bad(name, f"is {value!r}; use \"auto\" or a positive {what}.")
        if not isinstance(self.seed, int):
            raise bad("seed", "must be an integer.")
        if not (0 <= self.prompt_loss_weight <= 1):
            raise bad("prompt_loss_weight", "must be between 0 and 1.")
        if not (isinstance(self.max_seq_length, int) and self.max_seq_length >= 16):
            raise bad("max_seq_length", "must be an integer >= 16.")
        if not (0 <= self.warmup_ratio < 1):
            raise bad("warmup_ratio", "must be in [0, 1).")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise bad("precision", "must be 'auto', 'bf16' or 'fp32'.")
        if self.lora.r < 1 or self.lora.alpha <= 0 or not self.lora.target_modules:
            raise bad("lora", "needs r >= 1, alpha > 0 and at least one target module.")
        if isinstance(self.min_examples, bool) or not isinstance(self.min_examples, int) \
                or self.min_examples < 1:
            raise bad("min_examples", "must be an integer >= 1.")
        if not isinstance(self.gradient_checkpointing, bool):
            raise bad("gradient_checkpointing", "must be true or false.")
        if self.checkpoints_to_keep < 1:
            raise bad("checkpoints_to_keep", "must be at least 1.")
        if self.training_method not in ("supervised", "dpo"):
            raise bad("training_method", f"is {self.training_method!r}; use 'supervised' or 'dpo'.")
        if self.beta != "auto" and (isinstance(self.beta, bool) or not isinstance(self.beta, (int, float))
                                    or not math.isfinite(self.beta) or not 0 < self.beta <= 2):
            raise bad("beta", f"is {self.beta!r}; use \"auto\" or a number with 0 < beta <= 2.")
