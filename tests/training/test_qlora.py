"""QLoRA (`method: "qlora"`): a LoRA adapter trained on a 4-bit NF4 copy of the base through bitsandbytes,
saved as a plain PEFT adapter that loads on the unquantized base."""

from __future__ import annotations

import pytest
from trainkit import base_config, run_cli

pytest.importorskip("bitsandbytes", reason="QLoRA needs the qlora extra (bitsandbytes)")


def test_qlora_trains_a_plain_adapter_on_a_4_bit_base(tiny_model, tiny_model_dir, chat_file, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from tuneforge.training import TrainConfig
    from tuneforge.training.model import build_model

    drops = {}
    for method in ("lora", "qlora"):
        work = tmp_path / method
        work.mkdir()
        config = base_config(tiny_model, chat_file, work / "out", method=method, n_epochs=4,
                             learning_rate_multiplier=10)
        code, events, err = run_cli(config, work)
        assert code == 0, (events[-1:], err[-3000:])
        assert events[0]["method"] == method
        losses = [e["train_loss"] for e in events if e["type"] == "step"]
        drops[method] = losses[0] - losses[-1]
    # It learns, about as much as LoRA on the full-precision base (4-bit weights shift the curve a little).
    assert drops["qlora"] > 0.5 * drops["lora"] > 0, drops

    # While training, the frozen projections are 4-bit; the adapter on top is full precision.
    from tuneforge.settings import get_settings

    model = build_model(TrainConfig.from_dict(config), get_settings(), "cpu")
    import bitsandbytes as bnb

    linear = model.get_base_model().model.layers[0].self_attn.q_proj.base_layer
    assert isinstance(linear, bnb.nn.Linear4bit)
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)

    final = tmp_path / "qlora" / "out" / "final"
    assert (final / "adapter_model.safetensors").is_file()
    served = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), final)
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.isfinite(served(input_ids=ids).logits).all()


def test_qlora_refuses_dpo_with_a_clear_message(tiny_model, chat_file, tmp_path):
    from tuneforge.training import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="'qlora' trains supervised jobs only"):
        TrainConfig.from_dict(base_config(tiny_model, chat_file, tmp_path, method="qlora",
                                          training_method="dpo"))
