"""What a fine-tuning job trains (tuneforge's `training_type`), the one list the API, the CLI, the trainer
and the model registry share: a LoRA adapter, a LoRA adapter on a 4-bit (NF4) copy of the base (QLoRA), or
every weight. Both adapter methods save a plain PEFT adapter, served on the base like any other."""

from __future__ import annotations

METHODS = ("lora", "qlora", "full")
ADAPTER_METHODS = ("lora", "qlora")


def is_adapter(method: str) -> bool:
    return method in ADAPTER_METHODS
