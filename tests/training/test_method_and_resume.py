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


@pytest.mark.parametrize("method", ["lora", "full"])
def test_gradient_checkpointing_keeps_the_loss_curve(tiny_model, chat_file, tmp_path, method):
    curves = {}
    for on in (False, True):
        events: list[dict] = []
        config = base_config(tiny_model, chat_file, tmp_path / str(on), method=method, n_epochs=1,
                             gradient_checkpointing=on)
        train(TrainConfig.from_dict(config), callbacks=events.append)
        curves[on] = [e["train_loss"] for e in events if e["type"] == "step"]
    assert len(curves[True]) == 3
    assert curves[True] == pytest.approx(curves[False], rel=1e-4)


def test_gradient_checkpointing_recomputes_each_layer_in_the_backward_pass(tiny_model, chat_file, tmp_path):
    from tuneforge.models import load_tokenizer
    from tuneforge.settings import get_settings
    from tuneforge.training.dataset import encode_rows, load_examples, pack
    from tuneforge.training.model import build_model
    from tuneforge.training.step import train_batch

    tokenizer = load_tokenizer(tiny_model)
    rows = pack(encode_rows(load_examples(str(chat_file), tokenizer), tokenizer, 128, 0.0).examples[:2], 8192)
    calls = {}
    for on in (False, True):
        raw = base_config(tiny_model, chat_file, tmp_path, gradient_checkpointing=on)
        config = TrainConfig.from_dict(raw)
        model = build_model(config, get_settings(), "cpu")
        model.train()
        # Counted by wrapping the call itself: module hooks do not fire while a checkpoint recomputes.
        act = model.get_base_model().model.layers[0].mlp.act_fn
        count = []
        act.forward = lambda x, f=act.forward, count=count: count.append(1) or f(x)
        train_batch(model, rows, "cpu", False)
        calls[on] = len(count)
    assert calls == {False: 1, True: 2}  # once forward; with checkpointing once more in the backward
