"""Supervised fine-tuning (LoRA or full) of a base model: `train(config)` or `python -m tuneforge.training`.

Layout (after torchtune's components / recipe / config split): `config` (TrainConfig), `hparams`
(OpenAI's auto heuristics), `dataset` (encode + packing), `model` (build/save), `step` (loss), `checkpoint`,
`metrics` (OpenAI metric names, results CSV): components; `run.train`: the recipe.

Names are imported lazily so `python -m tuneforge.training` can set thread environment variables before
torch loads.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"ConfigError": "config", "LoraOptions": "config", "TrainConfig": "config",
            "TrainingError": "run", "TrainResult": "run", "train": "run"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"tuneforge.training.{_EXPORTS[name]}"), name)
    raise AttributeError(name)
