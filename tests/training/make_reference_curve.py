"""Regenerate reference_curve.json (only when a change to training is intended): run from the repo root
with `HF_HUB_OFFLINE=1 .venv/bin/python tests/training/make_reference_curve.py` inside a pytest-like home."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))


def main() -> None:
    from test_train import REFERENCE, reference_config
    from testkit import write_jsonl
    from tiny_model import TINY_NAME, build_tiny_model
    from trainkit import chat_rows

    from tuneforge.models import base_model_folder
    from tuneforge.models.catalog import register_base, registered_bases
    from tuneforge.settings import get_settings
    from tuneforge.training import TrainConfig, train

    settings = get_settings()
    folder = build_tiny_model(settings.cache_dir, base_model_folder(settings.default_base_model, settings))
    if TINY_NAME not in registered_bases(settings):
        register_base(TINY_NAME, str(folder), settings)
    with tempfile.TemporaryDirectory() as tmp:
        data = write_jsonl(Path(tmp) / "train.jsonl", chat_rows(12))
        events: list[dict] = []
        train(TrainConfig.from_dict(reference_config(TINY_NAME, data, Path(tmp) / "out")), events.append)
    steps = [e for e in events if e["type"] == "step"]
    REFERENCE.write_text(json.dumps({
        "config": "reference_config() in test_train.py, tiny-llama v1, chat_rows(12)",
        "train_loss": [e["train_loss"] for e in steps],
        "train_mean_token_accuracy": [e["train_mean_token_accuracy"] for e in steps],
    }, indent=1) + "\n")
    print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
