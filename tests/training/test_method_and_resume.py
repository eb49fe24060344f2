"""`method: full` trains every weight (LoRA leaves the base alone); resume skips an unreadable checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from trainkit import base_config

from tuneforge.training import TrainConfig, train


def _tensors(folder: Path) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for f in sorted(folder.glob("*.safetensors")):
        out.update(load_file(f))
    return out


def test_full_method_changes_every_weight_and_lora_none(tiny_model, tiny_model_dir, chat_file, tmp_path):
    before = _tensors(tiny_model_dir)
    full = train(TrainConfig.from_dict(base_config(tiny_model, chat_file, tmp_path / "full", method="full",
                                                   n_epochs=1, learning_rate_multiplier=50)))
    after = _tensors(Path(full.final_dir))
    assert after.keys() >= before.keys()
    unchanged = [k for k in before if torch.equal(before[k], after[k].to(before[k].dtype))]
    assert unchanged == [], f"method full left these weights untouched: {unchanged}"

    lora = train(TrainConfig.from_dict(base_config(tiny_model, chat_file, tmp_path / "lora", n_epochs=1)))
    adapter = _tensors(Path(lora.final_dir))
    assert adapter and all("lora_" in k for k in adapter)  # only adapter weights are saved and trained
    assert _tensors(tiny_model_dir).keys() == before.keys()
    assert all(torch.equal(before[k], v) for k, v in _tensors(tiny_model_dir).items())


@pytest.mark.parametrize("broken", ["training_state.pt", "adapter_model.safetensors"])
def test_resume_skips_a_corrupt_newest_checkpoint(tiny_model, chat_file, tmp_path, broken):
    out = tmp_path / "out"
    cfg = base_config(tiny_model, chat_file, out, batch_size=6, n_epochs=3)  # 2 steps an epoch
    train(TrainConfig.from_dict({**cfg, "n_epochs": 2}))  # checkpoints at steps 2 and 4
    target = out / "checkpoints" / "step-4" / broken
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 3])  # what a crash mid-save leaves
    events: list[dict] = []
    result = train(TrainConfig.from_dict({**cfg, "resume": True}), callbacks=events.append)
    skipped = [e for e in events if e["type"] == "checkpoint_skipped"]
    assert [e["checkpoint"] for e in skipped] == ["step-4"]
    assert "cannot be read" in skipped[0]["message"] and "the one before" in skipped[0]["message"]
    assert str(tmp_path) not in skipped[0]["message"]
    started = next(e for e in events if e["type"] == "started")
    assert started["resumed_from_step"] == 2
    assert result.status == "succeeded" and result.step == 6
